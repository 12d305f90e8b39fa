"""The rig's marshaller against jeepney (the encoding reference), byte for byte, and the
rig's decoder and value text against the values that went in."""

from __future__ import annotations

import random

import pytest
from jeepney.low_level import Endianness, Header, HeaderFields, Message, MessageType

from fuzz.wire import message as msgs
from fuzz.wire import signature as sigs
from fuzz.wire import validate
from fuzz.wire import values as vals

BUILDERS = {
    "signal": lambda sig, body, e: msgs.signal("/a/b", "org.x.Y", "Sig", sig, body, endian=e),
    "method_call": lambda sig, body, e: msgs.method_call("/", "M", "org.x.Y", ":1.7", sig, body,
                                                         endian=e),
    "method_return": lambda sig, body, e: msgs.method_return(9, ":1.7", sig, body, endian=e),
    "error": lambda sig, body, e: msgs.error("org.x.Error", 9, ":1.7", sig, body, endian=e),
}


def _jeepney(w: msgs.WireMessage) -> bytes:
    fields = {HeaderFields(code): value for code, _sig, value in w.fields}
    endian = Endianness.little if w.endian == "l" else Endianness.big
    return Message(Header(endian, MessageType(w.type), w.flags, 1, 0, w.serial, fields),
                   tuple(w.body)).serialise()


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_rig_and_jeepney_write_the_same_bytes(kind: str):
    for seed in range(300):
        rng = random.Random(seed)
        sig = sigs.random_signature(rng, allow_fds=False)
        body = vals.random_body(rng, sig)
        w = BUILDERS[kind](sig, body, rng.choice("lB"))
        w.serial = rng.randrange(1, 1 << 32)
        assert w.to_bytes() == _jeepney(w), (seed, sig, body)


def test_decoder_reads_back_what_was_written():
    for seed in range(500):
        rng = random.Random(seed)
        sig = sigs.random_signature(rng, allow_fds=True)
        n_fds = sig.count("h") and 3
        body = vals.random_body(rng, sig, fds=n_fds)
        w = msgs.signal("/a", "org.x.Y", "S", sig, body, endian=rng.choice("lB"))
        if n_fds:
            w = w.with_field(9, n_fds)
        got = validate.decode(w.to_bytes(), n_fds)
        assert isinstance(got, validate.Decoded), (seed, sig, got)
        assert vals.same(got.body, body), (seed, sig)


def test_value_text_reads_back_the_same_values():
    for seed in range(500):
        rng = random.Random(seed)
        sig = sigs.random_signature(rng)
        body = vals.random_body(rng, sig, fds=2)
        text = vals.render(body)
        assert vals.same(vals.parse_text(text), body), text
        vals.check_body(sig, vals.parse_text(text))


def test_value_text_keeps_big_arrays_short_and_refuses_code():
    assert vals.render([bytes(1 << 20)]) == "[bytes(1048576)]"
    assert vals.parse_text("[bytes(3)]") == [b"\0\0\0"]
    for bad in ("__import__('os')", "[1, x]", "bytes(-1)", "(1,"):
        with pytest.raises(vals.BadValue):
            vals.parse_text(bad)


def test_values_of_the_wrong_type_are_refused_with_where():
    with pytest.raises(vals.BadValue, match=r"body\[1\]"):
        vals.check_body("is", [1, 2])
    with pytest.raises(vals.BadValue, match="0..255"):
        vals.check_body("y", [256])
