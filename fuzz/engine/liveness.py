"""Liveness: the sentinel's pings as the runner sees them, and the one hang snapshot a run
takes when a ping stays unanswered past `hang_after` while the bus still exists."""

from __future__ import annotations

from typing import Any, Callable

from fuzz.engine import Progress

HUNG_END_S = 1.0  # traffic ends this long after a hang snapshot (if the bus stays hung)


class Liveness:
    def __init__(self, hang_after: float, progress: Progress):
        self.hang_after = hang_after
        self.progress = progress
        self.ping_open_since: int | None = None  # monotonic ns of the open sentinel ping
        self.snapshot_taken = False
        self.hung_since: float | None = None

    def on_ping(self, event: dict[str, Any]) -> None:
        if event.get("type") == "invoke":
            self.ping_open_since = event["time"]
        else:
            self.ping_open_since = None
            self.snapshot_taken = False
            self.hung_since = None
            if "latency_ns" in event:  # the dashboard's liveness sparkline
                self.progress("ping", {"ms": round(event["latency_ns"] / 1e6, 3)})

    def hung(self, now: float, disrupted: bool, bus_alive: Callable[[], bool]) -> float | None:
        """How long the open ping has waited, the first time it counts as a hang (else None).
        A bus the nemesis stops on purpose is not hung."""
        if self.ping_open_since is None or self.snapshot_taken or disrupted:
            return None
        open_s = now - self.ping_open_since / 1e9
        if open_s < self.hang_after or not bus_alive():
            return None
        self.snapshot_taken = True
        self.hung_since = now
        self.progress("hang", {"open_s": round(open_s, 2)})
        return open_s

    def gave_up(self, now: float) -> bool:
        """The bus has stayed hung past the snapshot long enough: waiting adds nothing."""
        return self.hung_since is not None and now - self.hung_since >= HUNG_END_S

    @property
    def answering(self) -> bool:
        return self.ping_open_since is None
