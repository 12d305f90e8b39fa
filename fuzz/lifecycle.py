"""Keep the rig from leaving anything behind, even when it is SIGKILLed.

Three layers, because no single one covers every way the rig can die:
- every child we start asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG);
- a janitor process, forked before any thread exists, holds the read end of a pipe; when the
  rig dies for any reason the pipe reaches EOF and the janitor kills the process groups and
  removes the directories the rig registered (SIGKILL runs no cleanup code of ours);
- SIGTERM and SIGHUP become an exception so the ordinary `finally` blocks run.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator

from fuzz.errors import Interrupted

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent exits."""
    if _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def default_signals() -> None:
    """Every signal back to its default action and none blocked. Ignored signals survive
    exec: a rig started as a background job of a non-interactive shell ignores SIGINT and
    SIGQUIT (POSIX, "Asynchronous Lists"), and a bus inheriting that would outlive the SIGINT
    of a restart-bus and look like a bus that shuts down badly."""
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass  # signals the kernel does not let a process handle
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def child_preexec() -> None:
    """preexec_fn for bus processes: die with the rig, own process group, default signal
    actions."""
    parent = os.getppid()
    default_signals()
    die_with_parent()
    # The parent may have died between fork and prctl; then nobody would ever signal us.
    if os.getppid() != parent:
        os._exit(1)


CORE_LIMIT_BYTES = 512 * 1024 * 1024  # enough for a bus; a runaway one does not fill the disk


def bus_preexec() -> None:
    """preexec_fn for the bus: child_preexec, and core dumps allowed (fuzz/triage/coredump.py
    reads them), for the bus alone."""
    child_preexec()
    _soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    limit = CORE_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(hard, CORE_LIMIT_BYTES)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (limit, hard))
    except (ValueError, OSError):
        pass


def no_core_dumps() -> None:
    """In a preexec_fn: this process and its children write no core file."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    except (ValueError, OSError):
        pass


class Janitor:
    """A watcher process that cleans up after the rig when the rig is gone."""

    def __init__(self) -> None:
        self._write_fd: int | None = None
        self.pid: int | None = None

    def start(self) -> None:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the janitor
            os.close(write_fd)
            try:
                _janitor_main(read_fd)
            finally:
                os._exit(0)
        os.close(read_fd)
        self._write_fd = write_fd
        self.pid = pid

    def _tell(self, verb: str, value: str) -> None:
        if self._write_fd is None:
            return
        line = f"{verb} {value}\n".encode()
        os.write(self._write_fd, line)

    def watch_dir(self, path: str) -> None:
        self._tell("dir", path)

    def forget_dir(self, path: str) -> None:
        self._tell("undir", path)

    def watch_group(self, pgid: int) -> None:
        self._tell("pgid", str(pgid))

    def forget_group(self, pgid: int) -> None:
        self._tell("unpgid", str(pgid))

    def watch_cgroup(self, path: str) -> None:
        """A cgroup the rig made: thawed before the kill (a frozen task ignores SIGKILL until
        thawed), removed after it."""
        self._tell("cgroup", path)

    def forget_cgroup(self, path: str) -> None:
        self._tell("uncgroup", path)

    def close(self) -> None:
        """Normal end: the rig cleaned up itself; the janitor exits without touching anything."""
        if self._write_fd is not None:
            self._tell("bye", "")
            os.close(self._write_fd)
            self._write_fd = None
        if self.pid is not None:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = None


def _janitor_main(read_fd: int) -> None:
    # Ctrl-C reaches the whole foreground group; the janitor must outlive the rig.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    # A group of its own: when the rig runs inside a process group that someone kills as a
    # whole (a campaign worker, killed by the campaign's janitor), the janitor must survive
    # that kill to clean up after the rig.
    os.setpgid(0, 0)
    dirs: set[str] = set()
    groups: set[int] = set()
    cgroups: set[str] = set()
    buf = b""
    while True:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break  # EOF without "bye": the rig died
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for raw in lines:
            verb, _, value = raw.decode().partition(" ")
            if verb == "dir":
                dirs.add(value)
            elif verb == "undir":
                dirs.discard(value)
            elif verb == "pgid":
                groups.add(int(value))
            elif verb == "unpgid":
                groups.discard(int(value))
            elif verb == "cgroup":
                cgroups.add(value)
            elif verb == "uncgroup":
                cgroups.discard(value)
            elif verb == "bye":
                return
    for path in cgroups:
        thaw_cgroup(path)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    # Give the killed processes a moment to release their sockets before removing dirs.
    deadline = time.monotonic() + 2.0
    while groups and time.monotonic() < deadline:
        groups = {g for g in groups if _group_exists(g)}
        time.sleep(0.02)
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)
    for path in cgroups:
        remove_cgroup(path)


def thaw_cgroup(path: str) -> None:
    for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
        try:
            with open(os.path.join(path, name), "w") as f:
                f.write(value)
        except OSError:
            pass


def remove_cgroup(path: str, wait: float = 2.0) -> bool:
    """rmdir a cgroup once its tasks have left (they leave a moment after they die)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group `proc` leads, reap `proc`, and tell the janitor it is gone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    janitor().forget_group(proc.pid)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_janitor: Janitor | None = None


def janitor() -> Janitor:
    """The process-wide janitor, started on first use (before the rig starts threads)."""
    global _janitor
    if _janitor is None:
        _janitor = Janitor()
        _janitor.start()
    return _janitor


def shutdown_janitor() -> None:
    global _janitor
    if _janitor is not None:
        _janitor.close()
        _janitor = None


def reachable_by_all(path: str) -> bool:
    """Can any uid walk down to `path` (every directory on the way searchable by others)?"""
    path = os.path.abspath(path)
    while True:
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


@contextmanager
def private_dir(prefix: str, reachable: bool = False) -> Iterator[str]:
    """A temp dir that is removed at the end, or by the janitor if the rig dies.

    `reachable`: clients of other uids must get to it (hostile clients run as nobody), so if
    the usual temp dir sits somewhere they cannot enter, /tmp is used instead.
    """
    base = tempfile.gettempdir()
    if reachable and not reachable_by_all(base):
        base = "/tmp"
    path = tempfile.mkdtemp(prefix=f"busrig-{prefix}-", dir=base)
    jan = janitor()
    jan.watch_dir(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        jan.forget_dir(path)


@contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into `Interrupted` so cleanup code runs."""

    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
