"""The match oracle: each listener of a `match` attack got exactly the broadcasts its rule
selects under the rig's reference semantics (fuzz/wire/match.py, written from the D-Bus
Specification's "Match Rules"), and the bus took exactly the rules the grammar allows.

A listener that got exactly what the rule selects under one or more of a released bus's
quirks (fuzz/wire/match.py QUIRKS: simulated from that bus's source) is one finding per quirk,
named by it, so two known bugs met in one rule are two known behaviours, not a new finding.
Other findings name the kinds of key in the rule (argN, argNpath, path_namespace, ...), not
its values, so one semantic bug is one signature however many rules showed it.
"""

from __future__ import annotations

import itertools
from typing import Sequence

from fuzz.history import Event
from fuzz.oracles.facts import read_facts
from fuzz.oracles.finding import Finding
from fuzz.wire import match


# How long before its event a rule's case may have started (AddMatch, signals, fences).
CASE_SPAN_NS = 5_000_000_000


def check_match(events: Sequence[Event]) -> list[Finding]:
    facts = read_facts(events)
    signals: dict[str, tuple[str, list]] = {}  # attacker process -> (emitter, signal tables)
    findings = []
    for e in events:
        if e.op != "attack-step":
            continue
        if e.get("step") == "match-signals":
            signals[e.process or ""] = (e.get("sender"), e.get("signals") or [])
        elif e.get("step") == "match-case" and (e.process or "") in signals:
            judged = _judge(e, *signals[e.process or ""])
            if judged and not any(f.kind.startswith("match-extra") for f in judged) and (
                    facts.interfered_during(e.time - CASE_SPAN_NS, e.time)
                    or not facts.bus_up_during(e.time, e.time)):
                continue  # a refusal or a withheld signal while the nemesis worked on the bus
            findings += judged
    return findings


def _judge(e: Event, sender: str, tables: list) -> list[Finding]:
    text, error = e.get("rule"), e.get("error")
    try:
        rule = match.parse_rule(text)
    except match.RuleError as why:
        if error is None and why.spec:
            return [_finding(e, "medium", "rule-accepted", "the bus took a match rule the"
                             " grammar does not allow", f"rule {text!r}: {why}; the bus"
                             " answered AddMatch without an error.")]
        return []
    if error is not None:
        return [_finding(e, "medium", f"rule-refused:{rule.key_classes()}",
                         f"the bus refused a valid match rule ({error})",
                         f"rule {text!r} follows the specification's grammar; AddMatch"
                         f" answered {error}.")]
    sigs = [match.signal_from_table(t, sender) for t in tables]
    expected = {i for i, s in enumerate(sigs) if match.matches(rule, s)}
    got = set(e.get("received") or [])
    if got == expected:
        return []
    explained = _quirks_explaining(rule, sigs, got)
    if explained:
        return [_finding(e, "high", f"match-as-if:{q}",
                         f"the bus selects broadcasts as if {match.QUIRKS[q]}",
                         f"rule {text!r}: the listener got signal(s) {sorted(got)}; the"
                         f" specification selects {sorted(expected)}. What it got is exactly"
                         f" what the rule selects when {match.QUIRKS[q]}"
                         + (f" (together with: {', '.join(x for x in explained if x != q)})"
                            if len(explained) > 1 else "") + ".")
                for q in explained]
    extra, withheld = sorted(got - expected), sorted(expected - got)
    if withheld:
        return [_finding(e, "high", f"match-withheld:{rule.key_classes()}",
                         "a broadcast the match rule selects never reached its listener",
                         f"rule {text!r}: signal(s) {withheld} match it under the"
                         f" specification's semantics ({_describe(tables, withheld)}), yet the"
                         " listener did not get them.")]
    return [_finding(e, "high", f"match-extra:{rule.key_classes()}",
                     "a listener got a broadcast its match rule does not select",
                     f"rule {text!r}: signal(s) {extra} do not match it"
                     f" ({_describe(tables, extra)}), yet the listener got them.")]


def _quirks_explaining(rule: match.Rule, sigs: list, got: set[int]) -> tuple[str, ...]:
    """The fewest known quirks (fuzz/wire/match.py QUIRKS) under which the rule selects
    exactly what the listener got, each of them needed; () when none do."""
    names = sorted(match.QUIRKS)
    for size in range(1, len(names) + 1):
        for chosen in itertools.combinations(names, size):
            quirks = frozenset(chosen)
            if {i for i, s in enumerate(sigs) if match.matches(rule, s, quirks)} == got:
                return chosen
    return ()


def _describe(tables: list, which: list[int]) -> str:
    t = tables[which[0]]
    return (f"first: path {t['path']}, member {t['member']}, signature"
            f" {t.get('signature', '')!r}, args {t.get('args')}")


def _finding(e: Event, severity: str, kind: str, title: str, explanation: str) -> Finding:
    return Finding(oracle="match", severity=severity, kind=kind, title=title,
                   explanation=explanation, evidence=(e.index,))
