"""Time series for the reports' plots: from a run's history, or recorded live by a campaign.

Times are seconds since the start of the run (history time) or of the campaign. Faults are
intervals (start, end, what); an instant fault such as a kill has end == start, and a fault
that was never undone has end None (it lasted until the end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from fuzz.history import SENTINEL, Event


@dataclass
class Series:
    ping: list[tuple[float, float]] = field(default_factory=list)  # t, liveness round trip ms
    calls: list[tuple[float, float]] = field(default_factory=list)  # t, method call round trip ms
    buses: list[tuple[float, str, int, int]] = field(default_factory=list)  # t, bus, rss, fds
    queued: list[tuple[float, int, int]] = field(default_factory=list)  # t, total rq, max rq
    faults: list[tuple[float, float | None, str]] = field(default_factory=list)  # start, end, what
    execs: list[tuple[float, int, int]] = field(default_factory=list)  # t, executions, features

    def to_json(self) -> dict[str, Any]:
        return {"ping": self.ping, "calls": self.calls, "buses": self.buses,
                "queued": self.queued, "faults": self.faults, "execs": self.execs}

    @property
    def end(self) -> float:
        ends = [s[-1][0] for s in (self.ping, self.calls, self.buses, self.queued, self.execs)
                if s]
        return max(ends, default=0.0)


def series_from_history(events: Iterable[Event]) -> Series:
    out = Series()
    invoked: list[tuple[float, Any, str]] = []  # nemesis actions: t, source, what
    undone: dict[Any, float] = {}  # source -> when its fault was undone
    for e in events:
        t = round(e.time / 1e9, 4)
        if e.op in ("ping", "call") and e.type == "ok" and "latency_ns" in e.data:
            target = out.ping if e.process == SENTINEL else out.calls
            target.append((t, round(e.data["latency_ns"] / 1e6, 4)))
        elif e.op == "proc" and str(e.get("target", "")).startswith("bus"):
            out.buses.append((t, e.get("target"), int(e.get("rss", 0)), int(e.get("fds", 0))))
        elif e.op == "sockets" and "sockets" in e.data:
            queues = [int(s.get("rq", 0)) for s in e.data["sockets"] if not s.get("listening")]
            out.queued.append((t, sum(queues), max(queues, default=0)))
        elif e.process == "nemesis" and e.type == "invoke":
            invoked.append((t, e.get("source"),
                            e.op + (f" {e.get('target')}" if e.get("target") else "")))
        elif e.process == "nemesis" and e.op == "undo":
            undone.setdefault(e.get("source"), t)
    # A fault without an undo (a kill, a signal, a self-ending attack) is a moment.
    out.faults = [(t, undone.get(source, t), what) for t, source, what in invoked]
    return out
