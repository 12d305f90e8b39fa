"""Facts many oracles need, read once from a history: the bus, who is who, who was killed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from fuzz.engine.history import Event

SENTINEL = "sentinel.0"
NEMESIS_CLIENT_OPS = frozenset({"kill", "stop"})
# Nemesis operations that stop the bus from answering on purpose (none yet besides kill-bus).
NEMESIS_BUS_OPS = frozenset({"kill-bus"})


@dataclass
class Facts:
    bus_kind: str = "unknown"
    watch: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    quotas: dict[str, int] = field(default_factory=dict)
    bus_up_at: int | None = None
    bus_gone_at: int | None = None  # first bus-exit, bus-stop or nemesis act on the bus
    end: int = 0
    unique_name: dict[str, str] = field(default_factory=dict)  # process -> unique name
    process_of: dict[str, str] = field(default_factory=dict)  # unique name -> process
    ended_at: dict[str, int] = field(default_factory=dict)  # process -> exit/disconnect time
    disconnects: dict[str, Event] = field(default_factory=dict)
    targeted: set[str] = field(default_factory=set)  # clients the nemesis killed or stopped
    traffic_start: int | None = None

    def bus_up_during(self, start: int, end: int) -> bool:
        return (self.bus_up_at is not None and self.bus_up_at <= start
                and (self.bus_gone_at is None or self.bus_gone_at > end))

    @property
    def hang_after_ns(self) -> int:
        return int(float(self.watch.get("hang_after", 2.0)) * 1e9)


def read_facts(events: Sequence[Event]) -> Facts:
    f = Facts()
    for e in events:
        f.end = e.time
        if e.process == "rig":
            if e.op == "config":
                f.watch = e.get("watch", {}) or {}
                f.limits = e.get("limits", {}) or {}
                f.quotas = e.get("quotas", {}) or {}
            elif e.op == "bus-start" and e.type == "ok":
                f.bus_kind = e.get("kind", "unknown")
                f.bus_up_at = e.time
            elif e.op in ("bus-exit", "bus-stop") and f.bus_gone_at is None:
                f.bus_gone_at = e.time
            elif e.op == "traffic-start":
                f.traffic_start = e.time
            elif e.op == "client-exit":
                f.ended_at.setdefault(e.get("client"), e.time)
        elif e.process == "nemesis" and e.type == "invoke":
            if e.op in NEMESIS_BUS_OPS and f.bus_gone_at is None:
                f.bus_gone_at = e.time
            elif e.op in NEMESIS_CLIENT_OPS:
                f.targeted.add(e.get("target"))
        elif e.op == "connect" and e.type == "ok":
            f.unique_name[e.process] = e.get("unique_name")
            f.process_of[e.get("unique_name")] = e.process
        elif e.op == "disconnect":
            f.disconnects.setdefault(e.process, e)
            f.ended_at.setdefault(e.process, e.time)
        elif e.op == "exit":
            f.ended_at.setdefault(e.process, e.time)
    return f
