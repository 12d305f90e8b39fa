"""Silent signal deaths named by the backtrace of their core: two planted SIGSEGVs in the real
dbus-daemon (an LD_PRELOAD shim built here with gcc) get two signatures named by their
functions; the same bus without the trigger is healthy. Skips where gcc or gdb is missing, or
where the kernel sends cores elsewhere (a core_pattern that pipes)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fuzz.triage.crashlog import signal_report
from tests.conftest import DATA, SCENARIOS, require_binary, run_rig

SHIM = DATA / "planted_shim.c"


@pytest.fixture(scope="module")
def segv_env(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    for tool in ("gcc", "gdb"):
        if shutil.which(tool) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{tool} is not installed; .ci/run should have installed it")
            pytest.skip(f"{tool} is not installed")
    if Path("/proc/sys/kernel/core_pattern").read_text().startswith("|"):
        pytest.skip("this kernel pipes core dumps to a helper; no core reaches the bus's dir")
    shim = tmp_path_factory.mktemp("segv") / "shim.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-g", "-o", str(shim), str(SHIM), "-ldl"],
                   check=True, capture_output=True)
    return ["--bus-env", f"LD_PRELOAD={shim}"]


def crash_of(run) -> dict:
    crashes = [f for f in run.findings if f["oracle"] == "crash"]
    assert len(crashes) == 1, run.stdout + run.stderr
    return crashes[0]


@pytest.mark.timeout(120)
def test_two_silent_segfaults_get_two_signatures_named_by_their_functions(
        segv_env: list[str], tmp_path: Path):
    require_binary("dbus-daemon")
    found = {}
    for which in "AB":
        run = run_rig("run", str(DATA / "segv" / f"trigger_{which}.toml"), "--bus", "dbus-daemon",
                      *segv_env, "--seed", "1", out=tmp_path / which)
        assert run.returncode == 1, run.stdout + run.stderr
        found[which] = crash_of(run)
        # The service the dying bus dropped is the death's consequence, not a second finding.
        assert [f["oracle"] for f in run.findings] == ["crash"], run.findings
        assert not list((tmp_path / which).rglob("core*")), "the core is removed once read"
    assert found["A"]["title"].startswith("SIGSEGV in busrig_segv_a")
    assert found["B"]["title"].startswith("SIGSEGV in busrig_segv_b")
    assert found["A"]["signature"] != found["B"]["signature"]
    assert "backtrace of the core" in found["A"]["explanation"]


@pytest.mark.timeout(90)
def test_the_same_bus_without_the_trigger_is_healthy(segv_env: list[str], tmp_path: Path):
    require_binary("dbus-daemon")
    run = run_rig("run", str(SCENARIOS / "smoke.toml"), "--bus", "dbus-daemon", *segv_env,
                  "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 0 and run.findings == [], run.stdout + run.stderr


def test_signal_report_skips_the_c_librarys_abort_machinery():
    bt = ("#0  0x00007f in __pthread_kill_implementation (...) at pthread_kill.c:44\n"
          "#1  0x00007f in raise (...) at raise.c:26\n"
          "#2  0x00007f in abort () at abort.c:79\n"
          "#3  0x000055 in _dbus_abort () from /lib/libdbus-1.so.3\n"
          "#4  0x000055 in ?? ()\n"
          "#5  0x000055 in bus_dispatch (...) at dispatch.c:300\n")
    report = signal_report("SIGABRT", bt)
    assert report is not None and report.title == "SIGABRT in _dbus_abort"
    assert report.frames == ("_dbus_abort", "bus_dispatch")
    moved = bt.replace("dispatch.c:300", "dispatch.c:312").replace("0x000055", "0x000066")
    assert signal_report("SIGABRT", moved).signature == report.signature
    assert signal_report("SIGSEGV", bt).signature != report.signature
    assert signal_report("SIGSEGV", "#0  0x0 in ?? ()\n") is None
