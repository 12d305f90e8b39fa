"""cgroup faults: freeze and thaw the bus, cap its CPU time. Both cgroup v1 (a `freezer` and a
`cpu` hierarchy) and v2 (cgroup.freeze, cpu.max) are handled.

The bus's processes move into a cgroup of the rig's own, made for this fault, and back to
where they were on undo; the janitor knows the cgroup, so a rig killed mid-freeze still thaws
the bus (a frozen task does not even die of SIGKILL) and removes the cgroup.

Freezing differs from SIGSTOP: the bus cannot see it (no SIGCONT, no job-control state, no
wakeup from a signal), which is how a container runtime or systemd pauses a service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from fuzz.faults.base import Applied, FaultEnv, Operator, Param, positive
from fuzz.lifecycle import janitor, remove_cgroup, thaw_cgroup

ROOT = "/sys/fs/cgroup"


@dataclass(frozen=True)
class Hierarchy:
    mount: str  # where the hierarchy is mounted
    controller: str  # v1 controller name ("" for the v2 unified hierarchy)

    @property
    def v2(self) -> bool:
        return self.controller == ""


def find_hierarchy(controller: str) -> Hierarchy | None:
    """The writable hierarchy that offers `controller` (freezer or cpu), or None."""
    v1 = os.path.join(ROOT, controller)
    if os.path.isfile(os.path.join(v1, "cgroup.procs")) and os.access(v1, os.W_OK):
        return Hierarchy(v1, controller)
    for v2 in (ROOT, os.path.join(ROOT, "unified")):
        controllers = os.path.join(v2, "cgroup.controllers")
        if not os.path.isfile(controllers) or not os.access(v2, os.W_OK):
            continue
        if controller == "freezer":  # v2 freezes every cgroup, no controller needed
            return Hierarchy(v2, "")
        with open(controllers) as f:
            if controller in f.read().split():
                return Hierarchy(v2, "")
    return None


def _current_cgroup(pid: int, h: Hierarchy) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _id, names, path = line.rstrip("\n").split(":", 2)
            if (h.v2 and names == "") or (not h.v2 and h.controller in names.split(",")):
                return os.path.join(h.mount, path.lstrip("/"))
    return h.mount


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


class BusCgroup:
    """A fresh cgroup holding the bus's processes until `release`."""

    def __init__(self, h: Hierarchy, pids: list[int], label: str):
        self.h = h
        self.path = os.path.join(h.mount, f"busrig-{os.getpid()}-{label}")
        self.home = {pid: _current_cgroup(pid, h) for pid in pids}
        os.mkdir(self.path)
        janitor().watch_cgroup(self.path)
        if h.v2 and label == "cpu":
            parent = os.path.dirname(self.path)
            _write(os.path.join(parent, "cgroup.subtree_control"), "+cpu")
        for pid in pids:
            _write(os.path.join(self.path, "cgroup.procs"), str(pid))

    def release(self) -> str:
        thaw_cgroup(self.path)
        moved = 0
        for pid, home in self.home.items():
            try:
                _write(os.path.join(home, "cgroup.procs"), str(pid))
                moved += 1
            except OSError:
                pass  # the process has ended
        removed = remove_cgroup(self.path)
        if removed:
            janitor().forget_cgroup(self.path)
        return f"{moved} process(es) moved back, cgroup {'removed' if removed else 'left for the janitor'}"


def _bus_cgroup(env: FaultEnv, controller: str, label: str) -> BusCgroup | str:
    """The bus moved into a new cgroup of `controller`, or why that cannot be done."""
    h = find_hierarchy(controller)
    pids = env.bus_pids()
    if h is None:
        return f"not applied: no writable {controller} cgroup"
    if not pids:
        return "not applied: the bus is not running"
    return BusCgroup(h, pids, label)


def freeze_bus(env: FaultEnv, p: dict[str, Any]) -> Applied:
    group = _bus_cgroup(env, "freezer", "freeze")
    if isinstance(group, str):
        return Applied(group)
    h, pids = group.h, list(group.home)
    _write(os.path.join(group.path, "cgroup.freeze" if h.v2 else "freezer.state"),
           "1" if h.v2 else "FROZEN")
    return Applied(f"froze bus pids {pids} in {group.path}",
                   undo=lambda: f"thawed; {group.release()}", duration=p["duration"])


def cpu_quota_bus(env: FaultEnv, p: dict[str, Any]) -> Applied:
    group = _bus_cgroup(env, "cpu", "cpu")
    if isinstance(group, str):
        return Applied(group)
    h, pids = group.h, list(group.home)
    period = 100_000
    quota = max(1000, int(period * p["percent"] / 100))
    if h.v2:
        _write(os.path.join(group.path, "cpu.max"), f"{quota} {period}")
    else:
        _write(os.path.join(group.path, "cpu.cfs_period_us"), str(period))
        _write(os.path.join(group.path, "cpu.cfs_quota_us"), str(quota))
    return Applied(f"bus pids {pids} capped at {quota / period:.0%} of one CPU ({group.path})",
                   undo=lambda: f"CPU quota lifted; {group.release()}", duration=p["duration"])


OPERATORS = [
    Operator("freeze-bus", "process", "freeze the bus through the cgroup freezer, thaw after `duration` s",
             freeze_bus, {"duration": Param(float, 1.0, positive, "seconds frozen")},
             disrupts_bus=True, taints_bus=True),
    Operator("cpu-quota-bus", "sched", "cap the bus's CPU time with a cgroup CPU quota",
             cpu_quota_bus, {"percent": Param(float, 5.0, positive, "percent of one CPU"),
                             "duration": Param(float, 3.0, positive, "seconds capped")},
             taints_bus=True),
]
