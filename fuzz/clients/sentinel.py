"""Liveness sentinel: an innocent client doing one cheap round trip with the bus driver
(GetId) every interval, from before traffic starts until the end. Its `ping` latencies are the
run's liveness signal: a ping left open is the first sign of a hung bus."""

from __future__ import annotations

from jeepney.bus_messages import message_bus

from fuzz.clients.agent import Calls, Context


def run(ctx: Context) -> None:
    g = ctx.group
    calls = Calls(ctx)
    ctx.journal.write("info", "ready")
    for seq, _late in ctx.paced():
        done = calls.call("ping", seq, message_bus.GetId(), g.timeout)
        if done is not None:
            _reply, serial, latency = done
            ctx.journal.write("ok", "ping", seq=seq, serial=serial, latency_ns=latency)
