"""Open-loop pacing: operation n is due at start + n / rate, whatever the bus does."""

from __future__ import annotations

import time


def wait_turn(start: float, n: int, rate: float) -> None:
    if rate <= 0:
        return
    delay = start + n / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def payload_bytes(size: int, seed: int) -> bytes:
    import random
    return random.Random(seed).randbytes(size) if size else b""
