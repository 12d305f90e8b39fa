"""Latency: round trips against the run's own quiet baseline and the scenario's deadline.

The sentinel pings the bus alone for a moment before traffic starts: that is the baseline.
A ping during the run slower than SPIKE_FACTOR times the baseline median and SPIKE_FLOOR_S
(but short of a hang, which the hang oracle reports) is a spike, reported with what happened
in the second before it. With `latency_deadline_ms` in [watch], the p99 of the method calls'
response times (from when each call was due, so a stall counts in every call it delayed) must
stay under it (the priority-inversion scenarios set one).
"""

from __future__ import annotations

from collections import Counter

from typing import Sequence

from fuzz.history import SENTINEL, Event
from fuzz.stats import percentile
from fuzz.oracles.facts import read_facts
from fuzz.oracles.finding import Finding

SPIKE_FACTOR = 100
SPIKE_FLOOR_S = 1.0
CONTEXT_NS = 1_000_000_000
# Repeated short stalls: a round trip over max(STALL_FLOOR_NS, STALL_FACTOR x the quiet median)
# is a stall; STALL_MIN of them, making at least STALL_SHARE of the run's round trips, while the
# bus was mostly idle (no process of it used BUSY_CPU of a CPU), is a finding. Idle matters: a
# bus that is slow because it is busy moving traffic is slow, not stalled; one that does not
# answer while it sleeps has its main loop blocked (a lock held elsewhere, a housekeeping job).
STALL_FLOOR_NS = 20_000_000
STALL_FACTOR = 20
STALL_MIN = 5
STALL_SHARE = 0.05
STALL_MIN_PINGS = 20
BUSY_CPU = 0.5


def check_latency(events: Sequence[Event]) -> list[Finding]:
    facts = read_facts(events)
    pings = [e for e in events if e.process == SENTINEL and e.op == "ping" and e.type == "ok"]
    quiet = sorted(e.get("latency_ns", 0) for e in pings
                   if facts.traffic_start is None or e.time < facts.traffic_start)
    findings: list[Finding] = []
    base = percentile(quiet, 50)
    if base:
        limit = max(SPIKE_FLOOR_S * 1e9, SPIKE_FACTOR * base)
        # A ping held up by a pause the nemesis made on purpose is no spike.
        spikes = [e for e in pings if limit < e.get("latency_ns", 0) <= facts.hang_after_ns
                  and not facts.disrupted_during(e.time - e.get("latency_ns", 0), e.time)]
        if spikes:
            worst = max(spikes, key=lambda e: e.get("latency_ns", 0))
            start = worst.time - worst.get("latency_ns", 0)
            around = [e for e in events if start - CONTEXT_NS <= e.time <= worst.time
                      and e.process in ("nemesis", "rig") and e.op not in ("proc", "sockets")]
            findings.append(Finding(
                oracle="latency", severity="medium", kind="liveness-spike",
                title=f"a liveness round trip took {worst.get('latency_ns') / 1e9:.2f} s",
                explanation=f"The quiet baseline median was {base / 1e6:.2f} ms; {len(spikes)}"
                            f" round trip(s) took over {limit / 1e9:.2f} s, the worst"
                            f" {worst.get('latency_ns') / 1e9:.2f} s. In the second before it: "
                            + (", ".join(f"{e.process} {e.op}" for e in around[:8]) or "nothing"
                               " the rig did") + ".",
                evidence=(worst.index,) + tuple(e.index for e in around[:5])))
    findings += _repeated_stalls(events, facts, pings, base)
    deadline_ms = facts.watch.get("latency_deadline_ms")
    if deadline_ms:
        findings += _deadline(events, float(deadline_ms))
    return findings


def _attack_windows(events: Sequence[Event], facts) -> list[tuple[int, int]]:
    return [(e.time, facts.ended_at.get(e.get("client"), facts.end) + CONTEXT_NS)
            for e in events if e.op == "client-start" and e.get("role") == "attacker"]


def _busiest_cpu_share(events: Sequence[Event], start: int, end: int) -> float:
    """The largest share of one CPU any bus process used over [start, end]."""
    first: dict = {}
    last: dict = {}
    for e in events:
        if e.op == "proc" and str(e.get("target", "")).startswith("bus") and start <= e.time <= end:
            first.setdefault(e.get("pid"), e)
            last[e.get("pid")] = e
    shares = [(last[p].get("cpu_s", 0) - f.get("cpu_s", 0)) / ((last[p].time - f.time) / 1e9)
              for p, f in first.items() if last[p].time > f.time]
    return max(shares, default=0.0)


# Where an idle bus waits for input: seen there during a stall, the bus was not what held the
# round trip up (the request had not reached it: its sender was starved).
IDLE_WAITS = frozenset({"ep_poll", "do_epoll_wait", "poll_schedule_timeout", "do_sys_poll",
                        "do_select", "core_sys_select", "unix_stream_read_generic", "0", None})
# Where a bus that writes with blocking sends waits for a peer to read (the kernel's
# sock_alloc_send_pskb sleeps until the peer's receive queue has room, unix(7)): its main loop
# is held by a reader, not by a lock of its own, and on a loaded machine that reader is merely
# starved of CPU (seen on the test relay, which sends blocking by design, at 2 of 8 smoke runs
# beside 3 busy loops). A bus stalled by one slow reader is the slow-reader attack's question.
SEND_WAITS = frozenset({"sock_alloc_send_pskb", "sock_alloc_send_skb", "sk_stream_wait_memory",
                        "unix_wait_for_peer"})
STALL_EVIDENCE_MIN = 2  # stalls with such a sample: one sample may be a coincidence


def _asleep_in_stalls(events: Sequence[Event], stalls: list[Event]) -> str | None:
    """The kernel wait a bus process was seen sleeping in during stalls, outside its idle
    wait for input and outside a wait for a reader (the most common one), or None when fewer
    than STALL_EVIDENCE_MIN stalls hold such a sample. A runnable bus (state R) during a
    stall was waiting for a CPU: the machine's load."""
    windows = [(e.time - e.get("latency_ns", 0), e.time) for e in stalls]
    seen: Counter = Counter()
    held: set[int] = set()  # the stalls with a sample showing the bus held up
    for e in events:
        if e.op == "proc" and str(e.get("target", "")).startswith("bus") and \
                e.get("state") in ("S", "D") and e.get("wchan") not in IDLE_WAITS | SEND_WAITS:
            inside = [i for i, (a, b) in enumerate(windows) if a <= e.time <= b]
            if inside:
                seen[e.get("wchan")] += 1
                held.update(inside)
    if len(held) < STALL_EVIDENCE_MIN:
        return None
    return seen.most_common(1)[0][0]


def _repeated_stalls(events: Sequence[Event], facts, pings: list[Event],
                     base: float | None) -> list[Finding]:
    """Round trips held up again and again for tens of milliseconds while the bus idled."""
    if facts.traffic_start is None:
        return []
    attacks = _attack_windows(events, facts)

    def quiet_moment(e: Event) -> bool:
        start = e.time - e.get("latency_ns", 0)
        return e.time >= facts.traffic_start and facts.bus_serving_during(start, e.time) \
            and not facts.interfered_during(start, e.time) \
            and not any(a <= e.time and start <= b for a, b in attacks)

    traffic = [e for e in pings if quiet_moment(e)]
    if len(traffic) < STALL_MIN_PINGS:
        return []
    threshold = max(STALL_FLOOR_NS, STALL_FACTOR * (base or 0))
    stalls = [e for e in traffic if threshold < e.get("latency_ns", 0)]
    if len(stalls) < STALL_MIN or len(stalls) < STALL_SHARE * len(traffic):
        return []
    # Over the traffic only: the idle moments after it would make a busy bus look idle.
    traffic_end = next((e.time for e in events if e.op == "traffic-end"), facts.end)
    cpu = _busiest_cpu_share(events, facts.traffic_start, traffic_end)
    if cpu >= BUSY_CPU:
        return []
    asleep = _asleep_in_stalls(events, stalls)
    if asleep is None:
        return []  # no sample shows the bus held up: the machine's scheduler, not the bus
    lat = sorted(e.get("latency_ns", 0) for e in traffic)
    onsets = [e.time - e.get("latency_ns", 0) for e in stalls]
    gaps = sorted(b - a for a, b in zip(onsets, onsets[1:]))
    gap = f"; one begins every {gaps[len(gaps) // 2] / 1e6:.0f} ms (median)" if gaps else ""
    return [Finding(
        oracle="latency", severity="medium", kind="repeated-stalls",
        title=f"the bus stalled {len(stalls)} times for tens of milliseconds while idle",
        explanation=f"{len(stalls)} of {len(traffic)} liveness round trips during traffic took"
                    f" over {threshold / 1e6:.0f} ms (quiet median"
                    f" {(base or 0) / 1e6:.2f} ms), up to {lat[-1] / 1e6:.1f} ms, p99.9"
                    f" {percentile(lat, 99.9) / 1e6:.1f} ms{gap}, while no process of the bus"
                    f" used more than {cpu:.0%} of a CPU, and during a stall it was seen"
                    f" asleep in {asleep}: its main loop was blocked, not busy."
                    " A real-time client behind such a bus misses every deadline shorter"
                    " than the stall (priority inversion).",
        evidence=tuple(e.index for e in stalls[:5]))]


def response_times(events: Sequence[Event]) -> dict[str, list[tuple[int, int]]]:
    """Caller -> [(response ns, event index)] of its answered calls. A paced call's response
    time counts from when it was due (`late_ns` + round trip), so a stall shows in every call
    it delayed, not only in the one that waited through it."""
    out: dict[str, list[tuple[int, int]]] = {}
    for e in events:
        if e.op == "call" and e.type == "ok":
            out.setdefault(e.process, []).append(
                (e.get("latency_ns", 0) + e.get("late_ns", 0), e.index))
    return out


def _deadline(events: Sequence[Event], deadline_ms: float) -> list[Finding]:
    times = sorted(t for per_caller in response_times(events).values() for t in per_caller)
    p99 = percentile([t for t, _ in times], 99)
    if p99 is None or p99 / 1e6 <= deadline_ms:
        return []
    misses = [(t, i) for t, i in times if t / 1e6 > deadline_ms]
    return [Finding(
        oracle="latency", severity="high", kind="deadline-call",
        title=f"p99 of call response times missed the {deadline_ms:g} ms deadline",
        explanation=f"p99 {p99 / 1e6:.2f} ms, max {times[-1][0] / 1e6:.2f} ms over {len(times)}"
                    f" answered calls, {len(misses)} of them over the scenario's deadline of"
                    f" {deadline_ms:g} ms (response time: from when a call was due to its"
                    f" reply).",
        evidence=tuple(i for _, i in misses[-5:]))]
