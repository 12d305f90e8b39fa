"""The loss oracle on hand-written histories: each violation fires, its correct twin is silent."""

from __future__ import annotations

from fuzz.oracles.loss import check_loss, rule_takes
from tests.oracles.builder import H


def healthy_broadcast() -> H:
    return H().listener_ready().emit(range(5)).recv(range(5)).flush().barrier()


def test_healthy_broadcast_is_silent():
    assert healthy_broadcast().kinds(check_loss) == []


def test_lost_signal_is_found():
    h = H().listener_ready().emit(range(5)).recv([0, 1, 3, 4]).flush().barrier()
    found = check_loss(h.events)
    assert [f.kind for f in found] == ["broadcast-lost"] and "seq 2" in found[0].explanation


def test_duplicated_signal_is_found():
    h = H().listener_ready().emit(range(3)).recv([0, 1, 1, 2]).flush().barrier()
    assert h.kinds(check_loss) == ["broadcast-duplicated"]


def test_signals_before_the_match_rule_are_not_owed():
    assert H().emit([0, 1]).listener_ready().emit([2, 3]).recv([2, 3]).flush().barrier() \
        .kinds(check_loss) == []


def test_no_flush_before_barrier_means_nothing_owed():
    assert H().listener_ready().emit(range(3)).recv([0]).barrier().flush().kinds(check_loss) == []


def test_dead_bus_means_nothing_owed():
    h = H().listener_ready().emit(range(3)).recv([0]).flush()
    h.add("rig", "info", "bus-exit", signal="SIGKILL")
    assert h.barrier().kinds(check_loss) == []


def test_narrower_rule_is_not_owed_and_silent_listener_is_judged():
    assert H().listener_ready(rule="type='signal',member='Other'").emit(range(3)).flush() \
        .barrier().kinds(check_loss) == []
    assert H().listener_ready().emit(range(3)).flush().barrier().kinds(check_loss) == \
        ["broadcast-lost"]


def test_daemon_skip_for_a_backed_up_receiver_is_by_policy():
    h = H(bus="dbus-daemon").listener_ready().emit(range(5))
    h.add("watch", "info", "sockets", sockets=[{"owner": "listener.0", "rq": 200_000}])
    found = check_loss(h.recv([0, 4]).flush().barrier().events)
    assert [(f.kind, f.by_policy, f.severity) for f in found] == \
        [("broadcast-skipped-full-queue", True, "low")]


QUOTA_LINE = ("<28>Peer :1.4 is being disconnected as it does not have the resources to"
              " receive a signal it subscribed to.")


def test_a_broker_disconnect_is_policy_only_with_its_quota_line_for_that_peer():
    """The excuse needs the broker's own words about this very peer; a drop without them, or
    with a quota line about another peer, is a bug like on any bus."""
    for bus, log, expected in (
            ("dbus-broker", [QUOTA_LINE], [("peer-disconnected-over-quota", True)]),
            ("dbus-broker", [], [("client-disconnected", False)]),
            ("dbus-broker", [QUOTA_LINE.replace(":1.4", ":1.9")], [("client-disconnected", False)]),
            ("dbus-daemon", [QUOTA_LINE], [("client-disconnected", False)])):
        h = H(bus=bus).connect("listener.0", ":1.4").listener_ready()
        h.add("listener.0", "info", "disconnect", error="EOF")
        h.wait(3).add("rig", "info", "bus-stop").add("rig", "info", "bus-log", lines=log)
        assert [(f.kind, f.by_policy) for f in check_loss(h.events)] == expected, (bus, log)


def test_a_drop_for_a_transient_errno_is_named_by_it():
    h = H(bus="dbus-daemon").listener_ready()
    h.add("nemesis", "invoke", "fail-syscalls", source=0, params={"errno": "ENOBUFS"})
    h.add("listener.0", "info", "disconnect", error="EOF")
    h.add("nemesis", "info", "undo", action="fail-syscalls", source=0)
    h.wait(3).add("rig", "info", "bus-stop")
    assert [(f.kind, f.by_policy) for f in check_loss(h.events)] == \
        [("client-disconnected-under-injected:ENOBUFS", False)]


def test_a_disconnect_while_the_bus_sees_broken_sockets_is_by_policy():
    """The nemesis injected ECONNRESET into the bus's recvmsg: dropping that peer is right,
    on either bus; the same drop a few seconds after the injection ended is a bug again."""
    for bus in ("dbus-daemon", "dbus-broker"):
        h = H(bus=bus).listener_ready()
        h.add("nemesis", "invoke", "fail-syscalls", source=0, params={"errno": "ECONNRESET"})
        h.add("listener.0", "info", "disconnect", error="ConnectionResetError")
        h.add("nemesis", "info", "undo", action="fail-syscalls", source=0)
        h.wait(3).add("rig", "info", "bus-stop")
        assert [(f.kind, f.by_policy) for f in check_loss(h.events)] == \
            [("peer-disconnected-under-fault", True)]
    h = H().listener_ready()
    h.add("nemesis", "invoke", "fail-syscalls", source=0, params={"errno": "ECONNRESET"})
    h.add("nemesis", "info", "undo", action="fail-syscalls", source=0)
    h.wait(3).add("listener.0", "info", "disconnect", error="EOF")
    h.wait(3).add("rig", "info", "bus-stop")
    assert h.kinds(check_loss) == ["client-disconnected"]
    # A transient ENOBUFS is no reason to drop a peer (syscall_send_enobufs.toml).
    h = H().listener_ready()
    h.add("nemesis", "invoke", "fail-syscalls", source=0, params={"errno": "ENOBUFS"})
    h.add("listener.0", "info", "disconnect", error="EOF")
    h.add("nemesis", "info", "undo", action="fail-syscalls", source=0)
    h.wait(3).add("rig", "info", "bus-stop")
    assert h.kinds(check_loss) == ["client-disconnected-under-injected:ENOBUFS"]


def test_disconnects_caused_by_a_crash_are_not_reported_again():
    h = H().listener_ready().add("listener.0", "info", "disconnect", error="EOF")
    h.add("rig", "info", "bus-exit", signal="SIGSEGV")
    assert h.kinds(check_loss) == []


def calls(h: H, seqs, served=True, answered=True, timeout=False, late=False) -> H:
    for s in seqs:
        h.add("caller.0", "invoke", "call", seq=s, serial=s + 10, target="org.busrig.Echo")
        if served:
            h.add("service.0", "ok", "serve", seq=s, caller="caller.0", answered=answered)
        if timeout:
            h.add("caller.0", "info", "call", seq=s, serial=s + 10, reason="timeout")
            if late:
                h.add("caller.0", "ok", "late-reply", seq=s, serial=s + 10)
        else:
            h.add("caller.0", "ok", "call", seq=s, serial=s + 10)
    return h


def test_reply_lost_fires_and_late_or_silent_twins_do_not():
    lost = calls(calls(H(), [0]), [1], timeout=True)
    calls(lost.wait(3), [2])
    assert lost.kinds(check_loss) == ["reply-lost"]
    late = calls(calls(H(), [0]), [1], timeout=True, late=True)
    assert calls(late.wait(3), [2]).kinds(check_loss) == []
    silent = calls(calls(H(), [0]), [1], timeout=True, answered=False)
    assert calls(silent.wait(3), [2]).kinds(check_loss) == []


def test_call_lost_needs_the_service_answering_afterwards():
    h = calls(calls(H(), [0]), [1], served=False, timeout=True)
    assert h.kinds(check_loss) == []  # the service may just be stuck
    assert calls(h, [2]).kinds(check_loss) == ["call-lost"]


def test_a_slow_service_serving_older_calls_is_not_call_loss():
    # Found by the first campaign: a service sleeping per call served caller.1's older call
    # after caller.0's call timed out; only a *later* call of the same caller proves loss.
    h = H()
    h.add("caller.0", "invoke", "call", seq=0, serial=10, target="org.busrig.Echo")
    h.add("caller.1", "invoke", "call", seq=0, serial=10, target="org.busrig.Echo")
    h.add("service.0", "ok", "serve", seq=0, caller="caller.0", answered=True)
    h.add("caller.0", "ok", "call", seq=0, serial=10)
    h.add("caller.0", "invoke", "call", seq=1, serial=11, target="org.busrig.Echo")
    h.add("caller.0", "info", "call", seq=1, serial=11, reason="timeout")
    h.wait(2).add("service.0", "ok", "serve", seq=0, caller="caller.1", answered=True)
    assert h.kinds(check_loss) == []


def test_duplicate_stray_and_mismatched_replies():
    h = calls(H(), [0])
    h.add("caller.0", "ok", "duplicate-reply", seq=0, serial=10)
    h.add("caller.0", "ok", "stray-reply", serial=99)
    h.add("caller.0", "invoke", "call", seq=1, serial=11)
    h.add("caller.0", "ok", "call", seq=1, serial=11, mismatch=[5, "caller.1", 0])
    h.add("service.0", "ok", "serve", seq=0, caller="caller.0", answered=True)
    assert h.kinds(check_loss) == ["call-duplicated", "reply-duplicated", "reply-mismatch",
                                   "reply-stray"]


def test_rule_parsing():
    assert rule_takes("type='signal',interface='org.busrig.Test'")
    assert rule_takes("type='signal'") and rule_takes("type='signal'", "Relayed")
    assert not rule_takes("type='signal',member='Tick'", "Relayed")
    assert not rule_takes("type='signal',arg0='x'") and not rule_takes("nonsense")


def test_owed_signals_depend_on_the_member_the_rule_takes():
    h = H().listener_ready(rule="type='signal',member='Tick'")
    h.add("forwarder.0", "invoke", "emit", seq=0, member="Relayed")
    h.add("forwarder.0", "ok", "emit", seq=0, member="Relayed")
    h.flush("forwarder.0").barrier()
    assert h.kinds(check_loss) == []


def test_loss_right_before_the_orderly_stop_is_still_judged():
    h = H().listener_ready().emit(range(3)).recv([0, 2]).flush().barrier()
    h.add("rig", "info", "bus-stop").add("rig", "info", "bus-exit", code=0)
    assert h.kinds(check_loss) == ["broadcast-lost"]


def test_clients_dropped_by_a_bus_that_crashes_while_it_is_stopped_are_its_consequence():
    """Writing a core delays a crashing bus's death past the rig's bus-stop: the clients it
    dropped just before are the crash's doing (the crash oracle reports it), not losses."""
    for signal_name, expected in (("SIGABRT", []), ("SIGTERM", ["client-disconnected"])):
        h = H().connect("listener.0", ":1.4").listener_ready()
        h.add("listener.0", "info", "disconnect", error="EOF")
        h.add("rig", "info", "bus-stop").add("rig", "info", "bus-exit", signal=signal_name)
        assert [f.kind for f in check_loss(h.events)] == expected, signal_name
