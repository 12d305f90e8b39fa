"""Two observations of one scenario, compared: every key whose value differs is a difference,
documented (fuzz/diff/documented.py) or a finding of the `diff` oracle."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fuzz.diff.documented import DocRule, Side, documented
from fuzz.diff.observe import Observation
from fuzz.oracles.finding import Finding

MISSING = "missing"  # the key exists on one bus only (e.g. a client that never got to call)
_INSTANCE = re.compile(r"\b([A-Za-z][\w-]*)\.\d+\b")
_STEP = re.compile(r" after step \d+")


@dataclass(frozen=True)
class Difference:
    key: str
    a: str
    b: str
    rule: DocRule | None  # None: not documented

    @property
    def title(self) -> str:
        return f"{self.key}: {self.a} | {self.b}"


def compare(a: Observation, b: Observation) -> list[Difference]:
    # Who is who is the plan's doing, the same on both buses; merged in case one run
    # never got to start a client.
    meta = Observation(uid_of={**b.uid_of, **a.uid_of}, role_of={**b.role_of, **a.role_of},
                       attack_of={**b.attack_of, **a.attack_of},
                       targeted=a.targeted | b.targeted)
    out = []
    for key in sorted(set(a.values) | set(b.values)):
        va, vb = a.values.get(key, MISSING), b.values.get(key, MISSING)
        # The same thing at another step position is the same thing a little earlier or later.
        if _general(va) == _general(vb):
            continue
        if meta.targeted and _without_absence(va) == _without_absence(vb):
            continue
        client, _, field = key.partition(" ")
        if (field == "attack" or field.startswith(("wire case", "match rule"))) \
                and MISSING in (va, vb):
            continue  # the attack was still going when the run ended: no outcome to compare
        if client in meta.targeted or client.rsplit(".", 1)[0] in meta.targeted:
            continue
        side = Side(key, va, vb, client, field, meta, a.values, b.values)
        out.append(Difference(key, va, vb, documented(side)))
    if a.values.get("bus exit", "no") != "no" and b.values.get("bus exit", "no") != "no":
        # Both buses died (the nemesis killed them): what clients saw around that moment is
        # a matter of when, not of which bus.
        return [d for d in out if d.key == "bus exit"]
    return _causes_only(out)


# Outcomes a peer sees when the client it talks to is gone: with the nemesis killing, stopping
# or pausing clients, whether a call came before or after that is a matter of timing.
ABSENCE = frozenset({"fail:org.freedesktop.DBus.Error.NoReply",
                     "fail:org.freedesktop.DBus.Error.ServiceUnknown",
                     "fail:org.freedesktop.DBus.Error.NameHasNoOwner", "info:timeout",
                     "info:process ended"})


def _without_absence(value: str) -> str:
    if value in ("all", "some", "none"):
        return "some"  # how much got through a client that was removed midway
    # Calls that succeeded before the removal and failed after it: only the errors that have
    # nothing to do with the absence tell the buses apart.
    return ", ".join(v for v in value.split(", ") if v not in ABSENCE and v != "ok")


def _causes_only(diffs: list[Difference]) -> list[Difference]:
    """A bus that exited on one side explains every later difference, and a client
    disconnected on one side explains its own: report the cause once, as the oracles do."""
    exits = [d for d in diffs if d.key == "bus exit"]
    if exits:
        return exits
    gone = {d.key.split(" ")[0] for d in diffs if d.key.endswith(" disconnected")}
    return [d for d in diffs if d.key.endswith(" disconnected") or d.key.split(" ")[0] not in gone]


def _general(text: str) -> str:
    """Instance numbers and step positions out: what stays is the kind of difference."""
    return _STEP.sub("", _INSTANCE.sub(r"\1", text))


def diff_findings(diffs: list[Difference], label_a: str, label_b: str) -> list[Finding]:
    findings: dict[str, Finding] = {}
    for d in diffs:
        kind = f"{_general(d.key)}: {_general(d.a)} | {_general(d.b)}"
        if kind in findings:
            findings[kind] = _count(findings[kind])
            continue
        doc = f" Documented: {d.rule.title} ({d.rule.source})." if d.rule else ""
        findings[kind] = Finding(
            oracle="diff", severity="low" if d.rule else "medium", kind=kind,
            title=f"the buses differ on {_general(d.key)}: {_general(d.a)} | {_general(d.b)}",
            explanation=f"{d.key}: {label_a} gave '{d.a}', {label_b} gave '{d.b}'.{doc}",
            by_policy=d.rule is not None)
    return list(findings.values())


def _count(f: Finding) -> Finding:
    from dataclasses import replace
    return replace(f, count=f.count + 1)
