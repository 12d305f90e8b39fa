"""Syscall fault injection: a helper process that ptraces the bus and makes chosen syscalls
fail with a chosen errno, with a probability or on every Nth call, for a bounded time.

Run as `python -m fuzz.faults.inject PID SPEC_JSON JOURNAL`; the `fail-syscalls` operator
starts it and stops it with SIGTERM. How a call is made to fail: at syscall entry the syscall
number is replaced by -1 (the kernel skips it), at syscall exit the return register is set to
-errno, so the bus sees exactly what a failing kernel would have returned.

Clean detach: to leave, the helper SIGSTOPs the bus so it is in a ptrace stop whatever it was
doing (an idle bus sits in epoll_wait, where no syscall stop comes), detaches there, and sends
SIGCONT, which also discards a SIGSTOP that was still pending. If the helper itself dies, the
kernel detaches it; the bus goes on untraced.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import random
import signal
import sys
import time
from dataclasses import dataclass

from fuzz.history import Journal
from fuzz.lifecycle import die_with_parent

# x86_64 numbers (python-ptrace's own table mixes in the x32 ones for some of these).
SYSCALLS = {
    "accept": 43, "accept4": 288, "sendmsg": 46, "recvmsg": 47, "sendmmsg": 307,
    "recvmmsg": 299, "sendto": 44,
    "recvfrom": 45, "writev": 20, "read": 0, "write": 1, "epoll_wait": 232,
    "epoll_pwait": 281, "epoll_pwait2": 441, "mmap": 9, "brk": 12,
}
ERRNOS = ("EMFILE", "ENFILE", "EAGAIN", "ENOBUFS", "EPIPE", "EINTR", "ENOMEM", "ECONNRESET",
          "EBADF", "EINVAL", "ETOOMANYREFS")
MAX_LOGGED = 50  # injections logged one by one; the rest are only counted


@dataclass(frozen=True)
class InjectSpec:
    syscalls: tuple[str, ...]
    errno_name: str
    probability: float  # each matching call fails with this probability ...
    nth: int  # ... or, when > 0, exactly every nth matching call fails
    max_faults: int  # stop injecting after this many
    duration: float
    seed: int

    def should_fail(self, matched: int, rng: random.Random) -> bool:
        if self.nth > 0:
            return matched % self.nth == 0
        return rng.random() < self.probability


def supported() -> str | None:
    """Why injection cannot work here, or None."""
    if platform.machine() != "x86_64":
        return f"syscall injection needs x86_64 registers (this machine: {platform.machine()})"
    return None


def run(pid: int, spec: InjectSpec, journal: Journal) -> dict:
    from ptrace.debugger import ProcessExit, ProcessSignal, PtraceDebugger
    from ptrace.error import PtraceError

    wanted = {SYSCALLS[name]: name for name in spec.syscalls}
    code = -getattr(errno, spec.errno_name)
    rng = random.Random(spec.seed)
    leaving = False

    def leave(_sig: int, _frame: object) -> None:
        nonlocal leaving
        if not leaving:
            leaving = True
            try:
                os.kill(pid, signal.SIGSTOP)  # guarantees one more stop to detach at
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGALRM, leave)
    signal.setitimer(signal.ITIMER_REAL, spec.duration)

    debugger = PtraceDebugger()
    counts = {"seen": 0, "matched": 0, "injected": 0}
    by_name: dict[str, int] = {}
    try:
        tracees = [debugger.addProcess(int(tid), False)
                   for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int)]
    except PtraceError as e:
        return {"outcome": "attach-failed", "error": str(e)}
    journal.write("ok", "inject-attach", pid=pid, tasks=[t.pid for t in tracees])
    in_syscall: dict[int, bool] = {}
    failing: dict[int, str] = {}  # tid -> name of the syscall being failed right now
    for t in tracees:
        t.syscall()
    outcome = "detached"
    while debugger:
        try:
            proc = debugger.waitSyscall().process
        except ProcessSignal as ev:
            if leaving:
                break  # the SIGSTOP we sent (or any signal): detach right here
            ev.process.syscall(ev.signum)
            continue
        except ProcessExit:
            outcome = "bus-exited"
            break
        except OSError:  # ECHILD: nothing left to trace
            outcome = "bus-exited"
            break
        tid = proc.pid
        entering = not in_syscall.get(tid, False)
        in_syscall[tid] = entering
        if entering:
            counts["seen"] += 1
            nr = proc.getreg("orig_rax")
            name = wanted.get(nr)
            if name is not None and not leaving:
                counts["matched"] += 1
                if counts["injected"] < spec.max_faults and \
                        spec.should_fail(counts["matched"], rng):
                    proc.setreg("orig_rax", -1 & 0xFFFFFFFFFFFFFFFF)
                    failing[tid] = name
        elif tid in failing:
            name = failing.pop(tid)
            proc.setreg("rax", code & 0xFFFFFFFFFFFFFFFF)
            counts["injected"] += 1
            by_name[name] = by_name.get(name, 0) + 1
            if counts["injected"] <= MAX_LOGGED:
                journal.write("ok", "inject", syscall=name, errno=spec.errno_name,
                              n=counts["injected"])
        if leaving and not failing:
            break
        proc.syscall()
    for t in list(debugger.list):
        try:
            t.detach()
        except (PtraceError, OSError):
            pass
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        outcome = "bus-exited"
    return {"outcome": outcome, **counts, "by_syscall": by_name}


def main(argv: list[str]) -> int:
    die_with_parent(signal.SIGTERM)  # detach cleanly if the rig goes away
    pid, spec_json, journal_path = int(argv[0]), argv[1], argv[2]
    spec = InjectSpec(**{k: tuple(v) if k == "syscalls" else v
                         for k, v in json.loads(spec_json).items()})
    journal = Journal(journal_path, f"inject.{os.getpid()}")
    journal.write("invoke", "inject-run", pid=pid, spec=json.loads(spec_json))
    started = time.monotonic()
    result = run(pid, spec, journal)
    journal.write("ok", "inject-run", seconds=round(time.monotonic() - started, 3), **result)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
