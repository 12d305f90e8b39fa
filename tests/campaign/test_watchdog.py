"""A campaign worker whose execution overruns its bound is killed and replaced: the campaign
gets an error result, keeps the scenario, and goes on with a fresh worker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fuzz.bus.factory import BusChoice
from fuzz.campaign import workers as pool
from fuzz.campaign.generate import generate, scenario_rng
from tests.conftest import require_binary


@pytest.mark.timeout(90)
def test_an_overrunning_execution_gets_its_worker_replaced(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    require_binary("dbus-daemon")
    scenario = generate(scenario_rng(1, 0), "w-0", short=True)
    scenario["schedule"] = []
    events: list[tuple[int, str]] = []
    workers = pool.Workers(BusChoice(kind="dbus-daemon"), 1,
                              lambda w, what, _info: events.append((w, what)))
    try:
        first_pid = workers.procs[0].pid
        # Any execution "overruns" a bound of -bound-1 s: the watchdog fires at once.
        monkeypatch.setattr(pool, "OVERRUN_S", -scenario["bound"]["duration"] - 1.0)
        workers.submit(0, {"index": 0, "scenario": scenario, "seed": 1,
                           "out": str(tmp_path / "exec-0")})
        results = workers.wait(1.0)
        assert [r["index"] for r in results] == [0]
        assert "its worker was replaced" in results[0]["error"]
        assert (tmp_path / "overran" / "0.toml").read_text().startswith('name = "w-0"')
        assert workers.procs[0].pid != first_pid and workers.idle() == [0]
        # The new worker runs the next execution normally.
        monkeypatch.setattr(pool, "OVERRUN_S", 60.0)
        workers.submit(0, {"index": 1, "scenario": scenario, "seed": 1,
                           "out": str(tmp_path / "exec-1")})
        deadline = time.monotonic() + 60
        done: list[dict] = []
        while not done and time.monotonic() < deadline:
            done = workers.wait(1.0)
        assert [r["index"] for r in done] == [1] and not done[0].get("error"), done
    finally:
        workers.close()
