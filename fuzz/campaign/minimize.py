"""Shrinking a failing scenario: delta debugging over its parts, then its numbers.

Pure functions over scenario dicts and a predicate `still_fails(candidate) -> bool` that the
caller implements by running the candidate (several times, against flakiness) and checking
that the same signature appears. A reduction is kept only when the predicate holds for it.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence, TypeVar

from fuzz.engine.scenario import ScenarioTable

T = TypeVar("T")


class OutOfTests(Exception):
    """The minimizer's budget of predicate calls is spent; keep what was reached."""


def ddmin(items: Sequence[T], test: Callable[[list[T]], bool]) -> list[T]:
    """Zeller's ddmin: a 1-minimal sublist (order kept) for which `test` holds, given that it
    holds for `items`. 1-minimal: removing any single remaining item makes `test` fail."""
    current = list(items)
    n = 2
    while len(current) >= 2:
        chunk = len(current) / n
        parts = [current[round(i * chunk):round((i + 1) * chunk)] for i in range(n)]
        reduced = False
        for part in parts:  # try each part alone
            if part and len(part) < len(current) and test(part):
                current, n, reduced = part, 2, True
                break
        if not reduced:
            for i in range(n):  # try each complement
                complement = [x for j, p in enumerate(parts) if j != i for x in p]
                if complement and len(complement) < len(current) and test(complement):
                    current, n, reduced = complement, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(current):
                break
            n = min(len(current), 2 * n)
    if len(current) == 1 and test([]):
        return []
    return current


# Numbers the minimizer tries to make smaller (never below the floor), in scenario order.
SHRINKABLE = {"count": 1, "ops": 1, "duration": 0.1, "size": 0, "rate": 0, "payload": 0,
              "fds": 0, "flips": 1, "depth": 1, "max_faults": 1, "delay": 0.0}


def minimize_scenario(sc: ScenarioTable, still_fails: Callable[[ScenarioTable], bool],
                      max_tests: int = 60) -> tuple[ScenarioTable, int]:
    """The smallest scenario found that still fails, and the number of predicate calls made.
    Order: schedule steps, client groups, then numbers (halved toward their floor)."""
    calls = 0
    cache: dict[str, bool] = {}
    accepted = [copy.deepcopy(sc)]  # every reduction step accepts the candidate that failed

    def test(candidate: ScenarioTable) -> bool:
        nonlocal calls
        key = repr(candidate)
        if key not in cache:
            if calls >= max_tests:
                raise OutOfTests
            calls += 1
            cache[key] = still_fails(candidate)
        if cache[key]:
            accepted.append(candidate)
        return cache[key]

    best = copy.deepcopy(sc)
    try:
        best["schedule"] = ddmin(best.get("schedule", []),
                                 lambda steps: test(_with(best, schedule=steps)))
        best = _shrink_messages(best, test)
        best["clients"] = ddmin(best["clients"],
                                lambda groups: bool(groups) and test(_with_clients(best, groups)))
        best = _with_clients(best, best["clients"])
        best = _shrink_numbers(best, test)
    except OutOfTests:
        best = accepted[-1]  # the budget ran out mid-stage: keep the last reduction reached
    return best, calls


def _with(sc: ScenarioTable, **changes: Any) -> ScenarioTable:
    out = copy.deepcopy(sc)
    out.update(copy.deepcopy(changes))
    return out


def _with_clients(sc: ScenarioTable, groups: list[dict[str, Any]]) -> ScenarioTable:
    """Drop steps that target a removed group (they could not run anyway)."""
    names = {g.get("name", g["role"]) for g in groups}
    steps = [s for s in sc.get("schedule", [])
             if "target" not in s or str(s["target"]).partition(".")[0] in names]
    return _with(sc, clients=groups, schedule=steps)


def _shrink_messages(sc: ScenarioTable, test: Callable[[ScenarioTable], bool]) -> ScenarioTable:
    """Grammar steps: the cases a seed stands for written out, the fewest kept (ddmin), then
    each one shrunk (fuzz/wire/generate.py shrink: fewer mutations, a plain transport, fewer
    fds, shorter strings and arrays, flatter variants); match rules lose keys one at a time."""
    from fuzz.wire import generate, match
    best = sc
    for i, step in enumerate(sc.get("schedule", [])):
        if step.get("action") in generate.WIRE_ACTIONS:
            cases = generate.step_cases(step)
            best = _explicit(best, i, cases=cases, seed=None, count=None)
            kept = ddmin(cases, lambda cs: bool(cs) and test(_explicit(best, i, cases=cs)))
            best = _explicit(best, i, cases=kept)
            for j in range(len(kept)):
                best = _greedy(best, test, lambda b, j=j: [
                    _explicit(b, i, cases=_replaced(b["schedule"][i]["cases"], j, c.to_table()))
                    for c in generate.shrink(generate.WireCase.from_table(
                        b["schedule"][i]["cases"][j]))])
        elif step.get("action") == "match":
            rules, signals = match.step_draw(step)
            best = _explicit(best, i, rule_list=rules, signal_list=signals, seed=None,
                             rules=None, signals=None, invalid=None)
            rules = ddmin(rules, lambda rs: bool(rs) and test(_explicit(best, i, rule_list=rs)))
            best = _explicit(best, i, rule_list=rules)
            signals = ddmin(signals, lambda ss: test(_explicit(best, i, signal_list=ss)))
            best = _explicit(best, i, signal_list=signals)
            for j in range(len(rules)):
                best = _greedy(best, test, lambda b, j=j: [
                    _explicit(b, i, rule_list=_replaced(b["schedule"][i]["rule_list"], j, r))
                    for r in match.shrink_rule(b["schedule"][i]["rule_list"][j])])
    return best


def _explicit(sc: ScenarioTable, i: int, **params: Any) -> ScenarioTable:
    """`sc` with step `i`'s parameters changed (None removes one)."""
    out = copy.deepcopy(sc)
    step = out["schedule"][i]
    for key, value in params.items():
        if value is None:
            step.pop(key, None)
        else:
            step[key] = copy.deepcopy(value)
    return out


def _replaced(items: list, j: int, item: Any) -> list:
    return items[:j] + [item] + items[j + 1:]


def _greedy(sc: ScenarioTable, test: Callable[[ScenarioTable], bool],
            candidates: Callable[[ScenarioTable], list[ScenarioTable]]) -> ScenarioTable:
    """Take the first smaller candidate that still fails, again from there, until none does."""
    best, improved = sc, True
    while improved:
        improved = False
        for candidate in candidates(best):
            if test(candidate):
                best, improved = candidate, True
                break
    return best


def _shrink_numbers(sc: ScenarioTable, test: Callable[[ScenarioTable], bool]) -> ScenarioTable:
    best = sc
    for table in ("clients", "schedule"):
        for i in range(len(best.get(table, []))):
            for key, floor in SHRINKABLE.items():
                value = best[table][i].get(key)
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    continue
                while value > floor:
                    smaller = max(floor, value // 2 if isinstance(value, int) else round(value / 2, 3))
                    if smaller >= value:  # rounding can stall a small float
                        smaller = floor
                    if smaller == value:
                        break
                    candidate = copy.deepcopy(best)
                    candidate[table][i][key] = smaller
                    if not test(candidate):
                        break
                    best, value = candidate, smaller
    return best
