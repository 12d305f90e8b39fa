"""The crash store: one directory per signature, written so that a campaign killed at any
moment leaves a valid store, and several campaigns (or shards) can be merged into one.

    crashes/<signature>/
        case.toml        the minimized scenario (`rig.py run` runs it, `rig.py replay` checks it)
        original.toml    the scenario as the campaign generated it
        history.jsonl    the events around the finding, from the run that showed it
        report.md        title, oracle, bus and version, reliability, reproduce command, evidence
        meta.json        signature, finding, bus, seed, first/last seen, hits, reliability

A new entry is written into a hidden temporary directory and renamed into place (rename is
atomic); a hit on a known entry rewrites meta.json through a temporary file and os.replace.
Hidden directories (a killed campaign's half-written entry) are ignored and swept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Iterator

META = "meta.json"
TMP_PREFIX = ".tmp-"
# Version 2: a bus death is keyed by the crash report it printed, not by its exit status.
SCHEMA = 2


def store_signature(finding_signature: str, bus_kind: str) -> str:
    """The store's key: an oracle signature is per bus (the same crash on two buses is two
    bugs, and a merged store must not confuse them)."""
    return f"{finding_signature}-{re.sub(r'[^A-Za-z0-9._-]+', '_', bus_kind)}"


@dataclass
class NewCase:
    signature: str  # store signature
    finding: dict[str, Any]
    bus: dict[str, Any]  # kind, version, label (dbus-daemon / dbus-broker / the command)
    seed: int
    case_toml: str
    original_toml: str
    history_excerpt: list[str]  # JSON lines
    reliability: tuple[int, int]
    minimized: bool
    minimize_runs: int
    repeat: int = 1  # the finding shows when the case runs this many times on one bus


class CrashStore:
    def __init__(self, root: str):
        self.root = root
        os.makedirs(root, exist_ok=True)
        self._sweep()
        self._rekey()

    def _rekey(self) -> None:
        """Give entries stored under an older signature scheme the current signature: the stored
        history excerpt is judged again, the entry renamed (atomically) and the old signature
        kept in meta.json's `aliases`, so a known case stays known and replays match it."""
        from fuzz.history import Event
        from fuzz.oracles.crash import bus_death
        from fuzz.oracles.finding import finding_signature
        for sig in list(self.signatures()):
            meta = self.meta(sig)
            if meta.get("schema", 1) >= SCHEMA:
                continue
            new_kind = None
            if meta.get("oracle") == "crash":
                try:
                    with open(os.path.join(self.path(sig), "history.jsonl")) as f:
                        events = [Event.from_json(json.loads(line)) for line in f if line.strip()]
                except (OSError, ValueError, KeyError):
                    events = []
                exits = [e for e in events if e.op == "bus-exit"]
                if exits:
                    new_kind, how, report = bus_death(exits[-1])
                    if report is not None:
                        meta["title"] = f"{report.title} (the bus died: {how})"
            meta["schema"] = SCHEMA
            if new_kind is not None:
                finding_sig = finding_signature("crash", new_kind)
                bus_kind = (meta.get("bus") or {}).get("kind") or "bus"
                new_sig = store_signature(finding_sig, bus_kind)
                if new_sig != sig and not self.has(new_sig):
                    meta["aliases"] = sorted(set(meta.get("aliases", [])) | {
                        sig, meta.get("finding_signature", "")} - {""})
                    meta.update(signature=new_sig, finding_signature=finding_sig)
                    self._write_meta(sig, meta)
                    os.rename(self.path(sig), self.path(new_sig))
                    continue
            self._write_meta(sig, meta)

    def _sweep(self) -> None:
        for name in os.listdir(self.root):
            if name.startswith(TMP_PREFIX):
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    def path(self, signature: str) -> str:
        return os.path.join(self.root, signature)

    def has(self, signature: str) -> bool:
        return os.path.isfile(os.path.join(self.path(signature), META))

    def signatures(self) -> Iterator[str]:
        for name in sorted(os.listdir(self.root)):
            if not name.startswith(".") and self.has(name):
                yield name

    def meta(self, signature: str) -> dict[str, Any]:
        with open(os.path.join(self.path(signature), META)) as f:
            return json.load(f)

    def hit(self, signature: str, count: int = 1, when: float | None = None) -> None:
        meta = self.meta(signature)
        meta["hits"] += count
        meta["last_seen"] = max(meta["last_seen"], when or time.time())
        self._write_meta(signature, meta)

    def add(self, case: NewCase) -> bool:
        """Store a new case; False if another campaign stored this signature meanwhile (then
        it only counts as a hit)."""
        if self.has(case.signature):
            self.hit(case.signature)
            return False
        now = time.time()
        tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self.root)
        k, n = case.reliability
        meta = {
            "signature": case.signature,
            "oracle": case.finding["oracle"],
            "title": case.finding["title"],
            "severity": case.finding["severity"],
            "finding_signature": case.finding["signature"],
            "bus": case.bus,
            "seed": case.seed,
            "first_seen": now,
            "last_seen": now,
            "hits": 1,
            "reliability": f"{k}/{n}",
            "minimized": case.minimized,
            "minimize_runs": case.minimize_runs,
            "schema": SCHEMA,
        }
        if case.repeat > 1:
            meta["repeat"] = case.repeat
        files = {
            "case.toml": case.case_toml,
            "original.toml": case.original_toml,
            "history.jsonl": "".join(line + "\n" for line in case.history_excerpt),
            "report.md": report_md(meta, case),
            META: json.dumps(meta, indent=2) + "\n",
        }
        for name, text in files.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        try:
            os.rename(tmp, self.path(case.signature))
        except OSError:  # it appeared meanwhile (another shard): count, do not overwrite
            shutil.rmtree(tmp, ignore_errors=True)
            self.hit(case.signature)
            return False
        return True

    def _write_meta(self, signature: str, meta: dict[str, Any]) -> None:
        final = os.path.join(self.path(signature), META)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=self.path(signature))
        with os.fdopen(fd, "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        os.replace(tmp, final)

    def merge_from(self, other: CrashStore) -> tuple[int, int]:
        """Copy in the other store's cases; for known signatures add up hits and widen the
        first/last seen window. Returns (new, merged)."""
        new = merged = 0
        for sig in other.signatures():
            theirs = other.meta(sig)
            if self.has(sig):
                mine = self.meta(sig)
                mine["hits"] += theirs["hits"]
                mine["first_seen"] = min(mine["first_seen"], theirs["first_seen"])
                mine["last_seen"] = max(mine["last_seen"], theirs["last_seen"])
                self._write_meta(sig, mine)
                merged += 1
                continue
            tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self.root)
            os.rmdir(tmp)
            shutil.copytree(other.path(sig), tmp)
            try:
                os.rename(tmp, self.path(sig))
                new += 1
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
        return new, merged


def reproduce_command(signature: str, root: str = "crashes") -> str:
    return f"python rig.py replay {os.path.join(root, signature)}"


def run_command(meta: dict[str, Any]) -> str:
    """The case run directly: `rig.py run` on its bus, or `rig.py diff` on both."""
    import shlex
    case = f"crashes/{meta['signature']}/case.toml"
    bus = meta["bus"]
    if bus.get("diff"):
        a, b = (spec.get("kind") or spec.get("command") for spec in bus["diff"])
        return (f"python rig.py diff {case} --bus {shlex.quote(a)} --bus {shlex.quote(b)}"
                f" --seed {meta['seed']}")
    args = bus.get("args") or f"--bus {bus.get('label')}"
    return f"python rig.py run {case} {args} --seed {meta['seed']}"


def report_md(meta: dict[str, Any], case: NewCase) -> str:
    f = case.finding
    bus = meta["bus"]
    evidence = "\n".join(f"    {line}" for line in case.history_excerpt[:40])
    return (
        f"# {meta['title']}\n\n"
        f"- signature: `{meta['signature']}`\n"
        f"- oracle: {meta['oracle']} (severity {meta['severity']})\n"
        f"- bus: {bus.get('label')} ({bus.get('version')})\n"
        f"- reliability: {meta['reliability']} runs of the minimized case reproduce it\n"
        + (f"- repeated: each run is the case {meta['repeat']} times on one bus (the finding is"
           f" the bus's growth over the repetitions; `rig.py replay` does this)\n"
           if meta.get("repeat") else "") +
        f"- minimized: {'yes' if meta['minimized'] else 'no (budget spent)'},"
        f" {meta['minimize_runs']} candidate runs\n"
        f"- found: {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(meta['first_seen']))} UTC,"
        f" campaign seed {meta['seed']}\n\n"
        f"## Reproduce\n\n"
        f"    {reproduce_command(meta['signature'])}\n"
        f"    {run_command(meta)}\n\n"
        f"## What the oracle says\n\n{f['explanation']}\n\n"
        f"## History around the finding (history.jsonl)\n\n{evidence}\n")
