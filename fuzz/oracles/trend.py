"""Leaks across executions: a bus that grows, execution after execution, on one bus lifetime.

One execution's leak oracle (leak.py) compares the bus before its first client with the bus
after its last, with margins wide enough for allocator slack; a bus that keeps a few hundred
KiB per closed connection stays under them in every single execution. Run many times on one
bus, it does not: the sample taken after each execution's clients have all left
(`bus_sample`) rises steadily.

Two uses, one rule of growth:
- `suspects`: a campaign's reused bus, sampled after every execution (different scenarios
  each time), that rose after each of its last executions (up to SUSPECT_RISES) and by more
  than the resource's noise bound together. A suspicion is no finding: it names the execution
  that grew the bus most, and that case is judged by repetition.
- `leaking` / `repetition_growth`: one case run REPEAT times on one bus (fuzz/judge.py
  execute_repeated). The first sample (the bus's own warm-up) is left out; of the rest, every
  sample of the last third must be above every sample of the first third (a burst the
  allocator kept once is no trend), and the median of the last third must exceed the median of
  the first third by more than the noise bound.

Noise bounds (NOISE) come from healthy buses, the case repeated 8 times on one bus after every
client had left (docs/campaigns.md, "Leaks across executions"): dbus-daemon moved by at most
128 KiB, the repo's Python relay by 368 KiB; 2 MiB is five times the larger. File descriptors
and the bus's own counts did not move at all.

A finding names the resource, its growth per repetition and per connection served; its
signature names the resource alone: one cause, one signature, whatever case shows it.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from fuzz.history import Event
from fuzz.oracles.finding import Finding

MIN_POINTS = 4  # samples after the first, for a verdict by repetition
SUSPECT_RISES = 3  # the last rises of a campaign's bus that must all be rises, at most
# Growth a healthy bus does not reach (see the module docstring for the measurement).
NOISE: dict[str, float] = {
    "rss": 2 * 1024 * 1024,
    "fds": 2,
    "connections": 2,
    "owned_names": 2,
    "match_rules": 2,
}
WORDS = {
    "rss": "resident memory",
    "fds": "file descriptors",
    "connections": "connections (its own count)",
    "owned_names": "well-known names",
    "match_rules": "match rules",
}


@dataclass(frozen=True)
class BusSample:
    """The bus after one execution's clients have all left."""
    pid: int
    reused: bool  # the execution ran on a bus an earlier one left
    served: int  # connections the execution opened
    rss: int
    fds: int
    connections: int | None = None
    owned_names: int | None = None
    match_rules: int | None = None
    sanitized: bool = False  # a sanitizer runtime in the bus: its RSS is no measure of leaks

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(obj: dict[str, Any]) -> "BusSample":
        return BusSample(**{k: obj.get(k) for k in BusSample.__dataclass_fields__})


def bus_sample(events: Sequence[Event]) -> BusSample | None:
    """The final sample of a run whose bus stayed up and answered to the end, else None."""
    start = next((e for e in events if e.op == "bus-start" and e.type == "ok"
                  and e.get("pid") is not None), None)
    final = next((e for e in events if e.op == "bus-state" and e.get("phase") == "final"
                  and not e.get("error")), None)
    if start is None or final is None or any(e.op == "bus-restart" for e in events):
        return None  # a restarted bus is another bus: no sample of one lifetime
    procs: dict[str, Event] = {}
    for e in events:
        if e.time > final.time:
            break
        if e.op == "proc" and str(e.get("target", "")).startswith("bus"):
            procs[e.get("target")] = e
    if not procs:
        return None
    served = sum(1 for e in events if (e.op in ("connect", "churn") and e.type == "ok")
                 or (e.op == "attack-step" and e.get("step") == "registered"))
    return BusSample(pid=int(start.get("pid")), reused=bool(start.get("reused")), served=served,
                     rss=sum(int(p.get("rss", 0)) for p in procs.values()),
                     fds=sum(int(p.get("fds", 0)) for p in procs.values()),
                     connections=final.get("connections"), owned_names=final.get("owned_names"),
                     match_rules=final.get("match_rules"), sanitized=bool(start.get("sanitized")))


@dataclass(frozen=True)
class Growth:
    resource: str
    total: float  # median of the last third minus median of the first third
    per_step: float  # Theil-Sen slope: per execution (or repetition)
    per_connection: float | None  # the same per connection served
    points: int


def growth(samples: Sequence[BusSample], resource: str) -> Growth | None:
    """The persistent growth of one resource over a bus lifetime's samples, or None."""
    points = [(i, getattr(s, resource)) for i, s in enumerate(samples)
              if getattr(s, resource) is not None]
    if len(points) < MIN_POINTS:
        return None
    third = max(1, len(points) // 3)
    first, last = [v for _, v in points[:third]], [v for _, v in points[-third:]]
    if min(last) <= max(first):
        return None
    total = statistics.median(last) - statistics.median(first)
    slope = _theil_sen(points)
    served = sum(s.served for s in samples[1:]) / max(1, len(samples) - 1)
    return Growth(resource, total, slope, slope / served if served else None, len(points))


def _theil_sen(points: list[tuple[int, float]]) -> float:
    """The median of the slopes between every pair of points: a trend that a few outliers do
    not move."""
    slopes = [(b[1] - a[1]) / (b[0] - a[0]) for i, a in enumerate(points)
              for b in points[i + 1:] if b[0] != a[0]]
    return statistics.median(slopes) if slopes else 0.0


def leaking(samples: Sequence[BusSample]) -> list[Growth]:
    """The resources that grew past their noise bound (the first sample left out)."""
    body = list(samples[1:])
    out = []
    for resource, bound in _judged(samples):
        g = growth(body, resource)
        if g is not None and g.total > bound and g.per_step > 0:
            out.append(g)
    return out


def _judged(samples: Sequence[BusSample]) -> list[tuple[str, float]]:
    """Every resource with its noise bound; memory not on a sanitizer build (ASan's
    quarantine holds freed memory; LeakSanitizer's report at exit is the verdict there)."""
    sanitized = any(s.sanitized for s in samples)
    return [(r, b) for r, b in NOISE.items() if not (sanitized and r == "rss")]


def suspects(samples: Sequence[BusSample]) -> list[str]:
    """The resources that rose after each of the last executions (up to SUSPECT_RISES of
    them) by more than the noise bound together: worth a verdict by repetition. A reused bus
    rarely serves many executions in a row (most faults leave it untrusted), so two samples
    are enough to suspect; the repetitions decide."""
    tail = samples[-(SUSPECT_RISES + 1):]
    if len(tail) < 2:
        return []
    out = []
    for resource, bound in _judged(samples):
        values = [getattr(s, resource) for s in tail]
        if any(v is None for v in values):
            continue
        if all(b > a for a, b in zip(values, values[1:])) and values[-1] - values[0] > bound:
            out.append(resource)
    return out


def _amount(resource: str, value: float) -> str:
    if resource == "rss":
        return f"{value / 1024:.0f} KiB"
    return f"{value:.2f}"


def trend_finding(g: Growth, what: str, step: str = "execution",
                  evidence: Sequence[int] = ()) -> Finding:
    """`what` says over what the samples were taken ("executions on one reused bus", or
    "repetitions of this case on one bus"), `step` what one sample stands for."""
    per_conn = "" if g.per_connection is None else \
        f", {_amount(g.resource, g.per_connection)} per connection served"
    return Finding(
        oracle="leak", severity="medium", kind=f"bus-grows:{g.resource}",
        title=f"the bus keeps {_amount(g.resource, g.per_step)} more {WORDS[g.resource]} after"
              f" each {step}",
        explanation=f"Sampled after every client had left, over {g.points} {what}, the bus's"
                    f" {WORDS[g.resource]} rose steadily: {_amount(g.resource, g.total)} from"
                    f" the first third of the samples to the last (every later sample above"
                    f" every earlier one), {_amount(g.resource, g.per_step)} per step{per_conn}."
                    f" A healthy bus returns to its level once its clients are gone (noise"
                    f" bound {_amount(g.resource, NOISE[g.resource])}).",
        evidence=tuple(evidence))


def repetition_growth(samples: Sequence[BusSample]) -> list[Finding]:
    """A case repeated on one bus: a finding per resource that grew with the repetitions."""
    return [trend_finding(g, "repetitions of this case on one bus", "repetition")
            for g in leaking(samples)]
