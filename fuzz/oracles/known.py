"""Known behaviours of released buses: real upstream bugs and choices a campaign keeps
meeting, as data. Each entry names the bus, the versions it applies to, the finding it
explains (by oracle and exact kind, so its signature: never a loose pattern) and its upstream
reference. A finding that matches is reported as `known: <reference>`, counted apart from new
findings; on a version outside the entry it is a finding like any other, and a stored case of
a known behaviour that stops reproducing is reported as fixed."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from fuzz.oracles.finding import Finding, finding_signature


@dataclass(frozen=True)
class KnownBehaviour:
    id: str
    bus: str  # dbus-daemon, dbus-broker
    versions: tuple[str, str]  # first and last version it is known in, inclusive
    oracle: str
    kind: str
    reference: str  # upstream issue, commit or source file
    summary: str
    scenario: str  # the repo's scenario that shows it (the nightly runs it: still there, or fixed)

    @property
    def signature(self) -> str:
        return finding_signature(self.oracle, self.kind)

    def applies_to(self, bus: str, version: str | None) -> bool:
        number = version_number(version)
        return bus == self.bus and number is not None and \
            version_number(self.versions[0]) <= number <= version_number(self.versions[1])


def version_number(text: str | None) -> tuple[int, ...] | None:
    """(1, 14, 10) from "D-Bus Message Bus Daemon 1.14.10" or "dbus-broker 33"."""
    m = re.search(r"(\d+(?:\.\d+)*)", text or "")
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


KNOWN: tuple[KnownBehaviour, ...] = (
    KnownBehaviour(
        "broker-435-accept-emfile", "dbus-broker", ("1", "33"), "crash",
        # ERROR listener_dispatch @ listener.c: Too many open files (fuzz/triage/crashlog.py)
        "bus-died:broker-error:e0003a052c26",
        "bus1/dbus-broker#435",
        "dbus-broker exits when accept4() on its listening socket fails with EMFILE: the"
        " error reaches main() as a fatal listener error instead of pausing the listener",
        "scenarios/syscall_accept_emfile.toml"),
    KnownBehaviour(
        "daemon-sendmsg-enobufs", "dbus-daemon", ("1.10", "1.14.10"), "loss",
        "client-disconnected-under-injected:ENOBUFS",
        "dbus dbus/dbus-transport-socket.c do_writing()",
        "dbus-daemon treats every sendmsg() error but EAGAIN and EINTR as an I/O error of"
        " the connection and closes it, so a transient ENOBUFS drops the peer",
        "scenarios/syscall_send_enobufs.toml"),
    KnownBehaviour(
        "broker-sendmmsg-enobufs", "dbus-broker", ("1", "37"), "hang",
        "sentinel-cut-off-under-injected:ENOBUFS",
        "dbus-broker src/dbus/socket.c socket_dispatch_write()",
        "dbus-broker treats ENOBUFS from sendmmsg() like a broken peer: it hangs up the"
        " connection's output (socket_hangup_output) and writes nothing more to it, so a"
        " transient ENOBUFS silences the peer",
        "scenarios/syscall_send_enobufs.toml"),
    KnownBehaviour(
        "broker-f805f41-arg-index-0", "dbus-broker", ("1", "36"), "match",
        "match-as-if:arg-index-0", "bus1/dbus-broker commit f805f41 (fixed in v37)",
        "dbus-broker before v37 checks the type of argument 0, not of argument N, when"
        " matching argN, and compares argNpath with argument 0 in one direction, so"
        " broadcasts are withheld from or sent past rules on a later argument",
        "scenarios/wire_match_rules.toml"),
    KnownBehaviour(
        "broker-match-destination-ignored", "dbus-broker", ("1", "37"), "match",
        "match-as-if:destination-ignored",
        "dbus-broker src/bus/match.c match_keys_match_metadata() (found by busrig; related:"
        " bus1/dbus-broker#232)",
        "dbus-broker keeps a match rule's destination key but never compares it, so a rule"
        " naming a destination also takes broadcasts",
        "scenarios/wire_match_rules.toml"),
    KnownBehaviour(
        "broker-309-root-path-namespace", "dbus-broker", ("1", "37"), "match",
        "match-as-if:root-namespace-is-root",
        "bus1/dbus-broker#309 (open; fix proposed in #471)",
        "dbus-broker's path_namespace='/' matches the path '/' alone: its prefix match wants"
        " the end or a '/' after the namespace, and the root namespace is that '/' itself",
        "scenarios/wire_match_rules.toml"),
)


def known_status(entry: KnownBehaviour, shown: bool, bus: str, version: str | None) -> str:
    """What one run of an entry's scenario says about it on this bus version."""
    number = version_number(version)
    where = f"{bus} {'.'.join(map(str, number)) if number else '(version unknown)'}"
    if shown and entry.applies_to(bus, version):
        return f"still shows on {where} ({entry.reference})"
    if shown:
        return (f"shows on {where}, past the versions it is known in ({entry.versions[0]}-"
                f"{entry.versions[1]}): reported as a finding again")
    if entry.applies_to(bus, version):
        return f"not shown by this run on {where}, a version it is known in"
    return (f"fixed: not shown on {where}; known in {entry.versions[0]}-{entry.versions[1]}"
            f" ({entry.reference})")


def bus_of(events: Sequence) -> tuple[str, str | None]:
    """The bus kind and version a history was recorded on (the rig's bus-start event)."""
    for e in events:
        if e.process == "rig" and e.op == "bus-start" and e.type == "ok":
            return str(e.get("kind", "")), e.get("version")
    return "", None


def mark_known(findings: Iterable[Finding], bus: str, version: str | None,
               known: Sequence[KnownBehaviour] = KNOWN) -> list[Finding]:
    """Each finding with `known` set to the reference of the entry that explains it on this
    bus and version, if any."""
    out = []
    for f in findings:
        entry = next((k for k in known if k.signature == f.signature
                      and k.applies_to(bus, version)), None)
        out.append(replace(f, known=entry.reference) if entry and not f.by_policy else f)
    return out
