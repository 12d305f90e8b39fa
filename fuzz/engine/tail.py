"""Follow journals while they are being written, one complete line at a time."""

from __future__ import annotations

import json
from typing import Any


class JournalTail:
    def __init__(self) -> None:
        self._files: dict[str, tuple[int, bytes]] = {}  # path -> (offset, partial line)

    def add(self, path: str) -> None:
        self._files.setdefault(path, (0, b""))

    def poll(self) -> list[dict[str, Any]]:
        """Every event appended since the last poll, across all followed journals."""
        out: list[dict[str, Any]] = []
        for path, (offset, partial) in list(self._files.items()):
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except FileNotFoundError:
                continue
            if not chunk:
                continue
            data = partial + chunk
            *lines, rest = data.split(b"\n")
            self._files[path] = (offset + len(chunk), rest)
            for line in lines:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out
