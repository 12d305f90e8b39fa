"""What every bus master offers the runner: start -> BusInfo, alive, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import psutil

from fuzz.bus.userdb import enter_private_passwd, write_aliased_passwd
from fuzz.lifecycle import bus_preexec, janitor, kill_group, no_core_dumps

STOP_GRACE_S = 3.0
PIDS_CACHE_S = 0.5


@dataclass(frozen=True)
class DenyRule:
    """One thing a restrictive policy forbids, said once for every bus: owning a name,
    sending to a destination / interface / member, or receiving a call or signal of an
    interface / member (the given fields of one kind must all match)."""

    own: str | None = None
    send_destination: str | None = None
    send_interface: str | None = None
    send_member: str | None = None
    receive_interface: str | None = None
    receive_member: str | None = None

    SEND = ("send_destination", "send_interface", "send_member")
    RECEIVE = ("receive_interface", "receive_member")


@dataclass(frozen=True)
class BusSpec:
    """What a scenario asks of its bus, whichever master ends up running it."""

    kind: str | None = None  # default bus when the command line names none
    limits: dict[str, int] = field(default_factory=dict)  # dbus-daemon <limit>s
    quotas: dict[str, int] = field(default_factory=dict)  # dbus-broker --max-*
    auth: tuple[str, ...] = ("EXTERNAL",)  # dbus-daemon <auth> mechanisms
    daemon_policy: str | None = None  # dbus-daemon <policy> elements, replacing allow-all
    deny: tuple[DenyRule, ...] = ()  # restrictions on top of allow-all, for either bus
    activatable: tuple[str, ...] = ()  # names the bus starts a service for on demand
    user_aliases: tuple[tuple[str, int], ...] = ()  # (new user name, existing uid), bus-only


@dataclass(frozen=True)
class BusInfo:
    kind: str
    address: str  # D-Bus address clients connect to
    socket_path: str | None
    pid: int  # the process the rig started
    version: str
    log_path: str
    extra: dict[str, str] = field(default_factory=dict)


# An activatable name and the command line that starts its service.
Activation = dict[str, list[str]]


class BusMaster(ABC):
    """One bus process tree living in its own private directory.

    `workdir` is owned by the caller (a lifecycle.private_dir) and holds the socket and config;
    `log_path` is where the bus's stderr and log go, outside workdir so it survives teardown.
    """

    kind: str = "bus"

    def __init__(self, workdir: str, log_path: str, open_to_all_uids: bool = False,
                 user_aliases: tuple[tuple[str, int], ...] = ()):
        self.workdir = workdir
        self.log_path = log_path
        self.open_to_all_uids = open_to_all_uids
        self.user_aliases = user_aliases
        self.keep_address = False
        self.extra_env: dict[str, str] = {}  # --bus-env: on top of the rig's environment
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: BusInfo | None = None
        self._pids_cache: tuple[float, list[int]] | None = None

    @abstractmethod
    def start(self) -> BusInfo:
        """Start the bus; return once clients can connect. Raises BusStartError."""

    def _spawn(self, argv: list[str], *, pass_fds: tuple[int, ...] = (),
               stdout: int | None = None, env: dict[str, str] | None = None,
               cwd: str | None = None) -> subprocess.Popen[bytes]:
        preexec = bus_preexec
        if self.user_aliases:
            passwd = write_aliased_passwd(self.workdir, self.user_aliases)

            def preexec() -> None:
                bus_preexec()
                enter_private_passwd(passwd)
        if self.extra_env:
            env = {**(env if env is not None else os.environ), **self.extra_env}
        if cwd and cwd != self.workdir:
            # A --bus-cmd bus runs where the user typed the command: it must not dump core
            # there (the rig reads cores from the bus's private dir only, and several buses in
            # one directory would overwrite each other's `core`).
            outer = preexec

            def preexec() -> None:
                outer()
                no_core_dumps()
        log = open(self.log_path, "ab")
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=stdout if stdout is not None else log,
                stderr=log, pass_fds=pass_fds, env=env,
                preexec_fn=preexec, start_new_session=True, cwd=cwd or self.workdir)
        except subprocess.SubprocessError as e:  # only the user aliases' setup can fail there
            raise OSError(f"no private mount namespace for the bus's user aliases ({e});"
                          " user_aliases need the rig to run as root") from e
        finally:
            log.close()
        self.proc = proc
        self._pids_cache = None  # a restarted bus is a new process
        janitor().watch_group(proc.pid)
        return proc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        """Exit status as Popen reports it (negative = killed by that signal)."""
        return None if self.proc is None else self.proc.poll()

    def pids(self) -> list[int]:
        """The bus process and its descendants (a --bus-cmd wrapper may fork). Finding the
        descendants reads every process's /proc entry, so the answer is reused for a moment:
        the watchers ask every sample."""
        if not self.alive():
            return []
        assert self.proc is not None
        now = time.monotonic()
        if self._pids_cache is not None and now - self._pids_cache[0] < PIDS_CACHE_S:
            return list(self._pids_cache[1])
        try:
            root = psutil.Process(self.proc.pid)
            pids = [root.pid] + [c.pid for c in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        self._pids_cache = (now, pids)
        return list(pids)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the bus process itself (not its group): a fault, not a teardown."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, keep_address: bool = False) -> None:
        """SIGTERM the whole process group, SIGKILL it after a grace period, reap.
        `keep_address`: a restart follows; a master that holds the listening socket itself
        keeps it, so clients connecting meanwhile wait in its backlog (as with systemd's
        socket activation) instead of being refused."""
        self.keep_address = keep_address
        proc = self.proc
        if proc is None:
            return
        self._before_stop()
        pgid = proc.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        # Whatever the leader left behind (or the leader itself if it ignored SIGTERM) goes now.
        kill_group(proc)
        self._after_stop()

    def _before_stop(self) -> None:
        """Hook for masters that hold extra resources (controller sockets, log readers)."""

    def _after_stop(self) -> None:
        """Hook run once the process group is gone."""

    def log_tail(self, max_bytes: int = 4000) -> str:
        """The end of the bus's output, and any sanitizer report it wrote into its private
        directory (fuzz/bus/command.py sends them there), which is read first: it is the
        most precise account of a crash."""
        import glob
        reports = ""
        for path in sorted(glob.glob(os.path.join(self.workdir, "sanitizer.*"))):
            reports += _tail(path, max_bytes) + "\n"
        return reports + _tail(self.log_path, max_bytes)

    def _open_socket_to_all(self, socket_path: str) -> None:
        """Let clients running as other uids reach the socket (hostile-client scenarios)."""
        if self.open_to_all_uids:
            os.chmod(self.workdir, 0o755)
            os.chmod(socket_path, 0o666)


def _tail(path: str, max_bytes: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def program_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = out.stdout.decode(errors="replace").strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def read_address_line(proc: subprocess.Popen[bytes], timeout: float) -> str | None:
    """The first line the bus prints on stdout, or None on EOF, exit or timeout."""
    import selectors
    import time

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            buf += chunk
    return buf.split(b"\n", 1)[0].decode(errors="replace").strip()
