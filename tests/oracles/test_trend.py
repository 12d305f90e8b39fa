"""Leaks across executions: growth of a bus sampled after each execution or repetition."""

from __future__ import annotations

from fuzz.campaign.trend import MAX_SUSPICIONS, TrendWatch
from fuzz.oracles.trend import NOISE, BusSample, bus_sample, leaking, repetition_growth, suspects
from tests.oracles.builder import H

MIB = 1 << 20


def series(rss: list[int], fds: list[int] | None = None, served: int = 4) -> list[BusSample]:
    fds = fds or [9] * len(rss)
    return [BusSample(pid=7, reused=i > 0, served=served, rss=r, fds=f, connections=0,
                      owned_names=0, match_rules=0) for i, (r, f) in enumerate(zip(rss, fds))]


def test_a_steady_climb_is_a_leak_with_its_rate():
    grown = repetition_growth(series([30 * MIB + i * 1200 * 1024 for i in range(8)]))
    assert [f.kind for f in grown] == ["bus-grows:rss"]
    assert "1200 KiB more resident memory after each repetition" in grown[0].title
    assert "300 KiB per connection served" in grown[0].explanation


def test_a_healthy_bus_is_silent():
    # What healthy buses did in the measurement (fuzz/oracles/trend.py): flat, or a creep of a
    # few hundred KiB, or one burst the allocator kept.
    assert repetition_growth(series([31216, 31200, 31200, 31328, 31328, 31328, 31456, 31584])) == []
    assert repetition_growth(series([5 * MIB] * 8)) == []
    assert repetition_growth(series([5 * MIB, 5 * MIB, 12 * MIB] + [12 * MIB] * 5)) == []


def test_growth_must_persist_and_exceed_the_noise_bound():
    sawtooth = [30 * MIB + (i % 2) * 8 * MIB + i * 64 * 1024 for i in range(8)]
    assert leaking(series(sawtooth)) == []  # a later sample below an earlier one
    small = [30 * MIB + i * 200 * 1024 for i in range(8)]  # 1 MiB from first to last third
    assert leaking(series(small)) == []
    assert NOISE["rss"] < 6 * 200 * 1024 * 3  # the same rate over longer would count


def test_the_warm_up_sample_is_left_out():
    # Only the first repetition grew the bus (its start-up): not a trend.
    assert leaking(series([10 * MIB] + [40 * MIB] * 7)) == []


def test_fds_and_the_bus_books_are_judged_too():
    grown = repetition_growth(series([5 * MIB] * 8, fds=[9, 9, 10, 11, 12, 13, 14, 15]))
    assert [f.kind for f in grown] == ["bus-grows:fds"]


def test_too_few_points_no_verdict():
    assert leaking(series([30 * MIB + i * 4 * MIB for i in range(4)])) == []


def test_suspicion_needs_every_last_step_to_rise_past_the_bound():
    assert suspects(series([30 * MIB, 33 * MIB])) == ["rss"]
    assert suspects(series([30 * MIB, 31 * MIB])) == []
    assert suspects(series([30 * MIB, 36 * MIB, 35 * MIB])) == []
    assert suspects(series([30 * MIB])) == []


def test_a_new_bus_lifetime_starts_a_new_series():
    watch = TrendWatch()
    case = {"name": "a", "schedule": []}
    for sample in series([30 * MIB, 31 * MIB]):
        assert watch.add(sample.to_json(), case) == []
    fresh = BusSample(7, False, 4, 40 * MIB, 9, 0, 0, 0)  # same pid, not reused: a new bus
    assert watch.add(fresh.to_json(), case) == []  # 31 -> 40 MiB is no rise of one bus
    assert watch.series[7].samples == [fresh]
    assert watch.add(None, case) == []


def test_the_suspect_case_is_the_execution_that_grew_the_bus_most():
    watch = TrendWatch()
    cases = [{"name": f"s{i}", "schedule": []} for i in range(3)]
    rss = [30 * MIB, 30 * MIB + 512 * 1024, 33 * MIB]
    out = []
    for sample, case in zip(series(rss), cases):
        out += watch.add(sample.to_json(), case)
    assert [c.scenario["name"] for c in out] == ["s2"]
    assert out[0].finding["kind"] == "bus-grows:rss"


def test_a_tainting_case_is_not_chosen_and_suspicions_are_capped():
    watch = TrendWatch()
    out = []
    for n in range(MAX_SUSPICIONS + 2):
        taint = {"name": f"t{n}", "schedule": [{"action": "signal-bus"}]}
        calm = {"name": f"c{n}", "schedule": []}
        pid_series = [BusSample(100 + n, i > 0, 4, (30 + 3 * i * i) * MIB, 9, 0, 0, 0)
                      for i in range(3)]
        for sample, case in zip(pid_series, [calm, calm, taint]):
            out += watch.add(sample.to_json(), case)
    assert len(out) == MAX_SUSPICIONS
    assert all(c.scenario["name"].startswith("c") for c in out)


def test_bus_sample_reads_the_final_state_after_the_last_client():
    h = H()
    h.add("rig", "ok", "bus-start", pid=42, reused=True)
    h.add("watch", "info", "proc", target="bus", fds=9, rss=5 * MIB)
    h.add("caller.0", "ok", "connect", unique_name=":1.1")
    h.add("caller.0", "ok", "churn", seq=0)
    h.add("attacker.1", "ok", "attack-step", step="registered", unique_name=":1.3")
    h.add("watch", "info", "proc", target="bus", fds=10, rss=6 * MIB)
    h.add("watch", "info", "proc", target="bus.1", fds=3, rss=1 * MIB)
    h.add("watch", "info", "bus-state", phase="final", connections=0, owned_names=1,
          match_rules=2)
    h.add("watch", "info", "proc", target="bus", fds=99, rss=99 * MIB)  # after: not counted
    s = bus_sample(h.events)
    assert s == BusSample(42, True, 3, 7 * MIB, 13, 0, 1, 2)
    assert BusSample.from_json(s.to_json()) == s
    no_final = H()
    no_final.add("rig", "ok", "bus-start", pid=42)
    assert bus_sample(no_final.events) is None


def test_on_a_sanitizer_build_memory_is_not_judged():
    climb = [BusSample(7, i > 0, 4, 30 * MIB + i * 4 * MIB, 9, 0, 0, 0, sanitized=True)
             for i in range(8)]
    assert leaking(climb) == [] and suspects(climb) == []
    fds = [BusSample(7, i > 0, 4, 30 * MIB, 9 + i, 0, 0, 0, sanitized=True) for i in range(8)]
    assert [g.resource for g in leaking(fds)] == ["fds"]
