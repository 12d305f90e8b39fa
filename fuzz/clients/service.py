"""Service: owns a well-known name and answers Echo calls (optionally slowly, or never)."""

from __future__ import annotations

import time

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus

from fuzz.clients.agent import POLL_S, Context, driver_call, record_other
from fuzz.clients.protocol import ECHO, REPLY_SIGNATURE, TEST_INTERFACE


def run(ctx: Context) -> None:
    g, journal, conn = ctx.group, ctx.journal, ctx.conn
    reply = driver_call(ctx, "request-name", message_bus.RequestName(g.bus_name), name=g.bus_name)
    if reply is None:
        return
    journal.write("info", "ready", request_name_result=reply.body[0])
    while not ctx.stop.set:
        try:
            msg = ctx.receive(POLL_S)
        except TimeoutError:
            continue
        fields = msg.header.fields
        sender = fields.get(HeaderFields.sender)
        if msg.header.message_type == MessageType.signal:
            record_other(journal, msg)
            continue
        if msg.header.message_type != MessageType.method_call:
            continue
        if fields.get(HeaderFields.interface) != TEST_INTERFACE or fields.get(HeaderFields.member) != ECHO:
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod"))
            continue
        seq, caller_id, _payload, fds = msg.body
        for fd in fds:
            fd.close()
        if not g.silent:
            if g.delay:
                time.sleep(g.delay)
            conn.send(new_method_return(msg, REPLY_SIGNATURE, (seq, caller_id, len(fds))))
        journal.write("ok", "serve", seq=seq, caller=caller_id, sender=sender,
                      serial=msg.header.serial, fds=len(fds), answered=not g.silent)
