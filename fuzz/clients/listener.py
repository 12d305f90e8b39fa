"""Listener: adds a match rule and records every message it receives.

On stop it does a barrier round trip with the bus first, so every signal the bus routed to it
before the stop is received and recorded (nothing is cut off by timing).

A forwarder is a listener that answers every Tick it receives with a Relayed signal of its own
naming that Tick: a causal chain (Tick, then Relayed because of it) that every other listener
must see in that order.
"""

from __future__ import annotations

from jeepney import HeaderFields
from jeepney.bus_messages import message_bus
from jeepney.low_level import Message

from fuzz.clients.agent import (
    POLL_S,
    Context,
    bus_round_trip,
    driver_call,
    record_other,
)
from fuzz.clients.protocol import RELAYED, TICK, relayed_signal, test_signal_member


def run(ctx: Context, forward: bool = False) -> None:
    g, journal, conn = ctx.group, ctx.journal, ctx.conn
    if driver_call(ctx, "add-match", message_bus.AddMatch(g.match), rule=g.match) is None:
        return
    journal.write("info", "ready")
    counters = ctx.counters  # its sequence goes on after a reconnect
    counters.setdefault("relayed", 0)

    def record(msg: Message) -> None:
        fields = msg.header.fields
        sender, serial = fields.get(HeaderFields.sender), msg.header.serial
        member = test_signal_member(msg)
        if member == TICK:
            seq, emitter, _payload = msg.body
            journal.write("ok", "recv", seq=seq, emitter=emitter, member=member, sender=sender,
                          serial=serial)
            if forward and emitter != ctx.id:
                relayed = counters["relayed"]
                out = next(conn.outgoing_serial)
                journal.write("invoke", "emit", seq=relayed, serial=out, member=RELAYED)
                conn.send(relayed_signal(relayed, ctx.id, emitter, seq), serial=out)
                journal.write("ok", "emit", seq=relayed, serial=out, member=RELAYED,
                              cause=[emitter, seq])
                counters["relayed"] = relayed + 1
        elif member == RELAYED:
            seq, emitter, cause_emitter, cause_seq = msg.body
            journal.write("ok", "recv", seq=seq, emitter=emitter, member=member, sender=sender,
                          serial=serial, cause=[cause_emitter, cause_seq])
        else:
            record_other(journal, msg)

    while not ctx.stop.set:
        try:
            msg = ctx.receive(POLL_S)
        except TimeoutError:
            continue
        record(msg)
    bus_round_trip(ctx, "barrier", on_other=record)
    if forward:
        bus_round_trip(ctx, "flush", on_other=lambda _msg: None)


def run_forwarder(ctx: Context) -> None:
    run(ctx, forward=True)
