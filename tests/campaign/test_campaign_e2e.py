"""Campaigns end to end against the deliberately buggy relay: found, minimized, stored,
replayed, turned into a regression test, and a store that survives a SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from fuzz.campaign.store import CrashStore
from tests.bus.test_lifecycle import wait_until
from tests.conftest import ROOT, leftover_processes, rig_env, run_rig

RELAY = f"{sys.executable} {ROOT / 'tests' / 'buggy_bus' / 'relay.py'}"
BUGGY = f"{RELAY} --crash-on-fds 1 --hang-on-size 4000"


def fuzz_args(store: Path, out: Path, budget: float, bus_cmd: str = BUGGY, seed: int = 2) -> list[str]:
    return ["fuzz", "--bus-cmd", bus_cmd, "--budget", str(budget), "--seed", str(seed),
            "--jobs", "2", "--crashes", str(store), "--out", str(out), "--no-dashboard"]


@pytest.mark.timeout(400)
def test_campaign_finds_both_bugs(tmp_path: Path, rig_tmp: Path):
    store = tmp_path / "crashes"
    run = run_rig(*fuzz_args(store, tmp_path / "work", 90), tmpdir=rig_tmp, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    entries = {CrashStore(str(store)).meta(s)["oracle"]: s for s in CrashStore(str(store)).signatures()}
    assert {"crash", "hang"} <= set(entries), run.stdout
    check_campaign_reports(tmp_path / "work", set(entries.values()))
    for oracle in ("crash", "hang"):
        entry = store / entries[oracle]
        meta = json.loads((entry / "meta.json").read_text())
        case = tomllib.loads((entry / "case.toml").read_text())
        original = tomllib.loads((entry / "original.toml").read_text())
        # Minimized: no bigger than what the campaign ran, and small in absolute terms.
        assert len(case["schedule"]) <= len(original["schedule"])
        assert len(case["clients"]) <= len(original["clients"])
        assert len(case["schedule"]) <= 2 and len(case["clients"]) <= 3, case
        assert int(meta["reliability"].split("/")[0]) >= 1, meta
        assert (entry / "history.jsonl").read_text().strip(), "no history excerpt"
        assert "python rig.py replay" in (entry / "report.md").read_text()
        replay = run_rig("replay", str(entry), "--times", "2", "--out", str(tmp_path / oracle),
                         tmpdir=rig_tmp, timeout=200)
        assert replay.returncode == 1 and "still reproduces" in replay.stdout, replay.stdout
    # The regression-test plugin: the stored cases still reproduce, so their tests fail.
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(store / entries["crash"]), "--busrig-times", "1",
                             "--basetemp", str(tmp_path / "inner")],
                            capture_output=True, text=True, env=rig_env(rig_tmp), cwd=ROOT,
                            timeout=200)
    assert result.returncode == 1 and "still reproduces" in result.stdout, result.stdout
    # Nightly against the same buggy bus: both known cases are replayed and still reproduce.
    nightly = run_rig("nightly", "--bus-cmd", BUGGY, "--budget", "24", "--seed", "9",
                      "--crashes", str(store), "--out", str(tmp_path / "nightly"),
                      "--no-dashboard", tmpdir=rig_tmp, timeout=200)
    assert nightly.returncode in (0, 1), nightly.stdout + nightly.stderr
    report = json.loads((tmp_path / "nightly" / "report.json").read_text())
    assert report["kind"] == "nightly"
    assert {r["case"] for r in report["replays"]} == {str(store / s) for s in entries.values()}
    assert all(r["reproduces"] for r in report["replays"]), report["replays"]
    suite = ET.parse(tmp_path / "nightly" / "junit.xml").getroot()[0]
    replayed = [c for c in suite if c.get("name", "").startswith("replay ")]
    assert len(replayed) == len(entries) and all(c.find("skipped") is not None for c in replayed)
    # The fork server and resource tracker notice their parent's exit a moment later.
    assert wait_until(lambda: leftover_processes(str(rig_tmp)) == []), leftover_processes(str(rig_tmp))
    assert list(rig_tmp.iterdir()) == []


def check_campaign_reports(work: Path, new: set[str]) -> None:
    report = json.loads((work / "report.json").read_text())
    assert report["kind"] == "campaign" and report["verdict"] == "found"
    assert {f["signature"] for f in report["findings"] if f["status"] == "new"} == new
    assert all(f["reproduce"] == f"python rig.py replay {f['case']}" for f in report["findings"]
               if f["status"] != "unreproduced")  # a finding set aside has no case to replay
    series = report["series"]
    assert series["execs"] and series["ping"] and series["buses"], series.keys()
    suite = ET.parse(work / "junit.xml").getroot()[0]
    assert int(suite.get("failures", "0")) == len(new) + 1  # each new finding, and the campaign
    page = (work / "report.html").read_text()
    assert all(sig in page for sig in new)
    assert page.count("<svg") >= 3


@pytest.mark.timeout(300)
def test_plugin_passes_once_the_bug_is_fixed(tmp_path: Path, rig_tmp: Path):
    store = tmp_path / "crashes"
    run = run_rig(*fuzz_args(store, tmp_path / "work", 40, f"{RELAY} --crash-on-fds 1"),
                  tmpdir=rig_tmp, timeout=200)
    assert run.returncode == 1, run.stdout + run.stderr
    entries = list(CrashStore(str(store)).signatures())
    assert entries
    for entry in entries:
        meta = json.loads((store / entry / "meta.json").read_text())
        meta["bus"]["label"] = f"command({RELAY})"  # the same bus with the bug fixed
        (store / entry / "meta.json").write_text(json.dumps(meta))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(store), "--busrig-times", "1",
                             "--basetemp", str(tmp_path / "inner")],
                            capture_output=True, text=True, env=rig_env(rig_tmp), cwd=ROOT,
                            timeout=200)
    assert result.returncode == 0 and f"{len(entries)} passed" in result.stdout, result.stdout
    # Nightly against the fixed bus says so for every known case.
    nightly = run_rig("nightly", "--bus-cmd", RELAY, "--budget", "16", "--seed", "9",
                      "--crashes", str(store), "--out", str(tmp_path / "nightly"),
                      "--no-dashboard", tmpdir=rig_tmp, timeout=200)
    assert nightly.returncode in (0, 1), nightly.stdout + nightly.stderr
    assert nightly.stdout.count("no longer reproduces") == len(entries), nightly.stdout


def start_campaign(store: Path, work: Path, bus_cmd: str, rig_tmp: Path) -> subprocess.Popen:
    """A two-minute campaign in the background, to be cut short by the test."""
    return subprocess.Popen([sys.executable, str(ROOT / "rig.py"),
                             *fuzz_args(store, work, 120, bus_cmd)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=rig_env(rig_tmp), cwd=ROOT)


def sigkill_and_wait(proc: subprocess.Popen, rig_tmp: Path) -> None:
    """SIGKILL the campaign and give its janitor up to 15 s to clean up after it."""
    kids = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (leftover_processes(str(rig_tmp))
                                           or any(psutil.pid_exists(k) and psutil.Process(k).status()
                                                  != psutil.STATUS_ZOMBIE for k in kids)):
        time.sleep(0.1)


@pytest.mark.timeout(300)
def test_store_survives_sigkill(tmp_path: Path, rig_tmp: Path):
    store, work = tmp_path / "crashes", tmp_path / "work"
    proc = start_campaign(store, work, f"{RELAY} --crash-on-fds 1", rig_tmp)
    deadline = time.monotonic() + 150
    log = work / "campaign.jsonl"
    # Kill it in the middle: once it is writing the store (a hidden entry) or has written one.
    mid_write = False
    while time.monotonic() < deadline:
        names = [p.name for p in store.glob("*")] if store.exists() else []
        if any(n.startswith(".tmp-") for n in names):
            mid_write = True
            break
        if any((store / n / "meta.json").exists() for n in names if not n.startswith(".")):
            break
        time.sleep(0.01)
    sigkill_and_wait(proc, rig_tmp)
    assert leftover_processes(str(rig_tmp)) == []
    # Whatever the moment, the store is valid: every visible entry is complete.
    before = CrashStore(str(store))
    for sig in before.signatures():
        assert {p.name for p in (store / sig).iterdir()} >= {"case.toml", "meta.json", "report.md"}
    # A later campaign (same seed: the same first scenarios) merges into the same store.
    again = run_rig(*fuzz_args(store, tmp_path / "work2", 30, f"{RELAY} --crash-on-fds 1"),
                    tmpdir=rig_tmp, timeout=200)
    assert again.returncode in (0, 1), again.stdout + again.stderr
    after = CrashStore(str(store))
    sigs = list(after.signatures())
    assert sigs and all(after.meta(s)["hits"] >= 1 for s in sigs)
    if list(before.signatures()):  # the entry survived: the next campaign knows it
        assert "known hit" in again.stdout and " 0 known hit(s)" not in again.stdout
    else:  # killed while writing it: nothing half-written is visible, and it is stored anew
        assert mid_write and again.returncode == 1, again.stdout
    assert not any(p.name.startswith(".tmp-") for p in store.iterdir())


@pytest.mark.timeout(200)
def test_interrupted_campaign_writes_its_reports_and_sweeps_its_runs(tmp_path: Path,
                                                                    rig_tmp: Path):
    store, work = tmp_path / "crashes", tmp_path / "work"
    proc = start_campaign(store, work, RELAY, rig_tmp)
    log = work / "campaign.jsonl"
    assert wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= 3,
                      timeout=90)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 3, out
    report = json.loads((work / "report.json").read_text())
    assert report["verdict"] == "error" and "Interrupted" in report["error"], report["error"]
    assert json.loads((work / "campaign.json").read_text())["execs"] >= 3
    assert ET.parse(work / "junit.xml").getroot()[0].find("testcase/error") is not None
    assert not [p.name for p in work.iterdir() if p.name.startswith(("exec-", "repro-"))]
    assert wait_until(lambda: leftover_processes(str(rig_tmp)) == []), \
        leftover_processes(str(rig_tmp))
