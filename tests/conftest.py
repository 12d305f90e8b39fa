"""Shared helpers: run the real CLI in a subprocess, read what it wrote, find leftovers."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from fuzz.history import Event, load_history

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
DATA = Path(__file__).resolve().parent / "data"
BUSES = ("dbus-daemon", "dbus-broker")

# Every journal, in this process and in every rig and client it starts, refuses an op that
# fuzz/history/ops.py does not describe.
os.environ["BUSRIG_STRICT_HISTORY"] = "1"


def require_binary(name: str) -> None:
    """Missing bus binaries fail in CI (where .ci/run installs them) and skip elsewhere."""
    if shutil.which(name) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run should have installed it")
        pytest.skip(f"{name} is not installed")


@pytest.fixture(params=BUSES)
def bus(request: pytest.FixtureRequest) -> str:
    require_binary(request.param)
    return request.param


@pytest.fixture
def rig_tmp() -> Iterator[Path]:
    """A TMPDIR of the test's own, so leftover temp dirs can be counted exactly, even while
    other tests run in parallel. It sits directly in /tmp and every uid may enter it, so the
    rig keeps the private dirs of hostile clients of other uids there too (pytest's own temp
    dirs are closed to other users, which would send the rig to /tmp itself)."""
    d = Path(tempfile.mkdtemp(prefix="busrig-test-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# Tests marked `alone` (the priority scenarios pin SCHED_FIFO work and CPU hogs to one CPU)
# run while no other test runs, even under pytest-xdist: every test holds a shared lock on
# RUN_LOCK for its duration, an `alone` test an exclusive one. GATE_LOCK gives the exclusive
# side precedence: a waiting `alone` test holds it, so no new test starts meanwhile.
LOCK_DIR = Path(tempfile.gettempdir())
RUN_LOCK = LOCK_DIR / "busrig-tests.run.lock"
GATE_LOCK = LOCK_DIR / "busrig-tests.gate.lock"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Outside pytest-timeout's timer: waiting for the lock is not the test's own time."""
    alone = item.get_closest_marker("alone") is not None
    with open(GATE_LOCK, "a") as gate, open(RUN_LOCK, "a") as run:
        if alone:
            fcntl.flock(gate, fcntl.LOCK_EX)
            fcntl.flock(run, fcntl.LOCK_EX)
        else:
            fcntl.flock(gate, fcntl.LOCK_SH)
            fcntl.flock(run, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(run, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


@dataclass
class RunOutput:
    returncode: int
    stdout: str
    stderr: str
    out: Path

    @property
    def summary(self) -> dict:
        return json.loads((self.out / "summary.json").read_text())

    @property
    def history(self) -> list[Event]:
        return load_history(str(self.out / "history.jsonl"))

    @property
    def findings(self) -> list[dict]:
        return json.loads((self.out / "findings.json").read_text())


def rig_env(tmpdir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return env


def run_rig(*args: str, out: Path | None = None, tmpdir: Path | None = None,
            timeout: float = 90) -> RunOutput:
    argv = [sys.executable, str(ROOT / "rig.py"), *args]
    if out is not None:
        argv += ["--out", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=rig_env(tmpdir), cwd=ROOT)
    return RunOutput(proc.returncode, proc.stdout, proc.stderr, out or Path("."))


def leftover_processes(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (a per-test temp path)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            found.append(f"{pid}: {cmdline}")
    return found
