"""Scheduling faults: the parts of priority-inversion scenarios. Every change is undone."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from fuzz.faults.base import Applied, FaultEnv, Operator, Param, one_of, positive
from fuzz.lifecycle import child_preexec

POLICIES = {"fifo": os.SCHED_FIFO, "rr": os.SCHED_RR, "other": os.SCHED_OTHER}


def renice_bus(env: FaultEnv, p: dict[str, Any]) -> Applied:
    pids = env.bus_pids()
    before = {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in pids}
    for pid in pids:
        os.setpriority(os.PRIO_PROCESS, pid, p["nice"])

    def undo() -> str:
        for pid, nice in before.items():
            try:
                os.setpriority(os.PRIO_PROCESS, pid, nice)
            except ProcessLookupError:
                pass
        return f"nice restored to {sorted(set(before.values()))}"

    return Applied(f"nice {p['nice']} for bus pids {pids}", undo=undo)


def sched_bus(env: FaultEnv, p: dict[str, Any]) -> Applied:
    pids = env.bus_pids()
    before = {pid: (os.sched_getscheduler(pid), os.sched_getparam(pid).sched_priority)
              for pid in pids}
    priority = p["priority"] if p["policy"] != "other" else 0
    for pid in pids:
        os.sched_setscheduler(pid, POLICIES[p["policy"]], os.sched_param(priority))

    def undo() -> str:
        for pid, (policy, prio) in before.items():
            try:
                os.sched_setscheduler(pid, policy, os.sched_param(prio))
            except ProcessLookupError:
                pass
        return "scheduling policy restored"

    return Applied(f"{p['policy']} priority {priority} for bus pids {pids}", undo=undo)


def pin_bus(env: FaultEnv, p: dict[str, Any]) -> Applied:
    pids = env.bus_pids()
    before = {pid: os.sched_getaffinity(pid) for pid in pids}
    for pid in pids:
        os.sched_setaffinity(pid, {p["cpu"]})

    def undo() -> str:
        for pid, cpus in before.items():
            try:
                os.sched_setaffinity(pid, cpus)
            except ProcessLookupError:
                pass
        return "CPU affinity restored"

    return Applied(f"bus pids {pids} pinned to CPU {p['cpu']}", undo=undo)


HOG = "import time\nend = time.monotonic() + {d}\nwhile time.monotonic() < end:\n    pass\n"


def cpu_hog(env: FaultEnv, p: dict[str, Any]) -> Applied:
    """`count` busy loops pinned to one CPU, optionally SCHED_FIFO, that end by themselves."""
    procs = []
    for _ in range(p["count"]):
        proc = subprocess.Popen([sys.executable, "-c", HOG.format(d=p["duration"])],
                                preexec_fn=child_preexec, start_new_session=True)
        os.sched_setaffinity(proc.pid, {p["cpu"]})
        if p["fifo"]:
            os.sched_setscheduler(proc.pid, os.SCHED_FIFO, os.sched_param(p["fifo"]))
        procs.append(proc)

    def undo() -> str:
        for proc in procs:
            proc.kill()
            proc.wait()
        return f"{len(procs)} hog(s) stopped"

    how = f"SCHED_FIFO {p['fifo']}" if p["fifo"] else "normal priority"
    return Applied(f"{len(procs)} CPU hog(s) on CPU {p['cpu']} at {how}", undo=undo,
                   duration=p["duration"])


def _cpu(v: int) -> str | None:
    return None if 0 <= v < (os.cpu_count() or 1) else f"no CPU {v} on this machine"


OPERATORS = [
    Operator("renice-bus", "sched", "set the bus's nice value (-20..19)", renice_bus,
             {"nice": Param(int, -5, lambda v: None if -20 <= v <= 19 else "must be -20..19")},
             taints_bus=True),
    Operator("sched-bus", "sched", "set the bus's scheduling policy (fifo, rr, other)", sched_bus,
             {"policy": Param(str, "fifo", one_of(*POLICIES)),
              "priority": Param(int, 20, lambda v: None if 1 <= v <= 99 else "must be 1..99")},
             taints_bus=True),
    Operator("pin-bus", "sched", "pin the bus to one CPU", pin_bus, {"cpu": Param(int, 0, _cpu)},
             taints_bus=True),
    Operator("cpu-hog", "sched", "busy loops pinned to a CPU for `duration` s", cpu_hog,
             {"count": Param(int, 1, positive), "cpu": Param(int, 0, _cpu),
              "fifo": Param(int, 0, lambda v: None if 0 <= v <= 99 else "must be 0..99",
                            "SCHED_FIFO priority; 0 = normal"),
              "duration": Param(float, 2.0, positive)}),
]
