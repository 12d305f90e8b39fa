"""`busrig fuzz`, `busrig replay` and `busrig merge`: the campaign's command line."""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import time
from typing import Any

from fuzz.bus.factory import BusChoice, choice_from_args
from fuzz.errors import EXIT_CLEAN, EXIT_FOUND, InputError


def add_commands(sub: Any, add_bus_arguments: Any, add_dashboard_arguments: Any) -> None:
    fuzz = sub.add_parser("fuzz", help="run a fuzz campaign until the budget is spent")
    add_bus_arguments(fuzz)
    fuzz.add_argument("--budget", type=float, required=True, help="seconds to fuzz")
    fuzz.add_argument("--seed", type=int, default=None, help="campaign seed (default: random)")
    fuzz.add_argument("--jobs", type=int, default=1, help="parallel workers, each with its own bus")
    fuzz.add_argument("--crashes", default="crashes", help="crash store (default: crashes/)")
    add_corpus_arguments(fuzz)
    fuzz.add_argument("--shard", default="0/1", help="i/N: run only shard i of N of the seed's"
                                                     " execution indexes (for CI matrices)")
    fuzz.add_argument("--out", default=None, help="work dir (default: runs/fuzz-<seed>)")
    fuzz.add_argument("--no-feedback", action="store_true",
                      help="pure random generation (no corpus, no mutation)")
    fuzz.add_argument("--no-minimize", action="store_true", help="store findings unminimized")
    fuzz.add_argument("--max-execs", type=int, default=None, help="stop after this many")
    fuzz.add_argument("--short", action="store_true",
                      help="only the cheapest scenarios (one caller, at most one fault):"
                           " for measuring the rig's own speed")
    fuzz.add_argument("--diff", metavar="A,B", default=None,
                      help="differential campaign: run every scenario on bus A and bus B"
                           " (dbus-daemon, dbus-broker or a command) and find where what the"
                           " clients observed differs (instead of --bus/--bus-cmd)")
    add_dashboard_arguments(fuzz)

    replay = sub.add_parser("replay", help="re-run a stored case: does it still reproduce?")
    replay.add_argument("case", help="a crash store entry (crashes/<signature>)")
    add_bus_arguments(replay)
    replay.add_argument("--times", type=int, default=3, help="runs (default 3)")
    replay.add_argument("--out", default=None,
                        help="keep the runs here (default: runs/replay-<signature>)")

    merge = sub.add_parser("merge", help="merge crash stores by signature, or corpora by entry,"
                                         " into the first")
    merge.add_argument("stores", nargs="+", help="INTO FROM... (crash stores, or corpus"
                                                 " directories: all of one kind)")

    cmin = sub.add_parser("cmin", help="keep the fewest corpus entries that show every"
                                       " stable feature")
    cmin.add_argument("corpus", help="a corpus directory (fuzz --corpus)")
    cmin.add_argument("--key", default=None, help="one bus's entries only (a subdirectory name;"
                                                  " default: every key)")
    cmin.add_argument("--dry-run", action="store_true", help="say what would go; remove nothing")


def add_corpus_arguments(p: Any) -> None:
    p.add_argument("--corpus", default=None,
                   help="corpus directory, loaded at start, added to as the campaign learns,"
                        " shared by campaigns that name the same one (default: corpus/ beside"
                        " the crash store)")
    p.add_argument("--no-corpus", action="store_true",
                   help="start from nothing and keep nothing (no corpus directory)")
    p.add_argument("--sync-dir", default=None,
                   help="a directory shared with parallel campaigns (AFL++'s -M/-S model):"
                        " their corpus (DIR/corpus unless --corpus) and claims, so a"
                        " signature one found is minimized and stored once")


def corpus_from_args(args: argparse.Namespace) -> str | None:
    from fuzz.campaign.config import default_corpus
    if args.no_corpus:
        return None
    if args.corpus:
        return args.corpus
    return os.path.join(args.sync_dir, "corpus") if args.sync_dir else \
        default_corpus(args.crashes)


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must look like i/N (e.g. 0/4); got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise InputError(f"--shard {text}: need 0 <= i < N")
    return i, n


def cmd_fuzz(args: argparse.Namespace) -> int:
    from fuzz.campaign.manager import CampaignConfig
    from fuzz.diff.run import choice_of

    diff = None
    if args.diff:
        if args.bus or args.bus_cmd:
            raise InputError("--diff A,B names both buses; leave out --bus and --bus-cmd")
        names = [n.strip() for n in args.diff.split(",")]
        if len(names) != 2 or not all(names):
            raise InputError(f"--diff wants two buses, A,B; got {args.diff!r}")
        choice, diff = choice_of(names[0]), choice_of(names[1])
    elif not (args.bus or args.bus_cmd):
        raise InputError("fuzz needs --bus dbus-daemon|dbus-broker, --bus-cmd CMD or --diff A,B")
    else:
        choice = choice_from_args(args)
    if args.budget <= 0 or args.jobs < 1:
        raise InputError("--budget must be > 0 and --jobs >= 1")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    shard = parse_shard(args.shard)
    out = args.out or os.path.join("runs", f"fuzz-{seed}-{shard[0]}of{shard[1]}")
    config = CampaignConfig(bus=choice, budget=args.budget, seed=seed, out=out,
                            crashes=args.crashes, corpus=corpus_from_args(args),
                            sync_dir=args.sync_dir, jobs=args.jobs, shard=shard,
                            feedback=not args.no_feedback, minimize=not args.no_minimize,
                            max_execs=args.max_execs, short=args.short, diff=diff)
    stats = run_campaign(config, args)
    return EXIT_FOUND if stats.new_signatures else EXIT_CLEAN


def run_campaign(config: Any, args: argparse.Namespace,
                 replays: list[Any] | None = None, kind: str = "campaign") -> Any:
    """Run a campaign with the dashboard or plain progress; write its reports even if it
    fails (then re-raise). `replays` (nightly) go into the same report."""
    from fuzz.campaign.manager import Campaign, bus_label
    from fuzz.campaign.progress import campaign_progress
    from fuzz.live.dashboard import Dashboard, wants_dashboard
    from fuzz.report.write import REPORT_FILES, write_reports

    c = config
    print(f"busrig fuzz: bus {bus_label(c)}, seed {c.seed}, shard {c.shard[0]}/{c.shard[1]},"
          f" {c.jobs} job(s), budget {c.budget:g} s, store {c.crashes},"
          f" corpus {c.corpus or 'none'}, work dir {c.out}",
          flush=True)
    os.makedirs(c.out, exist_ok=True)
    dashboard = wants_dashboard(args.no_dashboard, args.dashboard)
    with contextlib.ExitStack() as stack:
        # Under the dashboard the workers' stderr would scribble over the screen.
        stderr = stack.enter_context(open(os.path.join(c.out, "workers.log"), "a")) \
            if dashboard else None
        campaign = Campaign(c, None if dashboard else campaign_progress(), stderr)
        error: str | None = None
        try:
            with Dashboard(campaign.live, force_terminal=args.dashboard) \
                    if dashboard else contextlib.nullcontext():
                stats = campaign.run()
        except BaseException as e:
            error = f"{type(e).__name__}: {e}"
            raise
        finally:
            report = campaign.report(error)
            report.kind = kind
            report.replays = replays or []
            write_reports(c.out, report, campaign.live.series)
            print(f"reports: {', '.join(os.path.join(c.out, f) for f in REPORT_FILES)}")
    print(f"done: {stats.executions} executions in {stats.seconds:.1f} s"
          f" ({stats.execs_per_s:.2f}/s), corpus {stats.corpus}, {stats.features} features,"
          f" {len(stats.new_signatures)} new finding(s), {stats.known_hits} known hit(s)"
          + "".join(f", known: {ref} x{n}" for ref, n in sorted(stats.known_upstream.items()))
          + (f", {len(stats.unreproduced)} not reproduced by fresh runs (not stored; scenarios"
             f" in {os.path.join(c.out, 'unreproduced')})" if stats.unreproduced else ""))
    for sig in stats.new_signatures:
        print(f"new: {os.path.join(c.crashes, sig)}  (python rig.py replay"
              f" {os.path.join(c.crashes, sig)})")
    return stats


def replay_case(case_dir: str, choice: BusChoice | None, times: int,
                out_root: str) -> tuple[int, int, dict[str, Any], str | None]:
    """Run a stored case `times` times: (how many showed its signature, times, meta, the
    title the finding had in the last run that showed it)."""
    from fuzz.campaign.store import CrashStore
    from fuzz.judge import execute, execute_repeated
    from fuzz.engine.scenario import load_scenario

    case_dir = os.path.normpath(case_dir)
    store = CrashStore(os.path.dirname(case_dir) or ".")
    signature = os.path.basename(case_dir)
    if not store.has(signature):
        raise InputError(f"{case_dir}: not a crash store entry (no meta.json)")
    meta = store.meta(signature)
    bus = meta["bus"]
    scenario = load_scenario(os.path.join(case_dir, "case.toml"))
    hits, seen = 0, None
    if bus.get("diff"):  # a difference between two buses: run both and compare
        from fuzz.diff.run import run_diff
        if choice is not None:
            raise InputError(f"{case_dir} is a difference between {bus['label']}: it is"
                             " replayed on those two buses (leave out --bus/--bus-cmd)")
        a, b = (BusChoice(**spec) for spec in bus["diff"])
        for i in range(times):
            run = run_diff(scenario, a, b, int(meta["seed"]), os.path.join(out_root, f"run-{i}"))
            hits += any(f.signature == meta["finding_signature"] for f in run.findings)
        return hits, times, meta, None
    if choice is None:
        env = bus.get("env") or {}  # what the bus ran with when the case was found
        choice = BusChoice(kind=bus["kind"], env=env) if bus.get("kind") in (
            "dbus-daemon", "dbus-broker") else BusChoice(command=bus["label"][len("command("):-1],
                                                         env=env)
    repeat = int(meta.get("repeat") or 1)
    for i in range(times):
        out = os.path.join(out_root, f"run-{i}")
        result = execute(scenario, choice, int(meta["seed"]), out) if repeat == 1 else \
            execute_repeated(scenario, choice, int(meta["seed"]), out, repeat)
        if result.error is not None:
            raise result.error
        shown = [f for f in result.findings if f.signature == meta["finding_signature"]]
        hits += bool(shown)
        seen = shown[0].title if shown else seen
    return hits, times, meta, seen


def cmd_replay(args: argparse.Namespace) -> int:
    choice = None
    if args.bus or args.bus_cmd:
        choice = choice_from_args(args)
    out = args.out or os.path.join("runs", f"replay-{os.path.basename(os.path.normpath(args.case))}")
    started = time.monotonic()
    hits, times, meta, seen = replay_case(args.case, choice, args.times, out)
    verdict = "still reproduces" if hits else "does not reproduce"
    if meta.get("repeat"):
        verdict += f" (each run: the case {meta['repeat']} times on one bus" + \
            (f"; last: {seen})" if seen else ")")
    print(f"{meta['title']} ({meta['signature']}): {verdict}: {hits}/{times} runs"
          f" in {time.monotonic() - started:.1f} s (stored reliability {meta['reliability']});"
          f" runs in {out}")
    return EXIT_FOUND if hits else EXIT_CLEAN


def cmd_cmin(args: argparse.Namespace) -> int:
    from fuzz.campaign import corpus_dir
    if not corpus_dir.is_corpus(args.corpus):
        raise InputError(f"{args.corpus}: not a corpus directory (no corpus.json)")
    names = [args.key] if args.key else corpus_dir.keys(args.corpus)
    for key in names:
        if not os.path.isdir(os.path.join(args.corpus, key)):
            raise InputError(f"{args.corpus}: no key {key!r} (keys: "
                             f"{', '.join(corpus_dir.keys(args.corpus)) or 'none'})")
        before, after, features, skipped = corpus_dir.minimize(args.corpus, key, args.dry_run)
        print(f"{key}: {before} entries -> {after} ({'would keep' if args.dry_run else 'kept'}),"
              f" covering all {features} stable features; trusts the stored features"
              f" (queue, latency, process-state and memory buckets are not minimized on)"
              + "".join(f"\n  skipped {w}" for w in skipped))
    return EXIT_CLEAN


def cmd_merge(args: argparse.Namespace) -> int:
    from fuzz.campaign import corpus_dir
    from fuzz.campaign.store import CrashStore
    if len(args.stores) < 2:
        raise InputError("merge needs a target store and at least one store to merge into it")
    corpora = [corpus_dir.is_corpus(p) for p in args.stores[1:]]
    if any(corpora):
        if not all(corpora):
            raise InputError("merge takes crash stores or corpora, not both: "
                             + ", ".join(p for p, c in zip(args.stores[1:], corpora) if not c)
                             + " has no corpus.json")
        for path in args.stores[1:]:
            new, known, skipped = corpus_dir.merge(args.stores[0], path)
            print(f"{path}: {new} new corpus entr{'y' if new == 1 else 'ies'}, {known} already"
                  f" in {args.stores[0]}" + "".join(f"\n  skipped {w}" for w in skipped))
        return EXIT_CLEAN
    into = CrashStore(args.stores[0])
    for path in args.stores[1:]:
        if not os.path.isdir(path):
            raise InputError(f"{path}: no such crash store")
        new, merged = into.merge_from(CrashStore(path))
        print(f"{path}: {new} new case(s), {merged} known case(s) merged into {args.stores[0]}")
    return EXIT_CLEAN
