"""Open-loop pacing for active clients: operation n is due at start + n / rate."""

from __future__ import annotations

import itertools
import random
import time
from typing import Iterator

STOP_CHECK_S = 0.02


def paced_sequence(ops: int | None, rate: float, stopped) -> Iterator[tuple[int, int]]:
    """(seq, late_ns) for seq 0, 1, ... (ops of them, or endless), each yielded when it is due;
    late_ns says how long after its due time it went out (0 without a rate).

    Stops early once `stopped()` is true. Open loop: a slow bus does not slow the schedule
    down, so late operations go out back to back until they have caught up. Their lateness is
    part of their response time: a latency measured from the send alone would hide a stall
    behind the one call that waited through it (coordinated omission).
    """
    start = time.monotonic()
    for seq in (range(ops) if ops is not None else itertools.count()):
        if stopped():
            return
        late_ns = 0
        if rate > 0:
            due = start + seq / rate
            while (delay := due - time.monotonic()) > 0:
                time.sleep(min(delay, STOP_CHECK_S))  # a stop request is seen within 20 ms
                if stopped():
                    return
            late_ns = int((time.monotonic() - due) * 1e9)
        yield seq, late_ns


def payload_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size) if size else b""
