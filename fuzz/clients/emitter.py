"""Emitter: broadcast signals carrying sequence numbers, then a flush round trip."""

from __future__ import annotations

from fuzz.clients.agent import Context, bus_round_trip
from fuzz.clients.pacing import payload_bytes
from fuzz.clients.protocol import TICK, tick_signal


def run(ctx: Context) -> None:
    g, journal, conn = ctx.group, ctx.journal, ctx.conn
    payload = payload_bytes(g.payload, ctx.seed)
    for seq, _late in ctx.paced():
        serial = next(conn.outgoing_serial)
        journal.write("invoke", "emit", seq=seq, serial=serial, member=TICK)
        try:
            conn.send(tick_signal(seq, ctx.id, payload), serial=serial)
        except (ConnectionError, OSError) as e:
            journal.write("info", "emit", seq=seq, serial=serial, reason="disconnected",
                          error=type(e).__name__)
            raise
        journal.write("ok", "emit", seq=seq, serial=serial, member=TICK)
    # Once the bus answers this, it has read and routed every signal sent above.
    bus_round_trip(ctx, "flush", on_other=lambda _msg: None)
