"""Listener: adds a match rule and records every message it receives.

On stop it does a barrier round trip with the bus first, so every signal the bus routed to it
before the stop is received and recorded (nothing is cut off by timing).
"""

from __future__ import annotations

from jeepney import HeaderFields
from jeepney.bus_messages import message_bus
from jeepney.low_level import Message

from fuzz.clients.agent import POLL_S, Context, bus_round_trip, driver_call, record_other
from fuzz.clients.protocol import is_tick


def run(ctx: Context) -> None:
    g, journal, conn = ctx.group, ctx.journal, ctx.conn
    if driver_call(ctx, "add-match", message_bus.AddMatch(g.match), rule=g.match) is None:
        return
    journal.write("info", "ready")

    def record(msg: Message) -> None:
        fields = msg.header.fields
        if is_tick(msg):
            seq, emitter, _payload = msg.body
            journal.write("ok", "recv", seq=seq, emitter=emitter,
                          sender=fields.get(HeaderFields.sender), serial=msg.header.serial)
        else:
            record_other(journal, msg)

    while not ctx.stop.set:
        try:
            msg = conn.receive(timeout=POLL_S)
        except TimeoutError:
            continue
        record(msg)
    bus_round_trip(ctx, "barrier", on_other=record)
