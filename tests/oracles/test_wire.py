"""The wire and match oracles on hand-written histories: each violation fires, its correct
twin is silent, and each documented excuse needs its evidence."""

from __future__ import annotations

from fuzz.oracles.match import check_match
from fuzz.oracles.wire import check_wire
from tests.oracles.builder import H

RECEIVER, SENDER = ":1.3", ":1.4"
FIELDS = {"1": ["o", "'/org/busrig/Wire'"], "2": ["s", "'org.busrig.Wire.x9'"],
          "3": ["s", "'Probe'"], "6": ["s", f"'{RECEIVER}'"], "8": ["s", "'i'"]}


def summary(**changes) -> dict:
    out = {"type": 1, "flags": 0, "signature": "i", "fields": dict(FIELDS), "body": "abc",
           "fds": []}
    out.update(changes)
    return out


def wire(bus: str = "dbus-daemon", limits: dict | None = None, logs: list | None = None,
         **case) -> H:
    h = H(bus, limits=limits or {})
    h.add("attacker.1", "ok", "attack-step", step="registered", unique_name=RECEIVER)
    record = {"n": 0, "kind": "method_call", "verdict": "valid", "lenient": [],
              "shape": "method_call/none/whole", "case": {"fds": 0}, "size": 120,
              "complete": True, "sender": SENDER, "sent": summary(), **case}
    h.add("attacker.1", "ok", "attack-step", step="wire-case", **record)
    if logs:
        h.add("rig", "info", "bus-log", lines=logs)
    return h


def kinds(h: H) -> list[tuple[str, bool]]:
    return [(f.kind, f.by_policy) for f in check_wire(h.events)]


def test_valid_message_delivered_intact_is_silent():
    got = summary(fields={**FIELDS, "7": ["s", f"'{SENDER}'"]})  # SENDER is the bus's to add
    assert kinds(wire(outcome="delivered", received=got)) == []


def test_valid_message_altered_is_found():
    h = wire(outcome="delivered", received=summary(body="xyz"))
    assert kinds(h) == [("altered-in-transit:body", False)]


def test_unknown_field_dropped_only_by_dbus_daemon_is_no_change():
    sent = summary(fields={**FIELDS, "100": ["s", "'x'"]})
    assert kinds(wire(outcome="delivered", sent=sent, received=summary())) == []
    assert [k for k, _ in kinds(wire("dbus-broker", outcome="delivered", sent=sent,
                                     received=summary()))] == \
        ["altered-in-transit:header field 100"]


def test_valid_message_lost_or_refused_is_found():
    assert kinds(wire(outcome="dropped")) == [("valid-lost", False)]
    assert kinds(wire(outcome="disconnected")) == [("valid-refused:method_call", False)]


def test_broker_log_line_names_the_refusal():
    h = wire("dbus-broker", outcome="disconnected",
             logs=[f"<28>Peer {SENDER} is being disconnected as it sent a message with an"
                   " invalid body."])
    assert kinds(h) == [("valid-refused:method_call:sent a message with an invalid body", False)]


def test_daemon_field_10_excuse_needs_the_field():
    with_field = summary(fields={**FIELDS, "10": ["y", "1"]})
    assert kinds(wire(outcome="disconnected", sent=with_field)) == [("valid-refused", True)]
    as_path = summary(fields={**FIELDS, "10": ["o", "'/x'"]})
    assert kinds(wire(outcome="disconnected", sent=as_path))[0][1] is False
    assert kinds(wire("dbus-broker", outcome="disconnected", sent=with_field))[0][1] is False
    twice = {"fds": 0, "mutations": [{"name": "unknown-field", "code": 10, "sig": "o",
                                      "value": "'/x'", "twice": True}]}
    assert kinds(wire(outcome="disconnected", sent=as_path, case=twice)) == \
        [("valid-refused", True)]
    # A driver call is a valid message too: the same excuse, the same evidence.
    assert kinds(wire(outcome="disconnected", kind="driver", sent=with_field)) == \
        [("driver-call-refused", True)]


def test_daemon_size_and_fd_limits_excuse_only_past_the_limit():
    assert kinds(wire(outcome="disconnected", size=40 << 20)) == [("valid-refused", True)]
    assert kinds(wire(outcome="disconnected", size=40 << 20,
                      limits={"max_message_size": 64 << 20}))[0][1] is False
    assert kinds(wire(outcome="disconnected", case={"fds": 17})) == [("valid-refused", True)]
    assert kinds(wire(outcome="disconnected", case={"fds": 16}))[0][1] is False


def test_broker_fd_quota_excuse_needs_its_log_line():
    quota = ["<6>UID 0 exceeded its 'FDs' quota on UID 0."]
    assert kinds(wire("dbus-broker", outcome="disconnected", case={"fds": 253}, logs=quota)) == \
        [("valid-refused", True)]
    assert kinds(wire("dbus-broker", outcome="disconnected", case={"fds": 253}))[0][1] is False


def test_invalid_message_refused_is_silent_and_delivered_is_found():
    invalid = {"verdict": "boolean-not-zero-or-one", "sent": None}
    assert kinds(wire(outcome="disconnected", **invalid)) == []
    assert kinds(wire(outcome="error:org.freedesktop.DBus.Error.InvalidArgs", **invalid)) == []
    assert kinds(wire(outcome="delivered", received={"invalid": "x"}, **invalid)) == \
        [("invalid-delivered:boolean-not-zero-or-one", False)]
    assert kinds(wire(outcome="dropped", **invalid)) == \
        [("invalid-ignored:boolean-not-zero-or-one", False)]
    # Incomplete bytes: the bus may wait for the rest.
    assert kinds(wire(outcome="dropped", complete=False, **invalid)) == []


def test_lenient_rules_excuse_a_refusal_but_not_a_corruption():
    lenient = {"lenient": ["fds-sent-before-the-message"]}
    assert kinds(wire(outcome="dropped", **lenient)) == []
    assert kinds(wire(outcome="disconnected", **lenient)) == []
    assert kinds(wire(outcome="delivered", received=summary(fds=[[1, 2]]), **lenient)) == \
        [("altered-in-transit:fds", False)]


def test_replies_nobody_asked_for_and_unknown_types_owe_nothing():
    assert kinds(wire(outcome="dropped", sent=summary(type=2))) == []
    assert kinds(wire(outcome="dropped", sent=summary(type=5))) == []


def test_driver_calls_must_be_answered():
    driver = {"kind": "driver", "sent": summary(fields={**FIELDS, "6": ["s",
                                                                       "'org.freedesktop.DBus'"]})}
    assert kinds(wire(outcome="reply", **driver)) == []
    assert kinds(wire(outcome="dropped", **driver)) == [("driver-call-unanswered", False)]
    no_reply = {**driver, "sent": {**driver["sent"], "flags": 1}}
    assert kinds(wire(outcome="dropped", **no_reply)) == []


SIGNALS = [{"path": "/a", "interface": "org.x.Y", "member": "A", "signature": "us",
            "args": "[1, 'x']"},
           {"path": "/b", "interface": "org.x.Y", "member": "A", "signature": "ss",
            "args": "['a', 'x']"}]


def match_history(rule: str, received: list[int], error: str | None = None,
                  signals: list | None = None, names: list | None = None,
                  bus: str = "dbus-broker") -> H:
    h = H(bus)
    h.add("attacker.1", "ok", "attack-step", step="match-signals", sender=SENDER,
          signals=SIGNALS if signals is None else signals, names=names or [])
    h.add("attacker.1", "ok", "attack-step", step="match-case", n=0, rule=rule, error=error,
          received=received, listener=":1.5")
    return h


def test_match_oracle_both_ways():
    assert check_match(match_history("arg1='x'", [0, 1]).events) == []
    assert [f.kind for f in check_match(match_history("arg1='x'", [0]).events)] == \
        ["match-withheld:argN"]
    assert [f.kind for f in check_match(match_history("path='/a'", [0, 1]).events)] == \
        ["match-extra:exact"]
    assert [f.kind for f in check_match(match_history("bogus='1'", []).events)] == \
        ["rule-accepted"]
    assert check_match(match_history("bogus='1'", [], "org.freedesktop.DBus.Error."
                                                     "MatchRuleInvalid").events) == []
    assert [f.kind for f in check_match(match_history("member='A'", [], "org.freedesktop.DBus."
                                                      "Error.MatchRuleInvalid").events)] == \
        ["rule-refused:exact"]
    # Both buses refuse one argument twice; the specification is silent: either is fine.
    assert check_match(match_history("arg0='a',arg0path='/a'", [0]).events) == []


def test_a_released_bus_quirk_that_explains_a_listener_exactly_names_the_finding():
    """dbus-broker before v37 checked argument 0's type for arg1 (f805f41): the listener got
    signal 1 alone. Two quirks met in one rule are two findings, each of them known."""
    assert [f.kind for f in check_match(match_history("arg1='x'", [1]).events)] == \
        ["match-as-if:arg-index-0"]
    root = {"path": "/", "interface": "org.x.Y", "member": "A", "signature": "us",
            "args": "[1, 'x']"}
    h = match_history("arg1='x',path_namespace='/'", [])
    signals, case = [e for e in h.events if e.op == "attack-step"]
    signals.data["signals"] = SIGNALS + [root]
    assert sorted(f.kind for f in check_match(h.events)) == \
        ["match-as-if:arg-index-0", "match-as-if:root-namespace-is-root"]
    case.data["received"] = [2]  # the root quirk alone
    assert [f.kind for f in check_match(h.events)] == ["match-as-if:root-namespace-is-root"]
    from fuzz.oracles.known import mark_known
    assert all(f.known for f in mark_known(check_match(h.events), "dbus-broker", "dbus-broker 33"))
    assert not any(f.known for f in mark_known(check_match(h.events), "dbus-daemon", "1.14.10"))


def test_unicast_signals_reach_their_destination_and_no_one_else_but_eavesdroppers():
    """"Message Bus Message Routing": a unicast signal reaches its destination whatever its
    rules; another listener only through a matching eavesdrop='true' rule, which a bus may
    refuse to honour."""
    to_me = {**SIGNALS[1], "destination": ":1.5"}  # match_history's listener
    to_other = {**SIGNALS[1], "destination": ":1.77"}

    def judged(rule, received, signals, **kw):
        return [(f.kind, f.by_policy) for f in
                check_match(match_history(rule, received, signals=signals, **kw).events)]
    assert judged("member='B'", [0], [to_me]) == []  # no rule needed
    assert judged("member='B'", [], [to_me]) == [("unicast-withheld", False)]
    assert judged("member='A'", [], [to_other]) == []
    assert judged("member='A'", [0], [to_other]) == [("unicast-leaked:exact", False)]
    assert judged("member='A',eavesdrop='true'", [0], [to_other], bus="dbus-daemon") == []
    assert judged("member='A',eavesdrop='true'", [], [to_other], bus="dbus-daemon") == []
    # dbus-broker refuses the eavesdrop key in AddMatch (src/bus/match.c): documented.
    assert judged("member='A',eavesdrop='false'", [], [to_other],
                  error="org.freedesktop.DBus.Error.MatchRuleInvalid") == \
        [("rule-refused:eavesdrop", True)]
    assert judged("member='A',eavesdrop='false'", [], [to_other], bus="dbus-daemon",
                  error="org.freedesktop.DBus.Error.MatchRuleInvalid") == \
        [("rule-refused:exact", False)]  # eavesdrop='false' is the default behaviour
    # Any bus may keep eavesdropping to privileged connections (the specification).
    assert judged("member='A',eavesdrop='true'", [], [to_other], bus="dbus-daemon",
                  error="org.freedesktop.DBus.Error.AccessDenied") == \
        [("rule-refused:eavesdrop", True)]
    assert judged("member='A'", [], [to_other], bus="dbus-daemon",
                  error="org.freedesktop.DBus.Error.AccessDenied") == \
        [("rule-refused:exact", False)]
    # A refused rule still leaves the listener its own unicast signals.
    assert judged("bogus='1'", [], [to_me], error="org.freedesktop.DBus.Error."
                  "MatchRuleInvalid") == [("unicast-withheld", False)]


def test_a_sender_rule_on_a_well_known_name_follows_its_owner():
    assert check_match(match_history("sender='org.x.Emitter'", [0, 1],
                                     names=["org.x.Emitter"]).events) == []
    assert [f.kind for f in check_match(match_history(
        "sender='org.x.Emitter'", [], names=["org.x.Emitter"]).events)] == \
        ["match-withheld:sender-name"]
    assert [f.kind for f in check_match(match_history(
        "sender='org.x.Other'", [0], names=["org.x.Emitter"]).events)] == \
        ["match-extra:sender-name"]


def test_a_refusal_while_the_nemesis_works_on_the_bus_is_its_doing_a_corruption_is_not():
    def under_fault(**case) -> H:
        h = H("dbus-daemon")
        h.add("nemesis", "invoke", "limit-bus-fds", source=0, fds=16)
        h.add("attacker.1", "ok", "attack-step", step="registered", unique_name=RECEIVER)
        record = {"n": 0, "kind": "method_call", "verdict": "valid", "lenient": [],
                  "shape": "s", "case": {"fds": 0}, "size": 120, "complete": True,
                  "sender": SENDER, "sent": summary(), **case}
        return h.add("attacker.1", "ok", "attack-step", step="wire-case", **record)
    assert kinds(under_fault(outcome="dropped")) == []
    assert kinds(under_fault(outcome="disconnected")) == []
    assert kinds(under_fault(outcome="delivered", received=summary(body="x"))) == \
        [("altered-in-transit:body", False)]


def test_a_refusal_just_before_the_bus_died_is_the_crash_s_not_the_wire_oracle_s():
    """The relay aborts on the first fd message: its sender is disconnected, and that is the
    crash, reported once by the crash oracle, not a valid message refused."""
    h = wire(outcome="disconnected")
    assert kinds(h) == [("valid-refused:method_call", False)]
    h.wait(0.2).add("rig", "info", "bus-exit", code=None, signal="SIGABRT", log_tail="")
    assert kinds(h) == []
    corrupted = wire(outcome="delivered", received=summary(body="x"))
    corrupted.wait(0.2).add("rig", "info", "bus-exit", code=None, signal="SIGABRT", log_tail="")
    assert kinds(corrupted) == [("altered-in-transit:body", False)]
