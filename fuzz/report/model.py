"""What a report says, whatever it is written as (JSON, JUnit XML, HTML)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# A finding's status in a report.
NEW = "new"  # not seen before: the run or campaign fails on it
KNOWN = "known"  # already in the crash store: counted
BY_POLICY = "by-policy"  # documented behaviour of the bus (a quota, a policy): never fatal
UNREPRODUCED = "unreproduced"  # seen once, not again in fresh runs: reported, not stored


@dataclass
class ReportFinding:
    signature: str
    oracle: str
    severity: str
    title: str
    status: str  # NEW, KNOWN, BY_POLICY or UNREPRODUCED
    count: int = 1  # times seen (run: in the history; campaign: executions that showed it)
    explanation: str = ""
    reproduce: str | None = None  # one command
    case: str | None = None  # crash store entry, when stored


@dataclass
class ReportReplay:
    case: str
    title: str
    hits: int
    times: int
    error: str | None = None
    note: str | None = None  # what the outcome means (a known behaviour: still there, fixed)

    @property
    def reproduces(self) -> bool:
        return self.hits > 0


@dataclass
class Report:
    kind: str  # "run", "campaign" or "nightly"
    name: str  # scenario name, or campaign label
    bus: dict[str, Any]
    seconds: float
    findings: list[ReportFinding] = field(default_factory=list)
    replays: list[ReportReplay] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # key numbers, shown as a table
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "error"
        return "found" if any(f.status == NEW for f in self.findings) else "clean"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict
        for r, replay in zip(out["replays"], self.replays):
            r["reproduces"] = replay.reproduces
        return out
