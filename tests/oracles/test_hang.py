"""The hang oracle: a liveness ping left unanswered, classified, with the wait-for graph."""

from __future__ import annotations

from fuzz.oracles.hang import check_hang
from tests.oracles.builder import H


def stalled(h: H) -> H:
    """A quick ping, then one that gets no answer (the caller adds time and what follows)."""
    return h.ping(0).add("sentinel.0", "invoke", "ping", seq=1)


def sample(h: H, state="S", cpu=0.0, wchan="do_epoll_wait") -> H:
    return h.add("watch", "info", "proc", target="bus", pid=7, state=state, cpu_s=cpu, wchan=wchan)


def test_quick_pings_are_silent():
    h = H().ping(0).ping(1, latency_s=1.5).ping(2)
    assert h.kinds(check_hang) == []


def test_blocked_bus_is_found_with_its_wait_channel():
    h = sample(stalled(H()))
    h.wait(3)
    sample(h).add("sentinel.0", "info", "ping", seq=1, reason="timeout")
    found = check_hang(h.events)
    assert [f.kind for f in found] == ["blocked:in the kernel at do_epoll_wait"]


def test_snapshot_syscall_wins_and_wrapper_shell_is_skipped():
    h = stalled(H()).wait(3)
    h.add("watch", "info", "hang-snapshot", path="p", processes=[
        {"pid": 1, "state": "S", "wchan": "do_wait", "syscall": "wait4"},
        {"pid": 2, "state": "S", "wchan": "unix_stream_read_generic", "syscall": "recvmsg"}])
    assert h.kinds(check_hang) == ["blocked:in recvmsg (unix_stream_read_generic)"]


def test_spinning_and_stopped():
    h = sample(stalled(H()), cpu=1.0)
    h.wait(3)
    sample(h, state="R", cpu=4.0)
    assert h.kinds(check_hang)[0].startswith("spinning")
    h = sample(stalled(H()), state="T").wait(3).add("rig", "info", "traffic-end")
    assert h.kinds(check_hang)[0].startswith("stopped")


def test_stall_after_the_bus_died_is_not_a_hang():
    h = stalled(H()).add("rig", "info", "bus-exit", signal="SIGSEGV").wait(3)
    h.add("rig", "info", "traffic-end")
    assert h.kinds(check_hang) == []


def test_wait_for_graph():
    h = H()
    for p, name in (("a", "org.A"), ("b", "org.B")):
        h.add(p, "ok", "request-name", name=name)
    h.add("a", "invoke", "call", seq=0, target="org.B").add("b", "invoke", "call", seq=0, target="org.A")
    stalled(h).wait(3).add("rig", "info", "traffic-end")
    found = check_hang(h.events)
    assert "a -> b" in found[0].explanation


def test_a_pause_made_by_the_nemesis_is_no_hang_but_a_later_stall_is():
    h = H().add("nemesis", "invoke", "pause-bus", source=0)
    stalled(h).wait(3).add("nemesis", "info", "undo", action="pause-bus", source=0)
    h.add("sentinel.0", "ok", "ping", seq=1)
    assert h.kinds(check_hang) == []
    stalled(h).wait(3).add("rig", "info", "traffic-end")
    assert len(h.kinds(check_hang)) == 1


def test_a_sentinel_cut_off_by_a_transient_send_error_is_named_by_it():
    """dbus-broker hangs up a connection's output on ENOBUFS: the sentinel then waits for
    ever although the bus goes on. The injected error, inside the ping's wait, names it."""
    h = stalled(H()).wait(0.01)
    h.add("inject.9", "ok", "inject", syscall="sendmmsg", errno="ENOBUFS", n=1)
    sample(h.wait(3)).add("sentinel.0", "info", "ping", seq=1, reason="timeout")
    assert h.kinds(check_hang) == ["sentinel-cut-off-under-injected:ENOBUFS"]
    from fuzz.oracles.known import mark_known
    assert all(f.known for f in mark_known(check_hang(h.events), "dbus-broker", "dbus-broker 33"))
    # An error that says the peer is gone, or one on reading, is not this.
    for syscall, errno in (("sendmmsg", "ECONNRESET"), ("recvmsg", "ENOBUFS")):
        h = stalled(H()).wait(0.01)
        h.add("inject.9", "ok", "inject", syscall=syscall, errno=errno, n=1)
        sample(h.wait(3)).add("sentinel.0", "info", "ping", seq=1, reason="timeout")
        assert h.kinds(check_hang) == ["blocked:in the kernel at do_epoll_wait"]
