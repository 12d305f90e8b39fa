"""Evidence about a process that stopped answering: /proc views and a ptrace register look.

The ptrace part runs in a short-lived helper process (`python -m fuzz.watch.snapshot PID`), so a
tracee that misbehaves can never wedge the rig: the helper is killed after a timeout, and the
kernel detaches a tracer that dies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

PTRACE_TIMEOUT_S = 5.0


def syscall_name(number: int) -> str:
    from ptrace.syscall import SYSCALL_NAMES
    # x32 numbers have bit 30 set; they are not x86-64 syscalls even if the table says so.
    if number < 0:
        return "none"
    if number & 0x40000000:
        return f"x32:{number & ~0x40000000}"
    return SYSCALL_NAMES.get(number, f"syscall_{number}")


def read_proc_text(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError as e:
        return f"<unreadable: {e.strerror}>"


def proc_syscall(pid: int) -> dict[str, Any]:
    """/proc/PID/syscall: the syscall the process is blocked in, if any."""
    text = read_proc_text(pid, "syscall").strip()
    parts = text.split()
    if not parts or parts[0].startswith("<"):
        return {"raw": text}
    if parts[0] == "running":
        return {"raw": text, "name": "running"}
    try:
        number = int(parts[0])
    except ValueError:
        return {"raw": text}
    return {"raw": text, "number": number, "name": syscall_name(number)}


def proc_snapshot(pid: int) -> dict[str, Any]:
    stat = read_proc_text(pid, "stat")
    state = stat[stat.rindex(")") + 2:].split()[0] if ")" in stat else "?"
    return {
        "pid": pid,
        "state": state,
        "wchan": read_proc_text(pid, "wchan").strip() or "0",
        "syscall": proc_syscall(pid),
        "stack": read_proc_text(pid, "stack"),
        "status": read_proc_text(pid, "status"),
    }


def ptrace_snapshot(pid: int) -> dict[str, Any]:
    """Registers and current syscall through python-ptrace, from a helper process."""
    try:
        out = subprocess.run([sys.executable, "-m", "fuzz.watch.snapshot", str(pid)],
                             capture_output=True, text=True, timeout=PTRACE_TIMEOUT_S,
                             env=dict(os.environ), check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"ptrace helper timed out after {PTRACE_TIMEOUT_S} s"}
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {"error": (out.stderr or out.stdout).strip()[-500:] or f"exit {out.returncode}"}


def _ptrace_main(pid: int) -> dict[str, Any]:
    from ptrace.debugger import PtraceDebugger
    debugger = PtraceDebugger()
    try:
        process = debugger.addProcess(pid, False)
    except Exception as e:  # noqa: BLE001 - report why the attach failed
        return {"error": f"attach failed: {e}"}
    try:
        regs = process.getregs()
        names = ("rip", "rsp", "rbp", "rax", "orig_rax", "rdi", "rsi", "rdx")
        values = {n: getattr(regs, n) for n in names if hasattr(regs, n)}
        nr = values.get("orig_rax", -1)
        nr = nr - (1 << 64) if nr >= 1 << 63 else nr
        return {"registers": {k: hex(v) for k, v in values.items()},
                "syscall": syscall_name(nr)}
    finally:
        process.detach()
        debugger.quit()


if __name__ == "__main__":
    print(json.dumps(_ptrace_main(int(sys.argv[1]))))
