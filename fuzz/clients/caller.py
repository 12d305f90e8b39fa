"""Caller: method calls carrying sequence numbers, each recorded invoke -> ok | fail | info."""

from __future__ import annotations

import time

from fuzz.clients.agent import Context, error_name, reply_serial
from fuzz.clients.pacing import paced_sequence, payload_bytes
from fuzz.clients.protocol import echo_call


def run(ctx: Context) -> None:
    g, journal, conn = ctx.group, ctx.journal, ctx.conn
    payload = payload_bytes(g.payload, ctx.seed)
    outstanding: dict[int, int] = {}  # serial -> seq, for calls that timed out
    for seq in paced_sequence(g.ops, g.rate, lambda: ctx.stop.set):
        serial = next(conn.outgoing_serial)
        t0 = journal.write("invoke", "call", seq=seq, serial=serial, target=g.target)
        try:
            conn.send(echo_call(g.target, seq, ctx.id, payload), serial=serial)
            deadline = time.monotonic() + g.timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                msg = conn.receive(timeout=left)
                got = reply_serial(msg)
                if got == serial:
                    break
                if got in outstanding:
                    journal.write("ok", "late-reply", seq=outstanding.pop(got), serial=got)
        except TimeoutError:
            outstanding[serial] = seq
            journal.write("info", "call", seq=seq, serial=serial, reason="timeout")
            continue
        except (ConnectionError, OSError) as e:
            journal.write("info", "call", seq=seq, serial=serial, reason="disconnected",
                          error=type(e).__name__)
            raise
        latency = time.monotonic_ns() - t0
        err = error_name(msg)
        if err:
            journal.write("fail", "call", seq=seq, serial=serial, error=err, latency_ns=latency)
        else:
            journal.write("ok", "call", seq=seq, serial=serial, latency_ns=latency)
