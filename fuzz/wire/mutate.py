"""Mutations of one message at the points its structure names. Each mutation has a `choose`
(draw its parameters from an rng, or None where the message has no such point) and an
`apply` (deterministic: the same message and parameters give the same bytes), so a case
file holds the mutation's name and parameters, never a blob, and replays without the rng.

Two levels: MODEL mutations change the message before it is encoded (fields, type, flags,
serial), BYTES mutations change the encoded bytes at a Point (a length prefix, a padding run,
a string's bytes, a boolean, a variant's signature, an fd index). Whether the result is valid
is not the mutation's claim: fuzz/wire/validate.py judges the bytes, every time.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, replace
from typing import Any, Callable

from fuzz.wire import signature as sigs
from fuzz.wire import spec
from fuzz.wire.message import Encoded, WireMessage
from fuzz.wire.values import parse_text

Params = dict[str, Any]


@dataclass(frozen=True)
class Mutation:
    name: str
    level: str  # "model" or "bytes"
    breaks: str  # the rule it is aimed at, in words (docs/wire.md lists them)
    choose: Callable[[random.Random, WireMessage, Encoded], Params | None]
    apply: Callable[..., Any]  # model: (msg, params) -> msg; bytes: (bytes, Encoded, params) -> bytes


# --- model level ----------------------------------------------------------------------------

BAD_NAMES = {
    1: ["", "a", "/a/", "//", "/a//b", "/a-b", "/\u00e9"],
    2: ["", "a", ".a.b", "a..b", "1a.b", "a.b-c", "a." + "b" * 255],
    3: ["", "1a", "a.b", "a-b", "x" * 256],
    4: ["", "a", "a..b", "1.a"],
    6: ["", "a", ".a", "a.", "1a.b", ":", "x." * 130],
    7: ["", "a", "1a.b"],
}
# (variant signature, value as text: fuzz/wire/values.py) for fields of the wrong type.
WRONG_TYPES = [("s", "'x'"), ("o", "'/x'"), ("u", "7"), ("y", "1"), ("g", "'i'"),
               ("as", "['x']"), ("v", "('s', 'x')"), ("(s)", "('x',)")]


def _codes(msg: WireMessage) -> list[int]:
    return [c for c, _s, _v in msg.fields]


def _pick(rng: random.Random, items: list) -> Any:
    return rng.choice(items) if items else None


def _choose_drop(rng, msg, _enc):
    code = _pick(rng, [c for c in _codes(msg) if c != 8])
    return None if code is None else {"code": code}


def _choose_dup(rng, msg, _enc):
    code = _pick(rng, _codes(msg))
    return None if code is None else {"code": code}


def _apply_dup(msg: WireMessage, p: Params) -> WireMessage:
    original = next((f for f in msg.fields if f[0] == p["code"]), None)
    return msg if original is None else replace(msg, fields=msg.fields + [original])


def _choose_type(rng, msg, _enc):
    code = rng.choice(list(spec.HEADER_FIELDS))
    sig, value = rng.choice([t for t in WRONG_TYPES if t[0] != spec.HEADER_FIELDS[code].type])
    return {"code": code, "sig": sig, "value": value}


def _choose_unknown(rng, _msg, _enc):
    sig, value = rng.choice(WRONG_TYPES)
    return {"code": rng.choice([10, 11, 100, 255]), "sig": sig, "value": value,
            "twice": rng.random() < 0.3}


def _apply_unknown(msg: WireMessage, p: Params) -> WireMessage:
    extra = [(p["code"], p["sig"], parse_text(p["value"]))] * (2 if p.get("twice") else 1)
    return replace(msg, fields=msg.fields + extra)


def _choose_name(rng, msg, _enc):
    code = rng.choice(list(BAD_NAMES))
    return {"code": code, "value": rng.choice(BAD_NAMES[code])}


MODEL: dict[str, Mutation] = {m.name: m for m in (
    Mutation("drop-field", "model", "a field the message type requires is missing",
             _choose_drop, lambda msg, p: msg.without_field(p["code"])),
    Mutation("duplicate-field", "model", "a known header field appears twice",
             _choose_dup, _apply_dup),
    Mutation("field-type", "model", "a known header field carries the wrong variant type",
             _choose_type, lambda msg, p: msg.with_field(p["code"], parse_text(p["value"]), p["sig"])),
    Mutation("unknown-field", "model", "an unknown field code (valid: must be ignored)",
             _choose_unknown, _apply_unknown),
    Mutation("field-code-zero", "model", "header field code 0 (INVALID)",
             lambda rng, m, e: {},
             lambda msg, p: replace(msg, fields=[(0, "s", "x")] + msg.fields)),
    Mutation("message-type", "model", "message type 0 (invalid) or above 4 (valid: ignored)",
             lambda rng, m, e: {"value": rng.choice([0, 5, 6, 255])},
             lambda msg, p: replace(msg, type=p["value"])),
    Mutation("flags", "model", "flag bits, known and unknown (valid: unknown bits ignored)",
             lambda rng, m, e: {"value": rng.choice([1, 2, 4, 7, 8, 0x80, 0xFF])},
             lambda msg, p: replace(msg, flags=p["value"])),
    Mutation("serial-zero", "model", "serial 0",
             lambda rng, m, e: {}, lambda msg, p: replace(msg, serial=0)),
    Mutation("reply-serial", "model", "REPLY_SERIAL to a serial never sent, or 0",
             lambda rng, m, e: {"value": rng.choice([0, 1, 0xFFFFFFFF, rng.randrange(1 << 32)])},
             lambda msg, p: msg.with_field(5, p["value"])),
    Mutation("sender", "model", "a SENDER field set by the client (valid: the bus owns it)",
             lambda rng, m, e: {"value": rng.choice(["org.freedesktop.DBus", ":1.0", ":9.9",
                                                     "org.busrig.Nobody"])},
             lambda msg, p: msg.with_field(7, p["value"])),
    Mutation("bad-name", "model", "a path, interface, member, error, destination or sender"
             " name against 'Valid Names'", _choose_name,
             lambda msg, p: msg.with_field(p["code"], p["value"])),
    Mutation("local-path", "model", "the reserved path /org/freedesktop/DBus/Local",
             lambda rng, m, e: {}, lambda msg, p: msg.with_field(1, spec.LOCAL_PATH)),
    Mutation("local-interface", "model", "the reserved interface org.freedesktop.DBus.Local",
             lambda rng, m, e: {}, lambda msg, p: msg.with_field(2, spec.LOCAL_INTERFACE)),
    Mutation("protocol-version", "model", "a major protocol version other than 1",
             lambda rng, m, e: {"value": rng.choice([0, 2, 255])},
             lambda msg, p: replace(msg, version=p["value"])),
    Mutation("signature-field", "model", "a SIGNATURE field that breaks a signature rule"
             " (the body stays as it was)",
             lambda rng, m, e: {"value": sigs.invalid_signature(
                 rng, "mismatched-bracket" if rng.random() < 0.3 else None)[0][:255]},
             lambda msg, p: msg.with_field(8, p["value"])),
    Mutation("unix-fds", "model", "UNIX_FDS declaring more or fewer fds than are attached",
             lambda rng, m, e: {"value": rng.choice([0, 1, 2, (m.field(9) or 0) + 1, 253, 254,
                                                     0xFFFFFFFF])},
             lambda msg, p: msg.with_field(9, p["value"])),
    Mutation("signature-mismatch", "model", "a SIGNATURE field that does not describe the body",
             lambda rng, m, e: {"value": sigs.random_signature(rng, 2, 2)},
             lambda msg, p: msg.with_field(8, p["value"]) if p["value"]
             else msg.without_field(8)),
)}


# --- byte level -----------------------------------------------------------------------------

def _u32(enc: Encoded, data: bytearray, offset: int, value: int) -> None:
    struct.pack_into(spec.ENDIAN[chr(enc.data[0])] + "I", data, offset, value & 0xFFFFFFFF)


def _choose_at(kind: str, extra: Callable[[random.Random, Any], Params | None]):
    def choose(rng: random.Random, _msg: WireMessage, enc: Encoded) -> Params | None:
        body, anywhere = enc.at(kind, "body"), enc.at(kind)
        points = body if body and rng.random() < 0.8 else anywhere
        if not points:
            return None
        i = rng.randrange(len(points))
        more = extra(rng, points[i])
        return None if more is None else {"at": anywhere.index(points[i]), **more}
    return choose


def _point(enc: Encoded, kind: str, p: Params):
    points = enc.at(kind)
    return points[p["at"] % len(points)] if points else None


def _array_length(rng, pt):
    size = pt.elem_size
    choices = [spec.MAX_ARRAY_BYTES + 1, 0xFFFFFFFF, 0, rng.randrange(1, 64)]
    if size > 1:
        choices += [size + 1, 2 * size - 1]  # CVE-2022-42011's shape
    return {"value": rng.choice(choices)}


def _set_u32(kind: str):
    def apply(data: bytes, enc: Encoded, p: Params) -> bytes:
        pt = _point(enc, kind, p)
        out = bytearray(data)
        if pt is not None:
            _u32(enc, out, pt.offset, p["value"])
        return bytes(out)
    return apply


def _replace_bytes(kind: str):
    """Put `bytes` (a list of ints) at `pos` inside the point, clipped to the point."""
    def apply(data: bytes, enc: Encoded, p: Params) -> bytes:
        pt = _point(enc, kind, p)
        out = bytearray(data)
        if pt is not None and pt.size:
            start = pt.offset + min(p.get("pos", 0), pt.size - 1)
            new = bytes(p["bytes"])[: pt.offset + pt.size - start]
            out[start:start + len(new)] = new
        return bytes(out)
    return apply


INVALID_UTF8 = ([0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x80],
                [0xE2, 0x82])


def _string_bytes(rng, pt):
    if not pt.size:
        return None
    how = rng.choice(["nul", "utf8", "utf8", "char"])
    value = {"nul": [0], "utf8": rng.choice(INVALID_UTF8),
             "char": [rng.choice(b"/.-:@ \x7f")]}[how]
    return {"pos": rng.randrange(pt.size), "bytes": value}


def _variant_sig(rng, pt):
    return {"bytes": list(rng.choice([b"(", b"a", b"{", b"r", b"z", b")", b"ii", b"aa", b"{i",
                                      b"(i}", b"a{i)"])
                          .ljust(max(1, pt.size), b"i")[:max(1, pt.size)])}


BYTES: dict[str, Mutation] = {m.name: m for m in (
    Mutation("array-length", "bytes", "an array length past 64 MiB, past the body, or no"
             " multiple of the element size", _choose_at("array-length", _array_length),
             _set_u32("array-length")),
    Mutation("string-length", "bytes", "a string length that overruns or underruns its bytes",
             _choose_at("string-length",
                        lambda rng, pt: {"delta": rng.choice([-1, 1, 4, 1 << 20, -(1 << 31)])}),
             lambda d, e, p: _set_u32("string-length")(
                 d, e, {**p, "value": _string_len(e, p) + p["delta"]})),
    Mutation("padding", "bytes", "alignment padding that is not NUL",
             _choose_at("padding", lambda rng, pt: {"pos": rng.randrange(pt.size),
                                                    "bytes": [rng.randrange(1, 256)]}),
             _replace_bytes("padding")),
    Mutation("string-bytes", "bytes", "a NUL, invalid UTF-8, or a character the name syntax"
             " forbids, inside a string", _choose_at("string", _string_bytes),
             _replace_bytes("string")),
    Mutation("path-bytes", "bytes", "an object path against its syntax",
             _choose_at("path", _string_bytes), _replace_bytes("path")),
    Mutation("missing-nul", "bytes", "a string, path or signature without its trailing NUL",
             _choose_at("nul", lambda rng, pt: {"bytes": [rng.choice(b"x\x01\xff")]}),
             _replace_bytes("nul")),
    Mutation("boolean", "bytes", "a boolean other than 0 and 1",
             _choose_at("boolean", lambda rng, pt: {"value": rng.choice([2, 0xFF, 0x100,
                                                                         0xFFFFFFFF])}),
             _set_u32("boolean")),
    Mutation("variant-signature", "bytes", "a variant whose signature is not one complete type",
             _choose_at("variant-signature", _variant_sig), _replace_bytes("variant-signature")),
    Mutation("fd-index", "bytes", "an h index at or past UNIX_FDS",
             _choose_at("fd-index", lambda rng, pt: {"value": rng.choice([1, 2, 253, 0xFFFFFFFF])}),
             _set_u32("fd-index")),
    Mutation("body-length", "bytes", "BODY_LENGTH shorter or longer than the body",
             lambda rng, m, e: {"delta": rng.choice([-1, -4, 1, 8, spec.MAX_MESSAGE_BYTES])},
             lambda d, e, p: _with_u32_at(d, e, 4, max(0, _u32_at(d, 4) + p["delta"]))),
    Mutation("fields-length", "bytes", "the header field array's length off by some bytes",
             lambda rng, m, e: {"delta": rng.choice([-8, -1, 1, 3, 8, spec.MAX_ARRAY_BYTES])},
             lambda d, e, p: _with_u32_at(d, e, 12, max(0, _u32_at(d, 12) + p["delta"]))),
    Mutation("byte-order", "bytes", "an endianness byte that is neither 'l' nor 'B'",
             lambda rng, m, e: {"value": rng.choice([0, ord("L"), ord("b"), 0xFF])},
             lambda d, e, p: bytes([p["value"]]) + d[1:]),
    Mutation("flip", "bytes", "random bytes changed (the unstructured baseline)",
             lambda rng, m, e: {"at": [rng.randrange(len(e.data)) for _ in range(rng.randint(1, 8))],
                                "value": rng.randrange(256)},
             lambda d, e, p: _flip(d, p)),
)}

MUTATIONS: dict[str, Mutation] = {**MODEL, **BYTES}


def _u32_at(data: bytes, offset: int) -> int:
    return struct.unpack_from(spec.ENDIAN.get(chr(data[0]), "<") + "I", data, offset)[0]


def _with_u32_at(data: bytes, enc: Encoded, offset: int, value: int) -> bytes:
    out = bytearray(data)
    _u32(enc, out, offset, value)
    return bytes(out)


def _string_len(enc: Encoded, p: Params) -> int:
    pt = _point(enc, "string-length", p)
    return 0 if pt is None else _u32_at(enc.data, pt.offset)


def _flip(data: bytes, p: Params) -> bytes:
    out = bytearray(data)
    for i in p["at"]:
        if i < len(out):
            out[i] = (out[i] ^ p["value"]) or 1
    return bytes(out)


def apply_all(msg: WireMessage, mutations: list[Params]) -> tuple[WireMessage, Encoded, bytes]:
    """The message after its model mutations, its encoding, and the bytes after the byte
    mutations, in the order given (each entry is {"name": ..., **params})."""
    for m in mutations:
        if MUTATIONS[m["name"]].level == "model":
            msg = MUTATIONS[m["name"]].apply(msg, m)
    enc = msg.encode()
    data = enc.data
    for m in mutations:
        if MUTATIONS[m["name"]].level == "bytes":
            data = MUTATIONS[m["name"]].apply(data, enc, m)
    return msg, enc, data


def draw(rng: random.Random, msg: WireMessage, names: list[str] | None = None) -> Params | None:
    """One mutation's parameters for `msg` (a random applicable one of `names`)."""
    enc = msg.encode()
    names = list(names or MUTATIONS)
    rng.shuffle(names)
    for name in names:
        params = MUTATIONS[name].choose(rng, msg, enc)
        if params is not None:
            return {"name": name, **params}
    return None
