"""`rig.py bench`: the JSON it promises, and the structural facts it must show (a socketpair
round trip costs two context switches; through a bus daemon the bus adds its own)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fuzz.bench.measure import round_trips, target
from tests.conftest import require_binary, run_rig


@pytest.mark.timeout(60)
def test_socketpair_round_trip_is_two_context_switches():
    with target("socketpair") as t:
        r = round_trips(t, 2000)
    assert r.n == 2000 and r.seconds > 0
    # Client and service each sleep once per round trip waiting for the other.
    assert 1.9 <= r.ctx_all / r.n <= 3.0, r.ctx_all / r.n


@pytest.mark.timeout(60)
@pytest.mark.parametrize("with_fd", [False, True])
def test_a_bus_daemon_adds_its_own_switches(bus: str, with_fd: bool):
    with target(bus) as t:
        r = round_trips(t, 1000, with_fd=with_fd)
    assert r.n == 1000
    # The bus wakes at least once per round trip (for the call; dbus-daemon also for the
    # reply), and client plus service still sleep once each.
    assert r.ctx_bus / r.n >= 0.9, r.ctx_bus / r.n
    assert r.ctx_all / r.n >= 2.9, r.ctx_all / r.n


@pytest.mark.timeout(180)
def test_bench_quick_writes_the_promised_json(tmp_path: Path, rig_tmp: Path):
    require_binary("dbus-daemon")
    out = tmp_path / "bench.json"
    run = run_rig("bench", "--quick", "--targets", "socketpair,dbus-daemon", "--json", str(out),
                  "--out", str(tmp_path / "plot"), tmpdir=rig_tmp, timeout=170)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = json.loads(out.read_text())
    assert all({"target", "metric", "value"} <= set(r) for r in rows)
    have = {(r["target"], r["metric"]) for r in rows}
    for t in ("socketpair", "dbus-daemon"):
        for metric in ("rt_per_s", "ctx_switches_per_rt", "p50_us", "p99_us", "fds_per_s",
                       "signals_per_s_1", "signals_per_s_4", "rt_per_s_1048576B"):
            assert (t, metric) in have, (t, metric)
    assert ("dbus-daemon", "bus_ctx_switches_per_rt") in have
    assert ("dbus-daemon", "busrig_execs_per_s") in have
    assert ("dbus-daemon", "busrig_flood_vs_ingest") in have
    value = {(r["target"], r["metric"]): r["value"] for r in rows}
    assert value[("socketpair", "delivered_share_4")] == 1.0
    assert value[("dbus-daemon", "ctx_switches_per_rt")] > value[("socketpair",
                                                                  "ctx_switches_per_rt")]
    assert "<svg" in (tmp_path / "plot" / "bench.svg").read_text()
    assert "socketpair" in run.stdout and "dbus-daemon" in run.stdout
