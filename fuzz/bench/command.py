"""`busrig bench [--quick] [--json FILE] [--out DIR]`: everything measured side by side in one
run on this machine, shown as a rich table and a plot (OUT/bench.svg), optionally as JSON."""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from fuzz.bench.measure import (
    RAW_CLIENT,
    Result,
    fanout_results,
    fd_results,
    ingest_rate,
    rt_results,
    size_results,
    target,
)
from fuzz.errors import EXIT_CLEAN, InputError

TARGETS = ("socketpair", "dbus-daemon", "dbus-broker")


@dataclass(frozen=True)
class Plan:
    round_trips: int
    fd_calls: int
    sizes: tuple[int, ...]
    size_calls: int
    listeners: tuple[int, ...]
    signals: int
    ingest_signals: int
    campaign_s: float
    campaign_buses: tuple[str, ...]
    watcher_ops: int
    minimize_s: float | None  # None: skipped


QUICK = Plan(round_trips=2000, fd_calls=500, sizes=(64, 4096, 65536, 1 << 20), size_calls=300,
             listeners=(1, 4), signals=5000, ingest_signals=20000, campaign_s=10,
             campaign_buses=("dbus-daemon",), watcher_ops=1000, minimize_s=None)
FULL = Plan(round_trips=20000, fd_calls=5000, sizes=(64, 1024, 16384, 262144, 1 << 20),
            size_calls=2000, listeners=(1, 2, 4, 8), signals=20000, ingest_signals=100000,
            campaign_s=30, campaign_buses=("dbus-daemon", "dbus-broker"), watcher_ops=5000,
            minimize_s=60)


def add_command(sub: Any) -> None:
    p = sub.add_parser("bench", help="round trips, context switches, fan-out, sizes, fds and the"
                                     " rig's own speed, side by side")
    p.add_argument("--quick", action="store_true", help="small counts: under 2 minutes")
    p.add_argument("--json", metavar="FILE", help="also write the results as a JSON list")
    p.add_argument("--out", default=None, help="where the plot goes (default runs/bench-<time>)")
    p.add_argument("--targets", default=",".join(TARGETS),
                   help=f"comma-separated subset of {', '.join(TARGETS)}")


def cmd_bench(args: argparse.Namespace) -> int:
    from fuzz.bench import rig_speed
    from fuzz.bus.factory import BUS_KINDS
    from fuzz.lifecycle import janitor

    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in names if t not in TARGETS]
    if unknown or not names:
        raise InputError(f"--targets: unknown {unknown}; choose from {', '.join(TARGETS)}")
    plan = QUICK if args.quick else FULL
    out = args.out or os.path.join("runs", time.strftime("bench-%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    janitor()
    started = time.monotonic()
    results: list[Result] = []

    def step(what: str, fn: Callable[[], list[Result]]) -> None:
        t0 = time.monotonic()
        got = fn()
        results.extend(got)
        print(f"[{time.monotonic() - started:6.1f} s] {what}: {len(got)} result(s) in"
              f" {time.monotonic() - t0:.1f} s", flush=True)

    ingest: dict[str, float] = {}
    for name in names:
        with target(name) as t:
            step(f"{name}: round trips", lambda: rt_results(t, plan.round_trips))
            step(f"{name}: fd passing", lambda: fd_results(t, plan.fd_calls))
            step(f"{name}: message sizes", lambda: size_results(t, list(plan.sizes),
                                                                plan.size_calls))
            step(f"{name}: broadcast fan-out", lambda: fanout_results(t, list(plan.listeners),
                                                                      plan.signals))
            if t.bus is not None:
                ingest[name] = ingest_rate(t, plan.ingest_signals)
                results.append(Result(name, "ingest_signals_per_s", round(ingest[name]),
                                      "signals/s in, nobody listening"))
    for bus in (b for b in plan.campaign_buses if b in names and b in BUS_KINDS):
        step(f"busrig on {bus}: campaign", lambda: [rig_speed.campaign_rate(bus, plan.campaign_s)])
        step(f"busrig on {bus}: flood rate",
             lambda: rig_speed.flood_ratio(bus, ingest[bus], plan.ingest_signals))
        step(f"busrig on {bus}: watcher cost", lambda: [rig_speed.watcher_ratio(bus,
                                                                                plan.watcher_ops)])
    if plan.minimize_s is not None:
        step("busrig: minimizer cost", lambda: rig_speed.minimizer_cost(plan.minimize_s))
    else:
        print("minimizer cost: skipped with --quick (it minimizes a real case: about 20 s)")
    show_table(results, names)
    plot_path = os.path.join(out, "bench.svg")
    with open(plot_path, "w") as f:
        f.write(plot(results, names))
    print(f"plot: {plot_path}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.to_json() for r in results], f, indent=1)
        print(f"json: {args.json}")
    print(f"bench done in {time.monotonic() - started:.1f} s")
    return EXIT_CLEAN


def show_table(results: list[Result], names: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    bus_side = [r for r in results if r.client == RAW_CLIENT]
    table = Table(title="bus benchmarks, measured side by side in one run",
                  caption=f"client for every column: {RAW_CLIENT}", caption_justify="left")
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("unit")
    metrics = list(dict.fromkeys(r.metric for r in bus_side))
    for metric in metrics:
        row = {r.target: r for r in bus_side if r.metric == metric}
        unit = next(iter(row.values())).unit
        table.add_row(metric, *[_num(row[n].value) if n in row else "-" for n in names], unit)
    console = Console()
    console.print(table)
    rig = [r for r in results if r.client != RAW_CLIENT]
    if rig:
        t2 = Table(title="the rig's own speed")
        for col in ("target", "metric", "value", "what"):
            t2.add_column(col, justify="right" if col == "value" else "left")
        for r in rig:
            t2.add_row(r.target, r.metric, _num(r.value), r.unit)
        console.print(t2)


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}"


def plot(results: list[Result], names: list[str]) -> str:
    from fuzz.report.plots import pyplot, svg_of

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    by = {(r.target, r.metric): r.value for r in results}
    ax = axes[0]
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [by.get((n, "rt_per_s"), 0) / 1000 for n in names], 0.4,
           label="k round trips/s")
    ax.bar([x + 0.2 for x in xs], [by.get((n, "ctx_switches_per_rt"), 0) for n in names], 0.4,
           label="context switches / round trip")
    ax.set_xticks(list(xs), names)
    ax.set_title("round trips", fontsize=10, loc="left")
    ax.legend(fontsize=7)
    ax = axes[1]
    for n in names:
        points = sorted((int(m[len("mib_per_s_"):-1]), v) for (t, m), v in by.items()
                        if t == n and m.startswith("mib_per_s_"))
        if points:
            ax.plot(*zip(*points), "o-", label=n)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("call payload bytes")
    ax.set_ylabel("MiB/s")
    ax.set_title("message size sweep", fontsize=10, loc="left")
    ax.legend(fontsize=7)
    ax = axes[2]
    for n in names:
        points = sorted((int(m[len("signals_per_s_"):]), v / 1000) for (t, m), v in by.items()
                        if t == n and m.startswith("signals_per_s_"))
        if points:
            ax.plot(*zip(*points), "o-", label=n)
    ax.set_xlabel("listeners")
    ax.set_ylabel("k signals delivered/s")
    ax.set_title("broadcast fan-out", fontsize=10, loc="left")
    ax.legend(fontsize=7)
    return svg_of(fig)
