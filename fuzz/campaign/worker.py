"""A campaign worker: runs the scenarios the campaign sends it, against buses of its own.

    python -m fuzz.campaign.worker '{"kind": "dbus-daemon"}'   (or {"command": "..."})

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
from typing import IO, Any, Callable

from fuzz.bus.factory import BusChoice
from fuzz.bus.pool import BusPool
from fuzz.campaign.features import features
from fuzz.campaign.generate import to_toml
from fuzz.errors import BusStartError, Interrupted, ScenarioError

Progress = Callable[[str, dict[str, Any]], None]
LIVE_EVENTS = frozenset({"bus", "ping", "nemesis", "undo", "hang", "bus-exit"})
EXCERPT_CONTEXT = 25  # events kept before and after a finding's evidence
EXCERPT_MAX = 300


def execute(request: dict[str, Any], choice: BusChoice, pool: BusPool,
            progress: Progress | None = None) -> dict[str, Any]:
    """Run one scenario and report what the campaign needs: findings, features, excerpts."""
    from fuzz.engine.runner import Runner
    from fuzz.engine.scenario import load_scenario

    out = request["out"]
    path = out + ".toml"  # the runner copies it into OUT/scenario.toml
    with open(path, "w") as f:
        f.write(to_toml(request["scenario"]))
    started = time.monotonic()
    reply: dict[str, Any] = {"index": request["index"], "out": out}
    try:
        scenario = load_scenario(path)
        result = Runner(scenario, choice, int(request["seed"]), out, bus_pool=pool,
                        progress=progress).run()
    except ScenarioError as e:  # a generator bug: report it, do not stop the campaign
        return {**reply, "error": f"invalid scenario: {e}", "fatal": False}
    finally:
        os.unlink(path)
    if isinstance(result.error, (Interrupted, KeyboardInterrupt)):
        raise result.error
    findings = [f.to_json() for f in result.findings]
    reply.update(
        seconds=round(time.monotonic() - started, 3),
        error=result.summary.get("error"),
        fatal=isinstance(result.error, BusStartError),  # the bus cannot even start
        findings=findings,
        features=sorted(features(result.events, result.summary,
                                 [f.signature for f in result.findings])),
        bus={"kind": result.summary["bus"].get("kind"),
             "version": result.summary["bus"].get("version"),
             "label": choice.label, "args": choice.cli_args()},
        excerpts={f["signature"]: excerpt(os.path.join(out, "history.jsonl"), f["evidence"])
                  for f in findings if not f["by_policy"]},
        events=len(result.events),
    )
    return reply


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
    choice = BusChoice(**json.loads(argv[0]))
    janitor()  # before any thread
    spawner.warm_up()
    pool = BusPool()
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but protocol lines on the real stdout
    try:
        with signals_raise():
            for line in sys.stdin:
                if not line.strip():
                    continue
                request = json.loads(line)
                try:
                    reply = execute(request, choice, pool, forward_progress(out, request["index"]))
                except Interrupted:
                    raise
                except Exception:  # noqa: BLE001 - a rig bug in one execution: report, go on
                    reply = {"index": request["index"], "out": request["out"], "fatal": False,
                             "error": "rig error: " + traceback.format_exc()[-2000:]}
                    pool.close()  # the bus may be in any state now
                out.write(json.dumps(reply) + "\n")
                out.flush()
    except Interrupted:
        return 3
    finally:
        pool.close()
        shutdown_janitor()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
