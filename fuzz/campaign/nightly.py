"""`busrig nightly`: the CI entry point. Replay the known cases of this bus, fuzz for the rest
of the budget, write every report, and exit 0 (nothing new), 1 (something new), 2 or 3 (an
input or rig error; the reports are still written).

With --shard i/N the known cases are split like the campaign's indexes, so a CI matrix of N
jobs replays each case once, not N times.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from typing import Any

from fuzz.bus.factory import BusChoice, choice_from_args
from fuzz.campaign.commands import (
    add_corpus_arguments,
    corpus_from_args,
    parse_shard,
    replay_case,
    run_campaign,
)
from fuzz.campaign.store import CrashStore
from fuzz.errors import EXIT_CLEAN, EXIT_FOUND, InputError, Interrupted, RigError
from fuzz.report.model import ReportReplay

REPLAY_SHARE = 0.5  # replays may use at most this share of the budget; fuzzing gets the rest


def add_command(sub: Any, add_bus_arguments: Any, add_dashboard_arguments: Any) -> None:
    p = sub.add_parser("nightly", help="CI entry point: replay known cases, fuzz, report")
    add_bus_arguments(p)
    p.add_argument("--budget", type=float, required=True,
                   help="seconds for the whole job (replays first, at most half of it)")
    p.add_argument("--crashes", default="crashes", help="crash store (default: crashes/)")
    add_corpus_arguments(p)
    p.add_argument("--shard", default="0/1", help="i/N: this job's share of cases and indexes")
    p.add_argument("--out", default="nightly", help="reports and work files (default: nightly/)")
    p.add_argument("--seed", type=int, default=None, help="campaign seed (default: random)")
    p.add_argument("--jobs", type=int, default=2, help="campaign workers (default 2)")
    p.add_argument("--replay-times", type=int, default=1, help="runs per known case (default 1)")
    add_dashboard_arguments(p)


def same_bus(meta_bus: dict[str, Any], choice: BusChoice) -> bool:
    if choice.kind:
        return meta_bus.get("kind") == choice.kind
    return meta_bus.get("label") == choice.label


def cases_for(store: CrashStore, choice: BusChoice, shard: tuple[int, int]) -> list[str]:
    mine = [sig for sig in store.signatures() if same_bus(store.meta(sig)["bus"], choice)]
    i, n = shard
    return [sig for k, sig in enumerate(mine) if k % n == i]


def replay_known(store: CrashStore, signatures: list[str], choice: BusChoice, times: int,
                 out: str, deadline: float) -> list[ReportReplay]:
    replays = []
    for sig in signatures:
        case = store.path(sig)
        title = store.meta(sig)["title"]
        if time.monotonic() >= deadline:
            replays.append(ReportReplay(case, title, 0, 0, error="not replayed: replay budget"
                                                               " spent"))
            continue
        try:
            hits, n, _, _ = replay_case(case, choice, times, os.path.join(out, "replays", sig))
            replays.append(ReportReplay(case, title, hits, n))
        except Interrupted:
            raise
        except RigError as e:
            replays.append(ReportReplay(case, title, 0, times, error=f"{type(e).__name__}: {e}"))
        r = replays[-1]
        print(f"replay {case}: " + (r.error or (f"still reproduces ({r.hits}/{r.times})"
                                                if r.reproduces else "no longer reproduces")),
              flush=True)
    return replays


def check_known(choice: BusChoice, seed: int, out: str, deadline: float) -> list[ReportReplay]:
    """Run the scenario of every known upstream behaviour of this bus kind once: it still
    shows, or this version fixed it (fuzz/oracles/known.py). A --bus-cmd bus has no kind."""
    from fuzz.engine.scenario import load_scenario
    from fuzz.judge import execute
    from fuzz.oracles.known import KNOWN, known_status

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    checks = []
    for entry in (k for k in KNOWN if k.bus == choice.kind):
        case = f"known {entry.id} ({entry.reference})"
        path = os.path.join(root, entry.scenario)
        if time.monotonic() >= deadline or not os.path.exists(path):
            why = "replay budget spent" if os.path.exists(path) else f"{entry.scenario} missing"
            checks.append(ReportReplay(case, entry.summary, 0, 0, error=f"not replayed: {why}"))
            continue
        result = execute(load_scenario(path), choice, seed,
                         os.path.join(out, "replays", f"known-{entry.id}"))
        if result.error is not None:
            checks.append(ReportReplay(case, entry.summary, 0, 1,
                                       error=f"{type(result.error).__name__}: {result.error}"))
            continue
        shown = any(f.signature == entry.signature for f in result.findings)
        bus = result.summary["bus"]
        checks.append(ReportReplay(case, entry.summary, int(shown), 1,
                                   note=known_status(entry, shown, bus.get("kind") or "",
                                                     bus.get("version"))))
        print(f"{case}: {checks[-1].note}", flush=True)
    return checks


def cmd_nightly(args: argparse.Namespace) -> int:
    from fuzz.campaign.manager import CampaignConfig

    if not (args.bus or args.bus_cmd):
        raise InputError("nightly needs --bus dbus-daemon|dbus-broker or --bus-cmd CMD")
    if args.budget <= 0 or args.jobs < 1 or args.replay_times < 1:
        raise InputError("--budget must be > 0, --jobs and --replay-times >= 1")
    choice = choice_from_args(args)
    shard = parse_shard(args.shard)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    started = time.monotonic()
    store = CrashStore(args.crashes)
    known = cases_for(store, choice, shard)
    print(f"busrig nightly: {len(known)} known case(s) of {choice.label} in {args.crashes}"
          f" for shard {shard[0]}/{shard[1]}", flush=True)
    replays = replay_known(store, known, choice, args.replay_times, args.out,
                           started + REPLAY_SHARE * args.budget)
    if shard[0] == 0:  # once per matrix: the known upstream behaviours of this bus
        replays += check_known(choice, seed, args.out, started + REPLAY_SHARE * args.budget)
    remaining = round(max(args.budget - (time.monotonic() - started),
                          (1 - REPLAY_SHARE) * args.budget), 1)
    config = CampaignConfig(bus=choice, budget=remaining, seed=seed, out=args.out,
                            crashes=args.crashes, corpus=corpus_from_args(args),
                            sync_dir=args.sync_dir, jobs=args.jobs, shard=shard)
    if config.corpus and shard[0] == 0:  # once per matrix, before fuzzing: a lean corpus
        from fuzz.campaign import corpus_dir
        key = corpus_dir.key_for_choice(choice)
        if os.path.isdir(os.path.join(config.corpus, key)):
            before, after, features, _ = corpus_dir.minimize(config.corpus, key)
            print(f"busrig nightly: corpus {key}: {before} entries -> {after}, covering"
                  f" {features} stable features", flush=True)
    stats = run_campaign(config, args, replays=replays, kind="nightly")
    errors = [r for r in replays if r.error and not r.error.startswith("not replayed")]
    if errors:
        raise RigError(f"{len(errors)} known case(s) could not be replayed; see"
                       f" {os.path.join(args.out, 'report.html')}")
    return EXIT_FOUND if stats.new_signatures else EXIT_CLEAN
