"""Generation and mutation: seeded, valid, and covering every operator."""

from __future__ import annotations

import copy
import random

from fuzz.bus.factory import BusChoice
from fuzz.campaign.generate import (
    CLIENT_ACTIONS,
    DRAWN_FAULTS,
    MUTATORS,
    generate,
    mutate,
    scenario_rng,
    to_toml,
)
from fuzz.campaign.manager import WARMUP, Campaign, CampaignConfig
from fuzz.engine.scenario import parse_scenario
from fuzz.faults import OPERATORS


def campaign(tmp_path, seed: int, shard=(0, 1)) -> Campaign:
    return Campaign(CampaignConfig(bus=BusChoice(kind="dbus-daemon"), budget=1, seed=seed,
                                   out=str(tmp_path / f"out{seed}"),
                                   crashes=str(tmp_path / "store"), shard=shard))


def test_same_seed_gives_the_same_first_scenarios(tmp_path):
    a, b, c = campaign(tmp_path, 7), campaign(tmp_path, 7), campaign(tmp_path, 8)
    first_a = [a.scenario_for(a.index_of(n), n)[0] for n in range(WARMUP)]
    first_b = [b.scenario_for(b.index_of(n), n)[0] for n in range(WARMUP)]
    first_c = [c.scenario_for(c.index_of(n), n)[0] for n in range(WARMUP)]
    assert first_a == first_b
    assert [to_toml(s) for s in first_a] != [to_toml(s) for s in first_c]


def test_shards_split_the_index_space(tmp_path):
    shards = [campaign(tmp_path, 7, (i, 3)) for i in range(3)]
    indexes = [s.index_of(n) for s in shards for n in range(10)]
    assert sorted(indexes) == list(range(30))


def test_generated_and_mutated_scenarios_are_valid_and_cover_every_operator():
    corpus, used, mutations = [], set(), set()
    unchanged = 0
    for i in range(400):
        rng = scenario_rng(1, i)
        if corpus and i % 2:
            parent = rng.choice(corpus)
            sc, applied = mutate(rng, parent, corpus, f"m{i}", True)
            mutations.update(applied)
            assert applied
            unchanged += {**sc, "name": ""} == {**parent, "name": ""}
        else:
            sc = generate(rng, f"g{i}", True)
        parse_scenario(to_toml(sc), f"gen{i}.toml")  # raises on anything invalid
        corpus.append(sc)
        used.update(step["action"] for step in sc["schedule"])
    # A mutation may redraw the value it had; a child equal to its parent is rare.
    assert unchanged < 20
    missing = set(CLIENT_ACTIONS + DRAWN_FAULTS) - used
    assert not missing, f"never generated: {missing}"
    left_out = {n for n, op in OPERATORS.items()
                if op.slow or op.needs_bus_setup or not op.generated}
    assert used.isdisjoint(left_out) and left_out == {"sasl", "activation", "kill-bus"}
    assert mutations == set(MUTATORS)


def test_mutation_is_deterministic_and_keeps_the_parent():
    parent = generate(random.Random(3), "p")
    before = to_toml(parent)
    one = mutate(scenario_rng(3, 10), parent, [parent], "c")
    two = mutate(scenario_rng(3, 10), parent, [parent], "c")
    assert one == two and to_toml(parent) == before


def test_steps_that_need_the_rigs_bus_config_are_redrawn_for_a_command_bus(tmp_path):
    from fuzz.campaign.generate import fit_to_bus
    sc = {"schedule": [{"action": "fd-abuse", "abuse": "pending-disconnect"},
                       {"action": "fd-abuse", "abuse": "deleted-file"}]}
    assert fit_to_bus(random.Random(1), copy.deepcopy(sc), configured=True) == sc
    fitted = fit_to_bus(random.Random(1), copy.deepcopy(sc), configured=False)
    assert fitted["schedule"][0]["abuse"] not in ("pending-disconnect", "all")
    assert fitted["schedule"][1] == sc["schedule"][1]
    store, out = str(tmp_path / "crashes"), str(tmp_path / "out")
    cmd = Campaign(CampaignConfig(bus=BusChoice(command="true"), budget=1, seed=1, out=out,
                                  crashes=store))
    assert not cmd.configured
    assert Campaign(CampaignConfig(bus=BusChoice(kind="dbus-daemon"), budget=1, seed=1,
                                   out=out, crashes=store)).configured
    drawn = [step.get("abuse") for i in range(300)
             for step in cmd.scenario_for(i, i)[0]["schedule"] if step["action"] == "fd-abuse"]
    assert drawn and "pending-disconnect" not in drawn
