"""A user's own bus: any command that prints a D-Bus address as its first stdout line.

The command runs in a shell inside its private directory, with BUSRIG_DIR naming that directory
(so a wrapper can put its socket and config there), and must serve until SIGTERM.
"""

from __future__ import annotations

import os
import subprocess
import threading

from fuzz.bus.base import BusInfo, BusMaster, read_address_line
from fuzz.errors import BusStartError

START_TIMEOUT_S = 10.0


def shell_line(command: str) -> str:
    """A simple command is exec'd, so that the process the rig signals (signal-bus,
    restart-bus) is the bus itself, not a shell waiting for it; a compound one is run as is."""
    return command if any(c in command for c in ";&|<>()$`\n") else "exec " + command


class CommandBus(BusMaster):
    kind = "command"

    def __init__(self, workdir: str, log_path: str, command: str,
                 open_to_all_uids: bool = False):
        super().__init__(workdir, log_path, open_to_all_uids)
        self.command = command
        self._drain: threading.Thread | None = None

    def start(self) -> BusInfo:
        env = dict(os.environ, BUSRIG_DIR=self.workdir)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # never let a wrapper find the real bus
        env.update(sanitizer_options({**env, **self.extra_env}, self.workdir))
        try:
            # Relative paths in the command mean what they meant where the user typed it.
            proc = self._spawn(["/bin/sh", "-c", shell_line(self.command)],
                               stdout=subprocess.PIPE, env=env, cwd=os.getcwd())
        except OSError as e:
            raise BusStartError(f"cannot start bus command {self.command!r}: {e}", "") from e
        address = read_address_line(proc, START_TIMEOUT_S)
        if not address or ":" not in address:
            self.stop()
            raise BusStartError(
                f"bus command {self.command!r} did not print a D-Bus address as its first line"
                f" (got {address!r}, exit status {proc.returncode})", self.log_tail())
        # Keep reading stdout so a chatty bus never blocks on a full pipe.
        self._drain = threading.Thread(target=_drain, args=(proc, self.log_path), daemon=True)
        self._drain.start()
        socket_path = _socket_path(address)
        if socket_path:
            self._open_socket_to_all(socket_path)
        self.info = BusInfo(kind=self.kind, address=address, socket_path=socket_path,
                            pid=proc.pid, version=f"command: {self.command}",
                            log_path=self.log_path)
        return self.info

    def _after_stop(self) -> None:
        if self._drain is not None:
            self._drain.join(timeout=2.0)


SANITIZER_VARIABLES = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
SANITIZER_LOG = "sanitizer"  # sanitizers write SANITIZER_LOG.<pid> in the bus's directory


def sanitizer_options(env: dict[str, str], workdir: str) -> dict[str, str]:
    """Sanitizer options that send a report into the bus's private directory as well, where
    the rig reads it, even when the command sends its stderr elsewhere. What the user already
    set is kept; a log_path of their own is left alone."""
    out = {}
    for name in SANITIZER_VARIABLES:
        current = env.get(name, "")
        if "log_path=" not in current:
            path = os.path.join(workdir, SANITIZER_LOG)
            out[name] = f"{current}:log_path={path}" if current else f"log_path={path}"
    return out


def _socket_path(address: str) -> str | None:
    from jeepney.bus import parse_addresses
    for transport, kv in parse_addresses(address):
        if transport == "unix" and "path" in kv:
            return kv["path"]
    return None


def _drain(proc: subprocess.Popen[bytes], log_path: str) -> None:
    assert proc.stdout is not None
    with proc.stdout, open(log_path, "ab") as out:
        for line in proc.stdout:
            out.write(b"[stdout] " + line)
            out.flush()
