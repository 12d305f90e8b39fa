"""The benchmark's client processes: raw sockets and prebuilt messages, so that a Python client
is not what is being measured (fuzz/wire/raw.py makes the bytes; here they are only sent,
framed and counted). The same loops run over a bus and over a plain socketpair, the direct-IPC
floor. Each runs in a forked process and reports through a pipe.
"""

from __future__ import annotations

import array
import os
import socket
import struct
import time
from multiprocessing.connection import Connection

from jeepney import DBusAddress, new_method_call, new_signal

from fuzz.wire.raw import Prebuilt, reply_template, split_frames

IFACE = "org.busrig.Bench"
MATCH = f"type='signal',interface='{IFACE}'"
METHOD_CALL, METHOD_RETURN, SIGNAL = 1, 2, 4
IO_TIMEOUT_S = 20.0  # no loop of the benchmark can hang for longer than this
MAX_FDS = 16


def echo_call(service: str, payload: int, with_fd: bool) -> Prebuilt:
    addr = DBusAddress("/org/busrig/Bench", bus_name=service, interface=IFACE)
    if with_fd:
        msg = new_method_call(addr, "Fd", "h", (0,))
        # jeepney counts the fds into the header; the bytes do not depend on which fd it is.
        return Prebuilt(msg, fds=[0])
    return Prebuilt(new_method_call(addr, "Echo", "ay", (b"\0" * payload,)))


def bench_signal(payload: int) -> Prebuilt:
    return Prebuilt(new_signal(DBusAddress("/org/busrig/Bench", interface=IFACE), "Tick", "ay",
                               (b"\0" * payload,)))


class Frames:
    """Read from a socket and hand out complete messages (type byte, serial); fds that come
    along are closed at once."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.fds_received = 0

    def read(self) -> list[tuple[int, int]]:
        data, anc, _flags, _addr = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(MAX_FDS * 4))
        if not data:
            raise ConnectionError("peer closed the connection")
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % 4])
                for fd in fds:
                    os.close(fd)
                self.fds_received += len(fds)
        self.buf += data
        frames, used = split_frames(self.buf)
        out = [(self.buf[at + 1], struct.unpack_from("<I", self.buf, at + 8)[0])
               for at, _size in frames]
        del self.buf[:used]
        return out


def serve(sock: socket.socket, caller: str) -> None:
    """Answer every method call with an empty return until the peer closes."""
    sock.settimeout(IO_TIMEOUT_S * 3)
    reply = Prebuilt(reply_template(caller))
    frames, serial = Frames(sock), 1
    while True:
        try:
            got = frames.read()
        except (ConnectionError, OSError):
            return
        out = bytearray()
        for kind, call_serial in got:
            if kind == METHOD_CALL:
                serial += 1
                out += reply.bytes(serial, call_serial)
        if out:
            sock.sendall(out)


def call_loop(sock: socket.socket, call: Prebuilt, n: int, go: Connection,
              with_fd: bool) -> None:
    """Warm up, wait for the parent's go, then n sequential round trips; report
    (seconds, latencies in ns)."""
    sock.settimeout(IO_TIMEOUT_S)
    frames = Frames(sock)
    fd = os.open("/dev/null", os.O_RDONLY) if with_fd else -1
    serial = 100

    def round_trip() -> None:
        nonlocal serial
        serial += 1
        data = call.bytes(serial)
        if with_fd:
            sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
        else:
            sock.sendall(data)
        while not any(k == METHOD_RETURN for k, _ in frames.read()):
            pass

    for _ in range(min(200, n)):
        round_trip()
    go.send("warm")
    go.recv()
    lat = array.array("q")
    started = time.monotonic()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        round_trip()
        lat.append(time.perf_counter_ns() - t0)
    go.send((time.monotonic() - started, lat.tobytes()))


def listen(sock: socket.socket, expect: int, report: Connection) -> None:
    """Count broadcast signals until `expect` came or nothing came for a while; report
    (count, monotonic time of the last)."""
    sock.settimeout(2.0)
    frames, count, last = Frames(sock), 0, 0.0
    report.send("ready")
    while count < expect:
        try:
            got = frames.read()
        except (socket.timeout, ConnectionError, OSError):
            break
        count += sum(1 for kind, _ in got if kind == SIGNAL)
        last = time.monotonic()
    report.send((count, last))


def emit(socks: list[socket.socket], signal: Prebuilt, n: int, go: Connection) -> None:
    """After go: n signals, in batches, to each socket (one socket for a bus; one per listener
    for the socketpair floor); report the monotonic start time."""
    batch = 64
    go.recv()
    started = time.monotonic()
    serial = 10
    for first in range(0, n, batch):
        chunk = bytearray()
        for _ in range(min(batch, n - first)):
            serial += 1
            chunk += signal.bytes(serial)
        for s in socks:
            s.sendall(chunk)
    go.send(started)
