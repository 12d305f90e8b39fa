"""All oracles, run over one history."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from fuzz.history import Event
from fuzz.oracles.collateral import check_collateral
from fuzz.oracles.crash import check_crash
from fuzz.oracles.credentials import check_credentials
from fuzz.oracles.expectation import check_expectation
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
    "collateral": check_collateral,
    "expectation": check_expectation,
}


def judge(events: Sequence[Event]) -> list[Finding]:
    """Every oracle's findings, one per signature (with how often the run showed it)."""
    first: dict[str, Finding] = {}
    counts: dict[str, int] = {}
    for check in ORACLES.values():
        for f in check(events):
            first.setdefault(f.signature, f)
            counts[f.signature] = counts.get(f.signature, 0) + 1
    from fuzz.oracles.known import bus_of, mark_known
    return mark_known([replace(f, count=counts[sig]) for sig, f in first.items()],
                      *bus_of(events))
