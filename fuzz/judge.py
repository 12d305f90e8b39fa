"""The judge: a run's history goes to the oracles, and their findings into OUT/findings.json
and the summary. Every command that runs a scenario runs it through `execute`."""

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
