"""The `wire` attack: messages from the D-Bus grammar (fuzz/wire/generate.py), each sent on a
fresh connection to a receiver of the attacker's own, the bus's answer and what arrived
recorded side by side for the wire oracle (fuzz/oracles/wire.py).

Per case: a sender connects (fds negotiated), sends the case's bytes in its transport shape,
then a Ping to the bus driver as a fence (a bus handles one connection's messages in order,
so its reply means the case was routed or dropped); the receiver then pings the driver too,
so whatever the bus queued for it has arrived. A case whose bytes are incomplete gets no
fence (the Ping would be read as the rest of it): its window runs out instead.

Each case is one `attack-step` `wire-case` event: its index, the validator's verdict, the
outcome (delivered, error:NAME, reply, disconnected, dropped, pending), and for a delivered
message what was sent and what arrived (type, flags, fields, body digest, fd identities).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from typing import Any, Iterable

from jeepney.bus_messages import message_bus

from fuzz.clients.attack_base import Attacker
from fuzz.wire import generate, raw, transport
from fuzz.wire import values as vals
from fuzz.wire.message import method_call
from fuzz.wire.validate import Decoded, Invalid, verdict

FENCE_SERIAL_OFFSET = 1 << 30
PIPELINE_OFFSET = 1 << 29  # the serial of a pipelined case's second copy
WINDOW_S = 0.5


def connect_with_fds(a: Attacker) -> tuple[socket.socket, str]:
    """A registered raw connection that negotiated fd passing: (socket, unique name)."""
    sock = raw.connect_unix(a.path)
    raw.authenticate(sock, enable_fds=True)
    name = raw.hello(sock)
    return sock, name


def fence(sock: socket.socket, reader: transport.FrameReader, serial: int,
           seconds: float) -> tuple[bool, list[transport.Frame]]:
    """Ping the driver and read until its reply: (answered?, frames that came before it)."""
    ping = method_call("/org/freedesktop/DBus", "Ping", "org.freedesktop.DBus.Peer",
                       "org.freedesktop.DBus", serial=serial)
    try:
        sock.sendall(ping.to_bytes())
    except (BrokenPipeError, ConnectionResetError):
        reader.closed = True
        return False, []
    before: list[transport.Frame] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not reader.closed:
        for f in reader.poll(deadline - time.monotonic()):
            if isinstance(f.message, Decoded) and f.message.fields.get(5, (0, 0))[1] == serial:
                return True, before
            before.append(f)
    return False, before


def _identity(fd: int) -> list[int]:
    st = os.fstat(fd)
    return [st.st_dev, st.st_ino]


NESTING = 4  # sockets in flight inside a nested-socket fd


def _fds(n: int, kind: str = "memfd") -> list[int]:
    """`n` fds with distinct identities for the first 16 (memfds), dups of those past it; for
    a nested-socket case the first is a socket carrying sockets in flight instead."""
    made = [os.memfd_create(f"busrig-wire-{i}", os.MFD_CLOEXEC) for i in range(min(n, 16))]
    if made and kind == "nested-socket":
        outermost, sockets, _depth = transport.nested_socket(NESTING)
        os.close(made[0])
        made[0] = os.dup(outermost)
        for sock in sockets:
            sock.close()  # the dup keeps the outermost end, and the rest stays in flight
    return made + [os.dup(made[i % len(made)]) for i in range(n - len(made))]


def _digest(values: Any) -> str:
    return hashlib.sha256(vals.render(values).encode()).hexdigest()[:16]


def summary(m: Decoded | Invalid, fds: list[int]) -> dict[str, Any]:
    """What the oracle compares: a message as the bus should have kept it."""
    if isinstance(m, Invalid):
        return {"invalid": m.rule, "fds": [_identity(fd) for fd in fds]}
    return {"type": m.type, "flags": m.flags, "signature": m.signature,
            "fields": {str(code): [sig, vals.render(value)]
                       for code, (sig, value) in m.fields.items()},
            "body": _digest(m.body), "fds": [_identity(fd) for fd in fds]}


def _case_list(a: Attacker, state: bool) -> Iterable[tuple[int, generate.WireCase]]:
    tables = a.p.get("cases")
    if tables:
        return enumerate(generate.WireCase.from_table(t, f"cases[{i}]")
                         for i, t in enumerate(tables))
    return enumerate(generate.cases(int(a.p.get("seed", 0)), int(a.p.get("count", 100)),
                                    state))


def wire(a: Attacker, state: bool = False) -> dict[str, Any]:
    receiver, rname = connect_with_fds(a)
    a.held.append(receiver)
    a.step("registered", unique_name=rname)
    interface = f"org.busrig.Wire.x{os.getpid()}"
    reader = transport.FrameReader(receiver)
    raw.call(receiver, message_bus.AddMatch(f"type='signal',interface='{interface}'"), 2)
    window = float(a.p.get("window", WINDOW_S))
    tally: dict[str, int] = {}
    ran = 0
    for index, case in _case_list(a, state):
        if not a.time_left():
            break
        outcome = _run_case(a, case, index, rname, interface, reader, window)
        tally[outcome] = tally.get(outcome, 0) + 1
        ran += 1
    reader.close()
    return {"outcome": "ran", "cases": ran, "outcomes": tally,
            "bus_alive": a.bus_alive()}


def _run_case(a: Attacker, case: generate.WireCase, index: int, rname: str, interface: str,
              reader: transport.FrameReader, window: float) -> str:
    serial = 1000 + index
    _msg, _enc, data = case.build(rname, interface, serial)
    judged = verdict(data, case.fds)
    sent = judged.decoded
    record: dict[str, Any] = {"n": index, "kind": case.kind, "verdict": judged.rule,
                              "detail": judged.detail, "lenient": list(judged.lenient),
                              "shape": _shape(case), "case": case.to_table(),
                              "size": len(data), "complete": judged.complete}
    try:
        sender, sname = connect_with_fds(a)
    except (OSError, ConnectionError, TimeoutError) as e:
        a.step("wire-case", **record, outcome="no-connection", error=f"{type(e).__name__}: {e}")
        return "no-connection"
    record["sender"] = sname
    sreader = transport.FrameReader(sender)
    fds = _fds(case.fds, case.fd_kind)
    copy_serial = serial + PIPELINE_OFFSET
    try:
        if sent is not None:
            # What should arrive: the fds UNIX_FDS declares, not every fd attached.
            record["sent"] = summary(sent, fds[:sent.fields.get(9, ("u", 0))[1]])
        if case.transport == "pipelined":
            if case.fds:
                record["lenient"] = record["lenient"] + ["fds-sent-before-the-message"]
            _m, _e, copy = case.build(rname, interface, copy_serial)
            copy_fds = _fds(case.fds, case.fd_kind)
            record["copy_fds"] = [_identity(fd) for fd in copy_fds]
            data, fds = data + copy, fds + copy_fds
        try:
            transport.send(sender, data, fds, case.transport)
        except (BrokenPipeError, ConnectionResetError):
            sreader.closed = True  # the bus closed it while the bytes were still going in
        except OSError as e:
            record["error"] = f"{type(e).__name__}: {e}"
        finally:
            for fd in fds:
                os.close(fd)
        incomplete = not judged.complete or judged.rule == "not-enough-data"
        if incomplete or "error" in record:
            answered, before = False, sreader.poll(a.window(window))
        else:
            answered, before = fence(sender, sreader, serial + FENCE_SERIAL_OFFSET,
                                      a.window(window))
        outcome = _sender_outcome(before, serial, answered, sreader.closed, incomplete)
        _, arrived = fence(reader.sock, reader, serial + 2 * FENCE_SERIAL_OFFSET,
                            a.window(window))
        delivered = [f for f in arrived if _from(f, sname, serial)]
        if case.transport == "pipelined":
            copies = [f for f in arrived if _from(f, sname, copy_serial)]
            record["copy_received"] = [_identity(fd) for fd in copies[0].fds] if copies else None
        if delivered:
            got = delivered[0].message
            record["received"] = summary(got, delivered[0].fds)
            record["copies"] = len(delivered)
            if outcome not in ("dropped", "reply"):
                record["also"] = outcome
            outcome = "delivered"
        for f in arrived:
            for fd in f.fds:
                os.close(fd)
        a.step("wire-case", **record, outcome=outcome)
        return outcome
    finally:
        sender.close()


def _from(frame: transport.Frame, sender: str, serial: int) -> bool:
    """The case's own message: its serial, from its sender (a frame the rig's validator
    refuses is matched on the serial alone: its fields cannot be trusted)."""
    m = frame.message
    if isinstance(m, Decoded):
        return m.serial == serial and m.fields.get(7, ("s", None))[1] == sender
    fmt = "<" if frame.data[:1] == b"l" else ">"
    return len(frame.data) >= 12 and int.from_bytes(frame.data[8:12], "little" if fmt == "<"
                                                    else "big") == serial


def _sender_outcome(frames: list[transport.Frame], serial: int, answered: bool, closed: bool,
                    incomplete: bool) -> str:
    for f in frames:
        m = f.message
        for fd in f.fds:
            os.close(fd)
        if isinstance(m, Decoded) and m.fields.get(5, ("u", 0))[1] == serial:
            return f"error:{m.fields[4][1]}" if m.type == 3 and 4 in m.fields else "reply"
    if closed:
        return "disconnected"
    return "pending" if incomplete and not answered else "dropped"


def _shape(case: generate.WireCase) -> str:
    """The case's shape for feedback: kind, mutation names, transport."""
    names = "+".join(m["name"] for m in case.mutations) or "none"
    return f"{case.kind}/{names}/{case.transport}"


def driver_state(a: Attacker) -> dict[str, Any]:
    """The `wire` attack on driver calls, half of them to methods whose effect outlives the
    connection (generate.STATE_CALLS): its operator taints the bus."""
    return wire(a, state=True)


ATTACKS = {"wire": wire, "driver-state": driver_state}
