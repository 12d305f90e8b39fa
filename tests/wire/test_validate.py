"""The validator against the specification's rules, one message per rule, and the mutations
against the validator: each one changes the bytes, and the result is judged every time."""

from __future__ import annotations

import random
import struct
from dataclasses import replace

import pytest

from fuzz.wire import generate, mutate
from fuzz.wire import message as msgs
from fuzz.wire import spec, validate
from fuzz.wire import values as vals


def ping(sig: str = "", body: list | None = None, **kw) -> msgs.WireMessage:
    return msgs.method_call("/org/x", "Ping", "org.x.Y", ":1.7", sig, body or [], **kw)


def rule(data: bytes, fds: int = 0) -> str:
    got = validate.decode(data, fds)
    return "valid" if isinstance(got, validate.Decoded) else got.rule


def test_a_plain_message_is_valid_in_both_byte_orders():
    for endian in "lB":
        assert rule(ping("a{sv}", [{"k": ("i", 1)}], endian=endian).to_bytes()) == "valid"


@pytest.mark.parametrize("depth,expected", [(64, "valid"), (65, "nested-too-deeply")])
def test_variants_nest_64_deep_and_no_deeper(depth: int, expected: str):
    # CVE-2010-4352: the bus crashed on variants nested without limit.
    assert rule(ping("v", [vals.nested_variant(depth)]).to_bytes()) == expected


def test_fixed_array_length_must_be_a_multiple_of_the_element():
    # CVE-2022-42011: an `ai` of 5 bytes.
    enc = ping("ai", [[1, 2]]).encode()
    at = enc.at("array-length", "body")[0].offset
    data = bytearray(enc.data)
    struct.pack_into("<I", data, at, 5)
    assert rule(bytes(data)) == "array-length-incorrect"


@pytest.mark.parametrize("edit,expected", [
    (lambda m: replace(m, type=0), "bad-message-type"),
    (lambda m: replace(m, type=5), "valid"),  # unknown types are ignored, not invalid
    (lambda m: replace(m, serial=0), "bad-serial"),
    (lambda m: replace(m, version=2), "bad-protocol-version"),
    (lambda m: replace(m, flags=0xFF), "valid"),
    (lambda m: m.without_field(3), "missing-member"),
    (lambda m: m.without_field(1), "missing-path"),
    (lambda m: m.with_field(1, "/a//b"), "bad-path"),
    (lambda m: m.with_field(2, "nodots"), "bad-interface"),
    (lambda m: m.with_field(3, "a.b"), "bad-member"),
    (lambda m: m.with_field(6, "1a.b"), "bad-destination"),
    (lambda m: m.with_field(1, spec.LOCAL_PATH), "uses-local-path"),
    (lambda m: m.with_field(2, spec.LOCAL_INTERFACE), "uses-local-interface"),
    (lambda m: m.with_field(3, 7, "u"), "bad-header-field-type"),
    (lambda m: replace(m, fields=m.fields + [m.fields[0]]), "header-field-appears-twice"),
    (lambda m: replace(m, fields=m.fields + [(10, "s", "x"), (10, "u", 1)]), "valid"),
    (lambda m: replace(m, fields=[(0, "s", "x")] + m.fields), "bad-header-field-code"),
    (lambda m: m.with_field(5, 0), "bad-serial"),  # REPLY_SERIAL 0, even where unexpected
    (lambda m: m.with_field(8, "(a{i)}"), "bad-signature"),  # CVE-2022-42010
    (lambda m: m.with_field(9, 2), "missing-unix-fds"),
])
def test_header_rules(edit, expected: str):
    assert rule(edit(ping()).to_bytes()) == expected


def test_body_rules():
    enc = ping("bsv", [True, "abc", ("s", "x")]).encode()

    def at(kind: str, value: bytes, nth: int = 0) -> str:
        pt = enc.at(kind, "body")[nth]
        data = bytearray(enc.data)
        data[pt.offset:pt.offset + len(value)] = value
        return rule(bytes(data))

    assert at("boolean", b"\x02\0\0\0") == "boolean-not-zero-or-one"
    assert at("string", b"a\0") == "string-contains-nul"
    assert at("string", b"\xff") == "bad-utf8-in-string"
    assert at("string", b"\xc0\x80") == "bad-utf8-in-string"  # overlong NUL
    assert at("nul", b"x") == "string-missing-nul"
    assert at("variant-signature", b"(") == "variant-signature-bad"
    padded = ping("yi", [1, 2]).encode()
    data = bytearray(padded.data)
    data[padded.at("padding", "body")[0].offset] = 1
    assert rule(bytes(data)) == "alignment-padding-not-nul"
    assert rule(ping("s", ["x"]).to_bytes() + b"\0") == "too-much-data"
    assert rule(ping("s", ["x"]).to_bytes()[:-1]) == "not-enough-data"


def test_fd_indexes_past_unix_fds_are_lenient():
    m = ping("h", [3]).with_field(9, 1)
    assert rule(m.to_bytes(), 1) == "valid"
    assert [b.rule for b in validate.lenient_breaches(m.to_bytes(), 1)] == \
        ["unix-fd-index-out-of-range"]
    assert [b.rule for b in validate.lenient_breaches(ping().to_bytes(), 2)] == \
        ["more-unix-fds-than-declared"]


@pytest.mark.parametrize("name", sorted(mutate.MUTATIONS))
def test_every_mutation_applies_replays_and_changes_the_bytes(name: str):
    changed = applied = 0
    for seed in range(40):
        rng = random.Random(seed)
        base = generate.draw_case(rng)
        base.mutations = []
        if base.signature.startswith("ay") and base.body and len(base.body[0]) > 1 << 20:
            continue
        msg = base.message(":1.42", "org.busrig.Wire.x1", 5)
        m = mutate.MUTATIONS[name].choose(rng, msg, msg.encode())
        if m is None:
            continue
        applied += 1
        case = replace(base, mutations=[{"name": name, **m}])
        first = case.build(":1.42", "org.busrig.Wire.x1", 5)[2]
        assert first == case.build(":1.42", "org.busrig.Wire.x1", 5)[2]  # deterministic
        changed += first != msg.to_bytes()
        validate.decode(first)  # judged, whatever it is; never raises
    # A few draws may rewrite a byte with the value it had (a name character, UNIX_FDS).
    assert applied and changed >= 0.8 * applied, f"{name}: {changed} of {applied} changed"
