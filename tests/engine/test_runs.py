"""Whole runs on real buses with real client processes."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest

from fuzz.history import pairing_problems
from tests.conftest import SCENARIOS, run_rig


@pytest.mark.timeout(120)
def test_smoke_is_complete_and_ordered(bus: str, tmp_path: Path):
    run = run_rig("run", str(SCENARIOS / "smoke.toml"), "--bus", bus, "--seed", "1",
                  out=tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    events = run.history
    assert len(events) >= 7000
    assert pairing_problems(events) == []
    calls = [e for e in events if e.op == "call"]
    assert sum(e.type == "invoke" for e in calls) == 2000
    assert sum(e.type == "ok" for e in calls) == 2000
    emitted = [e.get("seq") for e in events if e.op == "emit" and e.type == "ok"]
    assert emitted == list(range(5000))
    got: dict[str, list[int]] = defaultdict(list)
    for e in events:
        if e.op == "recv":
            got[e.process].append(e.get("seq"))
    assert sorted(got) == ["listener.0", "listener.1"]
    for listener, seqs in got.items():
        assert seqs == list(range(5000)), f"{listener} did not see every signal in order"
    s = run.summary
    assert s["findings"] == 0 and run.findings == []
    assert s["calls"]["round_trips_per_s"] > 0
    assert s["calls"]["latency_us"]["p50"] <= s["calls"]["latency_us"]["p99"]
    assert s["bus"]["ctx_switches_per_rt"] > 0
    assert s["bus"]["kind"] == bus
    assert s["spawn"]["clients"] == 7  # six scenario clients and the liveness sentinel


@pytest.mark.timeout(120)
def test_killed_caller_leaves_info_and_complete_history(bus: str, tmp_path: Path):
    run = run_rig("run", str(SCENARIOS / "kill_caller.toml"), "--bus", bus, "--seed", "3",
                  out=tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    events = run.history
    assert pairing_problems(events) == []
    kill = next(e for e in events if e.process == "nemesis" and e.op == "kill" and e.type == "invoke")
    victim = kill.get("target")
    exit_ = next(e for e in events if e.op == "client-exit" and e.get("client") == victim)
    assert exit_.get("signal") == "SIGKILL"
    victim_calls = [e for e in events if e.process == victim and e.op == "call"]
    # The service answers after 2 ms, so the kill lands while a call is in flight.
    assert victim_calls[-1].type == "info" and victim_calls[-1].get("synthetic")
    survivor = "caller.1" if victim == "caller.0" else "caller.0"
    assert sum(e.type == "ok" for e in events if e.process == survivor and e.op == "call") == 600
    assert run.summary["calls"]["ok"] < 1200
    assert run.findings == []


@pytest.mark.timeout(120)
def test_killed_bus_leaves_info_events_and_summary(bus: str, tmp_path: Path):
    run = run_rig("run", str(SCENARIOS / "kill_bus.toml"), "--bus", bus, "--seed", "4",
                  out=tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    events = run.history
    assert pairing_problems(events) == []
    bus_exit = next(e for e in events if e.op == "bus-exit")
    assert bus_exit.get("signal") == "SIGKILL"
    after = [e for e in events if e.index > bus_exit.index]
    disconnected = {e.process for e in events if e.op == "disconnect"}
    assert {"caller.0", "caller.1", "emitter.0", "listener.0", "listener.1"} <= disconnected
    unknown_calls = [e for e in events if e.op == "call" and e.type in ("info", "fail")]
    assert unknown_calls, "calls cut off by the dead bus must end as info or fail"
    assert run.summary["calls"]["ok"] < 6000
    # The rig goes on recording after the bus died: the traffic's end and the clients' stops.
    assert any(e.op == "traffic-end" for e in after), [e.op for e in after][:20]
    assert run.findings == []


@pytest.mark.timeout(120)
def test_same_seed_same_schedule(tmp_path: Path):
    a = run_rig("run", str(SCENARIOS / "kill_caller.toml"), "--bus", "dbus-daemon", "--seed", "9",
                out=tmp_path / "a")
    b = run_rig("run", str(SCENARIOS / "kill_caller.toml"), "--bus", "dbus-daemon", "--seed", "9",
                out=tmp_path / "b")
    assert a.returncode == b.returncode == 0
    assert (tmp_path / "a" / "plan.json").read_text() == (tmp_path / "b" / "plan.json").read_text()


@pytest.mark.timeout(120)
@pytest.mark.skipif(os.geteuid() != 0, reason="dropping clients to another uid needs root")
def test_clients_run_as_another_uid(bus: str, tmp_path: Path):
    scenario = tmp_path / "uid.toml"
    scenario.write_text(
        '[[clients]]\nrole = "service"\n'
        '[[clients]]\nrole = "caller"\nops = 100\nuid = "nobody"\n'
        '[[clients]]\nrole = "emitter"\nops = 100\nuid = 65534\n'
        '[[clients]]\nrole = "listener"\nuid = "nobody"\n')
    run = run_rig("run", str(scenario), "--bus", bus, "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    uids = {e.process: e.get("uid") for e in run.history if e.op == "connect" and e.type == "invoke"}
    assert uids == {"sentinel.0": 0, "service.0": 0, "caller.0": 65534, "emitter.0": 65534,
                    "listener.0": 65534}
    assert run.summary["calls"]["ok"] == 100 and run.summary["signals"]["received"] == 100


@pytest.mark.timeout(120)
def test_roundtrip_counts_bus_context_switches(bus: str, tmp_path: Path):
    run = run_rig("run", str(SCENARIOS / "roundtrip.toml"), "--bus", bus, "--seed", "1",
                  out=tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    s = run.summary
    assert s["calls"]["ok"] == 5000
    # The bus wakes at least once per message it reads (two per round trip); under load it
    # may be preempted more, but never fewer than that or wildly more.
    assert 1.9 <= s["bus"]["ctx_switches_per_rt"] <= 12
    assert s["ctx_switches"]["all_ctx_switches_per_rt"] > s["bus"]["ctx_switches_per_rt"]
    assert s["ctx_switches"]["clients_missing"] == 0


@pytest.mark.timeout(180)
def test_mixed_traffic_is_judged_healthy(bus: str, tmp_path: Path):
    """Zero false positives on real buses under the heaviest shipped mix."""
    run = run_rig("run", str(SCENARIOS / "mixed.toml"), "--bus", bus, "--seed", "1",
                  out=tmp_path / "out", timeout=150)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [f for f in run.findings if not f["by_policy"]] == []
    counts = run.summary["counts"]
    assert counts["churn"]["ok"] == 600 and counts["release-name"]["ok"] == 600
    # Two emitters x 6,000 Ticks, each relayed once by the forwarder: 24,000 signals to each of
    # three listeners, and the 12,000 Ticks to the forwarder itself.
    signals = run.summary["signals"]
    ended = next(e.get("reason") for e in run.history if e.op == "traffic-end")
    if ended == "duration":
        # A machine too busy for the clients to finish within the bound (seen with the whole
        # suite on 2 cores: 7,254 of 9,600 calls): what ran must still have been answered,
        # with nothing lost (no finding, above), but the totals are not the full mix's.
        assert counts["call"]["ok"] > 0 and not counts["call"].get("fail"), counts["call"]
    else:
        assert counts["call"]["ok"] == 9600 and signals["emitted"] == 24000
        assert signals["received"] == 84000
    assert counts["proc"]["info"] > 100 and counts["sockets"]["info"] > 50
