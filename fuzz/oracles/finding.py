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

    @property
    def signature(self) -> str:
        """Stable id for deduplication: same oracle and kind, same signature."""
        digest = hashlib.sha1(f"{self.oracle}:{self.kind}".encode()).hexdigest()[:12]
        return f"{self.oracle}-{digest}"

    def to_json(self) -> dict:
        return dict(asdict(self), evidence=list(self.evidence), signature=self.signature)
