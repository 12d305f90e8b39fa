"""The minimizer on synthetic failure predicates: 1-minimal results, numbers shrunk."""

from __future__ import annotations

import itertools
import random

import pytest

from fuzz.campaign.minimize import ddmin, minimize_scenario


@pytest.mark.parametrize("needed", [set(), {3}, {3, 7}, {0, 19}, {1, 5, 9, 13}])
def test_ddmin_finds_exactly_the_needed_items(needed):
    items = list(range(20))
    result = ddmin(items, lambda xs: needed <= set(xs))
    assert set(result) == needed


def test_ddmin_result_is_one_minimal_for_random_predicates():
    rng = random.Random(5)
    for _ in range(50):
        items = list(range(rng.randint(1, 16)))
        # Fails when any of a few random "bad pairs" is fully present: many minimal answers.
        pairs = [set(rng.sample(items, min(2, len(items)))) for _ in range(3)]
        test = lambda xs: any(p <= set(xs) for p in pairs)  # noqa: E731
        result = ddmin(items, test)
        assert test(result)
        for i in range(len(result)):
            assert not test(result[:i] + result[i + 1:]), (items, pairs, result)


def test_ddmin_keeps_order():
    assert ddmin(list("abcdef"), lambda xs: "b" in xs and "e" in xs) == ["b", "e"]


def scenario(steps: int) -> dict:
    actions = itertools.cycle(["pause-bus", "malformed", "flood-signals", "kill"])
    return {
        "name": "big", "clients": [
            {"role": "service"}, {"role": "caller", "count": 3, "ops": 400},
            {"role": "emitter", "ops": 500}, {"role": "listener", "count": 2}],
        "schedule": [{"at": i / 100, "action": next(actions), "duration": 0.8, "count": 512}
                     for i in range(steps)],
    }


def test_scenario_of_hundreds_of_steps_shrinks_to_its_essential_ones():
    sc = scenario(200)
    sc["schedule"][137]["action"] = "fd-abuse"

    def fails(c):  # needs the fd-abuse step, a caller with >= 10 ops, and a listener
        groups = {g["role"]: g for g in c["clients"]}
        return any(s["action"] == "fd-abuse" for s in c["schedule"]) \
            and groups.get("caller", {}).get("ops", 0) >= 10 and "listener" in groups

    best, tests = minimize_scenario(sc, fails, max_tests=400)
    assert [s["action"] for s in best["schedule"]] == ["fd-abuse"]
    assert sorted(g["role"] for g in best["clients"]) == ["caller", "listener"]
    caller = next(g for g in best["clients"] if g["role"] == "caller")
    assert 10 <= caller["ops"] < 20 and caller["count"] == 1
    assert best["schedule"][0]["duration"] <= 0.2 and best["schedule"][0]["count"] == 1
    assert tests < 400


def test_budget_of_tests_is_respected_and_keeps_progress():
    calls = []
    best, tests = minimize_scenario(scenario(50), lambda c: calls.append(1) or True, max_tests=5)
    assert tests == 5 and len(calls) == 5
    assert len(best["schedule"]) < 50


def test_small_floats_do_not_stall_the_shrinking():
    # Found by a campaign: round(0.001 / 2, 3) == 0.001, and the minimizer looped forever.
    sc = {"name": "x", "clients": [{"role": "service", "delay": 0.001}], "schedule": []}
    best, _ = minimize_scenario(sc, lambda c: True, max_tests=20)
    assert best["clients"][0]["delay"] == 0.0
