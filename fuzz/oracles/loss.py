"""Loss and duplication: every call gets exactly one reply, every owed signal arrives once.

Conservative by construction, so a healthy bus never trips it. A signal is owed to a listener
only if it was sent after the listener's match rule was in place, its emitter's flush round
trip (proof the bus routed it) ended before the listener's barrier round trip began, and the
bus stayed up in between. A call counts as lost only if the bus and the service stayed up and
connected throughout and the caller kept listening long after.

What the buses document is not a bug, when this run shows the evidence for it
(docs/oracles.md, "Documented behaviour"): dbus-daemon skips a broadcast for a receiver whose
queue is over max_outgoing_bytes (dbus-daemon(1), the max_outgoing_bytes limit); dbus-broker
disconnects a peer that has no quota left for a message it must take, and says so in its log
("Peer :1.N is being disconnected as it does not have the resources to ...", dbus-broker
src/bus/peer.c and src/bus/driver.c). Both come out as low-severity `by_policy` findings
naming the rule; without the evidence the finding stands as a bug.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Sequence

from fuzz.clients.protocol import TEST_INTERFACE, TICK
from fuzz.history import Event
from fuzz.oracles.facts import Facts, read_facts
from fuzz.oracles.finding import Finding

_RULE_ITEM = re.compile(r"\s*(\w+)\s*=\s*'([^']*)'\s*")
_RULE = re.compile(rf"{_RULE_ITEM.pattern}(,{_RULE_ITEM.pattern})*")
# A listener's receive queue this full means it was falling behind, so dbus-daemon's
# per-receiver queue may have reached max_outgoing_bytes.
BACKLOG_BYTES = 64 * 1024
# A reply this late after its service answered is not "late" any more: it is gone.
REPLY_GRACE_NS = 2_000_000_000


def rule_takes(rule: str, member: str = TICK) -> bool:
    """True if the match rule certainly matches every test signal of that member."""
    if not _RULE.fullmatch(rule):
        return False
    wanted = {"type": "signal", "interface": TEST_INTERFACE, "member": member}
    return all(wanted.get(k) == v for k, v in _RULE_ITEM.findall(rule))


def check_loss(events: Sequence[Event]) -> list[Finding]:
    facts = read_facts(events)
    return _signal_loss(events, facts) + _call_loss(events, facts) + _listener_disconnects(events, facts)


# --- signals ------------------------------------------------------------------------------

def _signal_loss(events: Sequence[Event], facts: Facts) -> list[Finding]:
    rules: dict[str, str] = {}
    ready: dict[str, Event] = {}
    barrier: dict[str, Event] = {}
    flush: dict[str, Event] = {}
    emit_invoke: dict[tuple[str, int], int] = {}
    # emitter -> (invoke time, seq, member)
    sent: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    got: dict[str, dict[tuple[str, int], list[Event]]] = defaultdict(lambda: defaultdict(list))
    backlog: dict[str, int] = defaultdict(int)  # listener -> largest receive queue seen
    for e in events:
        if e.op == "add-match" and e.type == "ok":
            rules[e.process] = e.get("rule", "")
        elif e.op == "ready" and e.process in rules:
            ready[e.process] = e
        elif e.op == "barrier" and e.type == "invoke":
            barrier[e.process] = e
        elif e.op == "flush" and e.type == "ok":
            flush[e.process] = e
        elif e.op == "emit" and e.type == "invoke":
            emit_invoke[(e.process, e.get("seq"))] = e.time
        elif e.op == "emit" and e.type == "ok":
            t = emit_invoke.get((e.process, e.get("seq")))
            if t is not None:
                sent[e.process].append((t, e.get("seq"), e.get("member", TICK)))
        elif e.op == "recv":
            got[e.process][(e.get("emitter"), e.get("seq"))].append(e)
        elif e.op == "sockets":
            for sk in e.get("sockets") or []:
                if sk.get("owner") in rules:
                    backlog[sk["owner"]] = max(backlog[sk["owner"]], sk.get("rq", 0))

    findings: list[Finding] = []
    for listener in sorted(set(got) | set(ready)):
        for (emitter, seq), copies in sorted(got[listener].items()):
            if len(copies) > 1:
                findings.append(Finding(
                    oracle="loss", severity="high", kind="broadcast-duplicated",
                    title="a broadcast signal was delivered twice to one listener",
                    explanation=f"Listener {listener} received seq {seq} from {emitter}"
                                f" {len(copies)} times; each match delivers a signal once.",
                    evidence=tuple(c.index for c in copies[:3])))
                break
        if listener not in ready or listener not in barrier:
            continue
        start, end = ready[listener].time, barrier[listener].time
        if not facts.bus_serving_during(start, end):
            continue
        for emitter, emitted in sorted(sent.items()):
            if emitter not in flush or flush[emitter].time > end:
                continue
            missing = sorted(seq for t, seq, member in emitted
                             if t > start and rule_takes(rules[listener], member)
                             and (emitter, seq) not in got[listener])
            if not missing:
                continue
            evidence = (ready[listener].index, flush[emitter].index, barrier[listener].index)
            if facts.bus_kind == "dbus-daemon" and (
                    "max_outgoing_bytes" in facts.limits or backlog[listener] >= BACKLOG_BYTES):
                findings.append(Finding(
                    oracle="loss", severity="low", kind="broadcast-skipped-full-queue",
                    by_policy=True,
                    title="dbus-daemon skipped broadcasts for a receiver that fell behind",
                    explanation=f"{len(missing)} signal(s) from {emitter} never reached"
                                f" {listener} (seq {_ranges(missing)}), whose queue was backed up"
                                f" (largest receive queue seen: {backlog[listener]} bytes)."
                                " dbus-daemon silently skips a broadcast for a receiver whose"
                                " outgoing queue is over max_outgoing_bytes (documented).",
                    evidence=evidence))
                continue
            findings.append(Finding(
                oracle="loss", severity="high", kind="broadcast-lost",
                title="broadcast signals never reached a subscribed listener",
                explanation=f"Listener {listener} had its match rule in place before {emitter}"
                            f" sent seq {_ranges(missing)} ({len(missing)} signals); the bus"
                            " confirmed routing them (the emitter's flush round trip) before"
                            " the listener's barrier round trip, and stayed up, yet they never"
                            " arrived and the listener was not disconnected.",
                evidence=evidence))
    return findings


def _listener_disconnects(events: Sequence[Event], facts: Facts) -> list[Finding]:
    """A subscriber dropped by the bus while the bus lived and nobody killed it."""
    findings = []
    for process, e in sorted(facts.disconnects.items()):
        if process in facts.targeted or not facts.bus_serving_during(e.time, e.time):
            continue
        if facts.peers_broken_during(e.time, e.time):
            # A send or receive on its socket failed as if the peer were gone (an injected
            # ECONNRESET or EPIPE), or fds ran out: dropping that peer is how both buses
            # handle it. A transient error (ENOBUFS) is no such reason: reported below.
            findings.append(Finding(
                oracle="loss", severity="low", kind="peer-disconnected-under-fault",
                by_policy=True,
                title="the bus dropped a client whose socket the nemesis made look broken",
                explanation=f"{process} lost its connection ({e.get('error')}) while the"
                            " nemesis made the bus's socket calls fail with ECONNRESET or EPIPE"
                            " (or limited its fds); a bus drops a peer whose socket is broken.",
                evidence=(e.index,)))
        elif facts.bus_kind == "dbus-broker" and _quota_line(facts, process):
            findings.append(Finding(
                oracle="loss", severity="low", kind="peer-disconnected-over-quota",
                by_policy=True,
                title="dbus-broker disconnected a client (quota policy)",
                explanation=f"{process} lost its connection while the bus was up. dbus-broker"
                            " disconnects a peer that cannot take a signal it subscribed to or"
                            " a reply it asked for once its uid's quota is used up"
                            " (documented), and its log says so for this peer:"
                            f" {_quota_line(facts, process)!r}",
                evidence=(e.index,)))
        elif facts.transient_errno_during(e.time, e.time):
            errno = facts.transient_errno_during(e.time, e.time)
            findings.append(Finding(
                oracle="loss", severity="high", kind=f"client-disconnected-under-injected:{errno}",
                title=f"the bus dropped a client for a transient {errno}",
                explanation=f"{process} lost its connection ({e.get('error')}: "
                            f"{e.get('message')}) while the nemesis made the bus's calls fail"
                            f" with {errno}, an error that says 'try again', not 'the peer is"
                            " gone': nothing about this client called for dropping it.",
                evidence=(e.index,)))
        else:
            findings.append(Finding(
                oracle="loss", severity="high", kind="client-disconnected",
                title="the bus dropped a well-behaved client",
                explanation=f"{process} lost its connection ({e.get('error')}: "
                            f"{e.get('message')}) while the bus was up and nothing in the run"
                            " attacked it. Everything it was owed after that point is lost.",
                evidence=(e.index,)))
    return findings


def _quota_line(facts: Facts, process: str) -> str | None:
    """dbus-broker's own log line saying it disconnects this peer for lack of quota."""
    name = facts.unique_name.get(process)
    if not name:
        return None
    wanted = f"Peer {name} is being disconnected as it does not have the resources"
    return next((line for line in facts.bus_log if wanted in line), None)


# --- calls --------------------------------------------------------------------------------

def _call_loss(events: Sequence[Event], facts: Facts) -> list[Finding]:
    findings: list[Finding] = []
    served: dict[tuple[str, int], Event] = {}
    for e in events:
        if e.op == "serve":
            key = (e.get("caller"), e.get("seq"))
            if key in served:
                findings.append(Finding(
                    oracle="loss", severity="high", kind="call-duplicated",
                    title="a method call was delivered twice to its service",
                    explanation=f"Service {e.process} received call seq {e.get('seq')} from"
                                f" {e.get('caller')} twice; the caller sent it once.",
                    evidence=(served[key].index, e.index)))
            served.setdefault(key, e)
    late = {(e.process, e.get("serial")) for e in events if e.op == "late-reply"}
    server_of: dict[str, str] = {}  # caller -> a service that served it
    for e in events:
        if e.op == "serve":
            server_of.setdefault(e.get("caller"), e.process)
    for e in events:
        if e.op == "duplicate-reply":
            findings.append(Finding(
                oracle="loss", severity="high", kind="reply-duplicated",
                title="a method call got two replies",
                explanation=f"{e.process} received a second reply to call seq {e.get('seq')}"
                            " (serial " f"{e.get('serial')}); each call gets exactly one.",
                evidence=(e.index,)))
        elif e.op == "stray-reply":
            findings.append(Finding(
                oracle="loss", severity="high", kind="reply-stray",
                title="a client got a reply to a call it never made",
                explanation=f"{e.process} received a reply to serial {e.get('serial')}, which"
                            " it never used for a call: a reply routed to the wrong peer.",
                evidence=(e.index,)))
        elif e.op == "call" and e.type == "ok" and e.get("mismatch") is not None:
            findings.append(Finding(
                oracle="loss", severity="high", kind="reply-mismatch",
                title="a reply did not belong to its call",
                explanation=f"{e.process}'s call seq {e.get('seq')} was answered with"
                            f" {e.get('mismatch')} (seq, caller, fds received): the reply"
                            " was misrouted or its body or fds were altered on the way.",
                evidence=(e.index,)))
        elif e.op == "call" and e.type == "info" and e.get("reason") == "timeout":
            lost = _lost_call(e, served, late, facts, server_of)
            if lost:
                findings.append(lost)
    return findings


def _lost_call(e: Event, served: dict[tuple[str, int], Event], late: set, facts: Facts,
               server_of: dict[str, str]) -> Finding | None:
    caller, seq = e.process, e.get("seq")
    if caller in facts.targeted or (caller, e.get("serial")) in late:
        return None
    caller_end = facts.ended_at.get(caller, facts.end)
    serve = served.get((caller, seq))
    if serve is not None:
        if not serve.get("answered") or serve.process in facts.targeted:
            return None
        if caller_end - serve.time < REPLY_GRACE_NS or not facts.bus_serving_during(serve.time, caller_end):
            return None
        return Finding(
            oracle="loss", severity="high", kind="reply-lost",
            title="a service answered but the reply never reached the caller",
            explanation=f"{serve.process} answered {caller}'s call seq {seq}, the bus stayed"
                        f" up and {caller} kept listening for"
                        f" {(caller_end - serve.time) / 1e9:.1f} s, yet the reply never came.",
            evidence=(serve.index, e.index))
    # Never served. Lost only if the service then served a later call of the same caller: the
    # bus delivers one sender's messages to one receiver in order, so the lost call would have
    # come first. (A slow service still working through older calls proves nothing.)
    service = server_of.get(caller)
    if service is None or service in facts.targeted:
        return None
    later = [s for (c, s_seq), s in served.items() if c == caller and s_seq > seq]
    if not later:
        return None
    first_later = min(later, key=lambda s: s.time)
    if not facts.bus_serving_during(e.time, first_later.time):
        return None
    return Finding(
        oracle="loss", severity="high", kind="call-lost",
        title="a method call never reached its service",
        explanation=f"{caller}'s call seq {seq} timed out without {service} ever seeing it,"
                    f" although {service} then served {caller}'s later call seq"
                    f" {first_later.get('seq')} and the bus stayed up: the bus lost the call.",
        evidence=(e.index, first_later.index))


def _ranges(values: list[int]) -> str:
    parts, start, prev = [], values[0], values[0]
    for v in values[1:] + [None]:  # type: ignore[list-item]
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(parts[:10]) + (" ..." if len(parts) > 10 else "")
