"""The campaign follows each reused bus across executions (fuzz/oracles/trend.py judges).

Every execution's reply carries the bus sample taken after its clients left. Samples of one
bus lifetime (one bus pid, each later execution on the bus the previous one left) form a
series. When a series raises a suspicion for a resource, the execution after which that
resource rose most is the case handed to triage, which judges it by repeating it REPEAT times
on one bus (Triage.confirm). A suspicion the repetitions do not confirm is dropped: it was
never a finding (the campaign's summary counts suspicions and confirmations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fuzz.engine.scenario import ScenarioTable
from fuzz.faults import OPERATORS
from fuzz.oracles.trend import BusSample, Growth, suspects, trend_finding

REPEAT = 8  # repetitions of a case on one bus (the first is its warm-up)
# Suspicions judged per resource in one campaign: each costs REPEAT executions, and a healthy
# bus's allocator may raise a few (docs/campaigns.md).
MAX_SUSPICIONS = 3
MAX_SERIES = 200  # samples kept per bus lifetime (a long campaign's bus may serve thousands)


@dataclass
class Series:
    samples: list[BusSample] = field(default_factory=list)
    scenarios: list[ScenarioTable] = field(default_factory=list)
    reported: set[str] = field(default_factory=set)  # resources already handed to triage


@dataclass(frozen=True)
class TrendCase:
    finding: dict[str, Any]  # as an execution's findings are (to_json)
    scenario: ScenarioTable  # the execution that grew the resource most


class TrendWatch:
    def __init__(self) -> None:
        self.series: dict[int, Series] = {}  # bus pid -> its lifetime so far
        self.raised: dict[str, int] = {}  # resource -> suspicions raised in this campaign

    def add(self, sample_json: dict[str, Any] | None, scenario: ScenarioTable) -> list[TrendCase]:
        """One execution's sample; the trends it completes, each once per bus lifetime."""
        if not sample_json:
            return []
        sample = BusSample.from_json(sample_json)
        series = self.series.get(sample.pid)
        if series is None or not sample.reused:
            series = self.series[sample.pid] = Series()
        series.samples.append(sample)
        series.scenarios.append(scenario)
        if len(series.samples) > MAX_SERIES:
            del series.samples[1], series.scenarios[1]  # keep the first: the lifetime's start
        out = []
        for resource in suspects(series.samples):
            if resource in series.reported or self.raised.get(resource, 0) >= MAX_SUSPICIONS:
                continue
            series.reported.add(resource)
            self.raised[resource] = self.raised.get(resource, 0) + 1
            out.append(TrendCase(_suspicion(series, resource), _culprit(series, resource)))
        return out


def _suspicion(series: Series, resource: str) -> dict[str, Any]:
    """What the campaign saw, as a finding of the kind the repetitions will confirm (the same
    signature); the stored case's report has the repetitions' own numbers."""
    values = [getattr(s, resource) or 0 for s in series.samples]
    steps = len(values) - 1
    served = sum(s.served for s in series.samples[1:]) / max(1, steps)
    per_step = (values[-1] - values[0]) / max(1, steps)
    g = Growth(resource, values[-1] - values[0], per_step,
               per_step / served if served else None, len(values))
    return trend_finding(g, "executions on one reused bus").to_json()


def _culprit(series: Series, resource: str) -> ScenarioTable:
    """The execution after which the resource rose most, among those that leave a bus
    reusable (a case that taints its bus cannot be repeated on one)."""
    values = [getattr(s, resource) or 0 for s in series.samples]
    rises = [(values[i] - values[i - 1], i) for i in range(1, len(values))
             if not _taints(series.scenarios[i])]
    _, at = max(rises, default=(0, len(values) - 1))
    return series.scenarios[at]


def _taints(scenario: ScenarioTable) -> bool:
    return any(OPERATORS[step["action"]].taints_bus for step in scenario.get("schedule", [])
               if step.get("action") in OPERATORS)
