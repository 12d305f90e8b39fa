"""Turn a scenario and a seed into a concrete plan: which instances, which action when.

Everything random about a run is decided here, from the seed, before anything starts: the
same scenario and seed always give the same plan (written to OUT/plan.json).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from fuzz.clients.group import ClientGroup
from fuzz.engine.scenario import Scenario
from fuzz.faults import OPERATORS


@dataclass(frozen=True)
class ClientInstance:
    id: str
    group: ClientGroup
    seed: int


@dataclass(frozen=True)
class PlannedAction:
    time: float  # seconds after traffic starts
    action: str
    target: str | None  # instance id, or None for bus actions
    source: int  # index of the [[schedule]] entry it came from
    skipped: str | None = None  # why it will not be applied (e.g. nothing left to kill)
    params: dict = field(default_factory=dict)  # a fault operator's parameters
    trigger: str | None = None  # wait for this moment (scenario TRIGGERS) from `time` on
    within: float = 5.0  # ... for at most this long


@dataclass(frozen=True)
class Plan:
    seed: int
    initial: tuple[ClientInstance, ...]
    actions: tuple[PlannedAction, ...]
    instances: dict[str, ClientInstance]  # every instance the plan may start

    def to_json(self) -> dict:
        return {
            "seed": self.seed,
            "initial": [i.id for i in self.initial],
            "actions": [asdict(a) for a in self.actions],
            "instances": {k: {"group": v.group.name, "role": v.group.role, "seed": v.seed}
                          for k, v in self.instances.items()},
        }


def instance_seed(seed: int, instance_id: str) -> int:
    return random.Random(f"{seed}/{instance_id}").getrandbits(32)


def make_plan(scenario: Scenario, seed: int) -> Plan:
    rng = random.Random(seed)
    instances: dict[str, ClientInstance] = {}
    next_index: dict[str, int] = {}
    present: dict[str, list[str]] = {}

    def new_instance(group: ClientGroup) -> ClientInstance:
        index = next_index.get(group.name, 0)
        next_index[group.name] = index + 1
        inst = ClientInstance(group.instance_id(index), group, instance_seed(seed, group.instance_id(index)))
        instances[inst.id] = inst
        present.setdefault(group.name, []).append(inst.id)
        return inst

    initial = tuple(new_instance(g) for g in scenario.clients for _ in range(g.count))
    # Draw every jitter first, in file order, so adding a target choice never shifts the times.
    timed = sorted(((a.at + (rng.uniform(0, a.jitter) if a.jitter else 0.0), i, a)
                    for i, a in enumerate(scenario.schedule)), key=lambda t: (t[0], t[1]))
    actions: list[PlannedAction] = []
    for when, source, action in timed:
        when = round(when, 6)
        trig = {"trigger": action.when, "within": action.within}
        if action.target is None:
            actions.append(PlannedAction(when, action.action, None, source, params=action.params,
                                         **trig))
            continue
        group_name, _, index = action.target.partition(".")
        if action.action == "start":
            inst = new_instance(scenario.group(group_name))
            actions.append(PlannedAction(when, "start", inst.id, source,
                                         params={"target": inst.id}, **trig))
            continue
        alive = present.get(group_name, [])
        if index:
            target = action.target if action.target in alive else None
        else:
            target = rng.choice(alive) if alive else None
        if target is None:
            actions.append(PlannedAction(when, action.action, action.target, source,
                                         skipped="no running instance of that target",
                                         params=action.params, **trig))
            continue
        if OPERATORS[action.action].ends_client:
            alive.remove(target)  # gone for good; a paused client comes back
        actions.append(PlannedAction(when, action.action, target, source,
                                     params=dict(action.params, target=target), **trig))
    return Plan(seed=seed, initial=initial, actions=tuple(actions), instances=instances)
