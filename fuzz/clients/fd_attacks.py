"""File-descriptor abuse: what a hostile client can do with SCM_RIGHTS through the bus.

Every abuse uses two connections of the attacker's own: a sender and a receiver (both with fd
passing negotiated), so the attacker sees from both ends whether the right fds arrived, and
needs no cooperation from the rig's other clients. The fds are compared by (st_dev, st_ino).
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from jeepney import DBusAddress, HeaderFields, new_signal
from jeepney.bus_messages import message_bus
from jeepney.low_level import Endianness, Message

from fuzz.clients.attack_base import Attacker
from fuzz.clients.wire_attack import connect_with_fds
from fuzz.wire import raw, transport

FD_INTERFACE = "org.busrig.Fd"


def _fd_connection(a: Attacker) -> tuple[socket.socket, str]:
    sock, name = connect_with_fds(a)
    a.held.append(sock)
    raw.wait_closed(sock, 0.05)  # read away NameAcquired
    return sock, name


def _fd_signal(destination: str, seq: int, fds: list[int]) -> Message:
    sig = new_signal(DBusAddress("/org/busrig/Fd", interface=FD_INTERFACE), "Carry", "uah",
                     (seq, fds))
    sig.header.fields[HeaderFields.destination] = destination
    return sig


def _send_carry(sock: socket.socket, destination: str, seq: int, fds: list[int]) -> None:
    """One Carry signal with `fds` attached, to `destination`, in one sendmsg."""
    out: list[int] = []
    data = _fd_signal(destination, seq, fds).serialise(serial=10 + seq, fds=out)
    raw.send_with_fds(sock, data, out)


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _received(msgs: list[Message]) -> dict[int, list[tuple[int, int]]]:
    """seq -> identities of the fds a Carry signal brought (the fds are closed here)."""
    out = {}
    for msg in msgs:
        if msg.header.fields.get(HeaderFields.interface) != FD_INTERFACE:
            continue
        seq, fds = msg.body
        ids = []
        for fd in fds:  # jeepney's parser hands out the received fds as plain ints
            ids.append(_identity(fd))
            os.close(fd)
        out[seq] = ids
    return out


@contextmanager
def _deleted_files(n: int) -> Iterator[list[int]]:
    """fds of n files already unlinked, closed again afterwards."""
    fds = []
    try:
        for _ in range(n):
            fd, path = tempfile.mkstemp(prefix="busrig-fd-")
            os.unlink(path)
            fds.append(fd)
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def _send_and_compare(a: Attacker, batches: list[list[int]], one_write: bool = False,
                      endian: Endianness = Endianness.little) -> dict[str, Any]:
    """Send each batch of fds in its own Carry signal to our receiver; did each arrive with
    exactly its own fds?"""
    sender, _ = _fd_connection(a)
    receiver, receiver_name = _fd_connection(a)
    wanted = {seq: [_identity(fd) for fd in fds] for seq, fds in enumerate(batches)}
    chunks = []
    for seq, fds in enumerate(batches):
        msg = _fd_signal(receiver_name, seq, fds)
        msg.header.endianness = endian
        out_fds: list[int] = []
        chunks.append((msg.serialise(serial=10 + seq, fds=out_fds), out_fds))
    try:
        if one_write:  # every message and every fd in one sendmsg
            raw.send_with_fds(sender, b"".join(c for c, _ in chunks),
                              [fd for _, fds in chunks for fd in fds])
        else:
            for data, fds in chunks:
                raw.send_with_fds(sender, data, fds)
    except OSError as e:
        return {"outcome": "kernel-refused", "error": f"{type(e).__name__}: {e}"}
    msgs, receiver_closed = raw.recv_messages(receiver, 2.0, want=len(batches))
    got = _received(msgs)
    sender_closed, back = raw.wait_closed(sender, 0.2)
    if got == wanted:
        outcome = "intact"
    elif sender_closed:
        outcome = "sender-disconnected"
    elif receiver_closed:
        outcome = "receiver-disconnected"
    elif not got:
        outcome = "dropped"
    else:
        outcome = "mixed-up"
    return {"outcome": outcome, "sent": len(batches), "received": len(got),
            "errors": raw.error_names(back)}


def unreceived(a: Attacker) -> dict[str, Any]:
    """`count` fd-carrying messages to a receiver that never reads: the bus holds them all."""
    sender, _ = _fd_connection(a)
    _receiver, receiver_name = _fd_connection(a)
    r, w = os.pipe()
    sent, blocked = 0, False
    sender.settimeout(0.5)
    try:
        for seq in range(int(a.p.get("count", 64))):
            if not a.time_left():
                break
            try:
                _send_carry(sender, receiver_name, seq, [r, w])
            except socket.timeout:
                blocked = True
                break
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
    finally:
        os.close(r)
        os.close(w)
    closed, back = raw.wait_closed(sender, 0.5)
    errors = sorted(set(raw.error_names(back)))
    a.step("queued", sent=sent, blocked=blocked, errors=errors)
    outcome = "sender-disconnected" if closed else "refused" if errors else "queued"
    return {"outcome": outcome, "sent": sent, "errors": errors}


def pending_disconnect(a: Attacker) -> dict[str, Any]:
    """CVE-2014-3637: the first 17 bytes of a message plus the fd of our own bus socket, then
    close it. Only the bus now holds our socket; it must still drop us (pending_fd_timeout)."""
    sock, name = _fd_connection(a)
    a.held.remove(sock)
    witness, _ = a.open()
    data = _fd_signal(name, 0, []).serialise(serial=10)
    raw.send_with_fds(sock, data[:17], [sock.fileno()])
    sock.close()
    started = time.monotonic()
    while a.time_left():
        reply = _driver_call(witness, message_bus.NameHasOwner(name))
        if reply is not None and reply.body == (False,):
            seconds = round(time.monotonic() - started, 2)
            a.step("released", seconds=seconds)
            return {"outcome": "released", "seconds": seconds}
        time.sleep(0.1)
    return {"outcome": "pinned", "seconds": round(time.monotonic() - started, 2)}


_serials = iter(range(1000, 1 << 30))


def _driver_call(sock: socket.socket, msg: Message) -> Message | None:
    return raw.call(sock, msg, next(_serials), 2.0)


def bus_socket(a: Attacker) -> dict[str, Any]:
    """Send our own bus socket to our receiver, close ours: the receiver's copy keeps the
    connection alive; once it closes that copy too, the bus must notice and drop us."""
    sender, sender_name = _fd_connection(a)
    a.held.remove(sender)
    receiver, receiver_name = _fd_connection(a)
    witness, _ = a.open()
    _send_carry(sender, receiver_name, 0, [sender.fileno()])
    sender.close()
    msgs, _ = raw.recv_messages(receiver, 2.0)
    carried = [fd for m in msgs if m.header.fields.get(HeaderFields.interface) == FD_INTERFACE
               for fd in m.body[1]]
    if not carried:
        return {"outcome": "dropped"}
    time.sleep(0.2)
    alive_while_held = _driver_call(witness, message_bus.NameHasOwner(sender_name))
    for fd in carried:
        os.close(fd)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        reply = _driver_call(witness, message_bus.NameHasOwner(sender_name))
        if reply is not None and reply.body == (False,):
            return {"outcome": "released",
                    "held_open_by_receiver": bool(alive_while_held and alive_while_held.body[0])}
        time.sleep(0.1)
    return {"outcome": "pinned"}


def recursion(a: Attacker) -> dict[str, Any]:
    """CVE-2014-3532: a socket carrying a socket carrying ... `depth` deep, then the outermost
    through the bus. Old kernels refused the bus's relay with ETOOMANYREFS."""
    depth = int(a.p.get("depth", 6))
    outermost, sockets, nested = transport.nested_socket(depth)
    if nested < depth:
        a.step("nesting-refused", depth=nested)
    try:
        result = _send_and_compare(a, [[outermost]])
    finally:
        for s in sockets:
            s.close()
    return {**result, "depth": nested}


def pipelined(a: Attacker) -> dict[str, Any]:
    """CVE-2014-3533: several fd-carrying messages in one write, their fds in one batch; each
    message must arrive with its own fds."""
    with _deleted_files(6) as files:
        return _send_and_compare(a, [files[0:2], files[2:3], files[3:6]], one_write=True)


def foreign_endian(a: Attacker) -> dict[str, Any]:
    """CVE-2022-42012: a big-endian message with fds; the bus must not mix up their indexes."""
    with _deleted_files(3) as files:
        return _send_and_compare(a, [files], endian=Endianness.big)


def deleted_file(a: Attacker) -> dict[str, Any]:
    with _deleted_files(1) as files:
        return _send_and_compare(a, [files])


def undrained_pipe(a: Attacker) -> dict[str, Any]:
    """Both ends of a pipe filled to the brim: passing them must not block the bus."""
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"\0" * 65536)
    except BlockingIOError:
        pass
    try:
        return _send_and_compare(a, [[r, w]])
    finally:
        os.close(r)
        os.close(w)


FD_ABUSES: dict[str, Callable[[Attacker], dict[str, Any]]] = {
    "unreceived": unreceived,
    "pending-disconnect": pending_disconnect,
    "bus-socket": bus_socket,
    "recursion": recursion,
    "pipelined": pipelined,
    "foreign-endian": foreign_endian,
    "deleted-file": deleted_file,
    "undrained-pipe": undrained_pipe,
}


def fd_abuse(a: Attacker) -> dict[str, Any]:
    result = FD_ABUSES[str(a.p.get("abuse", "deleted-file"))](a)
    a.step("fd-abuse", abuse=a.p.get("abuse"), **result)
    return result


def fd_exhaust_client(a: Attacker) -> dict[str, Any]:
    """A client that keeps every fd it is sent until it hits its own RLIMIT_NOFILE: the kernel
    truncates what it cannot install (MSG_CTRUNC); the bus must not care."""
    import resource
    limit = int(a.p.get("limit", 32))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    sender, _ = _fd_connection(a)
    receiver, receiver_name = _fd_connection(a)
    r, w = os.pipe()
    kept: list[int] = []
    truncated, sent = 0, 0
    try:
        for seq in range(int(a.p.get("count", 40))):
            if not a.time_left():
                break
            _send_carry(sender, receiver_name, seq, [r, w])
            sent += 1
            receiver.settimeout(1.0)
            try:
                _data, anc, flags, _ = receiver.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
            except socket.timeout:
                break
            truncated += bool(flags & socket.MSG_CTRUNC)
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    kept.extend(int.from_bytes(payload[i:i + 4], "little")
                                for i in range(0, len(payload) - len(payload) % 4, 4))
    finally:
        for fd in kept + [r, w]:
            os.close(fd)
    alive = raw.wait_closed(sender, 0.2)[0] is False
    a.step("exhausted", kept=len(kept), truncated=truncated)
    return {"outcome": "truncated" if truncated else "all-received", "sent": sent,
            "kept": len(kept), "truncated": truncated, "sender_connected": alive}


ATTACKS = {"fd-abuse": fd_abuse, "fd-exhaust-client": fd_exhaust_client}
