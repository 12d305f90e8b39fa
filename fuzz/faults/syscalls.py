"""`fail-syscalls`: make the bus's own syscalls fail, through the ptrace helper in inject.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any, Callable

from fuzz.faults.base import (
    Applied,
    FaultEnv,
    Operator,
    Param,
    non_negative,
    one_of,
    positive,
)
from fuzz.faults.inject import ERRNOS, SYSCALLS, InjectSpec, supported
from fuzz.lifecycle import child_preexec, janitor

HELPER_STOP_S = 5.0


def _syscall_list(value: str | list) -> str | None:
    names = [value] if isinstance(value, str) else value
    if not names or not all(isinstance(n, str) for n in names):
        return "must be a syscall name or a list of them"
    unknown = [n for n in names if n not in SYSCALLS]
    if unknown:
        return f"unknown syscall(s) {unknown}; known: {', '.join(sorted(SYSCALLS))}"
    if "brk" in names:
        # The raw brk system call never fails with an errno: on failure it returns the current
        # break (brk(2), NOTES). An injected -ENOMEM is stored by glibc as the break itself and
        # later crashes malloc: a fault no kernel makes, so a crash no user can meet.
        return "brk cannot be failed with an errno (brk(2): the kernel returns the old break)"
    return None


def _probability(v: float) -> str | None:
    return None if 0.0 <= v <= 1.0 else "must be between 0 and 1"


def fail_syscalls(env: FaultEnv, p: dict[str, Any]) -> Applied:
    why_not = supported()
    if why_not:
        return Applied(f"not applied: {why_not}")
    pids = env.bus_pids()
    if not pids:
        return Applied("not applied: the bus is not running")
    names = [p["syscall"]] if isinstance(p["syscall"], str) else list(p["syscall"])
    spec = InjectSpec(syscalls=tuple(names), errno_name=p["errno"],
                      probability=p["probability"], nth=p["nth"], max_faults=p["max_faults"],
                      duration=p["duration"], seed=p.get("seed", 0))
    journal = env.new_journal("inject")
    helper = subprocess.Popen(
        [sys.executable, "-m", "fuzz.faults.inject", str(pids[0]),
         json.dumps(spec.__dict__), journal],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=child_preexec, start_new_session=True, env=dict(os.environ))
    janitor().watch_group(helper.pid)
    how = f"every {spec.nth}th" if spec.nth else f"p={spec.probability}"
    return Applied(f"ptrace helper pid {helper.pid} fails {','.join(names)} with {spec.errno_name}"
                   f" ({how}, at most {spec.max_faults}) in bus pid {pids[0]}",
                   undo=_stop_helper(helper, pids[0]), duration=spec.duration + 1.0,
                   done=lambda: helper.poll() is not None)


def _stop_helper(helper: subprocess.Popen, bus_pid: int) -> Callable[[], str]:
    def undo() -> str:
        if helper.poll() is None:
            helper.send_signal(signal.SIGTERM)
        try:
            out, err = helper.communicate(timeout=HELPER_STOP_S)
        except subprocess.TimeoutExpired:
            helper.kill()  # the kernel detaches a dead tracer; SIGCONT undoes our SIGSTOP
            out, err = helper.communicate()
            _continue(bus_pid)
            return "ptrace helper did not stop; killed it and sent the bus SIGCONT"
        finally:
            janitor().forget_group(helper.pid)
        try:
            result = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            _continue(bus_pid)
            return f"ptrace helper failed (exit {helper.returncode}): {err.strip()[-300:]}"
        return (f"{result.get('outcome')}: injected {result.get('injected', 0)} of"
                f" {result.get('matched', 0)} matching calls ({result.get('seen', 0)} syscalls"
                f" seen) {result.get('by_syscall', {})}")
    return undo


def _continue(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


OPERATORS = [
    Operator("fail-syscalls", "syscall",
             "ptrace the bus and make `syscall` fail with `errno` (probability or every nth)",
             fail_syscalls, {
                 "syscall": Param((str, list), "accept4", _syscall_list,
                                  "syscall name or list of names"),
                 "errno": Param(str, "EMFILE", one_of(*ERRNOS), "errno to return"),
                 "probability": Param(float, 1.0, _probability,
                                      "chance that a matching call fails (when nth = 0)"),
                 "nth": Param(int, 0, non_negative, "fail exactly every nth matching call"),
                 "max_faults": Param(int, 100, positive, "stop injecting after this many"),
                 "duration": Param(float, 2.0, positive, "seconds the bus stays traced"),
             }, taints_bus=True),
]
