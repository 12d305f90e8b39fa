"""The judge: a run's history goes to the oracles, and their findings into OUT/findings.json
and the summary. Every command that runs a scenario runs it through `execute` (once) or
`execute_repeated` (a case whose finding is growth over repetitions on one bus)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from fuzz.bus import BusChoice
from fuzz.bus.pool import BusPool
from fuzz.engine import Progress
from fuzz.engine.outputs import write_json
from fuzz.engine.runner import RunRecord, Runner
from fuzz.engine.scenario import Scenario
from fuzz.history import Event
from fuzz.oracles import Finding, judge
from fuzz.oracles.trend import BusSample, bus_sample, repetition_growth


@dataclass
class RunResult:
    out_dir: str
    summary: dict[str, Any]
    findings: list[Finding]
    error: BaseException | None = None
    events: list[Event] = field(default_factory=list)  # the merged history, for feedback


def judge_run(record: RunRecord) -> RunResult:
    findings = judge(record.events)
    summary = {**record.summary, "findings": len(findings)}
    write_json(os.path.join(record.out_dir, "summary.json"), summary)
    write_json(os.path.join(record.out_dir, "findings.json"), [f.to_json() for f in findings])
    return RunResult(record.out_dir, summary, findings, record.error, record.events)


def execute(scenario: Scenario, bus: BusChoice, seed: int, out_dir: str,
            progress: Progress | None = None, bus_pool: BusPool | None = None) -> RunResult:
    """Run `scenario` once and judge it."""
    return judge_run(Runner(scenario, bus, seed, out_dir, progress, bus_pool).run())


def execute_repeated(scenario: Scenario, bus: BusChoice, seed: int, out_dir: str, times: int,
                     progress: Progress | None = None) -> RunResult:
    """Run `scenario` `times` times on one bus of its own (kept between the repetitions, as a
    campaign keeps its bus) and judge, besides each run, the bus's growth over the repetitions
    (fuzz/oracles/trend.py). The result is the last run's, with the growth findings added and
    the samples in its summary. A run that ends the bus ends the repetitions."""
    pool = BusPool()
    samples: list[BusSample] = []
    last: RunResult | None = None
    try:
        for i in range(times):
            last = execute(scenario, bus, seed, os.path.join(out_dir, f"repetition-{i}"),
                           progress, pool)
            sample = bus_sample(last.events)
            if last.error is not None or sample is None or (samples and not sample.reused):
                break
            samples.append(sample)
    finally:
        pool.close()
    assert last is not None
    grown = repetition_growth(samples) if len(samples) == times else []
    summary = {**last.summary, "repetitions": len(samples),
               "samples": [s.to_json() for s in samples],
               "growth_findings": len(grown)}
    write_json(os.path.join(out_dir, "repetitions.json"), summary)
    # The last run's directory holds the history the findings' evidence points into.
    return RunResult(last.out_dir, summary, last.findings + grown, last.error, last.events)
