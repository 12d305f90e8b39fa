"""Every message-content and transport bug class of the catalog (docs/wire.md, "Reachable by
generation") is produced by the generator itself, without a hand-written case, within a fixed
number of draws from each of many seeds. The shapes and the bound are fixed here; the
generator's weights are tuned to them, never the other way round."""

from __future__ import annotations

import random
from typing import Callable

import pytest

from fuzz.wire import generate, validate
from fuzz.wire.generate import WireCase

DRAWS = 3000
SEEDS = range(5)  # `python benchmarks/wire.py --reach 10` measures more

Judged = tuple[str, str, list[str]]  # verdict, its detail, lenient rules


def judge(case: WireCase) -> Judged:
    _m, _e, data = case.build(generate.DRAW_RECEIVER, generate.DRAW_INTERFACE, 7)
    v = validate.verdict(data, case.fds)
    return v.rule, v.detail, list(v.lenient)


Shape = Callable[[WireCase, str, str, list[str]], bool]
SHAPES: dict[str, Shape] = {
    # CVE-2010-4352: variants nested past the 64 containers a message may hold.
    "CVE-2010-4352 nested variants": lambda c, v, d, l: v == "nested-too-deeply",
    # CVE-2014-3532: an fd that is a socket carrying sockets in flight.
    "CVE-2014-3532 fd recursion": lambda c, v, d, l: c.fd_kind == "nested-socket",
    # CVE-2014-3533: fd-carrying messages back to back in one write.
    "CVE-2014-3533 pipelined fds": lambda c, v, d, l: c.transport == "pipelined" and c.fds > 0,
    # CVE-2014-3635: one fd past dbus-daemon's max_message_unix_fds (16).
    "CVE-2014-3635 limit+1 fds": lambda c, v, d, l: c.fds == 17,
    # CVE-2014-3636 (B): more fds than one sendmsg carries, over several.
    "CVE-2014-3636B >253 fds": lambda c, v, d, l: c.fds > 253,
    # CVE-2022-42010: a bracket closed by the other kind, in a signature or a variant's.
    "CVE-2022-42010 mismatched bracket": lambda c, v, d, l: d == "mismatched-bracket",
    # CVE-2022-42011: a fixed-size array whose length is no multiple of the element.
    "CVE-2022-42011 array length": lambda c, v, d, l: v == "array-length-incorrect" and " for " in d,
    # CVE-2022-42012: a foreign-endian message with fds and h arguments.
    "CVE-2022-42012 foreign endian fds": lambda c, v, d, l: (
        c.endian == "B" and c.fds > 0 and "h" in c.signature and v == "valid"),
    # The header rows beside them.
    "field twice": lambda c, v, d, l: v == "header-field-appears-twice",
    "field of the wrong type": lambda c, v, d, l: v == "bad-header-field-type",
    "required field missing": lambda c, v, d, l: v.startswith("missing-") and v != "missing-unix-fds",
    "field code 0": lambda c, v, d, l: v == "bad-header-field-code",
    "unknown field code": lambda c, v, d, l: v == "valid" and any(
        m["name"] == "unknown-field" for m in c.mutations),
    "message type 0": lambda c, v, d, l: v == "bad-message-type",
    "unknown message type": lambda c, v, d, l: v == "valid" and any(
        m["name"] == "message-type" and m["value"] > 4 for m in c.mutations),
    "serial 0": lambda c, v, d, l: v == "bad-serial",
    "reserved Local path or interface": lambda c, v, d, l: v in ("uses-local-path",
                                                                   "uses-local-interface"),
    "SENDER set by the client": lambda c, v, d, l: v == "valid" and any(
        m["name"] == "sender" for m in c.mutations),
    # The fd rows.
    "UNIX_FDS over the fds attached": lambda c, v, d, l: v == "missing-unix-fds",
    "fds attached without a declaration": lambda c, v, d, l: "more-unix-fds-than-declared" in l,
    "h index past UNIX_FDS": lambda c, v, d, l: "unix-fd-index-out-of-range" in l,
    "fds on a later part of a split message": lambda c, v, d, l: c.transport == "split" and c.fds,
    "a message a byte at a time": lambda c, v, d, l: c.transport == "dribble",
    # Body rules.
    "boolean not 0 or 1": lambda c, v, d, l: v == "boolean-not-zero-or-one",
    "invalid UTF-8": lambda c, v, d, l: v == "bad-utf8-in-string",
    "NUL inside a string": lambda c, v, d, l: v == "string-contains-nul",
    "padding not NUL": lambda c, v, d, l: v == "alignment-padding-not-nul",
    "array over 64 MiB": lambda c, v, d, l: v == "array-length-exceeds-maximum",
    "body shorter than BODY_LENGTH": lambda c, v, d, l: v == "not-enough-data",
    "bad variant signature": lambda c, v, d, l: v.startswith("variant-signature"),
}


def first_draws(seed: int) -> dict[str, int]:
    """The draw at which each shape first appears from `seed` (absent: not within DRAWS)."""
    rng, first = random.Random(seed), {}
    for i in range(DRAWS):
        case = generate.draw_case(rng)
        judged = judge(case)
        for name, shape in SHAPES.items():
            if name not in first and shape(case, *judged):
                first[name] = i
        if len(first) == len(SHAPES):
            break
    return first


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", SEEDS)
def test_every_catalog_shape_is_generated(seed: int):
    first = first_draws(seed)
    missing = sorted(set(SHAPES) - set(first))
    assert not missing, f"seed {seed}: not generated within {DRAWS} draws: {missing}"
