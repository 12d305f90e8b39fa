"""The crash oracle fires on unexplained deaths and stays silent on planned ones."""

from __future__ import annotations

from fuzz.history import Event
from fuzz.oracles.crash import check_crash


def history(*rows: tuple) -> list[Event]:
    return [Event(i, i, p, t, op, dict(data)) for i, (p, t, op, data) in enumerate(rows)]


BUS_UP = ("rig", "ok", "bus-start", {})


def test_unexplained_bus_exit_is_a_crash():
    found = check_crash(history(BUS_UP, ("rig", "info", "bus-exit",
                                         {"signal": "SIGSEGV", "log_tail": "boom"})))
    assert [f.kind for f in found] == ["bus-died:SIGSEGV"]
    assert found[0].severity == "high" and "boom" in found[0].explanation


def test_bus_killed_by_nemesis_or_stopped_by_rig_is_not():
    assert check_crash(history(BUS_UP, ("nemesis", "invoke", "kill-bus", {}),
                               ("rig", "info", "bus-exit", {"signal": "SIGKILL"}))) == []
    assert check_crash(history(BUS_UP, ("rig", "info", "bus-stop", {}),
                               ("rig", "info", "bus-exit", {"code": 0}))) == []


def test_bus_that_never_started_is_not_a_crash():
    assert check_crash(history(("rig", "invoke", "bus-start", {}),
                               ("rig", "info", "bus-exit", {"code": 1}))) == []


def test_client_deaths():
    killed = history(("nemesis", "invoke", "kill", {"target": "caller.0"}),
                     ("rig", "info", "client-exit", {"client": "caller.0", "signal": "SIGKILL"}))
    assert check_crash(killed) == []
    died = history(("rig", "info", "client-exit", {"client": "caller.1", "signal": "SIGSEGV"}))
    assert [f.kind for f in check_crash(died)] == ["client-died:SIGSEGV"]
    clean = history(("rig", "info", "client-exit", {"client": "caller.1", "code": 0}))
    assert check_crash(clean) == []


def test_same_bug_same_signature_regardless_of_pid_and_time():
    a = check_crash(history(BUS_UP, ("rig", "info", "bus-exit", {"signal": "SIGABRT", "pid": 1})))
    b = check_crash(history(("rig", "info", "traffic-start", {}), BUS_UP,
                            ("rig", "info", "bus-exit", {"signal": "SIGABRT", "pid": 99})))
    assert a[0].signature == b[0].signature


def test_a_bus_dying_of_a_core_signal_while_being_stopped_crashed():
    """Writing a core delays a crashing bus's death past the end of the traffic: the rig's
    bus-stop then comes first, but it sends SIGTERM, never SIGABRT."""
    from tests.oracles.builder import H
    h = H()
    h.add("rig", "info", "bus-stop")
    h.add("rig", "info", "bus-exit", signal="SIGABRT", log_tail="")
    assert [f.kind for f in check_crash(h.events)] == ["bus-died:SIGABRT"]
    calm = H()
    calm.add("rig", "info", "bus-stop")
    calm.add("rig", "info", "bus-exit", signal="SIGTERM", log_tail="")
    assert check_crash(calm.events) == []
    sent = H()
    sent.add("nemesis", "invoke", "signal-bus", params={"signal": "SIGSEGV"})
    sent.add("rig", "info", "bus-stop")
    sent.add("rig", "info", "bus-exit", signal="SIGSEGV", log_tail="")
    assert check_crash(sent.events) == []
