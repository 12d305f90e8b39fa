"""The sanitizer path, on a real AddressSanitizer report from the real dbus-daemon: a shim
built here with gcc -fsanitize=address and preloaded into the bus (--bus-env LD_PRELOAD)
overflows a heap buffer when the bus reads a trigger; the crash oracle names the bug as
AddressSanitizer does. Skips where gcc or its AddressSanitizer runtime is missing (CI installs
gcc)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DATA, SCENARIOS, require_binary, run_rig

SHIM = DATA / "planted_shim.c"
TRIGGER = DATA / "asan" / "trigger.toml"


@pytest.fixture(scope="module")
def asan_env(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    gcc = shutil.which("gcc")
    if gcc is None:
        if os.environ.get("CI"):
            pytest.fail("gcc is not installed; .ci/run should have installed it")
        pytest.skip("gcc is not installed")
    runtime = subprocess.run([gcc, "-print-file-name=libasan.so"], capture_output=True,
                             text=True).stdout.strip()
    if not os.path.isabs(runtime) or not os.path.exists(runtime):
        pytest.skip("gcc has no AddressSanitizer runtime here")
    shim = tmp_path_factory.mktemp("asan") / "shim.so"
    built = subprocess.run([gcc, "-shared", "-fPIC", "-fsanitize=address", "-g", "-o",
                            str(shim), str(SHIM), "-ldl"], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build the shim: {built.stderr[-500:]}")
    return ["--bus-env", f"LD_PRELOAD={os.path.realpath(runtime)} {shim}",
            "--bus-env", "ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0"]


@pytest.mark.timeout(90)
def test_an_asan_report_names_the_crash(asan_env: list[str], tmp_path: Path):
    require_binary("dbus-daemon")
    run = run_rig("run", str(TRIGGER), "--bus", "dbus-daemon", *asan_env, "--seed", "1",
                  out=tmp_path / "out")
    assert run.returncode == 1, run.stdout + run.stderr
    crashes = [f for f in run.findings if f["oracle"] == "crash"]
    assert len(crashes) == 1 and crashes[0]["kind"].startswith("bus-died:asan:")
    assert crashes[0]["title"].startswith(
        "AddressSanitizer: heap-buffer-overflow WRITE in busrig_overflow"), crashes[0]["title"]


@pytest.mark.timeout(90)
def test_the_same_sanitized_bus_without_the_trigger_is_healthy(asan_env: list[str],
                                                              tmp_path: Path):
    require_binary("dbus-daemon")
    run = run_rig("run", str(SCENARIOS / "smoke.toml"), "--bus", "dbus-daemon", *asan_env,
                  "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.findings == []


@pytest.mark.timeout(90)
def test_a_report_is_caught_when_the_bus_command_sends_stderr_elsewhere(asan_env: list[str],
                                                                       tmp_path: Path):
    """The rig adds log_path (into the bus's private dir) to the sanitizer options it passes a
    --bus-cmd bus, keeping what was set, so a report reaches it though stderr goes nowhere."""
    require_binary("dbus-daemon")
    wrapper = DATA / "wrap-dbus-daemon.sh"
    run = run_rig("run", str(TRIGGER), "--bus-cmd", f"sh {wrapper} 2>/dev/null", *asan_env,
                  "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 1, run.stdout + run.stderr
    crashes = [f for f in run.findings if f["oracle"] == "crash"]
    assert crashes and crashes[0]["title"].startswith(
        "AddressSanitizer: heap-buffer-overflow WRITE in busrig_overflow"), run.stdout
    assert "AddressSanitizer" not in (tmp_path / "out" / "bus.log").read_text()


def test_user_sanitizer_options_are_kept():
    from fuzz.bus.command import sanitizer_options
    got = sanitizer_options({"ASAN_OPTIONS": "detect_leaks=0",
                             "LSAN_OPTIONS": "log_path=/x/mine"}, "/tmp/busrig-bus-q")
    assert got["ASAN_OPTIONS"] == "detect_leaks=0:log_path=/tmp/busrig-bus-q/sanitizer"
    assert "LSAN_OPTIONS" not in got
    assert got["UBSAN_OPTIONS"] == "log_path=/tmp/busrig-bus-q/sanitizer"
