"""Feedback's two pure parts: what counts as new behaviour, and which corpus entry is mutated."""

from __future__ import annotations

import random

from fuzz.campaign.features import features
from fuzz.campaign.generate import ROLE_FIELDS, generate, mutate, scenario_rng
from fuzz.campaign.corpus import SMASH, CorpusEntry, choose_parent, parent_weights
from tests.oracles.builder import H


def sockets(*entries) -> H:
    return H().add("rig", "info", "sockets", sockets=[
        {"owner": o, "peer_owner": p, "rq": q, "wq": 0} for o, p, q in entries])


def test_only_queues_on_the_bus_count_in_powers_of_four():
    h = sockets(("bus", "caller.0", 5000), ("caller.0", "bus", 70), ("caller.0", "listener.1", 9))
    assert {f for f in features(h.events, {}, []) if f.startswith("queue")} == {
        "queue:bus:6", "queue:client:3"}
    # a queue twice as long is the same behaviour; four times as long is new
    assert "queue:bus:6" in features(sockets(("bus", "listener.0", 10000)).events, {}, [])
    assert "queue:bus:7" in features(sockets(("bus", "caller.0", 20000)).events, {}, [])


def test_errors_latency_and_findings_are_features():
    h = H().add("caller.0", "fail", "call", error="org.freedesktop.DBus.Error.LimitsExceeded")
    got = features(h.events, {"calls": {"latency_us": {"p99": 300, "max": 5000}}}, ["crash-1"])
    assert {"fail:call:org.freedesktop.DBus.Error.LimitsExceeded", "lat-p99:4", "lat-max:6",
            "finding:crash-1"} <= got


def test_a_refused_connection_is_one_feature_whatever_attack_met_it():
    h = H()
    for kind in ("flood-names", "monitor"):
        h.add("attacker.0", "ok", "attack", kind=kind, outcome="connection-error",
              error="ConnectionRefusedError: [Errno 111] Connection refused")
        h.add("attacker.0", "ok", "attack", kind=kind, outcome="refused",
              errors=["org.freedesktop.DBus.Error.LimitsExceeded"])
    h.add("attacker.0", "ok", "attack", kind="reload", outcome="connection-error",
          error="AuthenticationError: Authentication failed. Bus sent: bytearray(b'REJECTED')")
    got = features(h.events, {}, [])
    assert got == {"conn-error:errno-111", "conn-error:AuthenticationError",
                   "attack:flood-names:refused", "attack:monitor:refused",
                   "attack-error:flood-names:org.freedesktop.DBus.Error.LimitsExceeded",
                   "attack-error:monitor:org.freedesktop.DBus.Error.LimitsExceeded"}


def entry(i: int, feats: set[str], seconds: float = 0.5) -> CorpusEntry:
    return CorpusEntry(i, {}, frozenset(feats), seconds)


def test_an_entry_with_rare_behaviour_is_mutated_more_often():
    corpus = [entry(0, {"common"}), entry(1, {"common", "rare"})]
    hits = {"common": 100, "rare": 1}
    common, rare = parent_weights(corpus, hits)
    assert rare > 50 * common


def test_a_cheaper_entry_is_mutated_more_often_down_to_a_floor():
    feats = {"a", "b"}
    slow, fast, instant, also_instant = parent_weights(
        [entry(0, feats, 2.0), entry(1, feats, 0.5), entry(2, feats, 0.1), entry(3, feats, 0.01)],
        {"a": 3, "b": 5})
    assert fast == 2 * slow and instant > fast and instant == also_instant


def test_an_entry_with_fewer_children_is_mutated_more_often():
    old, new = entry(0, {"a"}), entry(1, {"a"})
    old.picks = 9
    w_old, w_new = parent_weights([old, new], {"a": 2})
    assert w_new == 10 * w_old


def test_a_new_answer_gets_its_first_children_before_the_weights_decide():
    rng = random.Random(1)
    rare_old = entry(0, {"rare"})
    corpus = [rare_old, entry(1, {"common"}), entry(3, {"common"})]
    corpus[1].smash = True  # entry 3 showed only a new quantity: no smashing
    newest_first = []
    for _ in range(SMASH):
        picked = choose_parent(corpus, {"rare": 1, "common": 100}, rng)
        picked.picks += 1
        newest_first.append(picked.index)
    assert newest_first == [1] * SMASH
    corpus.append(entry(2, {"common"}))  # a child of 1 with a new answer: next, at once
    corpus[-1].smash = True
    assert choose_parent(corpus, {"rare": 1, "common": 100}, rng).index == 2
    corpus[-1].picks = SMASH
    # all smashed: the weights decide, and the rare behaviour wins
    picks = [choose_parent(corpus, {"rare": 1, "common": 100}, rng).index for _ in range(200)]
    assert picks.count(0) > 150


def test_mutation_draws_client_fields_from_the_generators_values():
    corpus = [generate(scenario_rng(5, i), f"g{i}") for i in range(20)]
    for i in range(300):
        rng = scenario_rng(6, i)
        child, _ = mutate(rng, rng.choice(corpus), corpus, f"m{i}")
        roles = [c["role"] for c in child["clients"]]
        assert "service" in roles and len(roles) == len(set(roles))
        for group in child["clients"]:
            for key, value in group.items():
                if key not in ("role", "name"):
                    assert value in ROLE_FIELDS[group["role"]][key], (group, key)


def test_regenerated_group_keeps_its_name():
    from fuzz.campaign.generate import MUTATORS
    sc = {"clients": [{"role": "service"}, {"role": "caller", "name": "late", "ops": 5}],
          "schedule": [{"at": 0.1, "action": "start", "target": "late"}]}
    rng = random.Random(1)
    for _ in range(20):
        MUTATORS["regenerate-client"](rng, sc, [], False)
    assert [c.get("name") for c in sc["clients"]] == [None, "late"]


def test_an_execution_that_lost_the_bus_is_not_built_on():
    from fuzz.campaign.corpus import bus_lost as _bus_lost

    def result(*findings):
        return {"findings": [dict(oracle=o, kind=k, by_policy=p) for o, k, p in findings]}

    assert _bus_lost(result(("crash", "bus-died:SIGSEGV", False)))
    assert _bus_lost(result(("loss", "broadcast-lost", False), ("hang", "blocked:poll", False)))
    assert not _bus_lost(result(("crash", "client-died:SIGKILL", False)))
    assert not _bus_lost(result(("crash", "bus-died:SIGKILL", True), ("loss", "reply-lost", False)))
