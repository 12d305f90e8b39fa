"""The periodic watcher: process and socket samples into the history, hang snapshots beside it.

It runs inside the rig's main loop (no thread): the runner calls `tick` often and the watcher
samples when a period has passed. One sample of every watched process plus one sock_diag dump
costs well under a millisecond per process (benchmarks/watch_overhead.py measures it).
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable, Mapping

from fuzz.history import Journal
from fuzz.watch.procstat import sample_process
from fuzz.watch.snapshot import proc_snapshot, ptrace_snapshot
from fuzz.watch.sockdiag import dump_unix_sockets, socket_inodes


class Watcher:
    def __init__(self, journal: Journal, out_dir: str, period_s: float):
        self.journal = journal
        self.out_dir = out_dir
        self.period_s = period_s
        self.next_at = 0.0
        self.snapshots = 0
        self.cost_ns = 0  # time spent sampling, reported in the summary
        self.samples = 0

    def tick(self, targets: Callable[[], Mapping[str, int]], now: float | None = None) -> None:
        """Sample if a period has passed; `targets` is only asked then (it walks /proc)."""
        now = time.monotonic() if now is None else now
        if self.period_s <= 0 or now < self.next_at:
            return
        self.next_at = now + self.period_s
        self.sample(targets())

    def sample(self, targets: Mapping[str, int]) -> None:
        """Record every target process and the unix sockets they hold."""
        t0 = time.monotonic_ns()
        owner_of: dict[int, str] = {}
        for label, pid in targets.items():
            s = sample_process(pid)
            if s is None:
                continue
            self.journal.write("info", "proc", target=label, **s.to_json())
            for inode in socket_inodes(pid):
                owner_of[inode] = label
        try:
            sockets = dump_unix_sockets()
        except OSError as e:
            self.journal.write("info", "sockets", error=str(e))
        else:
            rows = []
            for inode, owner in owner_of.items():
                sk = sockets.get(inode)
                if sk is None:
                    continue
                rows.append({"owner": owner, "inode": inode, "peer": sk.peer,
                             "peer_owner": owner_of.get(sk.peer), "listening": sk.listening,
                             "rq": sk.rqueue, "wq": sk.wqueue})
            self.journal.write("info", "sockets", sockets=rows)
        self.cost_ns += time.monotonic_ns() - t0
        self.samples += 1

    def snapshot(self, reason: str, bus_pids: list[int]) -> None:
        """Freeze what the bus is doing now into OUT/snapshots/ and note it in the history."""
        self.snapshots += 1
        folder = os.path.join(self.out_dir, "snapshots")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"hang-{self.snapshots}.json")
        procs = []
        for pid in bus_pids:
            snap = proc_snapshot(pid)
            snap["ptrace"] = ptrace_snapshot(pid)
            procs.append(snap)
        with open(path, "w") as f:
            json.dump({"reason": reason, "processes": procs}, f, indent=2)
        self.journal.write("info", "hang-snapshot", reason=reason, path=path, processes=[
            {"pid": p["pid"], "state": p["state"], "wchan": p["wchan"],
             "syscall": p["syscall"].get("name"), "ptrace_syscall": p["ptrace"].get("syscall")}
            for p in procs])
