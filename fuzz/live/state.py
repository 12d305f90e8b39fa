"""What is happening now in a run or a campaign, and how it went over time.

One LiveState is fed by the progress events of the runner (a `run`) or of the campaign and its
workers (a `fuzz`), and by periodic looks at the buses (fuzz/live/probe.py). The dashboard
renders it while it runs; the reports plot its series afterwards. Updates come from the main
thread, renders from rich's refresh thread: both hold the lock.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from fuzz.live.probe import BusLook, BusProbe, Look, SocketLook
from fuzz.report.series import Series

PROBE_EVERY_S = 0.5
SPARK_POINTS = 60
RECENT_LINES = 6


@dataclass
class NewFinding:
    signature: str
    oracle: str
    title: str
    at: float  # seconds since the start


class LiveState:
    def __init__(self, mode: str, title: str, budget: float | None):
        self.mode = mode  # "run" or "fuzz"
        self.title = title
        self.budget = budget
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.probe = BusProbe()
        self.next_probe = 0.0
        self.series = Series()
        # counters
        self.executions = 0
        self.corpus = 0
        self.features = 0
        self.new_features_last = 0
        self.ops: Counter[str] = Counter()  # run: operations invoked, by op
        self.new_by_oracle: Counter[str] = Counter()
        self.known_by_oracle: Counter[str] = Counter()
        self.last_new: NewFinding | None = None
        self.phase = "starting"
        # now
        self.bus_pids: dict[str, int] = {}  # label -> pid of the bus each worker has
        self.running: dict[str, str] = {}  # label -> scenario it runs
        self.fault_now: dict[str, str] = {}  # label -> fault applied and not undone
        # label -> [(index into series.faults, action)] of faults applied and not undone
        self._open_faults: dict[str, list[tuple[int, str]]] = {}
        self.ping_ms: deque[float] = deque(maxlen=SPARK_POINTS)
        self.buses: list[BusLook] = []
        self.sockets: list[SocketLook] = []
        self.recent: deque[str] = deque(maxlen=RECENT_LINES)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def execs_per_s(self) -> float:
        e = self.elapsed()
        return self.executions / e if e > 0 else 0.0

    # --- progress events ---------------------------------------------------------------------

    def on_run_event(self, what: str, info: dict[str, Any], label: str = "bus") -> None:
        """A runner's progress event; `label` says whose (a campaign worker's or the run's)."""
        with self.lock:
            t = round(self.elapsed(), 3)
            if what == "bus":
                self.bus_pids[label] = int(info["pid"])
            elif what == "ping":
                self.ping_ms.append(float(info["ms"]))
                self.series.ping.append((t, float(info["ms"])))
            elif what == "nemesis":
                name = f"{info['action']}" + (f" {info['target']}" if info.get("target") else "")
                self._open_faults.setdefault(label, []).append((len(self.series.faults),
                                                                info["action"]))
                self.series.faults.append((t, None, name))
                self.fault_now[label] = name
                self._say(f"{label}: {name}: {info.get('result')}")
            elif what == "undo":
                self._close_fault(label, t, info.get("action"))
            elif what == "tick":
                self.ops = Counter(info.get("by_op", {}))
            elif what in ("hang", "bus-exit"):
                self._say(f"{label}: {what} {info}")
            elif what == "exec-start":
                self._close_fault(label, t)
                self.running[label] = str(info.get("scenario"))
            elif what == "exec-end":
                self._close_fault(label, t)
                self.running.pop(label, None)
            elif what == "traffic":
                self.phase = "traffic"
            elif what == "traffic-end":
                self.phase = f"ended: {info.get('reason')}"
                self._close_fault(label, t)

    def counters(self, executions: int, corpus: int, features: int, new_features: int) -> None:
        with self.lock:
            self.executions, self.corpus, self.features = executions, corpus, features
            self.new_features_last = new_features
            self.series.execs.append((round(self.elapsed(), 3), executions, features))

    def finding(self, signature: str, oracle: str, title: str, new: bool) -> None:
        with self.lock:
            if new:
                self.new_by_oracle[oracle] += 1
                self.last_new = NewFinding(signature, oracle, title, round(self.elapsed(), 1))
                self._say(f"NEW {oracle}: {title}")
            else:
                self.known_by_oracle[oracle] += 1

    def note(self, line: str) -> None:
        with self.lock:
            self._say(line)

    def _say(self, line: str) -> None:
        self.recent.append(f"{time.strftime('%H:%M:%S')} {line}")

    def _close_fault(self, label: str, t: float, action: str | None = None) -> None:
        """End the newest open fault of `action` on this bus, or all of them (action None)."""
        still_open = self._open_faults.get(label, [])
        if action is None:
            ending = list(still_open)
        else:
            ending = [f for f in still_open if f[1] == action][-1:]
        for entry in ending:
            still_open.remove(entry)
            start, _, name = self.series.faults[entry[0]]
            self.series.faults[entry[0]] = (start, t, name)
        if still_open:
            self.fault_now[label] = self.series.faults[still_open[-1][0]][2]
        else:
            self.fault_now.pop(label, None)

    # --- looks at the buses ------------------------------------------------------------------

    def maybe_probe(self) -> None:
        """Look at the buses if PROBE_EVERY_S has passed (called by whoever comes first)."""
        now = time.monotonic()
        with self.lock:
            if now < self.next_probe:
                return
            self.next_probe = now + PROBE_EVERY_S
            pids = dict(self.bus_pids)
        look = self.probe.look(pids)
        with self.lock:
            self._record(look)

    def _record(self, look: Look) -> None:
        t = round(look.at - self.started, 3)
        self.buses = look.buses
        self.sockets = look.sockets
        for b in look.buses:
            self.series.buses.append((t, b.label, b.rss, b.fds))
        if look.buses:
            top = max((s.rq for s in look.sockets), default=0)
            self.series.queued.append((t, look.queued_bytes, top))
