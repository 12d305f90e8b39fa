"""The rig's match-rule reference against the examples of the D-Bus Specification's "Match
Rules" section, its grammar, and its quoting."""

from __future__ import annotations

import random

import pytest

from fuzz.wire import match

S = ":1.9"


def sig(path="/a", interface="org.x.Y", member="M", args=(), **kw) -> match.Signal:
    return match.Signal(S, path, interface, member, tuple(args), **kw)


def takes(rule: str, msg: match.Signal) -> bool:
    return match.matches(match.parse_rule(rule), msg)


def test_path_namespace_example():
    rule = "path_namespace='/com/example/foo'"
    assert takes(rule, sig(path="/com/example/foo"))
    assert takes(rule, sig(path="/com/example/foo/bar"))
    assert not takes(rule, sig(path="/com/example/foobar"))
    assert takes("path_namespace='/'", sig(path="/any/thing"))  # every path is under /


@pytest.mark.parametrize("arg,expected", [
    ("/", True), ("/aa/", True), ("/aa/bb/", True), ("/aa/bb/cc/", True), ("/aa/bb/cc", True),
    ("/aa/b", False), ("/aa", False), ("/aa/bb", False)])
def test_arg_path_example(arg: str, expected: bool):
    # The specification's example: arg0path='/aa/bb/'.
    assert takes("arg0path='/aa/bb/'", sig(args=[("s", arg)])) is expected
    assert takes("arg0path='/aa/bb/'", sig(args=[("o", arg)])) is expected


@pytest.mark.parametrize("arg,expected", [
    ("com.example.backend1", True), ("com.example.backend1.foo", True),
    ("com.example.backend1.foo.bar", True), ("com.example.backend1ies", False),
    ("com.example.backend2", False), ("com.example", False)])
def test_arg0namespace_example(arg: str, expected: bool):
    assert takes("arg0namespace='com.example.backend1'", sig(args=[("s", arg)])) is expected


def test_arg_matches_strings_only_and_the_right_argument():
    assert takes("arg1='x'", sig(args=[("u", 1), ("s", "x")]))
    assert not takes("arg1='x'", sig(args=[("s", "x"), ("o", "/x")]))
    assert not takes("arg0='/x'", sig(args=[("o", "/x")]))  # STRING only
    assert not takes("arg3='x'", sig(args=[("s", "x")]))  # no such argument


def test_exact_keys_and_destination():
    m = sig(member="Changed")
    assert takes("type='signal',member='Changed',interface='org.x.Y',sender=':1.9'", m)
    assert not takes("type='method_call'", m)
    assert not takes("destination=':1.2'", m)  # a broadcast has no destination
    assert takes("", m)  # the empty rule matches everything


def test_quoting():
    assert match.parse_rule("arg0='a'\\''b'").get("arg0") == "a'b"
    assert match.parse_rule("arg0='a,b'").get("arg0") == "a,b"
    assert match.parse_rule("arg0=a").get("arg0") == "a"  # unquoted values: taken as they are
    assert match.parse_rule("arg0='a\\b'").get("arg0") == "a\\b"  # no escapes inside quotes
    for value in ("x'y", "a,b", "'", "", "\\"):
        assert match.parse_rule(match.render([("arg0", value)])).get("arg0") == value


@pytest.mark.parametrize("rule,spec", [
    ("bogus='1'", True), ("type='bogus'", True), ("arg64='x'", True),
    ("arg1namespace='a'", True), ("type='signal',type='signal'", False),
    ("path='/a',path_namespace='/a'", True), ("member='" + "x" * 1030 + "'", True),
    ("arg0='x", True), ("path='/a/'", True), ("eavesdrop='maybe'", True),
    ("arg0='a',arg0path='/a'", False), ("arg0path='/a',arg0namespace='a'", False),
    ("type='signal',=", False), ("eavesdrop='true',eavesdrop='false'", False)])
def test_grammar_refusals(rule: str, spec: bool):
    with pytest.raises(match.RuleError) as e:
        match.parse_rule(rule)
    assert e.value.spec is spec


def test_key_classes_name_what_matching_does_not_values():
    assert match.parse_rule("arg1='x',member='A'").key_classes() == "argN"
    assert match.parse_rule("arg0path='/a',path_namespace='/'").key_classes() == \
        "arg0path+path_namespace"
    assert match.parse_rule("type='signal',sender=':1.1'").key_classes() == "exact"


def test_drawn_rules_are_valid_or_break_the_grammar_as_asked():
    for seed in range(300):
        rng = random.Random(seed)
        good = match.random_rule(rng, ":1.4", "org.busrig.Match.x1")
        try:
            match.parse_rule(good)
        except match.RuleError as e:
            assert not e.spec, (good, e)  # only the buses' shared arg-slot convention
        bad = match.random_rule(rng, ":1.4", "org.busrig.Match.x1", valid=False)
        with pytest.raises(match.RuleError):
            match.parse_rule(bad)


def test_the_quirks_simulate_dbus_broker_before_and_at_its_fixes():
    """fuzz/wire/match.py QUIRKS, from dbus-broker's src/bus/match.c before f805f41 and at
    #309: what the match oracle holds a listener against to name a known behaviour."""
    q = frozenset({"arg-index-0"})
    us = match.Signal(":1.1", "/a", "org.x.Y", "A", (("u", 1), ("s", "x")))
    so = match.Signal(":1.1", "/a", "org.x.Y", "A", (("s", "a"), ("o", "/x")))
    assert match.matches(match.parse_rule("arg1='x'"), us)
    assert not match.matches(match.parse_rule("arg1='x'"), us, q)  # argument 0 is no STRING
    assert not match.matches(match.parse_rule("arg1='/x'"), so)
    assert match.matches(match.parse_rule("arg1='/x'"), so, q)  # an OBJECT_PATH passes
    # argNpath's second half takes argument 0: arg0 '/a/' is a prefix of the rule's '/a/b'.
    oo = match.Signal(":1.1", "/a", "org.x.Y", "A", (("o", "/a/"), ("o", "/z")))
    assert not match.matches(match.parse_rule("arg1path='/a/b'"), oo)
    assert match.matches(match.parse_rule("arg1path='/a/b'"), oo, q)
    broadcast = match.Signal(":1.1", "/a", "org.x.Y", "A", ())
    rule = match.parse_rule("destination=':1.9'")
    assert not match.matches(rule, broadcast)  # a broadcast has no destination
    assert match.matches(rule, broadcast, frozenset({"destination-ignored"}))
    root = frozenset({"root-namespace-is-root"})
    rule = match.parse_rule("path_namespace='/'")
    assert all(match.matches(rule, match.Signal(":1.1", p, "org.x.Y", "A", ()))
               for p in ("/", "/a", "/a/b"))
    assert [p for p in ("/", "/a", "/a/b")
            if match.matches(rule, match.Signal(":1.1", p, "org.x.Y", "A", ()), root)] == ["/"]
