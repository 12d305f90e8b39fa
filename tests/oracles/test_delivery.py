"""The delivery oracle on hand-written histories: loss, duplicates, reordering, and silence."""

from __future__ import annotations

from fuzz.engine.history import Event
from fuzz.oracles.delivery import check_delivery, rule_takes_ticks

RULE = "type='signal',interface='org.busrig.Test'"


class H:
    """A tiny history builder with a clock that only moves forward."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, process: str, type_: str, op: str, **data) -> "H":
        self.events.append(Event(len(self.events), len(self.events) * 10, process, type_, op, data))
        return self

    def listener_ready(self, name: str = "listener.0", rule: str = RULE) -> "H":
        return self.add(name, "ok", "add-match", rule=rule).add(name, "info", "ready")

    def emit(self, seqs, emitter: str = "emitter.0") -> "H":
        for s in seqs:
            self.add(emitter, "invoke", "emit", seq=s).add(emitter, "ok", "emit", seq=s)
        return self

    def recv(self, seqs, name: str = "listener.0", emitter: str = "emitter.0") -> "H":
        for s in seqs:
            self.add(name, "ok", "recv", seq=s, emitter=emitter)
        return self

    def flush(self, emitter: str = "emitter.0") -> "H":
        return self.add(emitter, "invoke", "flush").add(emitter, "ok", "flush")

    def barrier(self, name: str = "listener.0") -> "H":
        return self.add(name, "invoke", "barrier").add(name, "ok", "barrier")


def kinds(h: H) -> list[str]:
    return sorted(f.kind for f in check_delivery(h.events))


def test_healthy_delivery_is_silent():
    assert kinds(H().listener_ready().emit(range(5)).recv(range(5)).flush().barrier()) == []


def test_lost_signal_is_found():
    h = H().listener_ready().emit(range(5)).recv([0, 1, 3, 4]).flush().barrier()
    found = check_delivery(h.events)
    assert [f.kind for f in found] == ["broadcast-lost"]
    assert "seq 2" in found[0].explanation


def test_duplicate_and_reorder_are_found():
    h = H().listener_ready().emit(range(3)).recv([0, 2, 1, 1]).flush().barrier()
    assert kinds(h) == ["broadcast-duplicated", "broadcast-reordered"]


def test_signals_before_the_match_rule_are_not_owed():
    h = H().emit([0, 1]).listener_ready().emit([2, 3]).recv([2, 3]).flush().barrier()
    assert kinds(h) == []


def test_no_flush_before_barrier_means_nothing_owed():
    h = H().listener_ready().emit(range(3)).recv([0]).barrier().flush()
    assert kinds(h) == []


def test_bus_gone_means_nothing_owed():
    h = H().listener_ready().emit(range(3)).recv([0]).flush()
    h.add("rig", "info", "bus-exit", signal="SIGKILL")
    assert kinds(h.barrier()) == []


def test_listener_with_narrower_rule_is_not_owed():
    h = H().listener_ready(rule="type='signal',member='Other'").emit(range(3)).flush().barrier()
    assert kinds(h) == []


def test_listener_that_got_nothing_is_still_judged():
    assert kinds(H().listener_ready().emit(range(3)).flush().barrier()) == ["broadcast-lost"]


def test_rule_parsing():
    assert rule_takes_ticks(RULE) and rule_takes_ticks("type='signal'")
    assert not rule_takes_ticks("type='signal',arg0='x'")
    assert not rule_takes_ticks("nonsense")
