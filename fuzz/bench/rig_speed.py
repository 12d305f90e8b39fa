"""The rig's own speed, as ratios measured in the same run as the bus numbers: campaign
executions per second, the flood attacker's rate against the bus's own ingest rate, what the
watchers cost a run, and what minimizing a finding costs in executions."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from fuzz.bench.measure import Result
from fuzz.bus.factory import BusChoice
from fuzz.judge import execute
from fuzz.engine.scenario import Watch, load_scenario

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RIG = "busrig itself"
FLOOD_SCENARIO = """
name = "bench-flood"
description = "the rig's flood-signals attacker against the bus (beside one idle listener)"
[[clients]]
role = "listener"
match = "type='signal',interface='org.busrig.Nobody'"
[[schedule]]
at = 0.0
action = "flood-signals"
count = {count}
duration = 10.0
[watch]
sentinel = false
period = 0
quiet = 0
[bound]
duration = 12
"""


def _scenario(text: str, tmp: str, name: str) -> Any:
    path = os.path.join(tmp, f"{name}.toml")
    with open(path, "w") as f:
        f.write(text)
    return load_scenario(path)


# Short executions mostly wait (client start-up, pacing, settling): on 2 cores, 6 workers keep
# both busy (benchmarks/campaign.py compares 2 and 6).
CAMPAIGN_JOBS = 6


def campaign_rate(bus: str, seconds: float) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "work")
        subprocess.run([sys.executable, os.path.join(ROOT, "rig.py"), "fuzz", "--bus", bus,
                        "--short", "--jobs", str(CAMPAIGN_JOBS), "--no-minimize", "--no-dashboard",
                        "--budget", str(seconds), "--seed", "1",
                        "--crashes", os.path.join(tmp, "store"), "--out", out],
                       capture_output=True, text=True, cwd=ROOT, check=False)
        with open(os.path.join(out, "campaign.json")) as f:
            summary = json.load(f)
    return Result(bus, "busrig_execs_per_s", summary["execs_per_s"],
                  f"short campaign executions per second ({CAMPAIGN_JOBS} workers, {seconds:g} s)",
                  RIG)


def flood_ratio(bus: str, ingest_per_s: float, count: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        scenario = _scenario(FLOOD_SCENARIO.format(count=count), tmp, "flood")
        result = execute(scenario, BusChoice(kind=bus), 1, os.path.join(tmp, "out"))
    rates = [e.get("per_s") for e in result.events if e.op == "attack" and e.type == "ok"]
    if not rates or not rates[0]:
        return []
    return [Result(bus, "busrig_flood_signals_per_s", rates[0], "signals/s the rig's"
                   " flood-signals attacker sent", RIG),
            Result(bus, "busrig_flood_vs_ingest", round(rates[0] / ingest_per_s, 3),
                   "attacker rate / the bus's ingest rate (raw emitter)", RIG)]


def watcher_ratio(bus: str, ops: int) -> Result:
    base = load_scenario(os.path.join(ROOT, "scenarios", "roundtrip.toml"))
    clients = tuple(dataclasses.replace(g, ops=ops) if g.role == "caller" else g
                    for g in base.clients)
    watched = dataclasses.replace(base, clients=clients)
    unwatched = dataclasses.replace(watched, watch=Watch(period=0, sentinel=False, quiet=0))
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, sc in enumerate((watched, unwatched)):
            r = execute(sc, BusChoice(kind=bus), 1, os.path.join(tmp, str(i)))
            rates.append(r.summary["calls"]["round_trips_per_s"])
    return Result(bus, "busrig_watched_vs_unwatched", round(rates[0] / rates[1], 3),
                  "round trips/s with the watchers and sentinel on / off", RIG)


MINIMIZE_BUGGY = "--crash-on-fds 1"


def minimizer_cost(budget_s: float) -> list[Result]:
    """Minimize a scenario of 11 harmless steps whose caller crashes the buggy relay (it passes
    an fd); the cost is the minimization's time in units of one execution."""
    from fuzz.campaign.generate import to_toml
    from fuzz.campaign.minimize import minimize_scenario

    relay = f"{sys.executable} {os.path.join(ROOT, 'tests', 'buggy_bus', 'relay.py')}"
    choice = BusChoice(command=f"{relay} {MINIMIZE_BUGGY}")
    noise = [{"at": 0.05 * i, "action": "flood-matches", "count": 5, "duration": 0.1}
             for i in range(11)]
    case = {"name": "bench-minimize", "description": "minimizer cost",
            "clients": [{"role": "service"},
                        {"role": "caller", "ops": 20, "rate": 20.0, "fds": 1}],
            "schedule": noise,
            "bound": {"duration": 3.0}}
    runs = [0]
    with tempfile.TemporaryDirectory() as tmp:

        def crashes(candidate: dict[str, Any]) -> bool:
            runs[0] += 1
            path = os.path.join(tmp, f"c{runs[0]}.toml")
            with open(path, "w") as f:
                f.write(to_toml(candidate))
            r = execute(load_scenario(path), choice, 1, os.path.join(tmp, f"r{runs[0]}"))
            return any(f.oracle == "crash" for f in r.findings)

        started = time.monotonic()
        if not crashes(case):
            return []
        one = time.monotonic() - started
        started = time.monotonic()
        best, calls = minimize_scenario(case, crashes, max(10, int(budget_s / max(one, 0.1))))
        spent = time.monotonic() - started
    return [Result("buggy relay", "busrig_minimize_runs", calls,
                   f"candidate runs to shrink {len(case['schedule'])} steps to"
                   f" {len(best['schedule'])}", RIG),
            Result("buggy relay", "busrig_minimize_cost_execs", round(spent / one, 1),
                   "minimization time / time of one execution", RIG)]
