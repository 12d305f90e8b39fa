"""How a case's bytes and fds go over the socket, and how a receiver reads frames back.

Shapes ("Message Format" on fds: they must arrive with the message's bytes, not before its
first byte nor after its last; Linux carries at most 253 per sendmsg, SCM_MAX_FD):

- whole: one sendmsg with every fd (more than 253: one sendmsg per 253, the message's bytes
  cut to match, CVE-2014-3636's split shape);
- split: the bytes in three parts, the fds on the last part;
- dribble: one byte per send, the fds on the first (past DRIBBLE_MAX bytes the rest goes in
  one send: a bounded attack);
- pipelined: the message and a second copy of it (its own serial and fds) in one sendmsg,
  both batches of fds together (CVE-2014-3533's shape: each message must get its own).

An fd may be a socket that itself carries a socket in flight, nested (CVE-2014-3532's shape:
old kernels refused to pass such an fd on with ETOOMANYREFS).

The reader does not trust jeepney's parser (it refuses message types above 4 and fields it
does not know the type of): it cuts frames by the fixed header and decodes them with the
rig's own validator, taking each message's UNIX_FDS from the fds received so far.
"""

from __future__ import annotations

import array
import os
import select
import socket
import time
from dataclasses import dataclass, field

from fuzz.wire import spec
from fuzz.wire.validate import Decoded, Invalid, decode, frame_size


DRIBBLE_MAX = 4096


def _sendmsg(sock: socket.socket, data: bytes, fds: list[int]) -> None:
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sent = sock.sendmsg([data], ancillary)
    if sent < len(data):
        sock.sendall(data[sent:])


def send(sock: socket.socket, data: bytes, fds: list[int], shape: str = "whole") -> None:
    chunks = [fds[i:i + spec.MAX_FDS_PER_SENDMSG]
              for i in range(0, len(fds), spec.MAX_FDS_PER_SENDMSG)] or [[]]
    if shape == "pipelined":
        shape = "whole"  # the caller joined the copies: they go as one write
    if shape == "dribble":
        for i in range(min(len(data), DRIBBLE_MAX)):
            _sendmsg(sock, data[i:i + 1], [fd for c in chunks for fd in c] if i == 0 else [])
        if len(data) > DRIBBLE_MAX:
            sock.sendall(data[DRIBBLE_MAX:])
        return
    if shape == "split":
        cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
        parts = [data[cut[i]:cut[i + 1]] for i in range(3) if cut[i + 1] > cut[i]]
        for part in parts[:-1]:
            _sendmsg(sock, part, [])
        data = parts[-1] if parts else b""
    if len(chunks) == 1:
        _sendmsg(sock, data, chunks[0])
        return
    step = max(1, len(data) // len(chunks))
    for i, chunk in enumerate(chunks):
        end = len(data) if i == len(chunks) - 1 else (i + 1) * step
        _sendmsg(sock, data[i * step:end], chunk)


def nested_socket(depth: int) -> tuple[int, list[socket.socket], int]:
    """A socket carrying a socket carrying ... `depth` deep: (the outermost end's fd, every
    socket made, for the caller to close, and how deep the kernel let it go)."""
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)]
    nested = 0
    for _ in range(depth):
        outer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pairs.append(outer)
        try:
            _sendmsg(outer[1], b"x", [pairs[-2][0].fileno()])
        except OSError:
            break
        nested += 1
    return pairs[-1][0].fileno(), [s for pair in pairs for s in pair], nested


@dataclass
class Frame:
    message: Decoded | Invalid
    fds: list[int]  # the fds it took (owned by the caller: close them)
    data: bytes


@dataclass
class FrameReader:
    """Frames arriving on a socket, decoded, with the fds each one declared."""
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    fds: list[int] = field(default_factory=list)
    closed: bool = False

    def poll(self, seconds: float) -> list[Frame]:
        """Whatever complete frames arrive within `seconds` (stops at the first batch)."""
        out: list[Frame] = []
        deadline = time.monotonic() + seconds
        while not out and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                break
            self._read()
            out.extend(self._frames())
        return out

    def _read(self) -> None:
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(
                1 << 20, socket.CMSG_SPACE(spec.MAX_FDS_PER_SENDMSG * 4), socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except (ConnectionResetError, BrokenPipeError):
            self.closed = True
            return
        if not data:
            self.closed = True
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(payload[: len(payload) - len(payload) % 4])
                self.fds.extend(got)
        self.buf += data

    def _frames(self) -> list[Frame]:
        out = []
        while (size := frame_size(self.buf)) is not None and len(self.buf) >= size:
            data = bytes(self.buf[:size])
            del self.buf[:size]
            msg = decode(data, len(self.fds))
            n = msg.fields.get(9, ("u", 0))[1] if isinstance(msg, Decoded) else 0
            taken, self.fds = self.fds[:n], self.fds[n:]
            out.append(Frame(msg, taken, data))
        return out

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()
