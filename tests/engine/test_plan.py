"""The same scenario and seed always give the same plan."""

from __future__ import annotations

from fuzz.engine.plan import make_plan
from fuzz.engine.scenario import parse_scenario

SCENARIO = parse_scenario("""
[[clients]]
role = "caller"
count = 4
[[clients]]
role = "listener"
count = 0
[[schedule]]
at = 1.0
jitter = 2.0
action = "kill"
target = "caller"
[[schedule]]
at = 0.5
jitter = 2.0
action = "kill"
target = "caller"
[[schedule]]
at = 0.2
action = "start"
target = "listener"
[[schedule]]
at = 3.0
action = "kill-bus"
""")


def test_same_seed_same_plan():
    assert make_plan(SCENARIO, 7).to_json() == make_plan(SCENARIO, 7).to_json()


def test_seed_changes_times_or_targets():
    plans = {str(make_plan(SCENARIO, seed).to_json()["actions"]) for seed in range(10)}
    assert len(plans) > 1


def test_plan_is_time_ordered_and_never_kills_twice():
    for seed in range(20):
        plan = make_plan(SCENARIO, seed)
        times = [a.time for a in plan.actions]
        assert times == sorted(times)
        kills = [a.target for a in plan.actions if a.action == "kill" and not a.skipped]
        assert len(kills) == len(set(kills)) == 2
        assert all(t.startswith("caller.") for t in kills)


def test_start_adds_new_instance():
    plan = make_plan(SCENARIO, 1)
    starts = [a for a in plan.actions if a.action == "start"]
    assert [a.target for a in starts] == ["listener.0"]
    assert "listener.0" in plan.instances and "listener.0" not in [i.id for i in plan.initial]


def test_kill_with_nothing_left_is_skipped():
    sc = parse_scenario("""
[[clients]]
role = "caller"
[[schedule]]
at = 1
action = "kill"
target = "caller"
[[schedule]]
at = 2
action = "kill"
target = "caller"
""")
    actions = make_plan(sc, 3).actions
    assert actions[0].skipped is None and actions[1].skipped
