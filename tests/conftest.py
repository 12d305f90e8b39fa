"""Shared helpers: run the real CLI in a subprocess, read what it wrote, find leftovers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fuzz.engine.history import Event, load_history

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
DATA = Path(__file__).resolve().parent / "data"
BUSES = ("dbus-daemon", "dbus-broker")


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
def rig_tmp(tmp_path: Path) -> Path:
    """A TMPDIR of the test's own, so leftover temp dirs can be counted exactly."""
    d = tmp_path / "tmp"
    d.mkdir()
    return d


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
