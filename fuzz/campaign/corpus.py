"""The campaign's corpus: the executions that showed new behaviour, how often each feature was
seen, and which entry to mutate next (rarer behaviour, cheaper to run, fewer children: likelier;
a new answer of the bus: worked on at once)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from fuzz.campaign.features import is_answer
from fuzz.engine.scenario import ScenarioTable

UNKNOWN_COST_S = 1.0  # what an execution that did not report its time is taken to cost


@dataclass
class CorpusEntry:
    index: int
    scenario: ScenarioTable
    features: frozenset[str]  # all it showed, not only what was new then
    seconds: float  # what one execution of it costs
    picks: int = 0  # children made of it so far
    smash: bool = False  # it showed a new answer of the bus: children first (SMASH)


# An execution faster than this is not favoured further: the fixed cost of any run dominates.
MIN_ENTRY_S = 0.25
# Children a new corpus entry gets before the weighted choice takes over, if what was new in
# it is a new answer of the bus (syzkaller "smashes" every new input the same way): one that
# got one step further into a bug is worked on while that step is fresh, not one pick in
# fifty as the weights alone gave it. Only answers, not quantities: smashing every entry with
# a new queue, latency or state bucket takes all mutations (8 children for each of ~50 entries
# in a 120 s campaign, measured in docs/campaigns.md), and the chain bug's first step later.
SMASH = 8


def parent_weights(corpus: list[CorpusEntry], hits: dict[str, int]) -> list[float]:
    """How likely each corpus entry is to be mutated next: the rarer the behaviour it shows,
    the cheaper it is to run and the fewer children it has had, the likelier.

    Rarity is the sum over its features of 1 / (executions that showed the feature): a
    feature every execution shows adds next to nothing, one only this entry reached adds 1.
    Dividing by 1 + its children so far (AFLFast's idea) favours entries not yet worked on
    over old ones with the same behaviour. Cost counts by its square root: a deep bug often
    needs the heavier scenarios (many callers, many fds), and dividing by the time itself
    starved them (the chain bug's first step needs executions of about 1 s, four times the
    cheapest).
    """
    return [sum(1.0 / max(1, hits.get(f, 1)) for f in e.features)
            / math.sqrt(max(MIN_ENTRY_S, e.seconds)) / (1 + e.picks) for e in corpus]


def choose_parent(corpus: list[CorpusEntry], hits: dict[str, int],
                  rng: random.Random) -> CorpusEntry:
    """The newest entry to smash that has had fewer than SMASH children, else a weighted
    choice.

    Newest first: when a child of an entry being smashed shows yet another new answer, it is
    worked on next, so a chain of steps is followed while each step is fresh (depth first);
    entries that lost their turn keep no children so far, which weighs them up for later.
    """
    for entry in reversed(corpus):
        if entry.smash and entry.picks < SMASH:
            return entry
    return rng.choices(corpus, weights=parent_weights(corpus, hits))[0]


# Findings after which the bus no longer served: its execution is not built on (as AFL keeps
# crashing inputs out of its queue): whatever followed the crash went unobserved, and its
# mutants mostly crash the same way again, each costing a new bus, while a deeper bug behind
# the same first steps is never reached. The finding itself is stored as usual.
def bus_lost(result: dict[str, Any]) -> bool:
    return any(not f["by_policy"] and (f["oracle"] == "hang" or f["oracle"] == "crash"
                                       and str(f.get("kind", "")).startswith("bus-"))
               for f in result.get("findings", []))


@dataclass
class Corpus:
    entries: list[CorpusEntry] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    hits: dict[str, int] = field(default_factory=dict)  # feature -> executions that showed it

    def observe(self, index: int, scenario: ScenarioTable, result: dict[str, Any],
                keep: bool) -> tuple[frozenset[str], CorpusEntry | None]:
        """Count an execution's features; with `keep`, an execution that showed a new one (and
        after which the bus still served) becomes an entry. Returns the new features and the
        new entry, if one was made."""
        feats = frozenset(result.get("features", []))
        new = feats - self.seen
        self.seen |= feats
        for f in feats:
            self.hits[f] = self.hits.get(f, 0) + 1
        if new and keep and not bus_lost(result):
            entry = CorpusEntry(index, scenario, feats,
                                float(result.get("seconds") or UNKNOWN_COST_S),
                                smash=any(is_answer(f) for f in new))
            self.entries.append(entry)
            return new, entry
        return new, None

    def preload(self, scenario: ScenarioTable, features: frozenset[str], seconds: float,
                index: int) -> None:
        """An entry another campaign learned (fuzz/campaign/corpus_dir.py): its features count
        as seen, once, and it may be picked like any other (never smashed: its news is old)."""
        self.seen |= features
        for f in features:
            self.hits[f] = self.hits.get(f, 0) + 1
        self.entries.append(CorpusEntry(index, scenario, features, seconds))

    def pick(self, rng: random.Random) -> CorpusEntry:
        parent = choose_parent(self.entries, self.hits, rng)
        parent.picks += 1
        return parent

    def __len__(self) -> int:
        return len(self.entries)
