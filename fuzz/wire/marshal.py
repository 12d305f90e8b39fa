"""Marshalling values into D-Bus wire bytes, noting where the structure is: every length
prefix, padding run, string, boolean, variant signature and fd index gets a `Point`, so a
mutation can break the byte the specification's rule is about ("Marshaling (Wire Format)")
instead of a random one.

Alignment is counted from the message's first byte: a Writer starts at the offset its first
byte will have in the message (the body always starts on an 8-byte boundary).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from fuzz.wire import spec
from fuzz.wire.signature import Type, parse_single


@dataclass(frozen=True)
class Point:
    kind: str        # array-length, string-length, signature-length, string, path,
    #                  signature, variant-signature, padding, boolean, fd-index, nul
    offset: int      # from the message's first byte
    size: int        # bytes the point covers
    type: str = ""   # the signature of the value it belongs to
    elem_size: int = 0  # array-length: the element's fixed size (0 when not fixed)


class Writer:
    def __init__(self, endian: str = "l", start: int = 0):
        self.fmt = spec.ENDIAN[endian]
        self.start = start
        self.buf = bytearray()
        self.points: list[Point] = []

    @property
    def offset(self) -> int:
        return self.start + len(self.buf)

    def align(self, n: int, type_sig: str = "") -> None:
        gap = spec.pad(self.offset, n)
        if gap:
            self.points.append(Point("padding", self.offset, gap, type_sig))
            self.buf += b"\0" * gap

    def fixed(self, code: str, value: Any) -> None:
        self.align(spec.BASIC[code][0], code)
        if code == "b":
            self.points.append(Point("boolean", self.offset, 4, "b"))
            value = int(value)
        elif code == "h":
            self.points.append(Point("fd-index", self.offset, 4, "h"))
        self.buf += struct.pack(self.fmt + spec.STRUCT_FORMAT[code], value)

    def string(self, code: str, value: str | bytes) -> None:
        data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
        if code == "g":
            self.points.append(Point("signature-length", self.offset, 1, "g"))
            self.buf += bytes([len(data) & 0xFF])
        else:
            self.align(4, code)
            self.points.append(Point("string-length", self.offset, 4, code))
            self.buf += struct.pack(self.fmt + "I", len(data))
        kind = {"s": "string", "o": "path", "g": "signature"}[code]
        self.points.append(Point(kind, self.offset, len(data), code))
        self.buf += data
        self.points.append(Point("nul", self.offset, 1, code))
        self.buf += b"\0"

    def value(self, t: Type, value: Any) -> None:
        c = t.code
        if c in spec.FIXED_BASIC:
            self.fixed(c, value)
        elif c in spec.STRING_LIKE:
            self.string(c, value)
        elif c == "v":
            inner_sig, inner = value
            self.points.append(Point("variant-signature", self.offset + 1,
                                     len(inner_sig.encode()), "v"))
            self.string("g", inner_sig)
            self.value(parse_single(inner_sig), inner)
        elif c == "a":
            self.array(t.children[0], value)
        elif c in "({":
            self.align(8, t.signature)
            for f, v in zip(t.children, value):
                self.value(f, v)
        else:
            raise AssertionError(f"cannot marshal {t.signature}")

    def array(self, elem: Type, value: Any) -> None:
        self.align(4, "a" + elem.signature)
        at = self.offset
        self.buf += b"\0\0\0\0"
        self.align(elem.align, elem.signature)  # present even when the array is empty
        begin = len(self.buf)
        if elem.code == "y":
            self.buf += bytes(value)
        elif elem.code == "{":
            for k, v in value.items():
                self.value(elem, (k, v))
        else:
            for v in value:
                self.value(elem, v)
        length = len(self.buf) - begin
        struct.pack_into(self.fmt + "I", self.buf, at - self.start, length)
        self.points.append(Point("array-length", at, 4, "a" + elem.signature,
                                 elem.fixed_size or 0))


def marshal(types: list[Type], values: list[Any], endian: str = "l",
            start: int = 0) -> tuple[bytes, list[Point]]:
    w = Writer(endian, start)
    for t, v in zip(types, values):
        w.value(t, v)
    return bytes(w.buf), w.points
