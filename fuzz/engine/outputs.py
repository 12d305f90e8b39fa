"""A run's files: the output directory prepared, then the merged history and the summary.

OUT/ holds scenario.toml (a copy), plan.json, journals/, bus.log, history.jsonl and
summary.json; the judge (fuzz/judge.py) adds findings.json and the finding count.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Sequence

from fuzz.engine.plan import Plan
from fuzz.engine.summary import summarize
from fuzz.history import Event, MergeStats
from fuzz.stats import percentile

STALE = ("bus.log", "history.jsonl", "summary.json", "findings.json")


def prepare_out_dir(out_dir: str, journal_dir: str, scenario_path: str, plan: Plan) -> None:
    os.makedirs(out_dir, exist_ok=True)
    # Old journals would be merged into this run's history.
    shutil.rmtree(journal_dir, ignore_errors=True)
    os.makedirs(journal_dir)
    for stale in STALE:
        if os.path.exists(os.path.join(out_dir, stale)):
            os.remove(os.path.join(out_dir, stale))
    if os.path.exists(scenario_path):
        shutil.copyfile(scenario_path, os.path.join(out_dir, "scenario.toml"))
    write_json(os.path.join(out_dir, "plan.json"), plan.to_json())


def run_summary(events: Sequence[Event], merge: MergeStats, *, scenario: str, scenario_path: str,
                seed: int, bus: dict[str, Any], error: BaseException | None,
                ctx_switches: int | None, watch: dict[str, Any]) -> dict[str, Any]:
    stats = summarize(events, bus_ctx_switches=ctx_switches)
    bus = {**bus, **stats.pop("bus")}
    return {
        "scenario": scenario,
        "scenario_path": scenario_path,
        "seed": seed,
        "bus": bus,
        "error": None if error is None else f"{type(error).__name__}: {error}",
        "journals": {"files": merge.journals, "bad_lines": merge.bad_lines,
                     "synthesized_completions": merge.synthesized},
        "spawn": spawn_stats(events),
        "watch": watch,
        **stats,
    }


def spawn_stats(events: Sequence[Event]) -> dict[str, float | None]:
    """Client start-up cost: the fork-server round trip, and spawn request to connected."""
    requested: dict[str, int] = {}
    spawn, to_connect = [], []
    for e in events:
        if e.op == "client-start":
            spawn.append(e.get("spawn_ns", 0) / 1e6)
            requested[e.get("client")] = e.time - e.get("spawn_ns", 0)
        elif e.op == "connect" and e.type == "ok" and e.process in requested:
            to_connect.append((e.time - requested.pop(e.process)) / 1e6)
    spawn.sort()
    to_connect.sort()
    return {"clients": len(spawn),
            "fork_ms_p50": _r(percentile(spawn, 50)), "fork_ms_max": _r(spawn[-1] if spawn else None),
            "to_connected_ms_p50": _r(percentile(to_connect, 50)),
            "to_connected_ms_max": _r(to_connect[-1] if to_connect else None)}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def write_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)
