"""All oracles, run over one history."""

from __future__ import annotations

from typing import Callable, Sequence

from fuzz.engine.history import Event
from fuzz.oracles.crash import check_crash
from fuzz.oracles.delivery import check_delivery
from fuzz.oracles.finding import Finding

ORACLES: dict[str, Callable[[Sequence[Event]], list[Finding]]] = {
    "crash": check_crash,
    "delivery": check_delivery,
}


def judge(events: Sequence[Event]) -> list[Finding]:
    findings: list[Finding] = []
    for check in ORACLES.values():
        findings.extend(check(events))
    return findings
