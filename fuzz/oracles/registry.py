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
from fuzz.oracles.match import check_match
from fuzz.oracles.ordering import check_ordering
from fuzz.oracles.wire import check_wire

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
    "wire": check_wire,
    "match": check_match,
}


# Events that are causes: one departed connection, one bus death or restart, one attack.
CAUSE_OPS = frozenset({"disconnect", "bus-exit", "bus-restart", "attack"})
# Which oracle's finding names a shared cause (the rest become its symptoms): a bus death
# explains what its clients saw; an attack explains the harm it did.
CAUSE_RANK = ("crash", "hang", "collateral", "leak", "credentials", "loss", "ordering",
              "latency", "wire", "match", "expectation")


def judge(events: Sequence[Event]) -> list[Finding]:
    """Every oracle's findings, one per signature (with how often the run showed it), those of
    one cause grouped into one."""
    first: dict[str, Finding] = {}
    counts: dict[str, int] = {}
    for check in ORACLES.values():
        for f in check(events):
            first.setdefault(f.signature, f)
            counts[f.signature] = counts.get(f.signature, 0) + 1
    from fuzz.oracles.known import bus_of, mark_known
    marked = mark_known([replace(f, count=counts[sig]) for sig, f in first.items()],
                        *bus_of(events))
    return group_by_cause(marked, events)


def group_by_cause(findings: Sequence[Finding], events: Sequence[Event]) -> list[Finding]:
    """Findings that cite the same cause event are one finding: the one whose oracle ranks
    first in CAUSE_RANK keeps its signature and lists the others as symptoms. Only new
    findings are grouped: an excuse (by_policy) or a known behaviour never absorbs a bug, and a
    bug never hides behind one."""
    causes = {e.index for e in events if e.op in CAUSE_OPS}

    def rank(f: Finding) -> int:
        return CAUSE_RANK.index(f.oracle) if f.oracle in CAUSE_RANK else len(CAUSE_RANK)

    hosts: list[tuple[Finding, set[int]]] = []  # a cause's finding, the cause events it holds
    symptoms: dict[int, list[Finding]] = {}  # id(host) -> the findings it absorbed
    absorbed: set[int] = set()
    for f in sorted((f for f in findings if f.counts), key=rank):
        cited = causes & set(f.evidence)
        host = next((h for h, c in hosts if cited & c), None)
        if host is None:
            hosts.append((f, cited))
            continue
        symptoms.setdefault(id(host), []).append(f)
        absorbed.add(id(f))
        next(c for h, c in hosts if h is host).update(cited)
    out = []
    for f in findings:
        if id(f) in absorbed:
            continue
        extra = symptoms.get(id(f), [])
        if extra:
            words = [f"{x.oracle}: {x.title}" for x in extra]
            f = replace(f, symptoms=tuple(words),
                        explanation=f"{f.explanation} From the same cause: {'; '.join(words)}.",
                        evidence=tuple(dict.fromkeys(
                            f.evidence + tuple(i for x in extra for i in x.evidence))))
        out.append(f)
    return out
