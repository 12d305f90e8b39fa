"""Latency: round trips against the run's own quiet baseline and the scenario's deadline.

The sentinel pings the bus alone for a moment before traffic starts: that is the baseline.
A ping during the run slower than SPIKE_FACTOR times the baseline median and SPIKE_FLOOR_S
(but short of a hang, which the hang oracle reports) is a spike, reported with what happened
in the second before it. With `latency_deadline_ms` in [watch], the p99 of calls and of pings
must stay under it (the priority-inversion scenarios set one).
"""

from __future__ import annotations

from typing import Sequence

from fuzz.engine.history import SENTINEL, Event
from fuzz.engine.summary import percentile
from fuzz.oracles.facts import read_facts
from fuzz.oracles.finding import Finding

SPIKE_FACTOR = 100
SPIKE_FLOOR_S = 1.0
CONTEXT_NS = 1_000_000_000


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
    deadline_ms = facts.watch.get("latency_deadline_ms")
    if deadline_ms:
        for op, label in (("call", "calls"), ("ping", "liveness round trips")):
            lat = sorted(e.get("latency_ns", 0) for e in events if e.op == op and e.type == "ok")
            p99 = percentile(lat, 99)
            if p99 is not None and p99 / 1e6 > deadline_ms:
                findings.append(Finding(
                    oracle="latency", severity="high", kind=f"deadline-{op}",
                    title=f"p99 of {label} missed the {deadline_ms:g} ms deadline",
                    explanation=f"p99 {p99 / 1e6:.2f} ms, max {lat[-1] / 1e6:.2f} ms over"
                                f" {len(lat)} {label}; the scenario's deadline is"
                                f" {deadline_ms:g} ms.",
                    evidence=()))
    return findings
