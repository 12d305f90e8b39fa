"""Collateral damage: while a hostile client attacks, innocent clients must keep working.

Innocents are every client that is not an attacker and that the nemesis did not target: the
liveness sentinel and the scenario's own callers, services and listeners. During an attack
(from the attacker's start to one second after it ends) an innocent must not be disconnected,
see its calls fail or time out, or wait more than HARM_LATENCY_S for a liveness round trip
(longer stalls are the hang oracle's). One attacker harming others is a denial of service.

dbus-broker accounts every resource per uid and documents that exhausting a uid's quota
takes down peers of that same uid (docs/sources.md, "dbus-broker quotas and disconnects"): harm to innocents sharing the
attacker's uid is reported `by_policy` there. Across uids, or on any other bus, it is a bug.

Harm while the nemesis itself works on the bus (injected syscall failures, fd limits, CPU
starvation, signals; up to a second after) is not pinned on the attacker: with recvmsg made
to fail with ECONNRESET beside an attack, the bus rightly drops the innocent whose read
failed.
"""

from __future__ import annotations

from typing import Sequence

from fuzz.history import SENTINEL, Event
from fuzz.oracles.facts import Facts, read_facts
from fuzz.oracles.finding import Finding

HARM_LATENCY_S = 1.0
# Errors that say the called service was not there (killed, stopped, never started, or the
# scenario has none): an attacker cannot be blamed for them, and a bus that wrongly dropped
# the service is the loss oracle's finding (a minimized case may keep a caller without its
# service beside an attack).
ABSENT_SERVICE_ERRORS = frozenset({
    "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoReply"})
AFTER_NS = 1_000_000_000


def check_collateral(events: Sequence[Event]) -> list[Finding]:
    facts = read_facts(events)
    windows = _attack_windows(events, facts)
    if not windows:
        return []
    findings: dict[str, Finding] = {}
    served = _served_calls(events)
    for e in events:
        harm = _harm(e, facts, served)
        if harm is None:
            continue
        for start, end, attacker, kind in windows:
            if not (start <= e.time <= end) or not facts.bus_serving_during(e.time, e.time) \
                    or facts.interfered_during(e.time, e.time):
                continue
            same_uid = facts.uid_of.get(attacker) == facts.uid_of.get(e.process)
            policy = facts.bus_kind == "dbus-broker" and same_uid
            key = f"{kind}:{harm}:{policy}"
            if key in findings:
                break
            findings[key] = Finding(
                oracle="collateral", severity="low" if policy else "high",
                kind=f"{kind}:{harm}" + (":same-uid" if policy else ""), by_policy=policy,
                title=f"the {kind} attack harmed an innocent client ({harm})",
                explanation=f"While {attacker} ran the {kind} attack, innocent client"
                            f" {e.process} (uid {facts.uid_of.get(e.process)}) suffered:"
                            f" {_describe(e)}. The attacker ran as uid"
                            f" {facts.uid_of.get(attacker)}."
                            + (" dbus-broker charges quota per uid, so peers sharing the"
                               " attacker's uid pay for its abuse (documented)." if policy else
                               " A bus must confine an abuser's damage to the abuser."),
                evidence=(e.index,))
            break
    return list(findings.values())


def _attack_windows(events: Sequence[Event], facts: Facts) -> list[tuple[int, int, str, str]]:
    kinds: dict[str, str] = {}
    for e in events:
        if e.op == "attack" and e.type == "invoke":
            kinds[e.process] = e.get("kind")
    windows = []
    for e in events:
        if e.op == "client-start" and e.get("role") == "attacker":
            who = e.get("client")
            end = facts.ended_at.get(who, facts.end) + AFTER_NS
            windows.append((e.time, end, who, kinds.get(who, "attack")))
    return windows


def _served_calls(events: Sequence[Event]) -> dict[str, dict[int, bool]]:
    """caller -> {seq: answered} for every call a service received."""
    out: dict[str, dict[int, bool]] = {}
    for e in events:
        if e.op == "serve":
            out.setdefault(e.get("caller"), {})[e.get("seq")] = bool(e.get("answered"))
    return out


def _bus_delayed(e: Event, served: dict[str, dict[int, bool]]) -> bool:
    """Was a timed-out call the bus's doing? Yes if the service answered it, or if it served
    a later call of the same caller instead; a slow or silent service is not the bus's fault."""
    mine = served.get(e.process, {})
    seq = e.get("seq")
    return mine.get(seq, False) or (seq not in mine and any(s > seq for s in mine))


def _harm(e: Event, facts: Facts, served: dict[str, dict[int, bool]]) -> str | None:
    if facts.role_of.get(e.process) in (None, "attacker") or e.process in facts.targeted:
        return None
    if e.op == "disconnect":
        return "disconnected"
    if e.op == "call" and e.type == "fail" and e.get("error") not in ABSENT_SERVICE_ERRORS:
        return f"call failed with {e.get('error')}"
    if e.op == "call" and e.type == "info" and e.get("reason") == "timeout" and \
            _bus_delayed(e, served):
        return "call timed out"
    if e.process == SENTINEL and e.op == "ping" and e.type == "ok" and \
            HARM_LATENCY_S * 1e9 < e.get("latency_ns", 0) <= facts.hang_after_ns:
        return "liveness round trip slowed"
    return None


def _describe(e: Event) -> str:
    if e.op == "disconnect":
        return f"its connection was closed ({e.get('error')})"
    if e.op == "ping":
        return f"a round trip with the bus took {e.get('latency_ns', 0) / 1e9:.2f} s"
    return f"call seq {e.get('seq')} {e.type} {e.get('error') or e.get('reason') or ''}".strip()
