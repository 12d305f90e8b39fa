"""The corpus on disk: what campaigns learned, kept between them and shared by shards.

    corpus/
        corpus.json                 {"format": 1}: marks the directory as a corpus
        <key>/<id>.json             one entry: its scenario, features, cost and origin

The key is the bus an entry was learned on (corpus_key): its kind and version number, or for
a `--bus-cmd` bus a digest of the command and its environment, since what a command runs is
only known by the command. The id is a digest of the scenario, so the same scenario found by
two campaigns is one entry.

Each entry is written into a temporary file in its key's directory and renamed into place
(rename is atomic), so a campaign killed at any moment leaves a loadable corpus; leftover
temporary files are swept on load. An entry that no longer runs (an operator removed, a
schema changed, a file that does not parse) is reported by file and reason and skipped,
never fatal.

Only stable features are worth carrying over: queue, latency, process-state and memory
buckets depend on the machine's load (fuzz/campaign/features.py LOAD_DEPENDENT), so a
campaign measures those anew, while a bus's answers, attack outcomes and findings are facts
of the scenario on that bus version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from fuzz.campaign.features import is_stable

FORMAT = 1
MARKER = "corpus.json"
CLAIM_TTL_S = 3600.0  # how long a claim binds while its holder has stored nothing
TMP_PREFIX = ".tmp-"


def corpus_key(kind: str | None, version: str | None, command: str | None = None,
               env: tuple[tuple[str, str], ...] = ()) -> str:
    """The directory entries of one bus go in: `dbus-daemon-1.14.10`, `dbus-broker-33`,
    `command-<digest of the command and its environment>`."""
    if command is not None:
        digest = hashlib.sha256(json.dumps([command, list(env)]).encode()).hexdigest()[:12]
        return f"command-{digest}"
    number = re.search(r"\d+(?:\.\d+)*", version or "")
    return f"{kind}-{number.group(0) if number else 'unknown'}"


def key_for_choice(choice: Any, other: Any = None) -> str:
    """The key of a campaign's bus (a fuzz.bus.BusChoice), the built-in ones asked their
    version; a differential campaign's entries are keyed by both buses."""
    from fuzz.bus.base import program_version
    if other is not None:
        return f"diff-{key_for_choice(choice)}-{key_for_choice(other)}"
    if choice.command is not None:
        return corpus_key(None, None, choice.command, choice.env)
    return corpus_key(choice.kind, program_version([choice.kind, "--version"]))


def entry_id(scenario: dict[str, Any]) -> str:
    """The same scenario, the same id (its name, which carries the campaign seed, aside)."""
    body = {k: v for k, v in scenario.items() if k != "name"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class StoredEntry:
    id: str
    scenario: dict[str, Any]
    features: frozenset[str]  # stable features only
    seconds: float
    origin: dict[str, Any] = field(default_factory=dict)  # campaign seed, index, time, bus


@dataclass
class LoadReport:
    entries: list[StoredEntry]
    skipped: list[str]  # "path: why"


def is_corpus(path: str) -> bool:
    return os.path.isfile(os.path.join(path, MARKER))


class CorpusDir:
    def __init__(self, root: str, key: str):
        self.root, self.key = root, key
        self.dir = os.path.join(root, key)
        os.makedirs(self.dir, exist_ok=True)
        marker = os.path.join(root, MARKER)
        if not os.path.exists(marker):
            _write_atomic(marker, {"format": FORMAT})
        self.ids: set[str] = set()

    def add(self, scenario: dict[str, Any], features: frozenset[str], seconds: float,
            origin: dict[str, Any]) -> str | None:
        """Write an entry unless one with the same scenario is there: its id, or None."""
        eid = entry_id(scenario)
        path = os.path.join(self.dir, f"{eid}.json")
        if eid in self.ids or os.path.exists(path):
            self.ids.add(eid)
            return None
        _write_atomic(path, {"format": FORMAT, "id": eid, "scenario": scenario,
                             "features": sorted(f for f in features if is_stable(f)),
                             "seconds": round(seconds, 3),
                             "origin": {"time": round(time.time()), **origin}})
        self.ids.add(eid)
        return eid

    def load(self) -> LoadReport:
        """Every entry of this key not read yet that still runs, and why the others were
        skipped; temporary files a killed write left are swept first."""
        for name in os.listdir(self.dir):
            if name.startswith(TMP_PREFIX):
                _remove(os.path.join(self.dir, name))
        return self.unseen()

    def unseen(self) -> LoadReport:
        """Entries written since the last look (by another campaign sharing the directory)."""
        fresh = [n for n in sorted(os.listdir(self.dir)) if n.endswith(".json")
                 and not n.startswith(TMP_PREFIX) and n[:-5] not in self.ids]
        entries, skipped = [], []
        for name in fresh:
            entry, why = read_entry(os.path.join(self.dir, name))
            self.ids.add(name[:-5])  # seen, usable or not: not read again
            if entry is None:
                skipped.append(f"{os.path.join(self.dir, name)}: {why}")
            else:
                entries.append(entry)
        return LoadReport(entries, skipped)

    def remove(self, eid: str) -> None:
        _remove(os.path.join(self.dir, f"{eid}.json"))
        self.ids.discard(eid)


def read_entry(path: str) -> tuple[StoredEntry | None, str]:
    """An entry, or None and why it cannot be used (unreadable, another format, a scenario
    the rig no longer accepts)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        return None, f"unreadable ({e})"
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None, f"format {data.get('format') if isinstance(data, dict) else '?'}," \
                     f" this rig reads {FORMAT}"
    scenario = data.get("scenario")
    why = scenario_problem(scenario)
    if why:
        return None, why
    return StoredEntry(str(data.get("id") or entry_id(scenario)), scenario,
                       frozenset(f for f in data.get("features") or [] if is_stable(f)),
                       float(data.get("seconds") or 1.0), dict(data.get("origin") or {})), ""


def scenario_problem(scenario: Any) -> str | None:
    """Why a stored scenario no longer runs on this rig (None: it does): it goes through the
    same parser as a scenario file."""
    from fuzz.campaign.generate import to_toml
    from fuzz.engine.scenario import parse_scenario
    from fuzz.errors import RigError
    if not isinstance(scenario, dict):
        return "no scenario table"
    try:
        parse_scenario(to_toml(scenario), "<corpus entry>")
    except (RigError, ValueError, TypeError) as e:
        return f"no longer runs: {str(e).splitlines()[0]}"
    return None


def _write_atomic(path: str, data: dict[str, Any]) -> None:
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# --- claims: one shard minimizes a signature ---------------------------------------------

class Claims:
    """`<sync dir>/claims/<store signature>`: written with O_CREAT|O_EXCL by the first campaign
    to minimize a new signature, so that campaigns sharing the sync directory (shards on one
    machine or on a shared filesystem, each with its own crash store or one) store it once.

    A claim binds while its holder may still be at work (younger than CLAIM_TTL_S) or once
    the holder's store has the case; an older claim whose store never got it (the holder was
    killed, or its case was removed since) is taken over."""

    def __init__(self, sync_dir: str, who: dict[str, Any]):
        self.dir = os.path.join(sync_dir, "claims")
        os.makedirs(self.dir, exist_ok=True)
        self.who = who

    def take(self, signature: str) -> dict[str, Any] | None:
        """Claim the signature: None if this campaign now holds it, else the claim another
        campaign holds."""
        path = os.path.join(self.dir, signature)
        mine = {**self.who, "time": round(time.time())}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            claim = self._read(path)
            if claim is None or self._binds(claim, signature):
                return claim or {"campaign": "another campaign (its claim is being written)"}
            _write_atomic(path, mine)  # stale: its holder never stored it
            return None
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        return None

    def _binds(self, claim: dict[str, Any], signature: str) -> bool:
        if claim.get("pid") == self.who.get("pid") and claim.get("host") == self.who.get("host"):
            return False  # this campaign's own
        stored = os.path.isdir(os.path.join(str(claim.get("store", "")), signature))
        return stored or time.time() - float(claim.get("time") or 0) < CLAIM_TTL_S

    @staticmethod
    def _read(path: str) -> dict[str, Any] | None:
        try:
            with open(path) as f:
                data = json.load(f)
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None


# --- minimizing and merging ---------------------------------------------------------------

MIN_COST_S = 0.25  # below this an entry is not cheaper: any run's fixed cost dominates


def cover(entries: list[StoredEntry]) -> list[StoredEntry]:
    """The fewest, cheapest entries that together show every feature any of them shows
    (afl-cmin's and libFuzzer's merge goal), by greedy set cover: again and again the entry
    with the most features not yet covered per second of its cost. Trusts the stored
    (stable) features: nothing is re-run."""
    uncovered = set().union(*(e.features for e in entries)) if entries else set()
    kept: list[StoredEntry] = []
    left = sorted(entries, key=lambda e: e.id)
    while uncovered:
        best = max(left, key=lambda e: (len(e.features & uncovered) / max(MIN_COST_S, e.seconds),
                                        -e.seconds))
        kept.append(best)
        uncovered -= best.features
        left.remove(best)
    return kept


def keys(root: str) -> list[str]:
    return sorted(n for n in os.listdir(root)
                  if os.path.isdir(os.path.join(root, n)) and not n.startswith("."))


def minimize(root: str, key: str, dry_run: bool = False) -> tuple[int, int, int, list[str]]:
    """Keep the cover of one key's entries, remove the rest (each removal is one unlink: a
    kill leaves a valid corpus). (entries before, after, features, skipped)."""
    store = CorpusDir(root, key)
    got = store.load()
    kept = {e.id for e in cover(got.entries)}
    if not dry_run:
        for e in got.entries:
            if e.id not in kept:
                store.remove(e.id)
    features = set().union(*(e.features for e in got.entries)) if got.entries else set()
    return len(got.entries), len(kept), len(features), got.skipped


def merge(into: str, other: str) -> tuple[int, int, list[str]]:
    """Copy the entries of corpus `other` that `into` lacks, key by key: (new, already
    there, skipped)."""
    new = known = 0
    skipped: list[str] = []
    for key in keys(other):
        source, target = CorpusDir(other, key), CorpusDir(into, key)
        target.load()
        got = source.load()
        skipped += got.skipped
        for e in got.entries:
            if target.add(e.scenario, e.features, e.seconds, e.origin):
                new += 1
            else:
                known += 1
    return new, known, skipped
