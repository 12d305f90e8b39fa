"""The bus of one run: started fresh or taken from a campaign's pool, restarted by the nemesis,
its exit and its log recorded, its file descriptors and context switches read, and handed back
to the pool only if the run left it untouched."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Callable

from fuzz.bus import BusChoice, BusInfo, BusMaster, make_bus
from fuzz.bus.base import BusSpec
from fuzz.bus.pool import BusPool
from fuzz.engine import Progress
from fuzz.errors import BusStartError
from fuzz.faults import OPERATORS
from fuzz.history import Journal
from fuzz.triage.coredump import collect as collect_backtrace
from fuzz.triage.crashlog import parse_crash
from fuzz.watch.procstat import sample_process, uses_sanitizer
from fuzz.watch.sockdiag import listener_pid

RESTART_EXIT_WAIT_S = 5.0
# What of the bus's output goes into bus-exit and bus-restart events: enough for a sanitizer
# report with its stacks, which the crash oracle reads (fuzz/triage/crashlog.py).
LOG_TAIL_BYTES = 16000
BUS_LOG_BYTES = 256 * 1024  # of the bus's log, recorded in the history at the end (bus-log)
BUS_LOG_LINES = 2000
DYING_GRACE_S = 3.0  # how long a bus that printed a crash report may take to end by itself
SETTLE_START_S = 1.0
SETTLE_S = 2.0  # how long the bus gets to forget departed clients before the final sample
# Operators after which a pooled bus is not trusted for the next execution.
TAINTING_ACTIONS = frozenset(name for name, op in OPERATORS.items() if op.taints_bus)



class BusSide:
    def __init__(self, choice: BusChoice, spec: BusSpec, rig: Journal, progress: Progress,
                 pool: BusPool | None):
        self.choice = choice
        self.spec = spec
        self.rig = rig
        self.progress = progress
        self.pool = pool  # campaigns: a bus kept across executions
        self.bus: BusMaster | None = None
        self.info: BusInfo | None = None
        self.exit_recorded = False
        self.log_offset = 0  # where this run's part of the bus's log starts
        self.ctx = ContextSwitches(self)

    # --- start and stop ------------------------------------------------------------------

    def start(self, bus_dir: str, log_path: str, open_to_all_uids: bool,
              activation: Callable[[], dict[str, list[str]]]) -> bool:
        """Start the bus (or take the pool's) and record it; True when it was reused."""
        self.rig.write("invoke", "bus-start", kind=self.choice.label)
        reused = False
        # A bus with activatable services journals into this run: it cannot serve the next.
        if self.pool is not None and not self.spec.activatable:
            self.bus, info, reused = self.pool.acquire(self.choice, self.spec, open_to_all_uids)
            # A reused bus's log holds earlier executions: this run's part starts here.
            self.log_offset = file_size(self.bus.log_path) if reused else 0
        else:
            self.bus = make_bus(self.choice, bus_dir, log_path, self.spec,
                                open_to_all_uids=open_to_all_uids, activation=activation())
            info = self.bus.start()
        self.info = info
        # A sanitizer build: its memory is no measure of leaks (ASan's quarantine holds freed
        # memory); LeakSanitizer's report when it exits is.
        self.rig.write("ok", "bus-start", kind=info.kind, pid=info.pid, address=info.address,
                       version=info.version, reused=reused,
                       sanitized=any(uses_sanitizer(pid) for pid in self.bus.pids()))
        self.progress("bus", {"kind": info.kind, "pid": info.pid, "address": info.address,
                              "version": info.version})
        if not reused:
            self.wait_settled()
        return reused

    def pids(self) -> list[int]:
        return self.bus.pids() if self.bus is not None else []

    def alive(self) -> bool:
        return self.bus is not None and self.bus.alive()

    def gone_unrecorded(self) -> bool:
        """The bus has ended and no bus-exit says so yet."""
        return self.bus is not None and not self.exit_recorded and not self.bus.alive()

    def kill(self, sig: signal.Signals) -> str:
        if not self.alive():
            return "bus already gone"
        assert self.bus is not None
        self.bus.kill(sig)
        return f"sent {sig.name} to the bus"

    def record_exit(self) -> None:
        assert self.bus is not None
        self.exit_recorded = True
        rc = self.bus.returncode()
        self.rig.write("info", "bus-exit", code=rc if rc is not None and rc >= 0 else None,
                       signal=signal.Signals(-rc).name if rc is not None and rc < 0 else None,
                       log_tail=self.bus.log_tail(LOG_TAIL_BYTES))
        self._record_core(rc)

    def _record_core(self, rc: int | None) -> None:
        """The backtrace from a core the dead bus left, if it ended badly and left one: a
        bus-core event right after the bus-exit or bus-restart it belongs to (reading the core
        takes a moment; the death itself is recorded first, on time)."""
        if rc == 0 or self.bus is None:
            return
        text = collect_backtrace(self.bus.workdir)
        if text:
            self.rig.write("info", "bus-core", backtrace=text)
        self.progress("bus-exit", {"returncode": rc})

    def restart(self, sig: signal.Signals, down: float,
                undo_tainting: Callable[[], None]) -> str:
        """End the bus with `sig`, leave it down `down` seconds, start it again on the same
        address. Its history goes on: no bus-exit (the nemesis did it), a bus-restart event."""
        assert self.bus is not None and self.bus.proc is not None
        if self.exit_recorded:
            return "not restarted: the bus had already ended"
        # Faults on the old bus process end with it; a frozen bus could not even be killed.
        undo_tainting()
        old_pid = self.bus.proc.pid
        self.ctx.bank()
        serving = listener_pid(self.info.socket_path if self.info else None, self.bus.pids())
        wrapper = serving is not None and serving != old_pid
        self.bus.kill(sig)
        code: int | None = None
        try:
            code = self.bus.proc.wait(timeout=RESTART_EXIT_WAIT_S)
            how = f"exited ({'code ' + str(code) if code >= 0 else signal.Signals(-code).name})"
        except subprocess.TimeoutExpired:
            how = f"still running {RESTART_EXIT_WAIT_S:g}s after {sig.name}: SIGKILL"
        # Reap it and whatever it left (its process group, a controller).
        self.bus.stop(keep_address=True)
        # The invoke marks the end of the old bus's lifetime (its unique names, its state).
        # A wrapper (a --bus-cmd shell with the bus as its child) exits with its own status:
        # the crash oracle then reads the bus's output instead.
        self.rig.write("invoke", "bus-restart", old_pid=old_pid, signal=sig.name,
                       old_code=code if code is not None and code >= 0 else None,
                       old_signal=signal.Signals(-code).name if code is not None and code < 0
                       else None, old_exit=how, down_s=down, wrapper=wrapper,
                       log_tail=self.bus.log_tail(LOG_TAIL_BYTES))
        self._record_core(code)
        time.sleep(down)
        try:
            info = self.bus.start()
        except BusStartError as e:
            self.rig.write("fail", "bus-restart", error=str(e).split("\n", 1)[0],
                           log_tail=e.log_tail)
            self.exit_recorded = True  # gone for good; the failed restart says so
            return f"{sig.name} to bus pid {old_pid}: {how}; the new bus did not start: {e}"
        self.info = info
        self.ctx.restart()
        self.rig.write("ok", "bus-restart", pid=info.pid)
        self.progress("bus", {"kind": info.kind, "pid": info.pid, "address": info.address,
                              "version": info.version})
        return f"{sig.name} to bus pid {old_pid}: {how}; new bus pid {info.pid} after {down:g}s"

    def finish(self, keep: bool) -> None:
        """Record the run's part of the bus's log; hand the bus back to the pool if `keep`,
        else stop it and record its exit."""
        if self.bus is None:
            return
        output = self.record_log()
        if keep:
            assert self.pool is not None
            self.pool.release(keep=True)
            return
        if not self.exit_recorded and self.bus.alive() and not self._dying(output):
            self.rig.write("info", "bus-stop")
        self.bus.stop()
        if not self.exit_recorded:
            self.record_exit()
        if self.pool is not None:
            self.pool.release(keep=False)

    def _dying(self, output: str) -> bool:
        """A bus that printed a crash report during this run and is still alive is on its
        way out (a Python relay unwinding its traceback, a sanitizer writing its report):
        wait up to DYING_GRACE_S for it to end by itself, so its death is recorded as the
        crash it is and not as the rig's stop. `output`: what it printed during this run."""
        assert self.bus is not None
        if parse_crash(output) is None:
            return False
        deadline = time.monotonic() + DYING_GRACE_S
        while time.monotonic() < deadline and self.bus.alive():
            time.sleep(0.05)
        return not self.bus.alive()

    def reusable(self, actions: list[str], hung: bool) -> bool:
        """A pooled bus goes on to the next execution only if this one left it untouched."""
        if self.pool is None or self.bus is None or self.exit_recorded:
            return False
        if hung or not self.bus.alive():
            return False
        return not any(a in TAINTING_ACTIONS for a in actions)

    def record_log(self) -> str:
        """What the bus logged during this run, for the oracles whose excuses need the bus's
        own words (dbus-broker's quota lines): the last BUS_LOG_BYTES of it, recorded and
        returned."""
        assert self.bus is not None
        try:
            with open(self.bus.log_path, "rb") as f:
                f.seek(max(self.log_offset, file_size(self.bus.log_path) - BUS_LOG_BYTES))
                text = f.read().decode(errors="replace")
        except OSError:
            text = ""
        self.rig.write("info", "bus-log", lines=text.splitlines()[-BUS_LOG_LINES:])
        return text

    # --- measurements --------------------------------------------------------------------

    def fds(self) -> int | None:
        samples = [sample_process(pid) for pid in self.pids()]
        return sum(s.fds for s in samples if s is not None) if samples else None

    def wait_settled(self) -> None:
        """A bus that has just printed its address may still be setting up (dbus-daemon
        opens an internal socketpair and a few files a moment later): the leak oracle's
        baseline waits until every bus process sleeps in its main loop (at most 1 s)."""
        deadline = time.monotonic() + SETTLE_START_S
        while time.monotonic() < deadline:
            samples = [sample_process(pid) for pid in self.pids()]
            if samples and all(s is not None and s.state == "S" for s in samples):
                time.sleep(0.01)  # and stays there
                again = [sample_process(pid) for pid in self.pids()]
                if all(s is not None and s.state == "S" and s.fds == b.fds
                       for s, b in zip(again, samples)):
                    return
            time.sleep(0.005)

    def wait_fds_back_to(self, baseline: int) -> None:
        """With every client gone, give the bus up to SETTLE_S to drop their connections."""
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            fds = self.fds()
            if fds is not None and fds <= baseline:
                return
            time.sleep(0.005)


class ContextSwitches:
    """The bus's context switches during traffic, across restarts (the round-trip cost the
    benchmarks and summaries report)."""

    def __init__(self, side: BusSide):
        self.side = side
        self.start: int | None = None
        self.last: int | None = None
        self.end: int | None = None
        self.banked = 0  # switches of bus processes restarted since traffic began

    def read(self) -> int | None:
        if self.side.bus is None:
            return None
        samples = [sample_process(pid) for pid in self.side.bus.pids()]
        return sum(s.ctx_vol + s.ctx_invol for s in samples if s is not None)

    def begin(self) -> None:
        self.start = self.last = self.read()

    def sample(self) -> None:
        if self.side.alive():
            self.last = self.read()

    def stop(self) -> None:
        self.end = self.read() if self.side.alive() else self.last

    def bank(self) -> None:
        """The bus is about to be restarted: keep what its process counted."""
        old = self.read()
        if old is not None and self.start is not None:
            self.banked += old - self.start

    def restart(self) -> None:
        self.start = self.last = self.read()

    def total(self) -> int | None:
        if self.start is None or self.end is None:
            return None
        return self.banked + self.end - self.start


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
