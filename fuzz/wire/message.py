"""A D-Bus message as data: fixed header, header fields in wire order, body signature and
values. Encoding it gives the bytes and the Points of its structure; the model holds exactly
what goes on the wire, so it can also hold what no library would write (a field twice, a
field of the wrong type, type 0, serial 0).

Layout ("Message Format"): endianness, type, flags, version (4 bytes), BODY_LENGTH and serial
(u32 each), the fields as `a(yv)`, NUL padding to 8, then the body.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fuzz.wire import signature as sigs
from fuzz.wire import spec
from fuzz.wire.marshal import Point, Writer

HEADER_FIELDS_TYPE = sigs.parse("a(yv)")[0]


@dataclass(frozen=True)
class Encoded:
    data: bytes
    points: tuple[Point, ...]
    body_offset: int

    def at(self, kind: str, region: str = "any") -> list[Point]:
        """The points of one kind, in the header, in the body or anywhere."""
        return [p for p in self.points if p.kind == kind and (
            region == "any" or (p.offset < self.body_offset) == (region == "header"))]


@dataclass
class WireMessage:
    type: int = spec.METHOD_CALL
    fields: list[tuple[int, str, Any]] = field(default_factory=list)  # (code, signature, value)
    signature: str = ""            # what the body is marshalled as
    body: list[Any] = field(default_factory=list)
    flags: int = 0
    serial: int = 1
    endian: str = "l"
    version: int = spec.PROTOCOL_VERSION

    def field(self, code: int) -> Any:
        return next((v for c, _s, v in self.fields if c == code), None)

    def with_field(self, code: int, value: Any, sig: str | None = None) -> "WireMessage":
        """A copy with field `code` set (replaced in place, or appended), of its spec type
        unless `sig` says otherwise."""
        sig = sig or spec.HEADER_FIELDS[code].type
        fields = [(c, s, v) for c, s, v in self.fields if c != code]
        at = next((i for i, (c, _s, _v) in enumerate(self.fields) if c == code), len(fields))
        fields.insert(at, (code, sig, value))
        return replace(self, fields=fields)

    def without_field(self, code: int) -> "WireMessage":
        return replace(self, fields=[f for f in self.fields if f[0] != code])

    def encode(self) -> Encoded:
        body = Writer(self.endian, 0)
        for t, v in zip(sigs.parse(self.signature), self.body):
            body.value(t, v)
        head = Writer(self.endian, 0)
        head.buf += self.endian.encode() + bytes([self.type & 0xFF, self.flags & 0xFF,
                                                  self.version & 0xFF])
        head.fixed("u", len(body.buf))
        head.fixed("u", self.serial)
        head.value(HEADER_FIELDS_TYPE, [(c, (s, v)) for c, s, v in self.fields])
        head.align(8, "header")
        start = len(head.buf)
        shifted = [replace(p, offset=p.offset + start) for p in body.points]
        return Encoded(b"".join((head.buf, body.buf)), tuple(head.points + shifted), start)

    def to_bytes(self) -> bytes:
        return self.encode().data


def _build(kind: int, fields: list[tuple[int, Any]], signature: str, body: list[Any],
           **kw: Any) -> WireMessage:
    out = [(code, spec.HEADER_FIELDS[code].type, value) for code, value in fields
           if value is not None]
    if signature:
        out.append((8, "g", signature))
    return WireMessage(kind, out, signature, list(body), **kw)


def method_call(path: str, member: str, interface: str | None = None,
                destination: str | None = None, signature: str = "",
                body: list[Any] | None = None, **kw: Any) -> WireMessage:
    return _build(spec.METHOD_CALL, [(1, path), (2, interface), (3, member), (6, destination)],
                  signature, body or [], **kw)


def signal(path: str, interface: str, member: str, signature: str = "",
           body: list[Any] | None = None, destination: str | None = None,
           **kw: Any) -> WireMessage:
    return _build(spec.SIGNAL, [(1, path), (2, interface), (3, member), (6, destination)],
                  signature, body or [], **kw)


def method_return(reply_serial: int, destination: str | None = None, signature: str = "",
                  body: list[Any] | None = None, **kw: Any) -> WireMessage:
    return _build(spec.METHOD_RETURN, [(5, reply_serial), (6, destination)], signature,
                  body or [], **kw)


def error(error_name: str, reply_serial: int, destination: str | None = None,
          signature: str = "", body: list[Any] | None = None, **kw: Any) -> WireMessage:
    return _build(spec.ERROR, [(4, error_name), (5, reply_serial), (6, destination)],
                  signature, body or [], **kw)
