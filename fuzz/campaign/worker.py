"""A campaign worker: runs the scenarios the campaign sends it, against buses of its own.

    python -m fuzz.campaign.worker '{"bus": {"kind": "dbus-daemon"}, "diff": null}'
    ("command" instead of "kind" for --bus-cmd; "diff": a second bus for --diff)

Protocol: one JSON request per line on stdin ({"index", "scenario", "seed", "out"}), one JSON
result per line on stdout, in order; before its result, an execution may send live events
({"progress": what, "index", "info"}: bus pid, liveness pings, faults applied and undone).
The worker keeps one bus running across executions that leave it healthy (fuzz/bus/pool.py)
and forks clients from its own fork server. EOF on stdin ends it; so does the campaign's death
(PR_SET_PDEATHSIG), and its janitor cleans up after it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import asdict
from typing import IO, Any, Callable

from fuzz.bus.factory import BusChoice
from fuzz.bus.pool import BusPool
from fuzz.campaign.features import features
from fuzz.campaign.generate import to_toml
from fuzz.errors import BusStartError, Interrupted, ScenarioError
from fuzz.oracles.trend import bus_sample

Progress = Callable[[str, dict[str, Any]], None]
LIVE_EVENTS = frozenset({"bus", "ping", "nemesis", "undo", "hang", "bus-exit"})
EXCERPT_CONTEXT = 25  # events kept before and after a finding's evidence
EXCERPT_MAX = 300


def execute(request: dict[str, Any], choice: BusChoice, pool: BusPool,
            progress: Progress | None = None,
            other: tuple[BusChoice, BusPool] | None = None) -> dict[str, Any]:
    """Run one scenario and report what the campaign needs: findings, features, excerpts.
    With `other` (a differential campaign) it runs on both buses and the findings are the
    differences between what the clients observed (fuzz/diff/)."""
    from fuzz import judge
    from fuzz.engine.scenario import load_scenario

    out = request["out"]
    path = out + ".toml"  # the runner copies it into OUT/scenario.toml
    with open(path, "w") as f:
        f.write(to_toml(request["scenario"]))
    started = time.monotonic()
    reply: dict[str, Any] = {"index": request["index"], "out": out}
    seed = int(request["seed"])
    if request.get("fresh"):  # a bus of its own for this run, not the one kept for reuse
        pool = None  # type: ignore[assignment]
        other = (other[0], None) if other is not None else None  # type: ignore[assignment]
    try:
        scenario = load_scenario(path)
        if other is None and request.get("repeat"):  # growth over repetitions on one bus
            results = [judge.execute_repeated(scenario, choice, seed, out,
                                              int(request["repeat"]), progress=progress)]
        elif other is None:
            results = [judge.execute(scenario, choice, seed, out, bus_pool=pool,
                                     progress=progress)]
        else:
            results = [judge.execute(scenario, c, seed, os.path.join(out, name), bus_pool=p,
                                     progress=progress)
                       for c, p, name in ((choice, pool, "a"), (other[0], other[1], "b"))]
    except ScenarioError as e:  # a generator bug: report it, do not stop the campaign
        return {**reply, "error": f"invalid scenario: {e}", "fatal": False}
    finally:
        os.unlink(path)
    for r in results:
        if isinstance(r.error, (Interrupted, KeyboardInterrupt)):
            raise r.error
    first = results[0]
    if other is None:
        found = first.findings
        bus = {"kind": first.summary["bus"].get("kind"),
               "version": first.summary["bus"].get("version"),
               "label": choice.label, "args": choice.cli_args(), "env": dict(choice.env)}
    else:
        found = diff_outcome(results, choice, other[0])
        kinds = [r.summary["bus"].get("kind") or "bus" for r in results]
        bus = {"kind": f"{kinds[0]}-vs-{kinds[1]}",
               "version": " / ".join(str(r.summary["bus"].get("version")) for r in results),
               "label": f"{choice.label} vs {other[0].label}",
               "diff": [asdict(choice), asdict(other[0])]}
    findings = [f.to_json() for f in found]
    errors = [r.summary.get("error") for r in results if r.summary.get("error")]
    reply.update(
        seconds=round(time.monotonic() - started, 3),
        error=errors[0] if errors else None,
        # the bus cannot even start
        fatal=any(isinstance(r.error, BusStartError) for r in results),
        findings=findings,
        features=sorted(set().union(*(features(r.events, r.summary,
                                               [f.signature for f in found])
                                      for r in results))),
        bus=bus,
        excerpts={f["signature"]: excerpt(os.path.join(first.out_dir, "history.jsonl"),
                                          f["evidence"])
                  for f in findings if not f["by_policy"]},
        events=sum(len(r.events) for r in results),
    )
    sample = bus_sample(first.events) if other is None else None
    if sample is not None:  # the campaign follows its reused bus across executions
        reply["bus_sample"] = sample.to_json()
    return reply


def diff_outcome(results: list[Any], a: BusChoice, b: BusChoice) -> list[Any]:
    from fuzz.diff.run import judge_pair

    if any(r.error is not None for r in results):
        return []  # a run the rig could not finish is no evidence of a difference
    return judge_pair(results, a, b)[1]


def excerpt(history_path: str, evidence: list[int]) -> list[str]:
    """History lines around a finding's evidence (event index = line number)."""
    if not evidence:
        return []
    lo = max(0, min(evidence) - EXCERPT_CONTEXT)
    hi = max(evidence) + EXCERPT_CONTEXT
    out = []
    with open(history_path) as f:
        for i, line in enumerate(f):
            if i > hi or len(out) >= EXCERPT_MAX:
                break
            if i >= lo:
                out.append(line.rstrip("\n"))
    return out


def forward_progress(out: IO[str], index: int) -> Progress:
    """The runner's live events as protocol lines, for the campaign's dashboard and report."""
    def forward(what: str, info: dict[str, Any]) -> None:
        if what in LIVE_EVENTS:
            out.write(json.dumps({"progress": what, "index": index, "info": info}) + "\n")
            out.flush()
    return forward


def main(argv: list[str]) -> int:
    from fuzz.engine import spawner
    from fuzz.lifecycle import die_with_parent, janitor, shutdown_janitor, signals_raise

    die_with_parent()
    spec = json.loads(argv[0])
    choice = BusChoice(**spec["bus"])
    janitor()  # before any thread
    spawner.warm_up()
    pool = BusPool()
    other = (BusChoice(**spec["diff"]), BusPool()) if spec.get("diff") else None
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but protocol lines on the real stdout
    try:
        with signals_raise():
            for line in sys.stdin:
                if not line.strip():
                    continue
                request = json.loads(line)
                try:
                    reply = execute(request, choice, pool, forward_progress(out, request["index"]),
                                    other)
                except Interrupted:
                    raise
                except Exception:  # noqa: BLE001 - a rig bug in one execution: report, go on
                    reply = {"index": request["index"], "out": request["out"], "fatal": False,
                             "error": "rig error: " + traceback.format_exc()[-2000:]}
                    pool.close()  # the bus may be in any state now
                    if other is not None:
                        other[1].close()
                out.write(json.dumps(reply) + "\n")
                out.flush()
    except Interrupted:
        return 3
    finally:
        pool.close()
        if other is not None:
            other[1].close()
        shutdown_janitor()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
