"""Hand-made D-Bus bytes: what no library will produce. Raw SASL, prebuilt messages, mutations.

Well-formed messages come from jeepney; everything here starts from jeepney's bytes (or from
the spec's fixed header layout) and breaks exactly one rule, so the bus's answer to that rule
can be recorded. Kept in one module on purpose: this is the only place the rig writes wire
bytes by hand.
"""

from __future__ import annotations

import array
import socket
import struct
import time
from typing import Callable, Iterator

from jeepney import DBusAddress, new_method_call, new_signal
from jeepney.auth import BEGIN, Authenticator
from jeepney.bus_messages import message_bus
from jeepney.low_level import Message, Parser

HELLO_TIMEOUT_S = 5.0


def connect_unix(address_path: str, timeout: float = HELLO_TIMEOUT_S) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(address_path)
    return sock


def authenticate(sock: socket.socket, enable_fds: bool = False, nul: bool = True) -> None:
    """SASL EXTERNAL with the socket's own credentials (and fd passing if asked), then BEGIN.
    `nul=False` when the caller already sent the nul byte (with ancillary data of its own)."""
    if nul:
        sock.sendall(b"\0")
    auth = Authenticator(enable_fds=enable_fds, inc_null_byte=False)
    for request in auth:
        sock.sendall(request)
        data = sock.recv(1024)
        if not data:
            raise ConnectionError("bus closed the connection during authentication")
        auth.feed(data)
    sock.sendall(BEGIN)


def hello(sock: socket.socket) -> str:
    """Send Hello with serial 1 and return the unique name from the reply."""
    sock.sendall(message_bus.Hello().serialise(serial=1))
    parser = Parser()
    deadline = time.monotonic() + HELLO_TIMEOUT_S
    while time.monotonic() < deadline:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("bus closed the connection before answering Hello")
        parser.add_data(data)
        for msg in iter(parser.get_next_message, None):
            if msg.header.fields.get(5) == 1:  # reply_serial
                return msg.body[0]
    raise TimeoutError("no Hello reply")


def open_raw(address_path: str) -> tuple[socket.socket, str]:
    """A registered connection on a plain socket (no library between us and the bytes)."""
    sock = connect_unix(address_path)
    authenticate(sock)
    return sock, hello(sock)


def send_with_fds(sock: socket.socket, data: bytes, fds: list[int]) -> None:
    """One sendmsg carrying `data` and `fds` as SCM_RIGHTS (several messages may share it)."""
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sent = sock.sendmsg([data], ancillary)
    if sent < len(data):
        sock.sendall(data[sent:])


def recv_messages(sock: socket.socket, seconds: float, want: int = 1,
                  until: Callable[[Message], bool] | None = None,
                  parser: Parser | None = None) -> tuple[list[Message], bool]:
    """Read messages with their fds (plain ints in the body) for up to `seconds`, until `want`
    arrived or one satisfies `until`: (messages, closed by the bus?). Pass a `parser` to keep
    a message split across calls."""
    parser, out = parser or Parser(), []
    deadline = time.monotonic() + seconds
    while len(out) < want if until is None else not any(until(m) for m in out):
        left = deadline - time.monotonic()
        if left <= 0:
            return out, False
        sock.settimeout(left)
        try:
            data, ancdata, _flags, _addr = sock.recvmsg(1 << 16, socket.CMSG_SPACE(253 * 4))
        except socket.timeout:
            return out, False
        except (ConnectionResetError, BrokenPipeError):
            return out, True
        if not data:
            return out, True
        fds = array.array("i")
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        parser.add_data(data, list(fds))
        out.extend(_parsed(parser))
    return out, False


def _parsed(parser: Parser) -> Iterator[Message]:
    """The complete messages in `parser`, skipping any jeepney cannot read (a bus may relay an
    `h` index past UNIX_FDS, or a field jeepney does not know the type of): the next message
    starts where the skipped one ended."""
    while True:
        try:
            msg = parser.get_next_message()
        except (IndexError, ValueError, KeyError, struct.error):
            parser.next_msg_size = None  # jeepney read the bytes but kept their size
            continue
        if msg is None:
            return
        yield msg


def call(sock: socket.socket, msg: Message, serial: int, timeout: float = 3.0) -> Message | None:
    """Send `msg` with `serial` on a raw connection and return its reply or error (other
    messages that arrive meanwhile are dropped), or None if none came within `timeout`."""
    sock.sendall(msg.serialise(serial=serial))
    is_reply = lambda m: m.header.fields.get(5) == serial  # noqa: E731 - reply_serial
    msgs, _ = recv_messages(sock, timeout, until=is_reply)
    return next((m for m in msgs if is_reply(m)), None)


def nul_with_credentials(sock: socket.socket, pid: int, uid: int, gid: int) -> None:
    """The SASL nul byte with SCM_CREDENTIALS claiming (pid, uid, gid); the kernel only lets
    a privileged sender claim anything but its own (EPERM otherwise)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    creds = struct.pack("iII", pid, uid, gid)
    sock.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, creds)])


def flood_signal(size: int) -> Message:
    """A broadcast nobody in the rig subscribes to (its own interface), `size` bytes of body."""
    return new_signal(DBusAddress("/org/busrig/Flood", interface="org.busrig.Flood"), "Flood",
                      "ay", (b"\0" * max(0, size),))


def ping_call(destination: str = "org.freedesktop.DBus") -> Message:
    return new_method_call(DBusAddress("/org/freedesktop/DBus", bus_name=destination,
                                       interface="org.freedesktop.DBus.Peer"), "Ping")


def wait_closed(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read what the bus sends for up to `seconds`: (closed by the bus?, bytes received)."""
    got = b""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, got
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False, got
        except (ConnectionResetError, BrokenPipeError):
            return True, got
        if not chunk:
            return True, got
        got += chunk


def closed_by_peer(socks: list[socket.socket]) -> int:
    """How many of these sockets the bus has closed (EOF or reset), looking once at all."""
    import select
    closed = 0
    ready, _, _ = select.select(socks, [], [], 0) if socks else ([], [], [])
    for sock in ready:
        try:
            sock.setblocking(False)
            while chunk := sock.recv(65536):
                del chunk  # drain what the bus sent before closing
            closed += 1
        except BlockingIOError:
            pass  # data but no EOF: still open
        except (ConnectionResetError, BrokenPipeError):
            closed += 1
    return closed


def error_names(data: bytes) -> list[str]:
    """D-Bus error names in a stream of messages (best effort; stops at the first bad one)."""
    parser = Parser()
    names = []
    try:
        parser.add_data(data)
        for msg in iter(parser.get_next_message, None):
            name = msg.header.fields.get(4)  # error_name
            if name:
                names.append(name)
    except Exception:  # noqa: BLE001 - the rest of the stream is not ours to judge
        pass
    return names


# --- prebuilt messages and framing, for clients that must not be the bottleneck -------------

PLACEHOLDER = 0x7EADBEEF  # a reply_serial nobody uses, to find its offset in the bytes


class Prebuilt:
    """A serialised (little-endian) message whose serial, and reply_serial if it has one, are
    patched in place per send: no serialisation in the hot loop."""

    def __init__(self, msg: Message, fds: list[int] | None = None):
        # With `fds`, jeepney numbers the body's fds and sets unix_fds in the header; the fds
        # themselves go with each send (SCM_RIGHTS), not in the bytes.
        self.data = bytearray(msg.serialise(serial=1, fds=[] if fds is not None else None))
        marker = struct.pack("<I", PLACEHOLDER)
        at = self.data.find(marker, 16)
        self.reply_at = at if at >= 0 else None

    def bytes(self, serial: int, reply_serial: int | None = None) -> bytearray:
        struct.pack_into("<I", self.data, 8, serial)
        if reply_serial is not None and self.reply_at is not None:
            struct.pack_into("<I", self.data, self.reply_at, reply_serial)
        return self.data


def reply_template(to: str) -> Message:
    """An empty method return to `to`, its reply_serial a placeholder for Prebuilt to patch."""
    from jeepney.low_level import Endianness, Header, HeaderFields, MessageType
    fields = {HeaderFields.reply_serial: PLACEHOLDER, HeaderFields.destination: to}
    return Message(Header(Endianness.little, MessageType.method_return, 0, 1, -1, -1, fields),
                   ())


def message_size(buf: bytes | bytearray, at: int = 0) -> int | None:
    """Total size of the message starting at `at` (the fixed header says), or None while its
    first 16 bytes have not all arrived."""
    if len(buf) - at < 16:
        return None
    body, fields = struct.unpack_from("<I4xI", buf, at + 4)
    return 16 + fields + (-fields % 8) + body


def split_frames(buf: bytearray) -> tuple[list[tuple[int, int]], int]:
    """Complete messages in `buf` as (offset, size), and how many bytes they take."""
    frames, at = [], 0
    while (size := message_size(buf, at)) is not None and len(buf) - at >= size:
        frames.append((at, size))
        at += size
    return frames, at


# --- mutations of one valid message ---------------------------------------------------------
# Each takes the bytes of a valid little-endian method call and returns invalid bytes.

def _fields_len(data: bytes) -> int:
    return struct.unpack_from("<I", data, 12)[0]


def _with_u32(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + struct.pack("<I", value) + data[offset + 4:]


MUTATIONS = {
    "endianness": lambda d: b"X" + d[1:],  # neither 'l' nor 'B'
    "protocol-version": lambda d: d[:3] + b"\x02" + d[4:],
    "message-type-zero": lambda d: d[:1] + b"\x00" + d[2:],
    "serial-zero": lambda d: _with_u32(d, 8, 0),
    "body-length-huge": lambda d: _with_u32(d, 4, 0x7FFFFFF0),  # over the 128 MiB maximum
    "fields-length-odd": lambda d: _with_u32(d, 12, _fields_len(d) + 3),
    "header-padding": lambda d: _nonzero_padding(d),
    "invalid-utf8": lambda d: d.replace(b"Ping", b"P\xffng", 1),
    "invalid-member": lambda d: d.replace(b"Ping", b"9ing", 1),
    "random-bytes": lambda d: flip_bytes(d, seed=0, flips=8),
}


def flip_bytes(d: bytes, seed: int, flips: int) -> bytes:
    """Byte-level mutation past the fixed 16-byte header start, reproducible from `seed`."""
    import random
    rng, out = random.Random(seed), bytearray(d)
    for _ in range(flips):
        i = rng.randrange(16, len(out))
        out[i] = rng.randrange(256)
    return bytes(out)


def _nonzero_padding(d: bytes) -> bytes:
    """Header padding must be zero; dbus-broker checks it, the spec requires it."""
    end = 16 + _fields_len(d)
    pad = (-end) % 8
    if pad == 0:  # no padding to spoil: spoil the last field byte's NUL terminator instead
        return d[:end - 1] + b"\x01" + d[end:]
    return d[:end] + b"\x01" * pad + d[end + pad:]


def call_with_body(signature: str, body: bytes) -> bytes:
    """A Ping carrying `body` under `signature`, bytes as given: for invalid bodies and
    signatures no marshaller would produce."""
    sig = signature.encode()
    raw = ping_call().serialise(serial=7)
    end = 16 + _fields_len(raw)
    # Append a SIGNATURE header field (code 8, variant 'g'), 8-aligned like every field.
    fields = raw[16:end] + b"\0" * ((-end) % 8) + b"\x08\x01g\x00" + bytes([len(sig)]) + sig + b"\0"
    out = raw[:4] + struct.pack("<I", len(body)) + raw[8:12] + struct.pack("<I", len(fields)) + fields
    return out + b"\0" * ((-len(out)) % 8) + body


def nested_variants(depth: int) -> bytes:
    """A body of signature "v": `depth` variants, each holding the next, the innermost a
    byte. Each variant is its inner signature (length byte, "v", NUL) then its value, with
    nothing to align (a variant and a byte are 1-aligned: D-Bus specification, "Marshaling
    (Wire Format)")."""
    return b"\x01v\x00" * (depth - 1) + b"\x01y\x00\x2a"


# Whole invalid messages, each the shape of a known bug class (docs/sources.md, "Message format").
CRAFTED = {
    # The array recursion limit: 64 nested arrays, twice the specification's 32.
    "deep-nesting": lambda: call_with_body("a" * 64 + "y", b"\0\0\0\0"),
    # CVE-2010-4352 (dbus < 1.4.1, fixed by "Validate message nesting depth with variants"):
    # variants nested past the 64 containers the specification allows in total.
    "nested-variants": lambda: call_with_body("v", nested_variants(65)),
    # CVE-2022-42010: a ')' closing a '{'.
    "bracket-swap": lambda: call_with_body("(a{i)}", b"\0" * 16),
    # CVE-2022-42011: an array of int32 whose byte length is not a multiple of 4.
    "array-misalign": lambda: call_with_body("ai", struct.pack("<I", 5) + b"\0" * 8),
}
