"""Known upstream behaviours match by signature and bus version, never by pattern."""

from __future__ import annotations

from fuzz.oracles.finding import Finding
from fuzz.oracles.known import KNOWN, mark_known, version_number


def finding(kind: str, oracle: str = "crash") -> Finding:
    return Finding(oracle=oracle, severity="high", kind=kind, title="t", explanation="e")


def test_a_known_behaviour_applies_to_its_bus_and_versions_only():
    entry = next(k for k in KNOWN if k.reference == "bus1/dbus-broker#435")
    f = finding(entry.kind)
    assert mark_known([f], "dbus-broker", "dbus-broker 33")[0].known == "bus1/dbus-broker#435"
    assert mark_known([f], "dbus-broker", "dbus-broker 36")[0].known is None  # fixed there?
    assert mark_known([f], "dbus-daemon", "dbus-broker 33")[0].known is None
    assert mark_known([f], "dbus-broker", None)[0].known is None
    other = finding(entry.kind.replace("e0003a052c26", "000000000000"))
    assert mark_known([other], "dbus-broker", "dbus-broker 33")[0].known is None
    assert not mark_known([f], "dbus-broker", "dbus-broker 33")[0].counts


def test_versions_compare_as_numbers():
    assert version_number("D-Bus Message Bus Daemon 1.14.10") == (1, 14, 10)
    assert version_number("dbus-broker 33") == (33,)
    assert (1, 14, 9) < (1, 14, 10)
