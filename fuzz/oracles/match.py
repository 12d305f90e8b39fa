"""The match oracle: each listener of a `match` attack got exactly the broadcasts its rule
selects under the rig's reference semantics (fuzz/wire/match.py, written from the D-Bus
Specification's "Match Rules"), and the bus took exactly the rules the grammar allows.

Delivery follows "Message Bus Message Routing": a unicast signal reaches its destination
whatever its rules (withheld: `unicast-withheld`); it reaches another listener only through a
matching eavesdrop='true' rule, and a bus may refuse eavesdropping (got without one:
`unicast-leaked`, a confidentiality finding the nemesis never excuses).

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
    signals: dict[str, Event] = {}  # attacker process -> its match-signals step
    findings = []
    for e in events:
        if e.op != "attack-step":
            continue
        if e.get("step") == "match-signals":
            signals[e.process or ""] = e
        elif e.get("step") == "match-case" and (e.process or "") in signals:
            judged = _judge(e, signals[e.process or ""], facts.bus_kind)
            if judged and not any(f.kind.startswith(("match-extra", "unicast-leaked"))
                                  for f in judged) and (
                    facts.interfered_during(e.time - CASE_SPAN_NS, e.time)
                    or not facts.bus_serving_during(e.time, e.time)):
                continue  # the nemesis's doing, or a symptom of a crash or hang (its oracle's)
            findings += judged
    return findings


def _eavesdrop_refusal(rule: match.Rule, error: str, bus: str) -> str | None:
    """Why refusing this eavesdrop rule is documented behaviour (None: it is not): the
    specification lets any bus keep eavesdrop='true' rules to privileged connections ("Match
    Rules", eavesdrop: dbus-daemon's policy answers AccessDenied); dbus-broker refuses the key
    in AddMatch, 'false' included (src/bus/match.c match_keys_assign(): "we never support
    eavesdropping, nor do we allow such filters to be parsed")."""
    if rule.get("eavesdrop") == "true" and error.endswith("AccessDenied"):
        return ("The specification lets a bus restrict eavesdrop='true' rules to privileged"
                " connections (D-Bus Specification, Match Rules, eavesdrop)")
    if bus == "dbus-broker" and rule.get("eavesdrop") is not None and \
            error.endswith("MatchRuleInvalid"):
        return ("dbus-broker refuses the eavesdrop key in AddMatch: it does not implement"
                " eavesdropping (dbus-broker src/bus/match.c match_keys_assign())")
    return None


def _judge(e: Event, sent: Event, bus: str) -> list[Finding]:
    text, error = e.get("rule"), e.get("error")
    listener = str(e.get("listener") or "")
    sigs = [match.signal_from_table(t, str(sent.get("sender")), tuple(sent.get("names") or ()))
            for t in sent.get("signals") or []]
    got = set(e.get("received") or [])
    try:
        rule: match.Rule | None = match.parse_rule(text)
    except match.RuleError as why:
        if error is None and why.spec:
            return [_finding(e, "medium", "rule-accepted", "the bus took a match rule the"
                             " grammar does not allow", f"rule {text!r}: {why}; the bus"
                             " answered AddMatch without an error.")]
        if error is None:
            return []  # taken where the specification is silent: no reference to hold it to
        rule = None  # refused: its unicast signals still arrive
    if rule is not None and error is not None:
        excuse = _eavesdrop_refusal(rule, str(error), bus)
        if excuse:
            return [_finding(e, "low", "rule-refused:eavesdrop", f"{bus} refused an eavesdrop"
                             " rule (documented)", f"rule {text!r} has the eavesdrop key and"
                             f" AddMatch answered {error}. {excuse}.", by_policy=True)]
        return [_finding(e, "medium", f"rule-refused:{rule.key_classes()}",
                         f"the bus refused a valid match rule ({error})",
                         f"rule {text!r} follows the specification's grammar; AddMatch"
                         f" answered {error}.")]
    if error is not None:
        rule = None
    must, allowed = _expected(rule, sigs, listener)
    if must <= got <= allowed:
        return []
    explained = () if rule is None else _quirks_explaining(rule, sigs, listener, got)
    if explained:
        expected = sorted(must)
        return [_finding(e, "high", f"match-as-if:{q}",
                         f"the bus selects broadcasts as if {match.QUIRKS[q]}",
                         f"rule {text!r}: the listener got signal(s) {sorted(got)}; the"
                         f" specification selects {expected}. What it got is exactly"
                         f" what the rule selects when {match.QUIRKS[q]}"
                         + (f" (together with: {', '.join(x for x in explained if x != q)})"
                            if len(explained) > 1 else "") + ".")
                for q in explained]
    classes = rule.key_classes() if rule is not None else "refused-rule"
    leaked = sorted(i for i in got - allowed if sigs[i].destination not in (None, listener))
    if leaked:
        return [_finding(e, "high", f"unicast-leaked:{classes}",
                         "a listener got a unicast signal addressed to another connection",
                         f"rule {text!r} (no eavesdrop='true', or not matching): signal(s)"
                         f" {leaked} were addressed to {sigs[leaked[0]].destination}, not to"
                         f" this listener ({listener}), yet it got them"
                         f" ({_describe(sent, leaked)}).")]
    withheld, extra = sorted(must - got), sorted(got - allowed)
    if withheld:
        to_me = [i for i in withheld if sigs[i].destination == listener]
        kind = "unicast-withheld" if to_me else f"match-withheld:{classes}"
        return [_finding(e, "high", kind,
                         "a unicast signal never reached its destination" if to_me else
                         "a broadcast the match rule selects never reached its listener",
                         f"rule {text!r}: signal(s) {withheld} "
                         + ("were addressed to this listener, and a unicast message reaches"
                            " its destination whatever its match rules"
                            if to_me else "match it under the specification's semantics")
                         + f" ({_describe(sent, withheld)}), yet the listener did not get"
                         " them.")]
    return [_finding(e, "high", f"match-extra:{classes}",
                     "a listener got a broadcast its match rule does not select",
                     f"rule {text!r}: signal(s) {extra} do not match it"
                     f" ({_describe(sent, extra)}), yet the listener got them.")]


def _expected(rule: match.Rule | None, sigs: list, listener: str,
              quirks: frozenset[str] = frozenset()) -> tuple[set[int], set[int]]:
    """(signals the listener must get, signals it may get) under the reference."""
    ways = [match.delivery(rule, s, listener, quirks) for s in sigs]
    return ({i for i, w in enumerate(ways) if w == match.MUST},
            {i for i, w in enumerate(ways) if w != match.NEVER})


def _quirks_explaining(rule: match.Rule, sigs: list, listener: str,
                       got: set[int]) -> tuple[str, ...]:
    """The fewest known quirks (fuzz/wire/match.py QUIRKS) under which what the listener got
    is what the rule selects, each of them needed; () when none do."""
    names = sorted(match.QUIRKS)
    for size in range(1, len(names) + 1):
        for chosen in itertools.combinations(names, size):
            must, allowed = _expected(rule, sigs, listener, frozenset(chosen))
            if must <= got <= allowed:
                return chosen
    return ()


def _describe(sent: Event, which: list[int]) -> str:
    t = (sent.get("signals") or [])[which[0]]
    return (f"first: path {t['path']}, member {t['member']}, signature"
            f" {t.get('signature', '')!r}, args {t.get('args')}")


def _finding(e: Event, severity: str, kind: str, title: str, explanation: str,
             by_policy: bool = False) -> Finding:
    return Finding(oracle="match", severity=severity, kind=kind, title=title,
                   explanation=explanation, evidence=(e.index,), by_policy=by_policy)
