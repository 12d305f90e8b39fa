"""`busrig diff SCENARIO.toml --bus A --bus B [--seed N] [--out DIR]`."""

from __future__ import annotations

import argparse
import os
import random
import shlex
import time
from typing import Any

from fuzz.diff.compare import Difference
from fuzz.errors import EXIT_CLEAN, EXIT_FOUND, InputError


def add_command(sub: Any) -> None:
    p = sub.add_parser("diff", help="run one scenario on two buses and report every difference"
                                    " in what the clients observed")
    p.add_argument("scenario", help="scenario file (TOML)")
    p.add_argument("--bus", action="append", default=[], metavar="BUS",
                   help="give twice: dbus-daemon, dbus-broker, or a bus command (as --bus-cmd)")
    p.add_argument("--seed", type=int, default=None, help="seed for both runs (default: random)")
    p.add_argument("--out", default=None, help="output dir (default runs/diff-<scenario>-<seed>)")


def reproduce_command(scenario_path: str, a: str, b: str, seed: int) -> str:
    return (f"python rig.py diff {scenario_path} --bus {shlex.quote(a)} --bus {shlex.quote(b)}"
            f" --seed {seed}")


def cmd_diff(args: argparse.Namespace) -> int:
    from fuzz.diff.run import choice_of, run_diff
    from fuzz.engine.scenario import load_scenario
    from fuzz.report.build import report_finding
    from fuzz.report.model import Report
    from fuzz.report.series import series_from_history
    from fuzz.report.write import REPORT_FILES, write_reports

    if len(args.bus) != 2:
        raise InputError("diff needs --bus twice: the two buses to compare")
    scenario = load_scenario(args.scenario)
    a, b = choice_of(args.bus[0]), choice_of(args.bus[1])
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    out = args.out or os.path.join("runs", f"diff-{scenario.name}-{seed}")
    print(f"busrig diff: {scenario.path} on {a.label} and {b.label}, seed {seed},"
          f" out {out}", flush=True)
    started = time.monotonic()
    run = run_diff(scenario, a, b, seed, out)
    reproduce = reproduce_command(args.scenario, args.bus[0], args.bus[1], seed)
    print_differences(run.differences, a.label, b.label)
    report = Report(
        kind="diff", name=f"{scenario.name}: {a.label} vs {b.label}",
        bus={"label": f"{a.label} vs {b.label}",
             "version": " / ".join(str(r.summary["bus"].get("version")) for r in run.results)},
        seconds=round(time.monotonic() - started, 1),
        findings=[report_finding(f, reproduce) for f in run.findings],
        facts={"scenario": args.scenario, "seed": seed, "differences": len(run.differences),
               "documented": sum(1 for d in run.differences if d.rule),
               "runs": f"{os.path.join(out, 'a')} and {os.path.join(out, 'b')}",
               "reproduce": reproduce})
    write_reports(out, report, series_from_history(run.results[0].events))
    print(f"reports: {', '.join(os.path.join(out, f) for f in REPORT_FILES)}")
    new = [d for d in run.differences if d.rule is None]
    if new:
        print(f"reproduce: {reproduce}")
    print(f"verdict: {len(new)} undocumented difference(s),"
          f" {len(run.differences) - len(new)} documented")
    return EXIT_FOUND if new else EXIT_CLEAN


def print_differences(diffs: list[Difference], label_a: str, label_b: str) -> None:
    from rich.console import Console
    from rich.table import Table

    if not diffs:
        print("no differences in what the clients observed")
        return
    table = Table(title="what the clients observed, where the buses differ")
    table.add_column("observation")
    table.add_column(label_a)
    table.add_column(label_b)
    table.add_column("documented")
    for d in diffs:
        table.add_row(d.key, d.a, d.b, f"{d.rule.id} ({d.rule.source})" if d.rule else "NO")
    Console().print(table)
