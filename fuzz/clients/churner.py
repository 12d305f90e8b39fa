"""Churner: connection churn. Each operation opens a new connection, does one round trip with
the bus driver on it and closes it; the bus must forget every one of them."""

from __future__ import annotations

from jeepney import DBusErrorResponse
from jeepney.bus_messages import message_bus

from fuzz.clients.agent import (
    DISCONNECTED,
    DRIVER_TIMEOUT_S,
    Context,
    connect,
    error_name,
)


def run(ctx: Context) -> None:
    journal = ctx.journal
    for seq, _late in ctx.paced():
        journal.write("invoke", "churn", seq=seq)
        try:
            conn = connect(ctx.address)
        except TimeoutError as e:
            journal.write("info", "churn", seq=seq, reason="timeout", message=str(e))
            continue
        except DISCONNECTED as e:
            journal.write("fail", "churn", seq=seq, error=type(e).__name__, message=str(e))
            continue
        except DBusErrorResponse as e:  # Hello refused, e.g. LimitsExceeded out of fds
            journal.write("fail", "churn", seq=seq, error=e.name, message=str(e.data))
            continue
        try:
            reply = conn.send_and_get_reply(message_bus.GetId(), timeout=DRIVER_TIMEOUT_S)
        except (TimeoutError, *DISCONNECTED) as e:
            journal.write("info", "churn", seq=seq, reason=type(e).__name__)
            continue
        finally:
            conn.close()
        err = error_name(reply)
        if err:
            journal.write("fail", "churn", seq=seq, error=err)
        else:
            journal.write("ok", "churn", seq=seq, unique_name=conn.unique_name)
