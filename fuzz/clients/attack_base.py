"""What every attack gets: its parameters, a deadline, a journal for its steps, and the
sockets it holds until the end."""

from __future__ import annotations

import socket
import time
from typing import Any

from fuzz.history import Journal
from fuzz.wire import raw


class Attacker:
    def __init__(self, journal: Journal, path: str, params: dict[str, Any], stopped):
        self.journal, self.path, self.p, self.stopped = journal, path, params, stopped
        self.deadline = time.monotonic() + float(params.get("duration", 5.0))
        self.held: list[socket.socket] = []

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline and not self.stopped()

    def window(self, default: float) -> float:
        """How long to watch for the bus's reaction: `default`, cut to what is left of the
        attack's duration (but never under 0.1 s), so short attacks stay short."""
        return min(default, max(0.1, self.deadline - time.monotonic()))

    def step(self, what: str, **fields: Any) -> None:
        self.journal.write("ok", "attack-step", step=what, **fields)

    def open(self) -> tuple[socket.socket, str]:
        """A registered raw connection, held until the end, its unique name on record (so
        oracles can tell the attacker's messages from a forgery)."""
        sock, name = raw.open_raw(self.path)
        self.held.append(sock)
        self.step("registered", unique_name=name)
        return sock, name

    def hold(self) -> None:
        """Keep what the attack opened until its duration ends (or the nemesis undoes it)."""
        while self.time_left():
            time.sleep(0.05)

    def bus_alive(self) -> bool:
        """Does the bus still take a new connection (authenticate and Hello)?"""
        try:
            sock, _ = raw.open_raw(self.path)
        except (OSError, ConnectionError, TimeoutError):
            return False
        sock.close()
        return True

    def close(self) -> None:
        for s in self.held:
            s.close()
