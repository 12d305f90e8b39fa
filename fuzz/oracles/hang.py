"""Hangs and deadlocks: the liveness sentinel's round trip went unanswered while the bus lived.

A stall is a sentinel ping that took longer than the run's hang_after (or never came back).
It is classified from the bus's own samples during the stall: `stopped` (state T), `spinning`
(CPU near 100%), or `blocked` in the kernel function the samples and the hang snapshot show.
The finding carries the socket queues at onset and the wait-for graph among clients (who was
waiting for whose reply). No client role can wait on another client while serving, so
the graph shows who was blocked on the bus, not a deadlock cycle among clients.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from fuzz.history import SENTINEL, Event
from fuzz.oracles.facts import TRANSIENT_ERRNOS, Facts, read_facts
from fuzz.oracles.finding import Finding

SPINNING_CPU = 0.9  # share of one CPU over the stall
# A wrapper shell waiting for its child explains nothing about the hang.
SUPERVISOR_SYSCALLS = frozenset({"wait4", "waitid"})


def check_hang(events: Sequence[Event]) -> list[Finding]:
    facts = read_facts(events)
    stalls = _stalls(events, facts)
    return [_judge(events, facts, start, end, ping) for start, end, ping in stalls[:1]]


def _stalls(events: Sequence[Event], facts: Facts) -> list[tuple[int, int, Event]]:
    """(start, end, invoke) of every ping open longer than hang_after while the bus lived."""
    out = []
    open_ping: Event | None = None
    limit = facts.hang_after_ns
    for e in events:
        if e.process != SENTINEL or e.op != "ping":
            continue
        if e.type == "invoke":
            open_ping = e
            continue
        if open_ping is None:
            continue
        # Whatever ended it (reply, timeout, disconnect, the rig killing the sentinel), a ping
        # open past the limit while the bus process existed is a stall.
        start, end = open_ping.time, e.time
        if end - start > limit and facts.bus_up_during(start, start + limit):
            out.append((start, end, open_ping))
        open_ping = None
    if open_ping is not None and facts.end - open_ping.time > limit \
            and facts.bus_up_during(open_ping.time, open_ping.time + limit):
        out.append((open_ping.time, facts.end, open_ping))
    return out


# The calls a bus writes to its peers with: a transient error (facts.TRANSIENT_ERRNOS) injected
# into one while the sentinel's ping waited may have made the bus give up writing to it.
SEND_SYSCALLS = frozenset({"sendmsg", "sendmmsg", "sendto", "write", "writev"})


def _send_error_during(events: Sequence[Event], start: int, end: int) -> Event | None:
    """A transient error the nemesis made the bus's own send fail with over [start, end]."""
    return next((e for e in events if e.op == "inject" and start <= e.time <= end
                 and e.get("syscall") in SEND_SYSCALLS and e.get("errno") in TRANSIENT_ERRNOS),
                None)


def _cut_off(facts: Facts, start: int, end: int, ping: Event, injected: Event) -> Finding:
    errno = injected.get("errno")
    return Finding(
        oracle="hang", severity="high", kind=f"sentinel-cut-off-under-injected:{errno}",
        title=f"the bus stopped answering a client after a transient {errno}",
        explanation=f"The sentinel's GetId round trip went unanswered for"
                    f" {(end - start) / 1e9:.1f} s (limit {facts.hang_after_ns / 1e9:.1f} s);"
                    f" {(injected.time - start) / 1e6:.0f} ms after it was sent the nemesis"
                    f" made the bus's {injected.get('syscall')} fail with {errno}, an error"
                    " that says 'try again'. The bus then wrote nothing more to the sentinel:"
                    " it gave up on the connection rather than retrying, so the sentinel saw"
                    " silence, not a disconnection (the bus itself went on running).",
        evidence=(ping.index, injected.index))


def _judge(events: Sequence[Event], facts: Facts, start: int, end: int, ping: Event) -> Finding:
    injected = _send_error_during(events, start, start + facts.hang_after_ns)
    if injected is not None:
        return _cut_off(facts, start, end, ping, injected)
    samples = [e for e in events if e.op == "proc" and str(e.get("target", "")).startswith("bus")
               and start <= e.time <= end]
    snapshot = next((e for e in events if e.op == "hang-snapshot" and e.time >= start), None)
    kind, detail = _classify(samples, snapshot)
    queues = _queues_at(events, start + facts.hang_after_ns)
    edges = _wait_for(events, facts, start + facts.hang_after_ns)
    lines = [f"The sentinel's GetId round trip to the bus went unanswered for"
             f" {(end - start) / 1e9:.1f} s (limit {facts.hang_after_ns / 1e9:.1f} s)"
             f" while the bus process existed. Classified as {kind}: {detail}."]
    if queues:
        lines.append("Fullest sockets at onset (owner -> peer: bytes queued): " + ", ".join(
            f"{q['owner']} -> {q.get('peer_owner') or '?'}: {q['rq']}" for q in queues))
    if edges:
        lines.append("Waiting for replies: " + ", ".join(f"{a} -> {b}" for a, b in sorted(edges)))
    if snapshot is not None:
        lines.append(f"Snapshot of the bus: {snapshot.get('path')}")
    evidence = (ping.index,) + ((snapshot.index,) if snapshot else ())
    return Finding(
        oracle="hang", severity="high", kind=f"{kind}:{detail}",
        title=f"the bus stopped answering ({kind}: {detail})",
        explanation="\n".join(lines), evidence=evidence)


def _classify(samples: list[Event], snapshot: Event | None) -> tuple[str, str]:
    if any(s.get("state") in ("T", "t") for s in samples):
        return "stopped", "the bus process was stopped (state T)"
    by_pid: dict[Any, list[Event]] = {}
    for s in samples:
        by_pid.setdefault(s.get("pid"), []).append(s)
    for pid_samples in by_pid.values():
        if len(pid_samples) >= 2:
            first, last = pid_samples[0], pid_samples[-1]
            wall = (last.time - first.time) / 1e9
            if wall > 0 and (last.get("cpu_s", 0) - first.get("cpu_s", 0)) / wall >= SPINNING_CPU:
                return "spinning", "the bus burned a whole CPU without answering"
    if snapshot is not None:
        for p in snapshot.get("processes") or []:
            if p.get("state") != "R" and p.get("syscall") not in (None, "running") \
                    and p.get("syscall") not in SUPERVISOR_SYSCALLS:
                return "blocked", f"in {p.get('syscall')} ({p.get('wchan')})"
    wchans = Counter(s.get("wchan") for s in samples
                     if s.get("wchan") not in (None, "0", "do_wait"))
    if wchans:
        return "blocked", f"in the kernel at {wchans.most_common(1)[0][0]}"
    return "unresponsive", "no sample explains it"


def _queues_at(events: Sequence[Event], when: int) -> list[dict]:
    last = None
    for e in events:
        if e.op == "sockets" and e.get("sockets") is not None:
            if e.time > when and last is not None:
                break
            last = e
    if last is None:
        return []
    rows = [q for q in last.get("sockets") if q.get("rq", 0) > 0 and not q.get("listening")]
    return sorted(rows, key=lambda q: -q["rq"])[:5]


def _wait_for(events: Sequence[Event], facts: Facts, when: int) -> set[tuple[str, str]]:
    """Edges caller -> owner of the name it was calling, for calls open at `when`."""
    owner: dict[str, str] = {}
    open_calls: dict[tuple[str, Any], Event] = {}
    for e in events:
        if e.time > when:
            break
        if e.op == "request-name" and e.type == "ok":
            owner[e.get("name")] = e.process
        elif e.op == "release-name" and e.type == "ok":
            owner.pop(e.get("name"), None)
        elif e.op == "call":
            key = (e.process, e.get("seq"))
            if e.type == "invoke":
                open_calls[key] = e
            else:
                open_calls.pop(key, None)
    edges = set()
    for (caller, _seq), inv in open_calls.items():
        target = inv.get("target")
        callee = owner.get(target) or facts.process_at(target, inv.time)
        edges.add((caller, callee or f"{target} (no owner)"))
    return edges
