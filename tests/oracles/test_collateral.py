"""Collateral damage: harm to innocent clients while an attacker runs, and only harm the bus
can be blamed for."""

from __future__ import annotations

from fuzz.oracles.collateral import check_collateral
from tests.oracles.builder import H


def attacked(bus: str = "dbus-daemon", attacker_uid: int = 65534) -> H:
    h = H(bus=bus)
    for client, role, uid in (("caller.0", "caller", 0), ("service.0", "service", 0),
                              ("attacker.1", "attacker", attacker_uid)):
        h.add("rig", "info", "client-start", client=client, role=role, pid=1, uid=uid)
    return h.add("attacker.1", "invoke", "attack", kind="flood-signals", params={})


def timed_out_call(h: H, seq: int, served: bool, answered: bool = True) -> H:
    h.add("caller.0", "invoke", "call", seq=seq, serial=seq + 10)
    if served:
        h.add("service.0", "ok", "serve", seq=seq, caller="caller.0", answered=answered)
    return h.add("caller.0", "info", "call", seq=seq, serial=seq + 10, reason="timeout")


def test_answered_call_that_times_out_is_harm():
    h = timed_out_call(attacked(), 0, served=True)
    assert h.kinds(check_collateral) == ["flood-signals:call timed out"]


def test_slow_or_silent_service_is_not_the_bus():
    # Found by the first campaign: a service sleeping 10 s per call made calls time out
    # beside an attacker, and the attacker was blamed.
    assert timed_out_call(attacked(), 0, served=False).kinds(check_collateral) == []
    assert timed_out_call(attacked(), 0, served=True, answered=False).kinds(check_collateral) == []


def test_unserved_call_overtaken_by_a_later_one_is_harm():
    h = timed_out_call(attacked(), 0, served=False)
    h.add("caller.0", "invoke", "call", seq=1, serial=11)
    h.add("service.0", "ok", "serve", seq=1, caller="caller.0", answered=True)
    assert h.kinds(check_collateral) == ["flood-signals:call timed out"]


def test_disconnect_is_harm_and_same_uid_on_broker_is_policy():
    h = attacked().add("caller.0", "info", "disconnect", error="EOF")
    assert h.kinds(check_collateral) == ["flood-signals:disconnected"]
    h = attacked("dbus-broker", attacker_uid=0).add("caller.0", "info", "disconnect", error="EOF")
    assert [(f.kind, f.by_policy) for f in check_collateral(h.events)] == [
        ("flood-signals:disconnected:same-uid", True)]


def test_no_attacker_no_finding():
    h = H().add("rig", "info", "client-start", client="caller.0", role="caller", pid=1, uid=0)
    assert timed_out_call(h, 0, served=True).kinds(check_collateral) == []


def test_a_missing_service_is_not_the_attacker_s_doing():
    h = attacked()
    h.add("caller.0", "invoke", "call", seq=0, serial=10)
    h.add("caller.0", "fail", "call", seq=0, serial=10,
          error="org.freedesktop.DBus.Error.ServiceUnknown")
    assert h.kinds(check_collateral) == []
    h.add("caller.0", "invoke", "call", seq=1, serial=11)
    h.add("caller.0", "fail", "call", seq=1, serial=11,
          error="org.freedesktop.DBus.Error.LimitsExceeded")
    assert h.kinds(check_collateral) == [
        "flood-signals:call failed with org.freedesktop.DBus.Error.LimitsExceeded"]


def test_harm_while_the_nemesis_works_on_the_bus_is_not_the_attacker_s():
    # Found by a campaign: recvmsg failing with ECONNRESET (fail-syscalls) beside an
    # scm-credentials attack; dbus-broker dropped the innocent whose read failed.
    h = attacked("dbus-broker")
    h.add("nemesis", "invoke", "fail-syscalls", source=0, params={"errno": "ECONNRESET"})
    h.add("caller.0", "info", "disconnect", error="ConnectionResetError")
    assert h.kinds(check_collateral) == []
    # After the undo and the consequence margin, harm is the attacker's again.
    h.add("nemesis", "info", "undo", action="fail-syscalls", source=0)
    h.wait(2.0).add("service.0", "info", "disconnect", error="EOF")
    assert h.kinds(check_collateral) == ["flood-signals:disconnected"]


def test_one_disconnect_seen_by_loss_and_collateral_is_one_finding_named_by_the_attack():
    from fuzz.history import Event
    from fuzz.oracles.finding import Finding
    from fuzz.oracles.registry import group_by_cause
    events = [Event(0, 0, "attacker.1", "invoke", "attack", {}),
              Event(1, 1, "service.0", "info", "disconnect", {}),
              Event(2, 2, "service.0", "info", "disconnect", {})]
    loss = Finding("loss", "high", "client-disconnected", "the bus dropped a client", "e",
                   evidence=(1,))
    harm = Finding("collateral", "high", "monitor:disconnected", "the attack harmed", "e",
                   evidence=(0, 1))
    other = Finding("loss", "high", "reply-lost", "a reply was lost", "e", evidence=(2,))
    excuse = Finding("loss", "low", "peer-disconnected-over-quota", "quota", "e",
                     evidence=(1,), by_policy=True)
    out = group_by_cause([loss, harm, other, excuse], events)
    assert [f.kind for f in out] == ["monitor:disconnected", "reply-lost",
                                     "peer-disconnected-over-quota"]
    assert out[0].symptoms == ("loss: the bus dropped a client",)
    assert out[0].signature == harm.signature and set(out[0].evidence) == {0, 1}
    # Without a shared cause event nothing is grouped.
    assert group_by_cause([loss, other], events) == [loss, other]
