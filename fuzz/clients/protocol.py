"""Names and message shapes the rig's own clients use to talk to each other over the bus."""

from __future__ import annotations

from jeepney import DBusAddress, MessageType, new_method_call, new_signal
from jeepney.low_level import Message

TEST_INTERFACE = "org.busrig.Test"
SERVICE_PATH = "/org/busrig/Service"
EMITTER_PATH = "/org/busrig/Emitter"
ECHO = "Echo"
TICK = "Tick"
RELAYED = "Relayed"  # a forwarder's signal, sent because it received a Tick
FORWARDER_PATH = "/org/busrig/Forwarder"
# (forwarder's own sequence number, its client id, the Tick's emitter, the Tick's seq)
RELAYED_SIGNATURE = "ussu"
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


def relayed_signal(seq: int, client_id: str, cause_emitter: str, cause_seq: int) -> Message:
    return new_signal(DBusAddress(FORWARDER_PATH, interface=TEST_INTERFACE), RELAYED,
                      RELAYED_SIGNATURE, (seq, client_id, cause_emitter, cause_seq))


def test_signal_member(msg: Message) -> str | None:
    """TICK or RELAYED for the rig's own broadcasts, None for anything else."""
    from jeepney import HeaderFields
    f = msg.header.fields
    if msg.header.message_type != MessageType.signal or f.get(HeaderFields.interface) != TEST_INTERFACE:
        return None
    member = f.get(HeaderFields.member)
    return member if member in (TICK, RELAYED) else None
