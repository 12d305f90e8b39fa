"""A look at the buses under test from outside: their processes and their busiest sockets.

The dashboard and the campaign report use it; the runner's own watcher (fuzz/watch/) records
into the history instead. Rates (CPU, context switches) need two looks at the same pid, so the
probe keeps the previous one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fuzz.watch.procstat import ProcSample, sample_process
from fuzz.watch.sockdiag import dump_unix_sockets, socket_inodes

TOP_SOCKETS = 5


@dataclass(frozen=True)
class BusLook:
    label: str  # which bus: "bus" for a run, "w0", "w1", ... for campaign workers
    pid: int
    rss: int  # bytes
    fds: int
    cpu_pct: float | None  # None on the first look at this pid
    ctx_per_s: float | None
    state: str


@dataclass(frozen=True)
class SocketLook:
    side: str  # "w0: bus end" (the bus's end of a connection) or "w0: client end"
    inode: int
    rq: int  # bytes queued for reading
    wq: int  # bytes queued for writing


@dataclass(frozen=True)
class Look:
    at: float  # monotonic seconds
    buses: list[BusLook]
    sockets: list[SocketLook]  # the TOP_SOCKETS with the longest queues
    queued_bytes: int  # receive queues of all bus sockets and their peers together


class BusProbe:
    def __init__(self) -> None:
        self._last: dict[int, tuple[float, ProcSample]] = {}

    def look(self, buses: dict[str, int]) -> Look:
        now = time.monotonic()
        looks: list[BusLook] = []
        inodes: dict[int, str] = {}
        for label, pid in buses.items():
            s = sample_process(pid)
            if s is None:
                self._last.pop(pid, None)
                continue
            cpu = ctx = None
            prev = self._last.get(pid)
            if prev is not None and now > prev[0]:
                dt = now - prev[0]
                cpu = round(100 * (s.cpu_s - prev[1].cpu_s) / dt, 1)
                ctx = round((s.ctx_vol + s.ctx_invol - prev[1].ctx_vol - prev[1].ctx_invol) / dt)
            self._last[pid] = (now, s)
            looks.append(BusLook(label, pid, s.rss, s.fds, cpu, ctx, s.state))
            for inode in socket_inodes(pid):
                inodes[inode] = label
        gone = set(self._last) - {b.pid for b in looks}
        for pid in gone:
            del self._last[pid]
        sockets, queued = self._sockets(inodes)
        return Look(now, looks, sockets, queued)

    @staticmethod
    def _sockets(bus_inodes: dict[int, str]) -> tuple[list[SocketLook], int]:
        if not bus_inodes:
            return [], 0
        try:
            table = dump_unix_sockets()
        except OSError:
            return [], 0
        rows = []
        for sk in table.values():
            if sk.listening:
                continue
            if sk.inode in bus_inodes:
                rows.append(SocketLook(f"{bus_inodes[sk.inode]}: bus end", sk.inode, sk.rqueue,
                                       sk.wqueue))
            elif sk.peer in bus_inodes:
                rows.append(SocketLook(f"{bus_inodes[sk.peer]}: client end", sk.inode,
                                       sk.rqueue, sk.wqueue))
        rows.sort(key=lambda r: (r.rq + r.wq, r.inode), reverse=True)
        return rows[:TOP_SOCKETS], sum(r.rq for r in rows)
