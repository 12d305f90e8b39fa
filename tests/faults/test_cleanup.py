"""Faults that change the bus from outside (a cgroup, a ptrace attachment) are undone even when
the rig dies in the middle of them: the janitor thaws and removes the cgroup, the kernel
detaches a dead tracer, and nothing of the run is left behind."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from fuzz.faults.cgroup import find_hierarchy
from fuzz.faults.inject import supported
from tests.bus.test_lifecycle import descendants, gone, wait_until
from tests.conftest import ROOT, leftover_processes, rig_env

FAULTS = {
    "freeze-bus": ("duration = 30.0", lambda: find_hierarchy("freezer") is None),
    "cpu-quota-bus": ("percent = 10\nduration = 30.0", lambda: find_hierarchy("cpu") is None),
    "fail-syscalls": ('syscall = "epoll_wait"\nerrno = "EINTR"\nprobability = 0.1\n'
                      "max_faults = 100000\nduration = 30.0", lambda: supported() is not None),
}


def scenario(tmp_path: Path, fault: str) -> Path:
    path = tmp_path / f"{fault}.toml"
    path.write_text(f"""name = "long-{fault}"
[[clients]]
role = "service"
[[clients]]
role = "caller"
rate = 100
[[schedule]]
at = 0.2
action = "{fault}"
{FAULTS[fault][0]}
[bound]
duration = 60
""")
    return path


def busrig_cgroups() -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup").glob("*/busrig-*")] + \
        list(Path("/sys/fs/cgroup").glob("busrig-*"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_rig_killed_mid_fault_leaves_nothing(fault: str, bus: str, tmp_path: Path, rig_tmp: Path):
    if FAULTS[fault][1]():
        pytest.skip(f"{fault} is not possible on this machine")
    before = set(busrig_cgroups())
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "rig.py"), "run", str(scenario(tmp_path, fault)),
         "--bus", bus, "--seed", "1", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=rig_env(rig_tmp), cwd=ROOT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(tuple(f"[{h}" for h in "0123456789")) and f"action={fault}" in line:
            break
    else:
        proc.wait()
        pytest.fail(f"the fault was never applied: {proc.stderr.read() if proc.stderr else ''}")
    assert "not applied" not in line and "failed" not in line, line
    time.sleep(0.5)
    kids = descendants(proc.pid)
    bus_pid = next(k for k in kids if not gone(k) and psutil.Process(k).name() == bus)
    if fault == "fail-syscalls":
        assert wait_until(lambda: psutil.Process(bus_pid).status() != "" and
                          int(Path(f"/proc/{bus_pid}/status").read_text()
                              .split("TracerPid:")[1].split()[0]) != 0), "bus not traced"
    else:
        assert set(busrig_cgroups()) - before, "no cgroup was made"
    proc.kill()
    proc.wait()
    assert wait_until(lambda: all(gone(k) for k in kids)), \
        [psutil.Process(k).cmdline() for k in kids if not gone(k)]
    assert wait_until(lambda: set(busrig_cgroups()) <= before), busrig_cgroups()
    assert wait_until(lambda: list(rig_tmp.iterdir()) == []), list(rig_tmp.iterdir())
    assert leftover_processes(str(rig_tmp)) == []
