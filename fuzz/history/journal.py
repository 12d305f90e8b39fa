"""An append-only JSON-lines journal, one event per write(2).

Each event goes out in a single unbuffered write, so a process killed with SIGKILL loses at
most the event it was writing, and the runner can tail the file while the run goes on.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from fuzz.history import ops


class Journal:
    def __init__(self, path: str, process: str):
        self.path = path
        self.process = process
        self._strict = ops.strict()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, type_: str, op: str, **fields: Any) -> int:
        """Record one event now; returns its monotonic time in ns."""
        if self._strict:
            ops.check(op)
        now = time.monotonic_ns()
        event = {"time": now, "process": self.process, "type": type_, "op": op, **fields}
        os.write(self._fd, (json.dumps(event, separators=(",", ":")) + "\n").encode())
        return now

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
