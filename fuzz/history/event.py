"""One event of a run's history, as every oracle, report and diff reads it.

Schema (one JSON object per line of OUT/history.jsonl; fuzz/history/ops.py lists every op):
  index    position in the merged history (evidence references point here)
  time     CLOCK_MONOTONIC nanoseconds since the run's start
  process  who recorded it: a client instance id ("caller.0"), "rig" or "nemesis"
  type     invoke | ok | fail | info, with Jepsen's meaning: an operation starts with
           `invoke` and ends with exactly one `ok` (it happened), `fail` (it certainly did not)
           or `info` (unknown: timeout, peer or process gone). Observations such as a received
           signal are a lone `ok`; lifecycle notes are a lone `info`.
  op       the operation (call, emit, recv, connect, kill, bus-exit, ...)
  ...      op fields (seq, serial, error, latency_ns, ...)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = ("invoke", "ok", "fail", "info")
COMPLETIONS = ("ok", "fail", "info")
SENTINEL = "sentinel.0"  # the liveness sentinel's process name in every history


@dataclass(frozen=True)
class Event:
    index: int
    time: int
    process: str
    type: str
    op: str
    data: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "time": self.time, "process": self.process,
                "type": self.type, "op": self.op, **self.data}

    @staticmethod
    def from_json(obj: dict[str, Any]) -> "Event":
        """Build from a parsed line; takes ownership of `obj` (its core keys are removed)."""
        pop = obj.pop
        return Event(pop("index", -1), pop("time"), pop("process"), pop("type"), pop("op"), obj)
