"""Signatures against "Valid Signatures": the parser's verdicts, the limits, and every rule
the generator claims to break."""

from __future__ import annotations

import random

import pytest

from fuzz.wire import signature as sigs
from fuzz.wire import spec


@pytest.mark.parametrize("sig", ["", "y", "a{sv}", "(i(ss)a(yv))", "aaai", "a{oa{sa{sv}}}",
                                 "vh", "g", "a" * 32 + "y", "(" * 32 + "y" + ")" * 32])
def test_valid_signatures_parse_and_print_back(sig: str):
    assert "".join(t.signature for t in sigs.parse(sig)) == sig


@pytest.mark.parametrize("sig,rule", [
    ("z", "unknown-typecode"), ("r", "unknown-typecode"), ("a", "missing-array-element-type"),
    ("(ia)", "missing-array-element-type"), (")", "struct-ended-but-not-started"),
    ("(i", "struct-started-but-not-ended"), ("()", "struct-has-no-fields"),
    ("}", "dict-entry-ended-but-not-started"), ("a{i", "dict-entry-started-but-not-ended"),
    ("a{}", "dict-entry-has-no-fields"), ("a{i}", "dict-entry-has-only-one-field"),
    ("a{iii}", "dict-entry-has-too-many-fields"), ("{is}", "dict-entry-not-inside-array"),
    ("a{vi}", "dict-key-must-be-basic-type"), ("a{(i)s}", "dict-key-must-be-basic-type"),
    # CVE-2022-42010's shapes: a bracket closed by the other kind.
    ("(a{i)}", "mismatched-bracket"), ("a{i(i})", "mismatched-bracket"), ("(i}", "mismatched-bracket"),
    ("a" * 33 + "y", "exceeded-maximum-array-recursion"),
    ("(" * 33 + "y" + ")" * 33, "exceeded-maximum-struct-recursion"),
    ("y" * 256, "signature-too-long"),
])
def test_invalid_signatures_name_the_rule(sig: str, rule: str):
    assert sigs.rule_broken(sig) == rule


def test_limit_signatures_sit_at_and_just_past_each_limit():
    for name, (sig, rule) in sigs.LIMIT_SIGNATURES.items():
        assert sigs.rule_broken(sig) == rule, name
    assert len(sigs.LIMIT_SIGNATURES["length-at-limit"][0]) == spec.MAX_SIGNATURE


@pytest.mark.parametrize("rule", sigs.SIGNATURE_RULES)
def test_invalid_signature_breaks_the_rule_it_names(rule: str):
    for seed in range(40):
        sig, named = sigs.invalid_signature(random.Random(seed), rule)
        assert named == rule and sigs.rule_broken(sig) == rule, sig


def test_random_signatures_are_valid_and_varied():
    drawn = {sigs.random_signature(random.Random(seed)) for seed in range(500)}
    assert all(sigs.is_valid(s) for s in drawn)
    codes = set("".join(drawn))
    assert set(spec.BASIC) | set("a(){}v") <= codes  # every type code appears
    assert len(drawn) > 300  # the empty signature is one of them, drawn often


def test_a_variant_signature_is_one_complete_type():
    assert sigs.parse_single("a{sv}").code == "a"
    for bad in ("", "ii", "a"):
        with pytest.raises(sigs.SignatureError):
            sigs.parse_single(bad)
