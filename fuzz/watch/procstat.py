"""One look at a process through /proc: state, fds, memory, threads, switches, CPU, wchan."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcSample:
    pid: int
    state: str  # R S D T t Z ... as in /proc/PID/stat
    fds: int
    rss: int  # bytes
    threads: int
    ctx_vol: int
    ctx_invol: int
    cpu_s: float  # user + system seconds so far
    wchan: str  # kernel function it sleeps in ("0" when running)

    def to_json(self) -> dict:
        return asdict(self)


def sample_process(pid: int) -> ProcSample | None:
    """None when the process is gone (or was never there)."""
    base = f"/proc/{pid}"
    try:
        with open(f"{base}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
        with open(f"{base}/status") as f:
            status = f.read()
        with open(f"{base}/wchan") as f:
            wchan = f.read().strip()
        fds = len(os.listdir(f"{base}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    except PermissionError:
        return None
    # comm may hold spaces and parentheses: the fields start after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    state = fields[0]
    utime, stime = int(fields[11]), int(fields[12])
    threads = int(fields[17])
    rss_pages = int(fields[21])
    vol = invol = 0
    for line in status.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            vol = int(line.split()[1])
        elif line.startswith("nonvoluntary_ctxt_switches:"):
            invol = int(line.split()[1])
    return ProcSample(pid=pid, state=state, fds=fds, rss=rss_pages * _PAGE, threads=threads,
                      ctx_vol=vol, ctx_invol=invol, cpu_s=(utime + stime) / _TICKS,
                      wchan=wchan or "0")


SANITIZER_RUNTIMES = ("libasan", "libclang_rt.asan", "liblsan", "libclang_rt.lsan")


def uses_sanitizer(pid: int) -> bool:
    """Is an AddressSanitizer or LeakSanitizer runtime mapped into the process (built in or
    preloaded)?"""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return any(name in line for line in f for name in SANITIZER_RUNTIMES)
    except OSError:
        return False
