"""The credentials oracle: reported identity, sender fields, bus-only signals."""

from __future__ import annotations

from fuzz.oracles.credentials import check_credentials
from tests.oracles.builder import H


def clients() -> H:
    return H().connect("caller.0", ":1.1").connect("emitter.0", ":1.2").connect("service.0", ":1.3")


def test_true_identity_and_senders_are_silent():
    h = clients().add("caller.0", "info", "identity", bus_uid=0, real_uid=0, bus_pid=5, real_pid=5)
    h.add("service.0", "ok", "serve", caller="caller.0", sender=":1.1")
    h.recv([0], sender=":1.2")
    h.add("listener.0", "ok", "recv-other", member="NameOwnerChanged",
          interface="org.freedesktop.DBus", sender="org.freedesktop.DBus")
    assert h.kinds(check_credentials) == []


def test_wrong_identity():
    h = clients().add("caller.0", "info", "identity", bus_uid=0, real_uid=0, bus_pid=9, real_pid=5)
    assert h.kinds(check_credentials) == ["reported-credentials-wrong"]
    h = clients().add("caller.0", "info", "identity", bus_uid=0, real_uid=0, bus_pid=5,
                      real_pid=5, unix_user=1000, unix_pid=5)
    found = check_credentials(h.events)
    assert [f.kind for f in found] == ["reported-credentials-wrong"]
    assert "unix_user=1000" in found[0].explanation


def test_forged_senders():
    h = clients().add("service.0", "ok", "serve", caller="caller.0", sender=":1.2")
    h.recv([0], sender=":1.1")
    assert h.kinds(check_credentials) == ["call-sender-wrong", "signal-sender-wrong"]


def test_bus_only_signals_from_a_peer_are_policy_from_nobody_a_bug():
    h = clients().add("listener.0", "ok", "recv-other", member="NameAcquired",
                      interface="org.freedesktop.DBus", sender=":1.2")
    found = check_credentials(h.events)
    assert [(f.kind, f.by_policy) for f in found] == [("bus-signal-from-peer", True)]
    h = clients().add("listener.0", "ok", "recv-other", member="NameLost",
                      interface="org.freedesktop.DBus", sender=":1.99")
    assert h.kinds(check_credentials) == ["bus-signal-unknown-sender"]
