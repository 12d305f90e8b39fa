"""Namer: name churn. Each operation requests a well-known name of its own and releases it."""

from __future__ import annotations

from jeepney.bus_messages import message_bus

from fuzz.clients.agent import Context, driver_call
from fuzz.clients.pacing import paced_sequence


def run(ctx: Context) -> None:
    g = ctx.group
    name = "org.busrig.Churn." + ctx.id.replace(".", "_").replace("-", "_")
    for seq, _late in paced_sequence(g.ops, g.rate, lambda: ctx.stop.set):
        if driver_call(ctx, "request-name", message_bus.RequestName(name), seq=seq,
                       name=name) is not None:
            driver_call(ctx, "release-name", message_bus.ReleaseName(name), seq=seq, name=name)
