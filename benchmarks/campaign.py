"""Campaign throughput and the worth of feedback, measured side by side in one run.

    python benchmarks/campaign.py [SECONDS] [--only throughput|feedback] [--seeds N]
                                  [--first-seed S]

1. Executions per second of a campaign (no minimization) against dbus-daemon and dbus-broker,
   and with "short" executions only (traffic and at most one fault, the shape the issue's goal
   names). SECONDS per campaign, default 60.
2. Feedback against pure random generation on the buggy relay with three planted bugs of
   different depth, N seeds from S (default 3 from 11) of 2 x SECONDS each, both modes on the
   same seed, budget, workers and bus:
   - a message of 60,000 bytes or more hangs it (one big-message attack or a caller's 64 KiB
     payload: shallow);
   - a message with 8 or more fds aborts it (a caller passing 8 fds: shallow);
   - the chain bug (relay.py --chain-bug): three things in one session, in any order: a
     connection was sent more than 128 fds (callers then see LimitsExceeded: "chain-1"), a 4 KiB
     broadcast (with the first: broadcasts lost, calls get NoMemory: "chain-2"), a second
     well-known name requested; all three: SIGSEGV. A generated scenario has the first about
     one time in 40, the second one in 4, the third one in 4; all three one in about 800.
   It prints, per campaign, the distinct signatures stored (and how many per oracle) and when
   (seconds into the campaign) each planted bug and each chain step was first seen.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELAY = f"{sys.executable} {os.path.join(ROOT, 'tests', 'buggy_bus', 'relay.py')}"
BUGGY = f"{RELAY} --hang-on-size 60000 --crash-on-fds 8 --chain-bug"
FEEDBACK_JOBS = "4"
# What marks each planted bug or chain step in a campaign's log: a finding title or a feature.
MARKS = {
    "size-hang": lambda f: f["oracle"] == "hang",
    "fd-crash": lambda f: f["oracle"] == "crash" and "SIGABRT" in f["title"],
    "chain-crash": lambda f: f["oracle"] == "crash" and "SIGSEGV" in f["title"],
    # step 2 drops broadcasts (its NoMemory answers show only if a call comes after it)
    "chain-2": lambda f: f["oracle"] == "loss" and "broadcast" in f["title"],
}
PLANTED = ("size-hang", "fd-crash", "chain-crash")
STEPS = {"chain-1": "Error.LimitsExceeded"}


def campaign(bus: list[str], seconds: float, *extra: str, seed: int = 11) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "work")
        subprocess.run([sys.executable, os.path.join(ROOT, "rig.py"), "fuzz", *bus,
                        "--budget", str(seconds), "--seed", str(seed),
                        "--crashes", os.path.join(tmp, "store"), "--out", out,
                        "--no-dashboard", *extra],
                       capture_output=True, text=True, cwd=ROOT, check=False)
        with open(os.path.join(out, "campaign.json")) as f:
            summary = json.load(f)
        with open(os.path.join(out, "campaign.jsonl")) as f:
            log = [json.loads(line) for line in f]
        with open(os.path.join(out, "report.json")) as f:
            findings = json.load(f)["findings"]
    features = set()
    for e in log:
        features.update(e["new_features"])
    summary.update(signatures=len(summary["new_signatures"]), distinct_features=len(features),
                   first_seen=first_seen(log, findings),
                   by_oracle=Counter(sig.split("-")[0] for sig in summary["new_signatures"]))
    return summary


def first_seen(log: list[dict], findings: list[dict]) -> dict[str, float]:
    """Seconds into the campaign at which each planted bug and chain step first showed."""
    out: dict[str, float] = {}
    for mark, matches in MARKS.items():
        sigs = {f["signature"].rsplit("-", 1)[0] for f in findings if matches(f)}
        times = [e["at"] for e in log if sigs & set(e["findings"])]
        if times:
            out[mark] = min(times)
    for step, error in STEPS.items():
        times = [e["at"] for e in log
                 if any(f.startswith("fail:") and f.endswith(error) for f in e["new_features"])]
        if times:
            out[step] = min(times)
    return out


def throughput(seconds: float) -> None:
    print(f"campaign throughput, {seconds:g} s each, no minimization:")
    for label, bus, extra in (
            ("dbus-daemon, 2 workers", ["--bus", "dbus-daemon"], ("--jobs", "2")),
            ("dbus-broker, 2 workers", ["--bus", "dbus-broker"], ("--jobs", "2")),
            ("dbus-daemon, 6 workers", ["--bus", "dbus-daemon"], ("--jobs", "6")),
            ("dbus-daemon, short, 2 workers", ["--bus", "dbus-daemon"],
             ("--short", "--no-feedback", "--jobs", "2")),
            ("dbus-daemon, short, 6 workers", ["--bus", "dbus-daemon"],
             ("--short", "--no-feedback", "--jobs", "6")),
            ("dbus-broker, short, 6 workers", ["--bus", "dbus-broker"],
             ("--short", "--no-feedback", "--jobs", "6"))):
        s = campaign(bus, seconds, "--no-minimize", *extra)
        print(f"  {label:32} {s['execs']:5} executions  {s['execs_per_s']:6.2f}/s")


def feedback(seconds: float, seeds: range) -> None:
    print(f"\nfeedback vs pure random generation on the buggy relay"
          f" ({BUGGY.split('relay.py')[1].strip()}), {seconds:g} s each, {FEEDBACK_JOBS} workers,"
          f" no minimization; first seen (s):")
    marks = [*PLANTED, *STEPS, *(m for m in MARKS if m not in PLANTED)]
    print(f"  {'mode':9} {'seed':>4} {'execs':>5} {'sigs':>4} {'feats':>5}  "
          + "  ".join(f"{m:>11}" for m in marks) + "  stored by oracle")
    modes = ("feedback", "random")
    oracles: dict[str, Counter] = {m: Counter() for m in modes}  # stored signatures
    elapsed = dict.fromkeys(modes, 0.0)
    bugs = dict.fromkeys(modes, 0)
    for seed in seeds:
        for mode, extra in zip(modes, ((), ("--no-feedback",))):
            s = campaign(["--bus-cmd", BUGGY], seconds, "--no-minimize", "--jobs",
                         FEEDBACK_JOBS, *extra, seed=seed)
            seen = s["first_seen"]
            oracles[mode].update(s["by_oracle"])
            elapsed[mode] += s["elapsed"]
            bugs[mode] += sum(1 for m in PLANTED if m in seen)
            print(f"  {mode:9} {seed:4} {s['execs']:5} {s['signatures']:4}"
                  f" {s['distinct_features']:5}  "
                  + "  ".join(f"{seen[m]:11.1f}" if m in seen else f"{'-':>11}" for m in marks)
                  + f"  {by_oracle(s['by_oracle'])}")
    # collateral signatures are mostly the oracle blaming attacks for the relay's own fd quota
    # (docs/campaigns.md), so the rate is also printed without them
    for label, leave_out in (("stored signatures", ()), ("without collateral", ("collateral",))):
        rate = {m: 60.0 * sum(n for o, n in oracles[m].items() if o not in leave_out)
                / elapsed[m] for m in modes}
        print(f"  {label} per minute: feedback {rate['feedback']:.2f},"
              f" random {rate['random']:.2f}, ratio"
              f" {rate['feedback'] / rate['random'] if rate['random'] else float('inf'):.2f}")
    for m in modes:
        print(f"  {m} stored by oracle: {by_oracle(oracles[m])}")
    print(f"  planted bugs found (of {len(PLANTED) * len(seeds)}): feedback {bugs['feedback']},"
          f" random {bugs['random']}")


def by_oracle(counts: Counter) -> str:
    return " ".join(f"{o}:{n}" for o, n in sorted(counts.items()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("seconds", nargs="?", type=float, default=60.0)
    p.add_argument("--only", choices=("throughput", "feedback"))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=11)
    args = p.parse_args()
    if args.only != "feedback":
        throughput(args.seconds)
    if args.only != "throughput":
        feedback(2 * args.seconds, range(args.first_seed, args.first_seed + args.seeds))


if __name__ == "__main__":
    main()
