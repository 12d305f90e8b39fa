"""What an oracle reports."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Finding:
    oracle: str
    severity: str  # "high" (bug), "medium", "low" (by policy / worth a look)
    kind: str  # stable, oracle-specific class of the problem; no pids, times or addresses
    title: str
    explanation: str
    evidence: tuple[int, ...] = field(default_factory=tuple)  # history indexes
    # A documented behaviour of the bus (a quota, a policy), not a bug: reported, never fatal.
    by_policy: bool = False
    count: int = 1  # how many times the run showed it (the first is described)
    # A known behaviour of this bus version (fuzz/oracles/known.py): its upstream reference.
    known: str | None = None
    # Other oracles' findings that come from the same cause event (fuzz/oracles/registry.py):
    # "oracle: title" each. The signature is this finding's alone.
    symptoms: tuple[str, ...] = ()

    @property
    def counts(self) -> bool:
        """A new finding: neither documented behaviour nor a known upstream behaviour."""
        return not self.by_policy and self.known is None

    @property
    def signature(self) -> str:
        """Stable id for deduplication: same oracle and kind, same signature."""
        return finding_signature(self.oracle, self.kind)

    def to_json(self) -> dict:
        return dict(asdict(self), evidence=list(self.evidence), symptoms=list(self.symptoms),
                    signature=self.signature)


def finding_signature(oracle: str, kind: str) -> str:
    digest = hashlib.sha1(f"{oracle}:{kind}".encode()).hexdigest()[:12]
    return f"{oracle}-{digest}"
