"""Command line: `busrig run SCENARIO.toml --bus dbus-daemon [--seed N] [--out DIR]`.

Exit codes for every command: 0 ran and found nothing, 1 ran and found something, 2 usage or
input error, 3 the rig itself failed. Errors become exit codes here and nowhere else.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
from typing import Any, Sequence

from fuzz.bench.command import add_command as add_bench_command
from fuzz.bench.command import cmd_bench
from fuzz.bus import BusChoice
from fuzz.bus.factory import BUS_KINDS
from fuzz.campaign.commands import add_commands as add_campaign_commands
from fuzz.campaign.commands import cmd_cmin, cmd_fuzz, cmd_merge, cmd_replay
from fuzz.campaign.nightly import add_command as add_nightly_command
from fuzz.campaign.nightly import cmd_nightly
from fuzz.diff.command import add_command as add_diff_command
from fuzz.diff.command import cmd_diff
from fuzz.errors import (
    EXIT_CLEAN,
    EXIT_FOUND,
    EXIT_INPUT,
    EXIT_RIG,
    InputError,
    RigError,
)
from fuzz.report.build import run_reproduce_command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 as well
        self.print_usage(sys.stderr)
        raise InputError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="busrig", description="Robustness and abuse fuzzing rig for D-Bus buses.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run one scenario and judge its history")
    run.add_argument("scenario", help="scenario file (TOML)")
    add_bus_arguments(run)
    run.add_argument("--seed", type=int, default=None,
                     help="seed for every random choice (default: random, printed)")
    run.add_argument("--out", default=None,
                     help="output directory (default: runs/<scenario>-<seed>)")
    run.add_argument("--quiet", action="store_true", help="print only the final verdict")
    add_dashboard_arguments(run)
    listing = sub.add_parser("scenarios", help="list scenarios with their descriptions")
    listing.add_argument("directory", nargs="?", default=None,
                         help="where to look (default: the scenarios/ beside rig.py)")
    sub.add_parser("operators", help="list the fault operators a schedule can use")
    add_campaign_commands(sub, add_bus_arguments, add_dashboard_arguments)
    add_nightly_command(sub, add_bus_arguments, add_dashboard_arguments)
    add_bench_command(sub)
    add_diff_command(sub)
    return parser


def add_bus_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--bus", choices=BUS_KINDS,
                       help="bus to start privately (default: the scenario's bus.kind)")
    group.add_argument("--bus-cmd", metavar="CMD",
                       help="command that prints a D-Bus address as its first stdout line and"
                            " serves until SIGTERM; BUSRIG_DIR names a private dir for it")
    p.add_argument("--bus-env", action="append", metavar="KEY=VALUE",
                   help="set this variable in the bus's environment (repeatable); recorded in"
                        " stored cases and reproduce lines")


def add_dashboard_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--no-dashboard", action="store_true",
                       help="plain progress lines (the default when stdout is not a terminal)")
    group.add_argument("--dashboard", action="store_true",
                       help="the live dashboard even when stdout is not a terminal")


def bus_choice(args: argparse.Namespace, scenario_kind: str | None) -> BusChoice:
    from fuzz.bus.factory import choice_from_args
    return choice_from_args(args, scenario_kind)


QUIET_EVENTS = frozenset({"ping"})  # too many for a log line each; the dashboard draws them


def cmd_run(args: argparse.Namespace) -> int:
    from fuzz.judge import execute
    from fuzz.engine.scenario import load_scenario
    from fuzz.live.dashboard import Dashboard, wants_dashboard
    from fuzz.live.state import LiveState
    from fuzz.report.build import run_report
    from fuzz.report.series import series_from_history
    from fuzz.report.write import REPORT_FILES, write_reports

    scenario = load_scenario(args.scenario)
    choice = bus_choice(args, scenario.bus.kind)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    out = args.out or os.path.join("runs", f"{scenario.name}-{seed}")
    live = LiveState("run", f"{scenario.name} on {choice.label}, seed {seed}",
                     scenario.bound.duration)
    live.on_run_event("exec-start", {"scenario": scenario.name})
    dashboard = not args.quiet and wants_dashboard(args.no_dashboard, args.dashboard)
    plain = (lambda *_: None) if args.quiet or dashboard else print_progress

    def progress(what: str, info: dict[str, Any]) -> None:
        live.on_run_event(what, info)
        plain(what, info)

    plain("start", {"scenario": scenario.path, "bus": choice.label, "seed": seed, "out": out})
    started = time.monotonic()
    with Dashboard(live, force_terminal=args.dashboard) if dashboard \
            else contextlib.nullcontext():
        result = execute(scenario, choice, seed, out, progress=progress)
    report = run_report(result.summary, result.findings, args.scenario, choice.label,
                        choice.cli_args(), time.monotonic() - started, result.summary["error"])
    write_reports(out, report, series_from_history(result.events))
    print_verdict(result, choice, args.scenario)
    print(f"reports: {', '.join(os.path.join(out, f) for f in REPORT_FILES)}")
    if result.error is not None:
        raise result.error
    return EXIT_FOUND if any(f.counts for f in result.findings) else EXIT_CLEAN


def print_progress(what: str, info: dict[str, Any]) -> None:
    if what in QUIET_EVENTS:
        return
    stamp = time.strftime("%H:%M:%S")
    if what == "tick":
        ops = " ".join(f"{k}={v}" for k, v in sorted(info["by_op"].items()))
        line = f"t={info['elapsed']:.1f}s invokes={info['invokes']} {ops}"
    else:
        line = " ".join(f"{k}={v}" for k, v in info.items())
    print(f"[{stamp}] {what}: {line}", flush=True)


def print_verdict(result: Any, choice: BusChoice, scenario_path: str) -> None:
    s = result.summary
    calls, bus = s["calls"], s["bus"]
    lat = calls["latency_us"]
    print(f"history: {s['events']} events -> {os.path.join(result.out_dir, 'history.jsonl')}")
    print(f"calls ok: {calls['ok']}  round trips/s: {calls['round_trips_per_s']}  latency us"
          f" p50/p99/max: {lat['p50']}/{lat['p99']}/{lat['max']}")
    print(f"signals emitted: {s['signals']['emitted']}  received: {s['signals']['received']}")
    print(f"bus ctx switches: {bus['ctx_switches']}  per round trip: {bus['ctx_switches_per_rt']}"
          f"  per message: {bus['ctx_switches_per_message']}")
    print(f"bus + clients ctx switches per round trip: {s['ctx_switches']['all_ctx_switches_per_rt']}")
    for f in result.findings:
        label = "BY POLICY" if f.by_policy else f"KNOWN ({f.known})" if f.known else "FINDING"
        times = f" x{f.count}" if f.count > 1 else ""
        print(f"{label} [{f.severity}] {f.oracle}: {f.title}{times}  ({f.signature})")
    if any(f.counts for f in result.findings) and result.error is None:
        print(f"reproduce: {run_reproduce_command(scenario_path, choice.cli_args(), s['seed'])}")
    if result.error is not None:
        print("verdict: the run did not complete (rig error below); history and summary kept")
    else:
        bugs = [f for f in result.findings if f.counts]
        print("verdict: " + ("found something" if bugs else "nothing new found"
                             + (" (only documented or known upstream behaviour)"
                                if result.findings else "")))


def cmd_scenarios(args: argparse.Namespace) -> int:
    import glob

    from fuzz.engine.scenario import load_scenario
    directory = args.directory or os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "scenarios")
    paths = sorted(glob.glob(os.path.join(directory, "*.toml")))
    if not paths:
        raise InputError(f"no scenarios (*.toml) in {directory}")
    width = max(len(os.path.basename(p)) for p in paths)
    for path in paths:
        sc = load_scenario(path)
        print(f"{os.path.basename(path):{width}}  {sc.description}")
    return EXIT_CLEAN


def cmd_operators(_args: argparse.Namespace) -> int:
    from fuzz.faults import OPERATORS
    for op in sorted(OPERATORS.values(), key=lambda o: (o.family, o.name)):
        params = ", ".join(f"{n}={'<required>' if p.default is ... else p.default!r}"
                           for n, p in op.params.items())
        target = "target, " if op.targets_client else ""
        facts = "; ".join(op.facts())
        print(f"{op.family:8} {op.name:18} {op.help}\n{'':27}params: {target}{params}"
              + (f"\n{'':27}facts: {facts}" if facts else ""))
    return EXIT_CLEAN


COMMANDS = {"run": cmd_run, "scenarios": cmd_scenarios, "operators": cmd_operators,
            "fuzz": cmd_fuzz, "replay": cmd_replay, "merge": cmd_merge, "cmin": cmd_cmin, "nightly": cmd_nightly,
            "bench": cmd_bench, "diff": cmd_diff}


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `busrig scenarios | head` ends quietly
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except InputError as e:
        print(f"busrig: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("busrig: interrupted", file=sys.stderr)
        return EXIT_RIG
    except RigError as e:
        print(f"busrig: {e}", file=sys.stderr)
        return e.exit_code
    finally:
        from fuzz.lifecycle import shutdown_janitor
        shutdown_janitor()


if __name__ == "__main__":
    sys.exit(main())
