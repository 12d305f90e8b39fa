"""Shrinking grammar steps: a seed's cases written out, the fewest kept, each shrunk; match
rules lose keys. Pure: the predicate stands in for running the candidate."""

from __future__ import annotations

import random

from fuzz.campaign.generate import MUTATORS
from fuzz.campaign.minimize import minimize_scenario
from fuzz.wire import generate, match


def scenario(step: dict) -> dict:
    return {"name": "w", "clients": [{"role": "service"}],
            "schedule": [{"at": 0.0, "action": "wire", **step}]}


def test_one_failing_case_is_kept_and_shrunk():
    # The "bug": a signal whose body carries a variant. Everything else is noise.
    def fails(sc: dict) -> bool:
        steps = [s for s in sc["schedule"] if s["action"] == "wire"]
        cases = [generate.WireCase.from_table(t) for s in steps for t in s.get("cases") or
                 [c.to_table() for c in generate.cases(s["seed"], s["count"])]]
        return any(c.kind == "signal" and "v" in c.signature for c in cases)

    start = scenario({"seed": 3, "count": 200})
    assert fails(start)
    best, calls = minimize_scenario(start, fails, max_tests=400)
    step = best["schedule"][0]
    assert "seed" not in step and len(step["cases"]) == 1, step
    case = generate.WireCase.from_table(step["cases"][0])
    assert case.mutations == [] and case.transport == "whole" and case.endian == "l"
    assert calls < 400


def test_match_rules_lose_keys_that_do_not_matter():
    def fails(sc: dict) -> bool:
        rules = [r for s in sc["schedule"] for r in s.get("rule_list") or []]
        return any("arg1=" in r for r in rules)

    start = {"name": "m", "clients": [], "schedule": [{"at": 0.0, "action": "match",
                                                        "rule_list": ["arg1='a',member='A',type='signal'",
                                                                      "member='B'"],
                                                        "signal_list": [{"path": "/", "interface": "a.b",
                                                                         "member": "A"}]}]}
    best, _ = minimize_scenario(start, fails, max_tests=100)
    assert best["schedule"][0]["rule_list"] == ["arg1='a'"]
    assert best["schedule"][0]["signal_list"] == []


def test_the_wire_mutator_changes_cases_and_keeps_them_loadable():
    changed = 0
    for seed in range(60):
        rng = random.Random(seed)
        sc = scenario({"seed": 1, "count": 5})
        before = repr(sc)
        if MUTATORS["mutate-wire"](rng, sc, [], False):
            changed += repr(sc) != before
            for t in sc["schedule"][0].get("cases") or []:
                generate.WireCase.from_table(t)
    assert changed >= 50


def test_match_draw_is_reproducible_and_shrink_rule_drops_one_key_each():
    assert match.draw(5, 4, 4, 0.2, "$s", "$i") == match.draw(5, 4, 4, 0.2, "$s", "$i")
    assert match.shrink_rule("a='1'") == []  # not a rule: nothing to shrink
    assert sorted(match.shrink_rule("member='A',arg0='x'")) == ["arg0='x'", "member='A'"]
