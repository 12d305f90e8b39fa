"""Judging bytes against the specification: a decoder that reads one message and returns its
values, or the first rule it breaks and where. The rules come from fuzz/wire/spec.py; the
names are libdbus's DBusValidity names (dbus/dbus-marshal-validate.h), lower-cased, so the rig
and the bus use one vocabulary.

Some rules the specification states without saying what a bus must do about a message that
breaks them in its body; buses differ there (dbus-daemon does not look at `h` indexes). Those
are LENIENT: the decoder still names them, the oracles do not require a refusal.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from fuzz.wire import signature as sigs
from fuzz.wire import spec
from fuzz.wire.signature import Type

# Rules whose breach a bus may let through: the specification defines the meaning (an `h` is
# an index into the fds; UNIX_FDS counts the fds sent) without requiring a relaying bus to
# check the body against it.
LENIENT = frozenset({"unix-fd-index-out-of-range", "more-unix-fds-than-declared",
                     # Transport: a message's fds may not be sent before its first byte
                     # ("Message Format", UNIX_FDS); a pipelined write sends the second
                     # message's fds with the first one's bytes. dbus-daemon reads fds as a
                     # stream and takes that, dbus-broker binds fds to the bytes they came with.
                     "fds-sent-before-the-message"})


@dataclass
class Decoded:
    type: int
    flags: int
    serial: int
    endian: str
    fields: dict[int, tuple[str, Any]]
    field_order: list[int]
    signature: str
    body: list[Any]
    size: int
    fd_indexes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Invalid:
    rule: str
    offset: int
    detail: str = ""

    @property
    def lenient(self) -> bool:
        return self.rule in LENIENT


class _Broken(Exception):
    def __init__(self, rule: str, offset: int, detail: str = ""):
        super().__init__(rule)
        self.invalid = Invalid(rule, offset, detail)


class _Reader:
    def __init__(self, data: bytes, endian: str, pos: int, end: int, fds: int):
        self.data, self.fmt, self.pos, self.end, self.fds = data, spec.ENDIAN[endian], pos, end, fds
        self.fd_indexes: list[int] = []
        self.lenient: list[Invalid] = []

    def fail(self, rule: str, detail: str = "", at: int | None = None):
        raise _Broken(rule, self.pos if at is None else at, detail)

    def need(self, n: int) -> None:
        if self.pos + n > self.end:
            self.fail("not-enough-data")

    def align(self, n: int) -> None:
        gap = spec.pad(self.pos, n)
        self.need(gap)
        if any(self.data[self.pos:self.pos + gap]):
            self.fail("alignment-padding-not-nul")
        self.pos += gap

    def fixed(self, code: str) -> Any:
        self.align(spec.BASIC[code][0])
        size = spec.BASIC[code][1]
        self.need(size)
        value = struct.unpack_from(self.fmt + spec.STRUCT_FORMAT[code], self.data, self.pos)[0]
        if code == "b":
            if value not in (0, 1):
                self.fail("boolean-not-zero-or-one", str(value))
            value = bool(value)
        elif code == "h":
            self.fd_indexes.append(value)
            if value >= self.fds:
                self.lenient.append(Invalid("unix-fd-index-out-of-range", self.pos,
                                            f"index {value}, UNIX_FDS {self.fds}"))
        self.pos += size
        return value

    def text(self, code: str) -> str:
        if code == "g":
            self.need(1)
            n = self.data[self.pos]
            self.pos += 1
        else:
            self.align(4)
            self.need(4)
            n = struct.unpack_from(self.fmt + "I", self.data, self.pos)[0]
            self.pos += 4
        start = self.pos
        if n > self.end - start:
            self.fail("string-length-out-of-bounds" if code != "g"
                      else "signature-length-out-of-bounds", f"length {n}")
        raw = self.data[start:start + n]
        self.pos += n
        self.need(1)
        if self.data[self.pos] != 0:
            self.fail("string-missing-nul" if code != "g" else "signature-missing-nul")
        self.pos += 1
        if b"\0" in raw:
            self.fail("string-contains-nul", at=start + raw.index(b"\0"))
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self.fail("bad-utf8-in-string", at=start + e.start)
        if code == "o" and not spec.valid_path(value):
            self.fail("bad-path", value, at=start)
        if code == "g":
            broken = sigs.rule_broken(value)
            if broken:
                self.fail("bad-signature", broken, at=start)
        return value

    def value(self, t: Type, depth: int) -> Any:
        if depth > spec.MAX_TOTAL_DEPTH:
            self.fail("nested-too-deeply")
        c = t.code
        if c in spec.FIXED_BASIC:
            return self.fixed(c)
        if c in spec.STRING_LIKE:
            return self.text(c)
        if c == "v":
            at = self.pos
            sig = self._variant_signature(at)
            inner = sigs.parse_single(sig)
            return (sig, self.value(inner, depth + 1))
        if c == "a":
            return self.array(t.children[0], depth)
        if c in "({":
            self.align(8)
            values = tuple(self.value(f, depth + 1) for f in t.children)
            return values
        raise AssertionError(c)

    def _variant_signature(self, at: int) -> str:
        self.need(1)
        n = self.data[self.pos]
        if self.pos + 1 + n + 1 > self.end:
            self.fail("variant-signature-length-out-of-bounds", f"length {n}")
        raw = self.data[self.pos + 1:self.pos + 1 + n]
        if self.data[self.pos + 1 + n] != 0:
            self.fail("variant-signature-missing-nul")
        try:
            sig = raw.decode("ascii")
        except UnicodeDecodeError:
            self.fail("variant-signature-bad", at=at)
        if not sig:
            self.fail("variant-signature-empty", at=at)
        try:
            types = sigs.parse(sig)
        except sigs.SignatureError as e:
            self.fail("variant-signature-bad", e.rule, at=at)
        if len(types) != 1:
            self.fail("variant-signature-specifies-multiple-values", sig, at=at)
        self.pos += 1 + n + 1
        return sig

    def array(self, elem: Type, depth: int) -> Any:
        self.align(4)
        self.need(4)
        at = self.pos
        n = struct.unpack_from(self.fmt + "I", self.data, self.pos)[0]
        self.pos += 4
        if n > spec.MAX_ARRAY_BYTES:
            self.fail("array-length-exceeds-maximum", f"length {n}", at=at)
        self.align(elem.align)
        if n > self.end - self.pos:
            self.fail("length-out-of-bounds", f"array length {n}", at=at)
        if elem.fixed_size and n % elem.fixed_size:
            # CVE-2022-42011: an array of fixed-size values whose length is no multiple of it.
            self.fail("array-length-incorrect", f"length {n} for {elem.signature}", at=at)
        end = self.pos + n
        if elem.code == "y":
            out: Any = bytes(self.data[self.pos:end])
            self.pos = end
            return out
        saved_end, self.end = self.end, end
        items = []
        try:
            while self.pos < end:
                items.append(self.value(elem, depth + 1))
        finally:
            self.end = saved_end
        if self.pos != end:
            self.fail("array-length-incorrect", at=at)
        return dict(items) if elem.code == "{" else items


def frame_size(data: bytes, at: int = 0) -> int | None:
    """Bytes the message starting at `at` takes, from its fixed header (None: too short or a
    byte order that is neither)."""
    if len(data) - at < 16 or chr(data[at]) not in spec.ENDIAN:
        return None
    fmt = spec.ENDIAN[chr(data[at])]
    body, fields = struct.unpack_from(fmt + "I4xI", data, at + 4)
    return 16 + fields + spec.pad(16 + fields, 8) + body


def decode(data: bytes, fds: int = 0) -> Decoded | Invalid:
    """One message, the whole of `data` (bytes past its frame are "too-much-data" here:
    callers with a stream split it by frame_size first); `fds` is how many arrived with it."""
    try:
        return _decode(data, fds)
    except _Broken as e:
        return e.invalid


@dataclass(frozen=True)
class Verdict:
    """What a stream of bytes sent as one case is, judged by its first frame: "valid" or the
    rule broken, that rule's detail, the LENIENT rules a valid message breaks, and whether
    the first frame is complete (a header that claims more than was sent: the bus may wait)."""
    rule: str
    detail: str
    lenient: tuple[str, ...]
    complete: bool
    decoded: Decoded | None


def verdict(data: bytes, fds: int = 0) -> Verdict:
    size = frame_size(data)
    complete = size is not None and size <= len(data)
    first = data[:size] if complete else data
    got = decode(first, fds)
    if isinstance(got, Invalid):
        return Verdict(got.rule, got.detail, (), complete, None)
    return Verdict("valid", "", tuple(b.rule for b in lenient_breaches(first, fds)), complete,
                   got)


def lenient_breaches(data: bytes, fds: int = 0) -> list[Invalid]:
    """The LENIENT rules a valid message breaks (empty when it is invalid or breaks none)."""
    try:
        return _decode(data, fds, collect=True)  # type: ignore[return-value]
    except _Broken:
        return []


def _decode(data: bytes, fds: int, collect: bool = False) -> Any:
    if len(data) < 16:
        raise _Broken("not-enough-data", len(data))
    endian = chr(data[0])
    if endian not in spec.ENDIAN:
        raise _Broken("bad-byte-order", 0)
    kind, flags, version = data[1], data[2], data[3]
    if version != spec.PROTOCOL_VERSION:
        raise _Broken("bad-protocol-version", 3, str(version))
    if kind == 0:
        raise _Broken("bad-message-type", 1)
    fmt = spec.ENDIAN[endian]
    body_len, serial, fields_len = struct.unpack_from(fmt + "III", data, 4)
    if serial == 0:
        raise _Broken("bad-serial", 8)
    if fields_len > spec.MAX_ARRAY_BYTES:
        raise _Broken("insane-fields-array-length", 12, str(fields_len))
    if body_len > spec.MAX_MESSAGE_BYTES:
        raise _Broken("insane-body-length", 4, str(body_len))
    body_at = 16 + fields_len + spec.pad(16 + fields_len, 8)
    total = body_at + body_len
    if total > spec.MAX_MESSAGE_BYTES:
        raise _Broken("message-too-long", 4, str(total))
    if len(data) < total:
        raise _Broken("not-enough-data", len(data), f"{len(data)} of {total} bytes")
    if len(data) > total:
        raise _Broken("too-much-data", total, f"{len(data) - total} bytes past BODY_LENGTH")

    header = _Reader(data, endian, 12, body_at, fds)
    fields, order = _header_fields(header, fields_len)
    if header.pos != 16 + fields_len:
        raise _Broken("header-fields-array-length-incorrect", 12)
    header.end = body_at
    header.align(8)

    _required_fields(kind, fields)
    declared = fields.get(9, ("u", 0))[1]
    if declared > fds:
        raise _Broken("missing-unix-fds", 0, f"UNIX_FDS {declared}, {fds} received")
    signature = fields.get(8, ("g", ""))[1]
    body = _Reader(data, endian, body_at, total, declared)
    values = [body.value(t, 0) for t in sigs.parse(signature)]
    if body.pos != total:
        raise _Broken("too-much-data", body.pos, f"{total - body.pos} bytes after the values")
    if collect:
        extra = [Invalid("more-unix-fds-than-declared", 0, f"{fds} for {declared}")] \
            if fds > declared else []
        return header.lenient + body.lenient + extra
    return Decoded(kind, flags, serial, endian, fields, order, signature, values, total,
                   body.fd_indexes)


def _header_fields(r: _Reader, fields_len: int) -> tuple[dict[int, tuple[str, Any]], list[int]]:
    r.pos = 12
    r.need(4)
    r.pos = 16
    end = 16 + fields_len
    if end > r.end:
        raise _Broken("insane-fields-array-length", 12)
    fields: dict[int, tuple[str, Any]] = {}
    order: list[int] = []
    saved, r.end = r.end, end
    while r.pos < end:
        r.align(8)
        at = r.pos
        code = r.fixed("y")
        sig, value = r.value(Type("v"), 2)
        rule = spec.HEADER_FIELDS.get(code)
        if code == 0:
            raise _Broken("bad-header-field-code", at)
        if rule is not None:
            if code in fields:
                raise _Broken("header-field-appears-twice", at, rule.name)
            if sig != rule.type:
                raise _Broken("bad-header-field-type", at, f"{rule.name} as {sig}")
            syntax = spec.FIELD_SYNTAX.get(code)
            if syntax and not syntax(value):
                raise _Broken(f"bad-{rule.name.replace('_', '-')}", at, str(value))
            if code == 5 and value == 0:
                raise _Broken("bad-serial", at, "REPLY_SERIAL 0")
            if code == 1 and value == spec.LOCAL_PATH:
                raise _Broken("uses-local-path", at)
            if code == 2 and value == spec.LOCAL_INTERFACE:
                raise _Broken("uses-local-interface", at)
        fields.setdefault(code, (sig, value))  # an unknown code may repeat: the first counts
        order.append(code)
    r.end = saved
    return fields, order


def _required_fields(kind: int, fields: dict[int, tuple[str, Any]]) -> None:
    for rule in spec.HEADER_FIELDS.values():
        if kind in rule.required_in and rule.code not in fields:
            raise _Broken(f"missing-{rule.name.replace('_', '-')}", 12)
