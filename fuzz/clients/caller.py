"""Caller: method calls carrying sequence numbers, each recorded invoke -> ok | fail | info.

Each call carries (seq, caller id, payload, fds); the service echoes seq and caller id and says
how many fds it got, and the caller checks all three, so a misrouted, corrupted or fd-losing
reply shows up in the history (`mismatch` on the ok event).
"""

from __future__ import annotations

import os

from fuzz.clients.agent import Calls, Context
from fuzz.clients.pacing import payload_bytes
from fuzz.clients.protocol import echo_call

LATE_NOTED_NS = 100_000  # lateness below this is the pacing loop's own jitter


def run(ctx: Context) -> None:
    g, journal = ctx.group, ctx.journal
    payload = payload_bytes(g.payload, ctx.seed)
    calls = Calls(ctx)
    # One pipe whose write end is passed g.fds times per call: the kernel dups it each time.
    pipe_r, pipe_w = os.pipe() if g.fds else (-1, -1)
    try:
        for seq, late_ns in ctx.paced():
            message = echo_call(g.target, seq, ctx.id, payload, [pipe_w] * g.fds)
            done = calls.call("call", seq, message, g.timeout, target=g.target, fds=g.fds)
            if done is None:
                continue
            reply, serial, latency = done
            got = tuple(reply.body)
            extra: dict[str, object] = {}
            if late_ns >= LATE_NOTED_NS:
                extra["late_ns"] = late_ns  # sent this long after it was due
            if got != (seq, ctx.id, g.fds):
                extra["mismatch"] = list(got)
            journal.write("ok", "call", seq=seq, serial=serial, latency_ns=latency, **extra)
    finally:
        if g.fds:
            os.close(pipe_r)
            os.close(pipe_w)
