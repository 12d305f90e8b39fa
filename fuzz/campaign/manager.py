"""The campaign: generate or mutate a scenario per execution, run it on a worker, keep what
shows new behaviour, store every new finding minimized, until the budget is spent.

Execution `i` of campaign seed `s` draws all its choices from scenario_rng(s, i). The first
WARMUP executions (per shard) are fresh generations, so for them the same seed always yields
the same scenarios; later ones mutate a corpus entry, and which entries the corpus holds
depends on what the bus did (that is the point of feedback). Every execution's scenario,
parent and mutations are logged in OUT/campaign.jsonl, and every finding keeps its full
original scenario in the store, so nothing depends on re-deriving the sequence.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import IO, Any, Callable

from fuzz.campaign.config import CampaignConfig, CampaignStats, bus_label
from fuzz.campaign.corpus import Corpus
from fuzz.campaign.corpus_dir import CorpusDir, LoadReport, key_for_choice
from fuzz.campaign.generate import fit_to_bus, generate, mutate, scenario_rng
from fuzz.campaign.store import CrashStore
from fuzz.campaign.trend import REPEAT, TrendWatch
from fuzz.campaign.triage import Triage
from fuzz.campaign.workers import Workers, make_request
from fuzz.engine.scenario import ScenarioTable
from fuzz.errors import RigError
from fuzz.lifecycle import janitor, signals_raise
from fuzz.live.state import LiveState
from fuzz.report.model import Report

WARMUP = 8  # fresh generations before mutation starts (per shard; a stored corpus too)
CORPUS_SYNC_S = 10.0  # how often the corpus directory is read for other campaigns' entries
MUTATE_P = 0.8  # afterwards: chance an execution mutates a corpus entry
FATAL_IN_A_ROW = 3

Progress = Callable[[str, dict[str, Any]], None]

__all__ = ["Campaign", "CampaignConfig", "CampaignStats", "WARMUP", "bus_label"]


class Campaign:
    def __init__(self, config: CampaignConfig, progress: Progress | None = None,
                 workers_stderr: IO[str] | None = None):
        self.c = config
        self.progress = progress or (lambda _what, _info: None)
        self.workers_stderr = workers_stderr  # None: the campaign's own stderr
        shard = f", shard {config.shard[0]}/{config.shard[1]}" if config.shard[1] > 1 else ""
        self.live = LiveState("fuzz", f"{bus_label(config)}, seed {config.seed}{shard},"
                                      f" {config.jobs} job(s)", config.budget)
        self.store = CrashStore(config.crashes)
        self.corpus = Corpus()
        self.corpus_dir: CorpusDir | None = None
        self.corpus_synced = 0.0
        self.loaded_index = 0  # stored entries get indexes -1, -2, ...
        self.stats = CampaignStats()
        self.next_n = 0  # how many of this shard's indexes were handed out
        self.log_path = os.path.join(config.out, "campaign.jsonl")
        # index -> (scenario, parent index, mutations) of executions in flight
        self.pending_meta: dict[int, tuple[ScenarioTable, int | None, list[str]]] = {}
        self.started = 0.0
        self.bus_version: str | None = None
        self.triage = Triage(self.c, self.stats, self.store, self.live, self.progress)
        self.trend = TrendWatch()
        # The rig writes the configuration of the buses it starts, not of a --bus-cmd bus.
        self.configured = config.bus.command is None and (config.diff is None
                                                          or config.diff.command is None)

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> CampaignStats:
        os.makedirs(self.c.out, exist_ok=True)
        janitor()
        self.started = time.monotonic()
        if self.c.corpus and self.c.feedback:
            self.corpus_dir = CorpusDir(self.c.corpus, key_for_choice(self.c.bus, self.c.diff))
            self._take_stored(self.corpus_dir.load())
        self.workers = Workers(self.c.bus, self.c.jobs, self._on_live, self.workers_stderr,
                               self.c.diff)
        self.triage.attach(self.workers, self.started)
        self.live.phase = "fuzzing"
        fatal_in_a_row = 0
        try:
            with signals_raise(), open(self.log_path, "a") as log:
                self.log = log
                while True:
                    if self._may_start_more():
                        for w in self.workers.idle():
                            if not self._may_start_more():
                                break
                            self.workers.submit(w, self._next_request())
                    if not self.workers.busy and not self.workers.stray:
                        break
                    for result in self.workers.finished(1.0):
                        fatal_in_a_row = fatal_in_a_row + 1 if result.get("fatal") else 0
                        if fatal_in_a_row >= FATAL_IN_A_ROW:
                            raise RigError(f"the bus failed {FATAL_IN_A_ROW} times in a row:"
                                           f" {result.get('error')}")
                        self._absorb(result)
                    if self.corpus_dir and time.monotonic() - self.corpus_synced >= CORPUS_SYNC_S:
                        self._take_stored(self.corpus_dir.unseen())
                    self.live.maybe_probe()
                    self.progress("tick", self.snapshot())
        finally:
            self.stats.seconds = time.monotonic() - self.started
            self._write_summary()  # first: an interrupt while stopping must not lose it
            self.live.phase = "stopping workers"
            try:
                self.workers.close()
            finally:
                self._sweep_scratch()
            self.live.phase = "done"
        return self.stats

    def _sweep_scratch(self) -> None:
        """Executions cut short by the end or an interrupt leave their run dirs behind."""
        for name in os.listdir(self.c.out):
            if name.startswith(("exec-", "repro-")):
                shutil.rmtree(os.path.join(self.c.out, name), ignore_errors=True)

    def _take_stored(self, got: LoadReport) -> None:
        """Entries from the corpus directory: all of them at start, then what other campaigns
        sharing the directory wrote since."""
        assert self.corpus_dir is not None
        self.corpus_synced = time.monotonic()
        for entry in got.entries:
            self.loaded_index -= 1
            self.corpus.preload(entry.scenario, entry.features, entry.seconds, self.loaded_index)
        self.stats.corpus_loaded += len(got.entries)
        self.stats.corpus_skipped += got.skipped
        for why in got.skipped:
            self.progress("corpus-skip", {"why": why})
        if got.entries:
            self.progress("corpus-load", {"entries": len(got.entries), "key": self.corpus_dir.key})
            self.stats.corpus, self.stats.features = len(self.corpus), len(self.corpus.seen)

    def _on_live(self, worker: int, what: str, info: dict[str, Any]) -> None:
        self.live.on_run_event(what, info, f"w{worker}")

    def _may_start_more(self) -> bool:
        if time.monotonic() - self.started >= self.c.budget:
            return False
        return self.c.max_execs is None or self.next_n < self.c.max_execs

    def index_of(self, n: int) -> int:
        shard, shards = self.c.shard
        return shard + n * shards

    def _next_request(self) -> dict[str, Any]:
        n = self.next_n
        self.next_n += 1
        index = self.index_of(n)
        scenario, parent, mutations = self.scenario_for(index, n)
        self.pending_meta[index] = (scenario, parent, mutations)
        return make_request(index, scenario, self.c.seed, self.c.out)

    def scenario_for(self, index: int, n: int) -> tuple[ScenarioTable, int | None, list[str]]:
        rng = scenario_rng(self.c.seed, index)
        name = f"fuzz-{self.c.seed}-{index}"
        if self.c.feedback and self.corpus and n >= WARMUP and rng.random() < MUTATE_P:
            parent = self.corpus.pick(rng)
            child, applied = mutate(rng, parent.scenario,
                                    [e.scenario for e in self.corpus.entries], name,
                                    self.c.other_uids)
            self.stats.mutated += 1
            return fit_to_bus(rng, child, self.configured), parent.index, applied
        self.stats.generated += 1
        return fit_to_bus(rng, generate(rng, name, self.c.other_uids, self.c.short),
                          self.configured), None, []

    # --- results -----------------------------------------------------------------------------

    def _absorb(self, result: dict[str, Any]) -> None:
        index = result["index"]
        scenario, parent, mutations = self.pending_meta.pop(index)
        self.stats.executions += 1
        self.bus_version = (result.get("bus") or {}).get("version") or self.bus_version
        if result.get("error"):
            self.stats.errors += 1
        new, entry = self.corpus.observe(index, scenario, result, keep=self.c.feedback)
        if entry is not None and self.corpus_dir is not None and \
                self.corpus_dir.add(scenario, entry.features, entry.seconds,
                                    {"seed": self.c.seed, "index": index,
                                     "bus": (result.get("bus") or {}).get("version")}):
            self.stats.corpus_written += 1
        stored = self.triage.absorb(result, scenario)
        # A growth across executions on the reused bus: its case is repeated on one bus.
        for case in self.trend.add(result.get("bus_sample"), scenario):
            confirmed = self.triage.confirm(case.finding, case.scenario, REPEAT)
            sig = None if confirmed is None else \
                self.triage.consider(confirmed, case.scenario, result, stored, REPEAT)
            if sig is not None:
                stored.append(sig)
        self.log.write(json.dumps({
            "index": index, "at": round(time.monotonic() - self.started, 2),
            "parent": parent, "mutations": mutations,
            "seconds": result.get("seconds"), "events": result.get("events"),
            "new_features": sorted(new), "findings": [f["signature"] for f in
                                                      result.get("findings", [])],
            "new_signatures": stored, "error": result.get("error"),
            "bus_sample": result.get("bus_sample")}) + "\n")
        self.log.flush()
        shutil.rmtree(result["out"], ignore_errors=True)
        self.stats.corpus = len(self.corpus)
        self.stats.features = len(self.corpus.seen)
        self.live.counters(self.stats.executions, len(self.corpus), len(self.corpus.seen), len(new))

    # --- reporting ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        elapsed = time.monotonic() - self.started
        return {"elapsed": round(elapsed, 1), "budget": round(self.c.budget, 1),
                "execs": s.executions, "execs_per_s": round(s.executions / elapsed, 2)
                if elapsed else 0.0, "corpus": len(self.corpus), "features": len(self.corpus.seen),
                "new": len(s.new_signatures), "known_hits": s.known_hits, "errors": s.errors}

    def report(self, error: str | None = None) -> Report:
        s = self.stats
        facts = {"seed": self.c.seed, "shard": f"{self.c.shard[0]}/{self.c.shard[1]}",
                 "jobs": self.c.jobs, "budget s": self.c.budget, "executions": s.executions,
                 "executions/s": round(s.execs_per_s, 2), "generated": s.generated,
                 "mutated": s.mutated, "corpus": len(self.corpus), "features": len(self.corpus.seen),
                 "known upstream behaviours": ", ".join(f"{ref} x{n}" for ref, n in
                                                       sorted(s.known_upstream.items()))
                 or "none",
                 "growth suspicions (confirmed)": f"{s.suspicions} ({s.suspicions_confirmed})",
                 "execution errors": s.errors, "crash store": self.c.crashes,
                 "corpus directory": (f"{self.c.corpus} ({self.corpus_dir.key}): {s.corpus_loaded}"
                                      f" entries loaded, {s.corpus_written} written,"
                                      f" {len(s.corpus_skipped)} skipped"
                                      + "".join(f"; {w}" for w in s.corpus_skipped[:5]))
                 if self.corpus_dir else "none",
                 "sync directory": (f"{self.c.sync_dir}: {len(s.claimed_elsewhere)} new"
                                    " signature(s) left to the campaigns that claimed them"
                                    if self.c.sync_dir else "none"),
                 "work dir": self.c.out}
        bus = {"label": bus_label(self.c), "kind": self.c.bus.kind, "version": self.bus_version}
        return Report(kind="campaign", name=f"{bus_label(self.c)} seed {self.c.seed}",
                      bus=bus, seconds=round(s.seconds, 1), findings=list(self.triage.findings.values()),
                      facts=facts, error=error)

    def _write_summary(self) -> None:
        s = self.stats
        summary = {**self.snapshot(), "seed": self.c.seed, "shard": list(self.c.shard),
                   "jobs": self.c.jobs, "bus": bus_label(self.c), "generated": s.generated,
                   "mutated": s.mutated, "new_signatures": s.new_signatures,
                   "by_oracle": s.by_oracle, "known_upstream": s.known_upstream,
                   "suspicions": s.suspicions, "suspicions_confirmed": s.suspicions_confirmed,
                   "store": self.c.crashes, "corpus_dir": self.c.corpus,
                   "corpus_loaded": s.corpus_loaded, "corpus_written": s.corpus_written,
                   "corpus_skipped": s.corpus_skipped, "sync_dir": self.c.sync_dir,
                   "claimed_elsewhere": s.claimed_elsewhere}
        tmp = os.path.join(self.c.out, "campaign.json.tmp")
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=2)
        os.replace(tmp, os.path.join(self.c.out, "campaign.json"))
