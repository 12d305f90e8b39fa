"""One scenario, one seed, two buses: run both, observe both, compare."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

from fuzz.bus.factory import BUS_KINDS, BusChoice
from fuzz.diff.compare import Difference, compare, diff_findings
from fuzz.diff.observe import observe
from fuzz.engine.scenario import Scenario
from fuzz.oracles.finding import Finding


def choice_of(text: str) -> BusChoice:
    """`dbus-daemon`, `dbus-broker`, or any other text as a --bus-cmd command."""
    return BusChoice(kind=text) if text in BUS_KINDS else BusChoice(command=text)


@dataclass
class DiffRun:
    results: tuple  # the two RunResults
    differences: list[Difference]
    findings: list[Finding]


def run_diff(scenario: Scenario, a: BusChoice, b: BusChoice, seed: int, out: str,
             pools: tuple = (None, None)) -> DiffRun:
    from fuzz.judge import execute

    results = tuple(execute(scenario, choice, seed, os.path.join(out, name), bus_pool=pool)
                    for choice, name, pool in ((a, "a", pools[0]), (b, "b", pools[1])))
    for r in results:
        if r.error is not None:
            raise r.error
    diffs, findings = judge_pair(results, a, b)
    return DiffRun(results, diffs, findings)


def judge_pair(results: Sequence[Any], a: BusChoice,
               b: BusChoice) -> tuple[list[Difference], list[Finding]]:
    """The differences between two finished runs of one scenario, and their findings."""
    diffs = compare(observe(results[0].events), observe(results[1].events))
    return diffs, diff_findings(diffs, a.label, b.label)
