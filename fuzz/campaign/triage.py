"""Triage inside a campaign: each finding of an execution is counted apart (a documented
excuse, a known upstream behaviour), as a hit of a stored case, or as new; a new one is
minimized, its reliability measured on fresh buses, and stored, or set aside as unreproduced.
It also keeps what the campaign's report says about every signature it saw."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any, Callable, Sequence

from fuzz.campaign.config import CampaignConfig, CampaignStats
from fuzz.campaign.corpus_dir import Claims
from fuzz.campaign.generate import to_toml
from fuzz.campaign.minimize import OutOfTests, minimize_scenario
from fuzz.campaign.store import CrashStore, NewCase, store_signature
from fuzz.campaign.workers import Workers, make_request
from fuzz.engine.scenario import ScenarioTable
from fuzz.live.state import LiveState
from fuzz.report.model import KNOWN, NEW, UNREPRODUCED, ReportFinding

RELIABILITY_RUNS = 3
MINIMIZE_RUNS_PER_CANDIDATE = 2  # a candidate counts as failing if any of these shows it
MAX_MINIMIZE_TESTS = 40
MINIMIZE_GRACE_S = 20.0

Progress = Callable[[str, dict[str, Any]], None]


class Triage:
    def __init__(self, config: CampaignConfig, stats: CampaignStats, store: CrashStore,
                 live: LiveState, progress: Progress):
        self.c = config
        self.stats = stats
        self.store = store
        self.live = live
        self.progress = progress
        self.workers: Workers | None = None
        self.started = 0.0
        self.scratch = 0
        self.last_shown: dict[str, Any] | None = None  # the finding as a reproduction showed it
        self.findings: dict[str, ReportFinding] = {}  # store signature -> what the report says
        # Seen once, then not in any of the fresh reliability runs: not stored, not retried.
        self.unreproduced: set[str] = set()
        self.claims = Claims(config.sync_dir, {"seed": config.seed, "shard": list(config.shard),
                                               "pid": os.getpid(), "host": os.uname().nodename,
                                               "store": os.path.abspath(config.crashes)}) \
            if config.sync_dir else None

    def attach(self, workers: Workers, started: float) -> None:
        """The campaign's workers (reproductions run on them) and when it started (the budget)."""
        self.workers, self.started = workers, started

    def absorb(self, result: dict[str, Any], scenario: ScenarioTable) -> list[str]:
        """Every finding of one execution; returns the signatures newly stored."""
        stored: list[str] = []
        for f in result.get("findings", []):
            sig = self.consider(f, scenario, result, stored)
            if sig is not None:
                stored.append(sig)
        return stored

    def confirm(self, suspicion: dict[str, Any], scenario: ScenarioTable,
                repeat: int) -> dict[str, Any] | None:
        """A growth suspicion judged by one run of `scenario` repeated on one bus: the finding
        in the repetitions' own numbers, or None (a suspicion is no finding until then)."""
        self.stats.suspicions += 1
        self.last_shown = None
        self.live.phase = f"repeating a case {repeat} times: {suspicion['title']}"
        shown = any(self._reproduces(scenario, suspicion["signature"], 1, repeat))
        self.live.phase = "fuzzing"
        if not shown:
            return None
        self.stats.suspicions_confirmed += 1
        return self.last_shown

    def consider(self, f: dict[str, Any], scenario: ScenarioTable, result: dict[str, Any],
                 stored: Sequence[str] = (), repeat: int = 1) -> str | None:
        """One finding: counted apart, a hit of a stored case, or new (then minimized and
        stored: its store signature is returned). `repeat`: the finding shows when the case
        is run that many times on one bus (a growth trend), so every reproduction does so."""
        if f["by_policy"]:
            return None
        if f.get("known"):  # a known behaviour of this bus version: counted apart
            self.stats.known_upstream[f["known"]] = self.stats.known_upstream.get(f["known"], 0) + 1
            return None
        sig = store_signature(f["signature"], result["bus"]["kind"] or "bus")
        self.stats.by_oracle[f["oracle"]] = self.stats.by_oracle.get(f["oracle"], 0) + 1
        self._seen(sig, f)
        if sig in self.unreproduced:
            return None
        if self.store.has(sig) or sig in stored:
            self.store.hit(sig)
            self.stats.known_hits += 1
            self.stats.known[sig] = self.stats.known.get(sig, 0) + 1
            self.live.finding(sig, f["oracle"], f["title"], new=False)
            return None
        holder = self.stats.claimed_elsewhere.get(sig) or (
            self._claimed_by(sig) if self.claims else None)
        if holder:  # another campaign of the sync dir minimizes and stores it
            entry = self.findings[sig]
            if entry.status == NEW:
                entry.status = KNOWN
                entry.explanation = f"Minimized and stored by another campaign of the sync" \
                                    f" directory: {holder}.\n\n{entry.explanation}"
            self.stats.known_hits += 1
            self.live.finding(sig, f["oracle"], f["title"], new=False)
            return None
        self.live.finding(sig, f["oracle"], f["title"], new=True)
        return sig if self._store_new(sig, f, scenario, result, repeat) else None

    def _claimed_by(self, sig: str) -> str | None:
        """Who holds the claim on a new signature, if another campaign does (then it is
        remembered); None when this campaign has just taken it."""
        assert self.claims is not None
        claim = self.claims.take(sig)
        if claim is None:
            return None
        holder = f"seed {claim.get('seed')} shard {claim.get('shard')} (pid {claim.get('pid')}" \
                 f" on {claim.get('host')}, store {claim.get('store')})"
        self.stats.claimed_elsewhere[sig] = holder
        self.progress("claimed-elsewhere", {"signature": sig, "by": holder})
        return holder

    def _seen(self, sig: str, finding: dict[str, Any]) -> None:
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

    def _store_new(self, sig: str, finding: dict[str, Any], scenario: ScenarioTable,
                   result: dict[str, Any], repeat: int) -> bool:
        """Minimize, measure reliability and store; False if it never reproduced."""
        self.progress("new", {"signature": sig, "title": finding["title"]})
        self.live.phase = f"minimizing {sig}"
        case, runs, minimized = scenario, 0, False
        if self.c.minimize:
            case, runs, minimized = self._minimize(scenario, finding["signature"], repeat)
        k = sum(self._reproduces(case, finding["signature"], RELIABILITY_RUNS, repeat))
        if k == 0 and case is not scenario:  # the reduction may have lost a flaky trigger
            case, minimized = scenario, False
            k = sum(self._reproduces(case, finding["signature"], RELIABILITY_RUNS, repeat))
        self.live.phase = "fuzzing"
        if k == 0:
            self._set_aside(sig, scenario)
            return False
        if repeat > 1 and self.last_shown is not None:
            finding = self.last_shown  # in the repetitions' own numbers
        excerpt = result["excerpts"].get(finding["signature"], [])
        self.store.add(NewCase(
            signature=sig, finding=finding, bus=result["bus"], seed=self.c.seed,
            case_toml=to_toml(case), original_toml=to_toml(scenario),
            history_excerpt=excerpt, reliability=(k, RELIABILITY_RUNS),
            minimized=minimized, minimize_runs=runs, repeat=repeat))
        self.stats.new_signatures.append(sig)
        self.live.note(f"stored {sig}: reliability {k}/{RELIABILITY_RUNS}")
        self.progress("stored", {"signature": sig, "reliability": f"{k}/{RELIABILITY_RUNS}",
                                 "steps": f"{len(scenario.get('schedule', []))}->"
                                          f"{len(case.get('schedule', []))}",
                                 "clients": f"{len(scenario['clients'])}->{len(case['clients'])}"})
        return True

    def _set_aside(self, sig: str, scenario: ScenarioTable) -> None:
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

    def _reproduces(self, scenario: ScenarioTable, finding_sig: str, times: int,
                    repeat: int = 1) -> list[bool]:
        requests = []
        for _ in range(times):
            self.scratch += 1  # indexes out of the campaign's own range
            request = make_request(-self.scratch, scenario, self.c.seed, self.c.out, "repro")
            requests.append({**request, "repeat": repeat} if repeat > 1 else request)
        out = []
        assert self.workers is not None
        for r in self.workers.run_now(requests):
            shown = [f for f in r.get("findings", []) if f["signature"] == finding_sig]
            out.append(bool(shown))
            self.last_shown = shown[0] if shown else self.last_shown
            shutil.rmtree(r["out"], ignore_errors=True)
        return out

    def _minimize(self, scenario: ScenarioTable, finding_sig: str,
                  repeat: int = 1) -> tuple[ScenarioTable, int, bool]:
        # Each new finding may take a quarter of the budget (at least 20 s), and all of them
        # together may overrun the budget by MINIMIZE_GRACE_S: a short campaign still hands
        # over small cases, a long one does not stall on one stubborn finding.
        now = time.monotonic()
        deadline = min(now + max(20.0, 0.25 * self.c.budget),
                       self.started + self.c.budget + MINIMIZE_GRACE_S)

        def still_fails(candidate: ScenarioTable) -> bool:
            if time.monotonic() > deadline:
                raise OutOfTests
            return any(self._reproduces(candidate, finding_sig, MINIMIZE_RUNS_PER_CANDIDATE,
                                        repeat))

        best, calls = minimize_scenario(scenario, still_fails, MAX_MINIMIZE_TESTS)
        return best, calls * MINIMIZE_RUNS_PER_CANDIDATE, calls < MAX_MINIMIZE_TESTS
