"""What a campaign is asked to do (its configuration) and what it counted (its statistics)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from fuzz.bus.factory import BusChoice


@dataclass
class CampaignConfig:
    bus: BusChoice
    budget: float
    seed: int
    out: str
    crashes: str = "crashes"
    corpus: str | None = None  # the corpus on disk (fuzz/campaign/corpus_dir.py); None: none
    sync_dir: str | None = None  # shared with other campaigns: their corpus and claims
    jobs: int = 1
    shard: tuple[int, int] = (0, 1)
    feedback: bool = True
    minimize: bool = True
    max_execs: int | None = None
    short: bool = False  # generate only the cheapest executions (benchmarks)
    diff: BusChoice | None = None  # differential: every scenario also on this bus, compared
    other_uids: bool = field(default_factory=lambda: os.geteuid() == 0)


@dataclass
class CampaignStats:
    executions: int = 0
    seconds: float = 0.0
    corpus: int = 0
    features: int = 0
    new_signatures: list[str] = field(default_factory=list)
    known_hits: int = 0
    known: dict[str, int] = field(default_factory=dict)  # store signature -> hits this campaign
    unreproduced: list[str] = field(default_factory=list)  # seen once, never again: not stored
    # upstream reference -> hits of known behaviours of this bus version (fuzz/oracles/known.py)
    known_upstream: dict[str, int] = field(default_factory=dict)
    by_oracle: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    suspicions: int = 0  # growth suspicions judged by repetition (fuzz/campaign/trend.py)
    suspicions_confirmed: int = 0
    generated: int = 0
    mutated: int = 0
    corpus_loaded: int = 0  # entries taken from the corpus on disk (at start and by syncing)
    corpus_skipped: list[str] = field(default_factory=list)  # "path: why" of unusable entries
    corpus_written: int = 0
    claimed_elsewhere: dict[str, str] = field(default_factory=dict)  # signature -> who has it

    @property
    def execs_per_s(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


def default_corpus(crashes: str) -> str:
    """The corpus beside the crash store: crashes/ -> corpus/."""
    return os.path.join(os.path.dirname(os.path.abspath(crashes)), "corpus")


def bus_label(config: CampaignConfig) -> str:
    return config.bus.label + (f" vs {config.diff.label}" if config.diff else "")
