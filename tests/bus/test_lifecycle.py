"""Buses and runs leave nothing behind: no process, socket or temp dir, however they end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from jeepney.io.blocking import open_dbus_connection

from fuzz.bus import BusChoice, BusSpec, make_bus
from fuzz.lifecycle import private_dir
from tests.conftest import (
    DATA,
    ROOT,
    SCENARIOS,
    leftover_processes,
    require_binary,
    rig_env,
    run_rig,
)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("choice", [BusChoice(kind="dbus-daemon"), BusChoice(kind="dbus-broker"),
                                    BusChoice(command=f"sh {DATA / 'wrap-dbus-daemon.sh'}")],
                         ids=["dbus-daemon", "dbus-broker", "bus-cmd"])
def test_bus_starts_serves_and_stops_clean(choice: BusChoice, rig_tmp: Path,
                                           monkeypatch: pytest.MonkeyPatch):
    require_binary(choice.kind or "dbus-daemon")
    monkeypatch.setattr(tempfile, "tempdir", str(rig_tmp))
    log = rig_tmp.parent / "bus.log"
    with private_dir("bus") as workdir:
        spec = BusSpec(limits={"max_names_per_connection": 4}, quotas={"max_matches": 100})
        bus = make_bus(choice, workdir, str(log), spec)
        info = bus.start()
        try:
            assert bus.alive() and info.pid in bus.pids()
            conn = open_dbus_connection(info.address)
            assert conn.unique_name.startswith(":")
            conn.close()
            socket_path = info.socket_path
            assert socket_path and os.path.exists(socket_path)
        finally:
            bus.stop()
        assert not bus.alive() and gone(info.pid)
    assert not os.path.exists(socket_path)
    assert list(rig_tmp.iterdir()) == []


@pytest.mark.timeout(30)
def test_bus_command_that_fails_shows_its_stderr(tmp_path: Path, rig_tmp: Path):
    run = run_rig("run", str(SCENARIOS / "smoke.toml"), "--bus-cmd",
                  "echo 'cannot bind: permission denied' >&2; exit 4", out=tmp_path / "out",
                  tmpdir=rig_tmp)
    assert run.returncode == 3
    assert "cannot bind: permission denied" in run.stderr
    assert "did not print a D-Bus address" in run.stderr
    assert (tmp_path / "out" / "history.jsonl").exists() and run.summary["error"]
    assert list(rig_tmp.iterdir()) == []


@pytest.mark.timeout(60)
def test_smoke_through_bus_cmd_wrapper(tmp_path: Path):
    run = run_rig("run", str(SCENARIOS / "smoke.toml"), "--bus-cmd",
                  f"sh {DATA / 'wrap-dbus-daemon.sh'}", "--seed", "2", out=tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.summary["bus"]["kind"] == "command"
    assert run.summary["calls"]["ok"] == 2000 and run.summary["signals"]["received"] == 10000


def start_endless(bus: str, out: Path, rig_tmp: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "rig.py"), "run", str(DATA / "endless.toml"), "--bus", bus,
         "--seed", "1", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=rig_env(rig_tmp),
        cwd=ROOT)
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until clients are running
        if "traffic:" in line:
            break
    else:
        proc.wait()
        pytest.fail(f"rig never started traffic: {proc.stderr.read() if proc.stderr else ''}")
    time.sleep(0.5)
    return proc


def descendants(pid: int) -> list[int]:
    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


@pytest.mark.timeout(60)
def test_sigkilled_rig_leaves_nothing_behind(bus: str, tmp_path: Path, rig_tmp: Path):
    proc = start_endless(bus, tmp_path / "out", rig_tmp)
    kids = descendants(proc.pid)
    names = {psutil.Process(k).name() for k in kids if not gone(k)}
    assert bus in names, names  # the bus really was among them
    assert list(rig_tmp.iterdir()), "the bus dir should exist while the rig runs"
    proc.kill()
    proc.wait()
    assert wait_until(lambda: all(gone(k) for k in kids)), \
        [psutil.Process(k).cmdline() for k in kids if not gone(k)]
    assert wait_until(lambda: list(rig_tmp.iterdir()) == []), list(rig_tmp.iterdir())
    assert leftover_processes(str(rig_tmp)) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_rig_cleans_up_and_keeps_history(bus: str, sig: signal.Signals,
                                                     tmp_path: Path, rig_tmp: Path):
    out = tmp_path / "out"
    proc = start_endless(bus, out, rig_tmp)
    kids = descendants(proc.pid)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=40)
    assert proc.returncode == 3, stderr
    # The fork server and the janitor notice the rig's exit on their pipes a moment later.
    assert wait_until(lambda: all(gone(k) for k in kids), timeout=5), \
        [psutil.Process(k).cmdline() for k in kids if not gone(k)]
    assert list(rig_tmp.iterdir()) == []
    assert leftover_processes(str(rig_tmp)) == []
    history = (out / "history.jsonl").read_text().splitlines()
    assert len(history) > 100
    assert '"op":"abort"' in "".join(history)
    assert "interrupted" in stderr or "Interrupted" in stderr


def _ignore_interrupts() -> None:
    # What a non-interactive shell does for a job started with `&` (POSIX "Asynchronous
    # Lists"): the rig starts with SIGINT and SIGQUIT ignored, and ignored stays through exec.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


@pytest.mark.timeout(60)
def test_the_bus_starts_with_default_signal_actions_whatever_the_rig_inherited(
        tmp_path: Path, rig_tmp: Path):
    """A restart-bus with SIGINT must end dbus-daemon (it does not handle SIGINT): a bus that
    inherited the rig's ignored SIGINT would outlive it and be reported as ending badly."""
    scenario = tmp_path / "sigint.toml"
    scenario.write_text('name = "sigint"\nclients = [{ role = "service" }]\nschedule = [{ at ='
                        ' 0.2, action = "restart-bus", signal = "SIGINT", down = 0.01 }]\n'
                        '[bound]\nduration = 3.0\n')
    proc = subprocess.run([sys.executable, str(ROOT / "rig.py"), "run", str(scenario), "--bus",
                           "dbus-daemon", "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=50, env=rig_env(rig_tmp), cwd=ROOT,
                          preexec_fn=_ignore_interrupts)
    assert "exited (SIGINT)" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == 0 and "FINDING" not in proc.stdout, proc.stdout
