"""Open-loop pacing for active clients: operation n is due at start + n / rate."""

from __future__ import annotations

import itertools
import random
import time
from typing import Iterator

STOP_CHECK_S = 0.02


def paced_sequence(ops: int | None, rate: float, stopped) -> Iterator[int]:
    """Sequence numbers 0, 1, ... (ops of them, or endless), each yielded when it is due.

    Stops early once `stopped()` is true. Open loop: a slow bus does not slow the schedule
    down, so late operations go out back to back until they have caught up.
    """
    start = time.monotonic()
    for seq in (range(ops) if ops is not None else itertools.count()):
        if stopped():
            return
        if rate > 0:
            due = start + seq / rate
            while (delay := due - time.monotonic()) > 0:
                time.sleep(min(delay, STOP_CHECK_S))  # a stop request is seen within 20 ms
                if stopped():
                    return
        yield seq


def payload_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size) if size else b""
