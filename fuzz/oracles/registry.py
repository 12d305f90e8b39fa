"""All oracles, run over one history."""

from __future__ import annotations

from typing import Callable, Sequence

from fuzz.engine.history import Event
from fuzz.oracles.crash import check_crash
from fuzz.oracles.credentials import check_credentials
from fuzz.oracles.finding import Finding
from fuzz.oracles.hang import check_hang
from fuzz.oracles.latency import check_latency
from fuzz.oracles.leak import check_leak
from fuzz.oracles.loss import check_loss
from fuzz.oracles.ordering import check_ordering

ORACLES: dict[str, Callable[[Sequence[Event]], list[Finding]]] = {
    "crash": check_crash,
    "hang": check_hang,
    "leak": check_leak,
    "ordering": check_ordering,
    "loss": check_loss,
    "credentials": check_credentials,
    "latency": check_latency,
}


def judge(events: Sequence[Event]) -> list[Finding]:
    findings: list[Finding] = []
    for check in ORACLES.values():
        findings.extend(check(events))
    return findings
