"""Expectations: each attack in a scenario may state what a correct bus does to it
(`expect = "disconnected"`, or a table by bus kind), and this oracle holds the bus to it.

The attacker records the outcome it observed (`ok attack` with `outcome`); an expectation for
a bus kind not in the table is not judged.
"""

from __future__ import annotations

from typing import Any, Sequence

from fuzz.history import Event
from fuzz.oracles.facts import read_facts
from fuzz.oracles.finding import Finding


def expected_for(expect: Any, bus_kind: str) -> str | None:
    if isinstance(expect, str):
        return expect
    if isinstance(expect, dict):
        return expect.get(bus_kind, expect.get("default"))
    return None


def check_expectation(events: Sequence[Event]) -> list[Finding]:
    facts = read_facts(events)
    invoked: dict[str, Event] = {}
    findings = []
    for e in events:
        if e.op != "attack":
            continue
        if e.type == "invoke":
            invoked[e.process] = e
            continue
        start = invoked.get(e.process)
        if start is None:
            continue
        kind = start.get("kind")
        want = expected_for((start.get("params") or {}).get("expect"), facts.bus_kind)
        got = e.get("outcome")
        if want is None or got == want:
            continue
        findings.append(Finding(
            oracle="expectation", severity="high", kind=f"{kind}:{want}->{got}",
            title=f"{kind}: expected '{want}' from {facts.bus_kind}, observed '{got}'",
            explanation=f"The scenario says a correct {facts.bus_kind} answers the {kind} attack"
                        f" with '{want}'; the attacker saw '{got}'. Its full record:"
                        f" {({k: v for k, v in e.data.items() if k != 'kind'})}",
            evidence=(start.index, e.index)))
    return findings
