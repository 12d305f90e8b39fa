"""Plain, line-by-line campaign progress: for CI logs and for `--no-dashboard`."""

from __future__ import annotations

import time
from typing import Any, Callable

TICK_EVERY_S = 5.0


def campaign_progress() -> Callable[[str, dict[str, Any]], None]:
    last = [0.0]

    def show(what: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if what == "tick" and now - last[0] < TICK_EVERY_S:
            return
        if what == "tick":
            last[0] = now
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] {what}: " + " ".join(f"{k}={v}" for k, v in info.items()), flush=True)

    return show
