"""Namer: name churn. Each operation requests a well-known name of its own and releases it."""

from __future__ import annotations

from jeepney.bus_messages import message_bus

from fuzz.clients.agent import Context, driver_call


def run(ctx: Context) -> None:
    name = "org.busrig.Churn." + ctx.id.replace(".", "_").replace("-", "_")
    for seq, _late in ctx.paced():
        if driver_call(ctx, "request-name", message_bus.RequestName(name), seq=seq,
                       name=name) is not None:
            driver_call(ctx, "release-name", message_bus.ReleaseName(name), seq=seq, name=name)
