"""The live dashboard: drawn in a real terminal (tmux) with counters that move, and plain
progress lines when stdout is not a terminal."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from fuzz.live.dashboard import Dashboard, sparkline
from fuzz.live.state import LiveState
from tests.bus.test_lifecycle import wait_until
from tests.conftest import ROOT, SCENARIOS, require_binary, run_rig


def test_sparkline_scales_between_min_and_max():
    assert sparkline([], 10) == ""
    assert sparkline([1, 1, 1], 10) == "▁▁▁"
    line = sparkline([0, 5, 10], 10)
    assert line[0] == "▁" and line[-1] == "█" and len(line) == 3
    assert len(sparkline(list(range(100)), 20)) == 20


def test_render_shows_what_the_state_was_fed():
    state = LiveState("fuzz", "dbus-daemon, seed 7", 60)
    state.on_run_event("bus", {"pid": os.getpid()}, "w0")  # any live process will do
    state.on_run_event("exec-start", {"scenario": "fuzz-7-3"}, "w0")
    state.on_run_event("nemesis", {"action": "freeze-bus", "target": None, "result": "froze"},
                       "w0")
    for ms in (0.2, 0.3, 4.0):
        state.on_run_event("ping", {"ms": ms}, "w0")
    state.counters(executions=41, corpus=9, features=123, new_features=2)
    state.finding("hang-abc", "hang", "the bus stopped answering", new=True)
    state.finding("leak-def", "leak", "fds grew", new=False)
    console = Console(width=140, record=True, force_terminal=True)
    console.print(Dashboard(state, console).render())
    text = console.export_text()
    for expected in ("41", "123", "fuzz-7-3", "freeze-bus", str(os.getpid()),
                     "the bus stopped answering", "max 4.00", "dbus-daemon, seed 7"):
        assert expected in text, expected
    assert re.search(r"hang\s+1\s+0", text) and re.search(r"leak\s+0\s+1", text), text
    # Faults overlap: an undo ends its own; the end of the execution ends the rest.
    state.on_run_event("nemesis", {"action": "cpu-hog", "target": None, "result": "2 hogs"},
                       "w0")
    state.on_run_event("undo", {"action": "freeze-bus", "result": "thawed"}, "w0")
    assert state.fault_now["w0"] == "cpu-hog"
    (f_start, f_end, f_what), (h_start, h_end, h_what) = state.series.faults
    assert (f_what, h_what) == ("freeze-bus", "cpu-hog") and f_end is not None and h_end is None
    state.on_run_event("exec-end", {}, "w0")
    assert state.series.faults[1][1] is not None and "w0" not in state.fault_now


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _total(screen: str) -> int | None:
    m = re.search(r"total\s+(\d+)", screen)
    return int(m.group(1)) if m else None


class Terminal:
    """The rig in a detached tmux pane of 140 x 50, for as long as the `with` lasts."""

    def __init__(self, rig_tmp: Path, *rig_args: str):
        if shutil.which("tmux") is None:
            if os.environ.get("CI"):
                pytest.fail("tmux is not installed; .ci/run should have installed it")
            pytest.skip("tmux is not installed")
        self.session = f"busrig-test-{os.getpid()}-{rig_args[0]}"
        cmd = " ".join(shlex.quote(a) for a in [
            # rich sizes itself from COLUMNS/LINES, whatever tmux makes of a detached pane
            "env", f"PYTHONPATH={ROOT}", f"TMPDIR={rig_tmp}", "COLUMNS=140", "LINES=50",
            sys.executable, str(ROOT / "rig.py"), *rig_args])
        _tmux("new-session", "-d", "-s", self.session, "-x", "140", "-y", "50",
              f"cd {shlex.quote(str(ROOT))} && {cmd}; echo EXIT=$?; sleep 60")

    def screen(self, history: int = 0) -> str:
        extra = ["-S", f"-{history}"] if history else []
        return _tmux("capture-pane", "-p", *extra, "-t", self.session)

    def wait_for_exit(self, timeout: float) -> str:
        assert wait_until(lambda: "EXIT=" in self.screen(), timeout=timeout), self.screen()
        return self.screen(history=100)

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


@pytest.mark.timeout(150)
def test_fuzz_dashboard_in_a_real_terminal(tmp_path: Path, rig_tmp: Path):
    require_binary("dbus-daemon")
    with Terminal(rig_tmp, "fuzz", "--bus", "dbus-daemon", "--budget", "14", "--seed", "4",
                  "--short", "--jobs", "1", "--crashes", str(tmp_path / "crashes"),
                  "--out", str(tmp_path / "work")) as term:
        screens: list[str] = []

        def counted() -> bool:
            screens.append(term.screen())
            # The worker's bus, with its pid and state (between executions it may be
            # restarting, so wait for a screen that shows it).
            return (_total(screens[-1]) or 0) >= 2 and \
                re.search(r"w0\s+\d+\s+[RSD]", screens[-1]) is not None

        assert wait_until(counted, timeout=40), screens[-1]
        first = screens[-1]
        for title in ("busrig fuzz", "executions", "findings", "bus under test",
                      "longest socket queues", "liveness"):
            assert title in first, title
        time.sleep(3)
        later = term.screen()
        assert (_total(later) or 0) > (_total(first) or 0), later  # the counters move
        assert re.search(r"EXIT=[01]\b", term.wait_for_exit(60))
    assert (tmp_path / "work" / "report.html").exists()


@pytest.mark.timeout(120)
def test_run_dashboard_in_a_real_terminal(tmp_path: Path, rig_tmp: Path):
    require_binary("dbus-daemon")
    with Terminal(rig_tmp, "run", str(SCENARIOS / "fault_freeze_bus.toml"), "--bus",
                  "dbus-daemon", "--seed", "1", "--out", str(tmp_path / "out")) as term:
        seen: list[str] = []

        def frozen() -> bool:
            seen.append(term.screen())
            return "freeze-bus" in seen[-1] and "busrig run" in seen[-1]

        assert wait_until(frozen, timeout=30), seen[-1]
        final = term.wait_for_exit(40)
        assert "verdict:" in final and "EXIT=0" in final, final


@pytest.mark.timeout(120)
def test_plain_lines_without_a_terminal(tmp_path: Path, rig_tmp: Path):
    require_binary("dbus-daemon")
    run = run_rig("fuzz", "--bus", "dbus-daemon", "--budget", "7", "--seed", "4", "--short",
                  "--crashes", str(tmp_path / "crashes"), out=tmp_path / "work",
                  tmpdir=rig_tmp, timeout=100)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    assert re.search(r"^\[\d\d:\d\d:\d\d\] tick: elapsed=", run.stdout, re.M), run.stdout
    assert "done:" in run.stdout
    assert not set("╭╰│━") & set(run.stdout + run.stderr), run.stdout  # no screen drawing
