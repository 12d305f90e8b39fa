"""The latency oracle: spikes against the quiet baseline, and the scenario's deadline."""

from __future__ import annotations

from fuzz.oracles.latency import check_latency
from tests.oracles.builder import H


def run(latencies, deadline=None) -> H:
    h = H(watch={"latency_deadline_ms": deadline} if deadline else {})
    for i in range(5):
        h.ping(i, 0.0005)
    h.add("rig", "info", "traffic-start")
    for i, lat in enumerate(latencies):
        h.ping(10 + i, lat)
    return h


def test_steady_is_silent():
    assert run([0.001, 0.002, 0.003]).kinds(check_latency) == []


def test_spike_is_found_but_a_hang_is_left_to_the_hang_oracle():
    assert run([0.001, 1.5]).kinds(check_latency) == ["liveness-spike"]
    assert run([0.001, 5.0]).kinds(check_latency) == []


def test_deadline():
    assert run([0.001] * 50 + [0.02] * 5, deadline=10).kinds(check_latency) == ["deadline-ping"]
    assert run([0.001] * 50, deadline=10).kinds(check_latency) == []


def test_a_nemesis_pause_explains_a_slow_ping():
    h = run([0.001])
    h.add("nemesis", "invoke", "pause-bus", source=0)
    h.ping(99, 1.5)
    h.add("nemesis", "info", "undo", action="pause-bus", source=0)
    assert h.kinds(check_latency) == []
