"""The ordering oracle: per-sender FIFO and one total order across listeners."""

from __future__ import annotations

from fuzz.oracles.ordering import check_ordering
from tests.oracles.builder import H


def test_in_order_and_consistent_is_silent():
    h = H().recv([0, 1], emitter="a").recv([0], emitter="b").recv([2], emitter="a")
    h.recv([0, 1], name="listener.1", emitter="a").recv([0], name="listener.1", emitter="b")
    assert h.kinds(check_ordering) == []


def test_fifo_violation_per_sender():
    assert H().recv([0, 2, 1]).kinds(check_ordering) == ["broadcast-reordered"]


def test_interleaving_of_two_senders_is_not_fifo_violation():
    assert H().recv([0], emitter="a").recv([0], emitter="b").recv([1], emitter="a") \
        .kinds(check_ordering) == []


def test_total_order_across_listeners():
    h = H().recv([0], emitter="a").recv([0], emitter="b")
    h.recv([0], name="listener.1", emitter="b").recv([0], name="listener.1", emitter="a")
    assert h.kinds(check_ordering) == ["total-order-violated"]


def test_gaps_are_not_reordering():
    h = H().recv([0, 1, 2], emitter="a")
    h.recv([0, 2], name="listener.1", emitter="a")
    assert h.kinds(check_ordering) == []


def test_calls_served_out_of_order():
    h = H().add("service.0", "ok", "serve", seq=1, caller="c").add("service.0", "ok", "serve", seq=0, caller="c")
    assert h.kinds(check_ordering) == ["call-reordered"]


def test_causal_order():
    ok = H().recv([0], emitter="e")
    ok.add("listener.0", "ok", "recv", seq=0, emitter="fwd", cause=["e", 0])
    assert ok.kinds(check_ordering) == []
    bad = H().add("listener.0", "ok", "recv", seq=0, emitter="fwd", cause=["e", 0])
    bad.recv([0], emitter="e")
    assert bad.kinds(check_ordering) == ["causal-order-violated"]
