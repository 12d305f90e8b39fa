"""Known upstream behaviours match by signature and bus version, never by pattern."""

from __future__ import annotations

import pytest

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


def test_known_status_says_still_there_fixed_or_back():
    from fuzz.oracles.known import KnownBehaviour, known_status
    entry = KnownBehaviour("x", "dbus-broker", ("1", "33"), "crash", "k", "bus1/dbus-broker#1",
                           "summary", "scenarios/smoke.toml")
    assert known_status(entry, True, "dbus-broker", "dbus-broker 33").startswith(
        "still shows on dbus-broker 33")
    assert known_status(entry, False, "dbus-broker", "dbus-broker 34").startswith(
        "fixed: not shown on dbus-broker 34")
    assert "a version it is known in" in known_status(entry, False, "dbus-broker", "33")
    assert "reported as a finding again" in known_status(entry, True, "dbus-broker", "34")


def test_every_known_behaviour_has_its_scenario():
    from tests.conftest import ROOT
    for entry in KNOWN:
        assert (ROOT / entry.scenario).exists(), entry.id


@pytest.mark.timeout(120)
def test_nightly_check_reports_a_behaviour_this_version_fixed(tmp_path, monkeypatch):
    import time

    from fuzz.bus import BusChoice
    from fuzz.campaign import nightly
    from fuzz.oracles import known
    from tests.conftest import require_binary
    require_binary("dbus-daemon")
    gone = known.KnownBehaviour("old-bug", "dbus-daemon", ("1.0", "1.2"), "crash",
                                "bus-died:SIGSEGV", "dbus/dbus#0", "an old crash",
                                "scenarios/smoke.toml")
    monkeypatch.setattr(known, "KNOWN", (gone,))
    [check] = nightly.check_known(BusChoice(kind="dbus-daemon"), 1, str(tmp_path),
                                  time.monotonic() + 60)
    assert check.error is None and not check.reproduces
    assert check.note.startswith("fixed: not shown on dbus-daemon 1.")
