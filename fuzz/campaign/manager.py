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
import math
import os
import random
import selectors
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Callable

from fuzz.bus.factory import BusChoice
from fuzz.campaign.features import is_answer
from fuzz.campaign.generate import Scenario, generate, mutate, scenario_rng, to_toml
from fuzz.campaign.minimize import OutOfTests, minimize_scenario
from fuzz.campaign.store import CrashStore, NewCase, store_signature
from fuzz.errors import RigError
from fuzz.lifecycle import child_preexec, janitor, kill_group, signals_raise
from fuzz.live.state import LiveState
from fuzz.report.model import KNOWN, NEW, UNREPRODUCED, Report, ReportFinding

WARMUP = 8  # fresh generations before mutation starts (per shard)
MUTATE_P = 0.8  # afterwards: chance an execution mutates a corpus entry
RELIABILITY_RUNS = 3
MINIMIZE_RUNS_PER_CANDIDATE = 2  # a candidate counts as failing if any of these shows it
MAX_MINIMIZE_TESTS = 40
FATAL_IN_A_ROW = 3
# An execution still running this long past its scenario's bound is a rig hang: its worker is
# killed (its janitor cleans up after it) and replaced, and the scenario kept in OUT/overran/.
OVERRUN_S = 60.0
MINIMIZE_GRACE_S = 20.0
UNKNOWN_COST_S = 1.0  # what an execution that did not report its time is taken to cost

Progress = Callable[[str, dict[str, Any]], None]


@dataclass
class CampaignConfig:
    bus: BusChoice
    budget: float
    seed: int
    out: str
    crashes: str = "crashes"
    jobs: int = 1
    shard: tuple[int, int] = (0, 1)
    feedback: bool = True
    minimize: bool = True
    max_execs: int | None = None
    short: bool = False  # generate only the cheapest executions (benchmarks)
    diff: BusChoice | None = None  # differential: every scenario also on this bus, compared
    other_uids: bool = field(default_factory=lambda: os.geteuid() == 0)


@dataclass
class CorpusEntry:
    index: int
    scenario: Scenario
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
    generated: int = 0
    mutated: int = 0

    @property
    def execs_per_s(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


def bus_label(config: CampaignConfig) -> str:
    return config.bus.label + (f" vs {config.diff.label}" if config.diff else "")


LiveEvent = Callable[[int, str, dict[str, Any]], None]


def _spec(choice: BusChoice) -> dict[str, Any]:
    return {k: v for k, v in asdict(choice).items() if v is not None}


class Workers:
    """J worker processes (fuzz/campaign/worker.py), one request in flight each."""

    def __init__(self, choice: BusChoice, jobs: int, on_live: LiveEvent,
                 stderr: IO[str] | None = None, diff: BusChoice | None = None):
        self.arg = json.dumps({"bus": _spec(choice), "diff": _spec(diff) if diff else None})
        self.stderr = stderr
        self.runs_per_request = 2 if diff else 1
        self.on_live = on_live  # (worker, what, info) for the live events of an execution
        self.busy: dict[int, int] = {}  # worker number -> request index
        self.running: dict[int, tuple[float, float, dict[str, Any]]] = {}  # (start, limit, req)
        self.stray: list[dict[str, Any]] = []  # finished while the minimizer had the workers
        self.partial = [b""] * jobs  # an unfinished line from each worker
        self.sel = selectors.DefaultSelector()
        self.procs = [self._spawn(i) for i in range(jobs)]

    def _spawn(self, i: int) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-m", "fuzz.campaign.worker", self.arg],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                             preexec_fn=child_preexec, start_new_session=True,
                             env=dict(os.environ))
        janitor().watch_group(p.pid)
        assert p.stdout is not None
        os.set_blocking(p.stdout.fileno(), False)
        self.sel.register(p.stdout.fileno(), selectors.EVENT_READ, i)
        self.partial[i] = b""
        return p

    def idle(self) -> list[int]:
        return [i for i in range(len(self.procs)) if i not in self.busy]

    def submit(self, worker: int, request: dict[str, Any]) -> None:
        p = self.procs[worker]
        assert p.stdin is not None
        p.stdin.write((json.dumps(request) + "\n").encode())
        p.stdin.flush()
        self.busy[worker] = request["index"]
        bound = float((request["scenario"].get("bound") or {}).get("duration", 60.0))
        self.running[worker] = (time.monotonic(), bound * self.runs_per_request + OVERRUN_S,
                                request)
        self.on_live(worker, "exec-start", {"index": request["index"],
                                            "scenario": request["scenario"].get("name")})

    def wait(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Results of the requests that finished (waiting up to `timeout` for the first)."""
        out = []
        for key, _ in self.sel.select(timeout):
            worker = key.data
            for line in self._lines(worker, key.fd):
                message = json.loads(line)
                if "progress" in message:
                    self.on_live(worker, message["progress"], message["info"])
                    continue
                self.busy.pop(worker, None)
                self.running.pop(worker, None)
                self.on_live(worker, "exec-end", {"index": message["index"]})
                out.append(message)
        return out + self._replace_overdue()

    def _replace_overdue(self) -> list[dict[str, Any]]:
        """Kill and replace each worker whose execution overran; an error result for each."""
        out = []
        now = time.monotonic()
        for worker, (started, limit, request) in list(self.running.items()):
            if now - started < limit:
                continue
            old = self.procs[worker]
            assert old.stdout is not None
            self.sel.unregister(old.stdout.fileno())
            kill_group(old)
            old.stdout.close()
            if old.stdin is not None:
                old.stdin.close()
            self.procs[worker] = self._spawn(worker)
            kept = os.path.join(os.path.dirname(request["out"]), "overran",
                                f"{request['index']}.toml")
            os.makedirs(os.path.dirname(kept), exist_ok=True)
            with open(kept, "w") as f:
                f.write(to_toml(request["scenario"]))
            self.busy.pop(worker, None)
            del self.running[worker]
            self.on_live(worker, "exec-end", {"index": request["index"]})
            out.append({"index": request["index"], "out": request["out"], "fatal": False,
                        "error": f"rig error: the execution ran {now - started:.0f} s, over its"
                                 f" bound by more than {OVERRUN_S:g} s; its worker was replaced"
                                 f" and the scenario kept in {kept}"})
        return out

    def _lines(self, worker: int, fd: int) -> list[bytes]:
        # Raw reads, not readline(): a buffered reader could hold a result line behind a live
        # event where select() no longer sees it, and the campaign would wait forever.
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            raise RigError(f"campaign worker {worker} died"
                           f" (exit {self.procs[worker].wait()}); see its stderr")
        *lines, self.partial[worker] = (self.partial[worker] + chunk).split(b"\n")
        return [line for line in lines if line.strip()]

    def run_now(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run these on the idle workers (after the busy ones finish) and wait for all."""
        pending, results = list(requests), []
        mine = {r["index"] for r in requests}
        while pending or mine & set(self.busy.values()):
            for w in self.idle():
                if pending:
                    self.submit(w, pending.pop(0))
            for r in self.wait(1.0):
                (results if r["index"] in mine else self.stray).append(r)
        return results

    def finished(self, timeout: float) -> list[dict[str, Any]]:
        """Results kept aside by run_now first, then whatever finishes within `timeout`."""
        if self.stray:
            out, self.stray = self.stray, []
            return out
        return self.wait(timeout)

    def close(self) -> None:
        for p in self.procs:
            if p.stdin is not None:
                try:
                    p.stdin.close()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            janitor().forget_group(p.pid)


# Findings after which the bus no longer served: its execution is not built on (as AFL keeps
# crashing inputs out of its queue): whatever followed the crash went unobserved, and its
# mutants mostly crash the same way again, each costing a new bus, while a deeper bug behind
# the same first steps is never reached. The finding itself is stored as usual.
def _bus_lost(result: dict[str, Any]) -> bool:
    return any(not f["by_policy"] and (f["oracle"] == "hang" or f["oracle"] == "crash"
                                       and str(f.get("kind", "")).startswith("bus-"))
               for f in result.get("findings", []))


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
        self.corpus: list[CorpusEntry] = []
        self.seen: set[str] = set()
        self.hits: dict[str, int] = {}  # feature -> executions that showed it
        self.stats = CampaignStats()
        self.next_n = 0  # how many of this shard's indexes were handed out
        self.scratch = 0  # indexes for minimizer runs, out of the campaign's own range
        self.log_path = os.path.join(config.out, "campaign.jsonl")
        # index -> (scenario, parent index, mutations) of executions in flight
        self.pending_meta: dict[int, tuple[Scenario, int | None, list[str]]] = {}
        self.started = 0.0
        self.findings: dict[str, ReportFinding] = {}  # store signature -> what the report says
        self.bus_version: str | None = None
        # Seen once, then not in any of the fresh reliability runs: not stored, not retried.
        self.unreproduced: set[str] = set()

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> CampaignStats:
        os.makedirs(self.c.out, exist_ok=True)
        janitor()
        self.started = time.monotonic()
        self.workers = Workers(self.c.bus, self.c.jobs, self._on_live, self.workers_stderr,
                               self.c.diff)
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
        return self._request(index, scenario)

    def scenario_for(self, index: int, n: int) -> tuple[Scenario, int | None, list[str]]:
        rng = scenario_rng(self.c.seed, index)
        name = f"fuzz-{self.c.seed}-{index}"
        if self.c.feedback and self.corpus and n >= WARMUP and rng.random() < MUTATE_P:
            parent = self._pick_parent(rng)
            child, applied = mutate(rng, parent.scenario, [e.scenario for e in self.corpus],
                                    name, self.c.other_uids)
            self.stats.mutated += 1
            return child, parent.index, applied
        self.stats.generated += 1
        return generate(rng, name, self.c.other_uids, self.c.short), None, []

    def _pick_parent(self, rng: random.Random) -> CorpusEntry:
        parent = choose_parent(self.corpus, self.hits, rng)
        parent.picks += 1
        return parent

    def _request(self, index: int, scenario: Scenario, tag: str = "exec") -> dict[str, Any]:
        # Minimizer and reliability runs get a fresh bus, as `rig.py replay` will: a case
        # that needs what earlier executions left in a reused bus is not a case.
        return {"index": index, "scenario": scenario, "seed": self.c.seed,
                "out": os.path.join(self.c.out, f"{tag}-{index}"), "fresh": tag == "repro"}

    # --- results -----------------------------------------------------------------------------

    def _absorb(self, result: dict[str, Any]) -> None:
        index = result["index"]
        scenario, parent, mutations = self.pending_meta.pop(index)
        self.stats.executions += 1
        self.bus_version = (result.get("bus") or {}).get("version") or self.bus_version
        feats = frozenset(result.get("features", []))
        new = feats - self.seen
        self.seen |= feats
        for f in feats:
            self.hits[f] = self.hits.get(f, 0) + 1
        if result.get("error"):
            self.stats.errors += 1
        if new and self.c.feedback and not _bus_lost(result):
            self.corpus.append(CorpusEntry(
                index, scenario, feats, float(result.get("seconds") or UNKNOWN_COST_S),
                smash=any(is_answer(f) for f in new)))
        stored = []
        for f in result.get("findings", []):
            if f["by_policy"]:
                continue
            if f.get("known"):  # a known behaviour of this bus version: counted apart
                self.stats.known_upstream[f["known"]] = \
                    self.stats.known_upstream.get(f["known"], 0) + 1
                continue
            sig = store_signature(f["signature"], result["bus"]["kind"] or "bus")
            self.stats.by_oracle[f["oracle"]] = self.stats.by_oracle.get(f["oracle"], 0) + 1
            self._seen_finding(sig, f)
            if sig in self.unreproduced:
                continue
            if self.store.has(sig) or sig in stored:
                self.store.hit(sig)
                self.stats.known_hits += 1
                self.stats.known[sig] = self.stats.known.get(sig, 0) + 1
                self.live.finding(sig, f["oracle"], f["title"], new=False)
                continue
            self.live.finding(sig, f["oracle"], f["title"], new=True)
            if self._store_new(sig, f, scenario, result):
                stored.append(sig)
        self.log.write(json.dumps({
            "index": index, "at": round(time.monotonic() - self.started, 2),
            "parent": parent, "mutations": mutations,
            "seconds": result.get("seconds"), "events": result.get("events"),
            "new_features": sorted(new), "findings": [f["signature"] for f in
                                                      result.get("findings", [])],
            "new_signatures": stored, "error": result.get("error")}) + "\n")
        self.log.flush()
        shutil.rmtree(result["out"], ignore_errors=True)
        self.stats.corpus = len(self.corpus)
        self.stats.features = len(self.seen)
        self.live.counters(self.stats.executions, len(self.corpus), len(self.seen), len(new))

    def _seen_finding(self, sig: str, finding: dict[str, Any]) -> None:
        entry = self.findings.get(sig)
        if entry is not None:
            entry.count += 1
            return
        case = os.path.join(self.c.crashes, sig)
        self.findings[sig] = ReportFinding(
            signature=sig, oracle=finding["oracle"], severity=finding["severity"],
            title=finding["title"], status=KNOWN if self.store.has(sig) else NEW,
            explanation=finding.get("explanation", ""), case=case,
            reproduce=f"python rig.py replay {case}")

    def _store_new(self, sig: str, finding: dict[str, Any], scenario: Scenario,
                   result: dict[str, Any]) -> bool:
        """Minimize, measure reliability and store; False if it never reproduced."""
        self.progress("new", {"signature": sig, "title": finding["title"]})
        self.live.phase = f"minimizing {sig}"
        case, runs, minimized = scenario, 0, False
        if self.c.minimize:
            case, runs, minimized = self._minimize(scenario, finding["signature"])
        k = sum(self._reproduces(case, finding["signature"], RELIABILITY_RUNS))
        if k == 0 and case is not scenario:  # the reduction may have lost a flaky trigger
            case, minimized = scenario, False
            k = sum(self._reproduces(case, finding["signature"], RELIABILITY_RUNS))
        self.live.phase = "fuzzing"
        if k == 0:
            self._unreproduced(sig, scenario)
            return False
        excerpt = result["excerpts"].get(finding["signature"], [])
        self.store.add(NewCase(
            signature=sig, finding=finding, bus=result["bus"], seed=self.c.seed,
            case_toml=to_toml(case), original_toml=to_toml(scenario),
            history_excerpt=excerpt, reliability=(k, RELIABILITY_RUNS),
            minimized=minimized, minimize_runs=runs))
        self.stats.new_signatures.append(sig)
        self.live.note(f"stored {sig}: reliability {k}/{RELIABILITY_RUNS}")
        self.progress("stored", {"signature": sig, "reliability": f"{k}/{RELIABILITY_RUNS}",
                                 "steps": f"{len(scenario.get('schedule', []))}->"
                                          f"{len(case.get('schedule', []))}",
                                 "clients": f"{len(scenario['clients'])}->{len(case['clients'])}"})
        return True

    def _unreproduced(self, sig: str, scenario: Scenario) -> None:
        """Keep the scenario in the work dir for whoever wants to chase it; a CI run does not
        fail on something no fresh run showed again."""
        self.unreproduced.add(sig)
        self.stats.unreproduced.append(sig)
        folder = os.path.join(self.c.out, "unreproduced")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{sig}.toml"), "w") as f:
            f.write(to_toml(scenario))
        entry = self.findings.get(sig)
        if entry is not None:
            entry.status = UNREPRODUCED
            entry.case = os.path.join(folder, f"{sig}.toml")
            entry.reproduce = None
        self.live.note(f"not stored {sig}: 0/{RELIABILITY_RUNS} fresh runs showed it again")
        self.progress("unreproduced", {"signature": sig, "scenario": entry.case if entry else ""})

    def _reproduces(self, scenario: Scenario, finding_sig: str, times: int) -> list[bool]:
        requests = []
        for _ in range(times):
            self.scratch += 1
            requests.append(self._request(-self.scratch, scenario, "repro"))
        out = []
        for r in self.workers.run_now(requests):
            out.append(any(f["signature"] == finding_sig for f in r.get("findings", [])))
            shutil.rmtree(r["out"], ignore_errors=True)
        return out

    def _minimize(self, scenario: Scenario, finding_sig: str) -> tuple[Scenario, int, bool]:
        # Each new finding may take a quarter of the budget (at least 20 s), and all of them
        # together may overrun the budget by MINIMIZE_GRACE_S: a short campaign still hands
        # over small cases, a long one does not stall on one stubborn finding.
        now = time.monotonic()
        deadline = min(now + max(20.0, 0.25 * self.c.budget),
                       self.started + self.c.budget + MINIMIZE_GRACE_S)

        def still_fails(candidate: Scenario) -> bool:
            if time.monotonic() > deadline:
                raise OutOfTests
            return any(self._reproduces(candidate, finding_sig, MINIMIZE_RUNS_PER_CANDIDATE))

        best, calls = minimize_scenario(scenario, still_fails, MAX_MINIMIZE_TESTS)
        return best, calls * MINIMIZE_RUNS_PER_CANDIDATE, calls < MAX_MINIMIZE_TESTS

    # --- reporting ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        s = self.stats
        elapsed = time.monotonic() - self.started
        return {"elapsed": round(elapsed, 1), "budget": round(self.c.budget, 1),
                "execs": s.executions, "execs_per_s": round(s.executions / elapsed, 2)
                if elapsed else 0.0, "corpus": len(self.corpus), "features": len(self.seen),
                "new": len(s.new_signatures), "known_hits": s.known_hits, "errors": s.errors}

    def report(self, error: str | None = None) -> Report:
        s = self.stats
        facts = {"seed": self.c.seed, "shard": f"{self.c.shard[0]}/{self.c.shard[1]}",
                 "jobs": self.c.jobs, "budget s": self.c.budget, "executions": s.executions,
                 "executions/s": round(s.execs_per_s, 2), "generated": s.generated,
                 "mutated": s.mutated, "corpus": len(self.corpus), "features": len(self.seen),
                 "known upstream behaviours": ", ".join(f"{ref} x{n}" for ref, n in
                                                       sorted(s.known_upstream.items()))
                 or "none",
                 "execution errors": s.errors, "crash store": self.c.crashes,
                 "work dir": self.c.out}
        bus = {"label": bus_label(self.c), "kind": self.c.bus.kind, "version": self.bus_version}
        return Report(kind="campaign", name=f"{bus_label(self.c)} seed {self.c.seed}",
                      bus=bus, seconds=round(s.seconds, 1), findings=list(self.findings.values()),
                      facts=facts, error=error)

    def _write_summary(self) -> None:
        s = self.stats
        summary = {**self.snapshot(), "seed": self.c.seed, "shard": list(self.c.shard),
                   "jobs": self.c.jobs, "bus": bus_label(self.c), "generated": s.generated,
                   "mutated": s.mutated, "new_signatures": s.new_signatures,
                   "by_oracle": s.by_oracle, "known_upstream": s.known_upstream,
                   "store": self.c.crashes}
        tmp = os.path.join(self.c.out, "campaign.json.tmp")
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=2)
        os.replace(tmp, os.path.join(self.c.out, "campaign.json"))
