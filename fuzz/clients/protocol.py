"""Names and message shapes the rig's own clients use to talk to each other over the bus."""

from __future__ import annotations

from jeepney import DBusAddress, MessageType, new_method_call, new_signal
from jeepney.low_level import Message

TEST_INTERFACE = "org.busrig.Test"
SERVICE_PATH = "/org/busrig/Service"
EMITTER_PATH = "/org/busrig/Emitter"
ECHO = "Echo"
TICK = "Tick"
# (sequence number, sender's client id, padding payload[, fds])
CALL_SIGNATURE = "usayah"
TICK_SIGNATURE = "usay"
# (sequence number, caller's client id, number of fds the service received)
REPLY_SIGNATURE = "usu"
BUS_NAME = "org.freedesktop.DBus"
# Signals only the bus itself may send; from anyone else they are impersonation.
BUS_ONLY_SIGNALS = frozenset({"NameOwnerChanged", "NameAcquired", "NameLost"})


def echo_call(target: str, seq: int, client_id: str, payload: bytes,
              fds: list[int] | None = None) -> Message:
    address = DBusAddress(SERVICE_PATH, bus_name=target, interface=TEST_INTERFACE)
    return new_method_call(address, ECHO, CALL_SIGNATURE, (seq, client_id, payload, fds or []))


def tick_signal(seq: int, client_id: str, payload: bytes) -> Message:
    return new_signal(DBusAddress(EMITTER_PATH, interface=TEST_INTERFACE), TICK,
                      TICK_SIGNATURE, (seq, client_id, payload))


def is_tick(msg: Message) -> bool:
    from jeepney import HeaderFields
    f = msg.header.fields
    return (msg.header.message_type == MessageType.signal
            and f.get(HeaderFields.interface) == TEST_INTERFACE
            and f.get(HeaderFields.member) == TICK)
