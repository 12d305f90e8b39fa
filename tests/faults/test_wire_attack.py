"""The wire and match attacks against real buses: well-formed messages arrive intact, the
catalog's invalid shapes are refused, and the wire oracle fires on a relay that corrupts what
it carries (and stays silent on the same relay without the bug)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from fuzz.wire import values as vals
from tests.conftest import run_rig

VALID = [
    {"kind": "method_call", "signature": "a{sv}(yb)", "body": "[{'k': ('i', 1)}, (7, True)]"},
    {"kind": "signal", "signature": "s", "body": "['x']", "endian": "B"},
    {"kind": "broadcast", "signature": "ay", "body": "[b'abc']"},
    # CVE-2022-42012's shape: big-endian with fds and h arguments.
    {"kind": "signal", "signature": "hh", "body": "[0, 1]", "endian": "B", "fds": 2},
    # CVE-2014-3533's shape: two fd messages in one write.
    {"kind": "signal", "signature": "h", "body": "[0]", "fds": 1, "transport": "pipelined"},
    {"kind": "method_call", "signature": "as", "body": "[['a', 'b']]", "fds": 1,
     "transport": "split"},
    {"kind": "signal", "signature": "v", "body": vals.render([vals.nested_variant(32)])},
    {"kind": "driver", "member": "GetId"},
]
INVALID = [
    {"kind": "method_call", "signature": "b", "body": "[True]",
     "mutations": [{"name": "boolean", "at": 0, "value": 2}]},
    # CVE-2022-42011: an int32 array of 5 bytes.
    {"kind": "signal", "signature": "ai", "body": "[[1, 2]]",
     "mutations": [{"name": "array-length", "at": 1, "value": 5}]},
    # CVE-2022-42010: a ')' closing a '{'.
    {"kind": "signal", "signature": "i", "body": "[1]",
     "mutations": [{"name": "signature-field", "value": "(a{i)}"}]},
    # CVE-2010-4352: variants nested past 64.
    {"kind": "method_call", "signature": "v", "body": vals.render([vals.nested_variant(65)])},
    {"kind": "method_call", "mutations": [{"name": "serial-zero"}]},
    {"kind": "signal", "mutations": [{"name": "duplicate-field", "code": 3}]},
    {"kind": "method_call", "mutations": [{"name": "local-path"}]},
]


def wire_scenario(tmp_path: Path, cases: list[dict], name: str = "wire") -> Path:
    sc = {"name": name, "clients": [{"role": "service"}],
          "schedule": [{"at": 0.2, "action": "wire", "cases": cases, "duration": 20.0}],
          "bound": {"duration": 25}}
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(sc))
    return path


def wire_steps(run) -> list[dict]:
    return [e.data for e in run.history if e.op == "attack-step" and e.get("step") == "wire-case"]


@pytest.mark.timeout(120)
def test_valid_messages_arrive_and_invalid_ones_are_refused(bus: str, tmp_path: Path,
                                                            rig_tmp: Path):
    run = run_rig("run", str(wire_scenario(tmp_path, VALID + INVALID)), "--bus", bus,
                  out=tmp_path / "out", tmpdir=rig_tmp)
    steps = wire_steps(run)
    assert len(steps) == len(VALID + INVALID), run.stdout + run.stderr
    for step in steps[:len(VALID)]:
        if step["lenient"]:  # pipelined fds: a bus may take them or refuse the sender
            assert step["outcome"] in ("delivered", "disconnected"), step
            continue
        assert step["verdict"] == "valid" and step["outcome"] in ("delivered", "reply"), step
    for step in steps[len(VALID):]:
        assert step["verdict"] != "valid", step
        assert step["outcome"] == "disconnected" or step["outcome"].startswith("error:"), step
    assert not [f for f in run.findings if f["oracle"] == "wire"], run.findings
    ended = [e.data for e in run.history if e.op == "attack" and e.type == "ok"]
    assert ended and ended[0]["bus_alive"] is True


RELAY = "python tests/buggy_bus/relay.py"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flags,expected", [("", set()), (" --flip-wire-byte", {"wire"})])
def test_wire_oracle_fires_on_a_corrupting_relay_only(flags: str, expected: set, tmp_path: Path,
                                                      rig_tmp: Path):
    run = run_rig("run", str(wire_scenario(tmp_path, VALID[:3])), "--bus-cmd", RELAY + flags,
                  out=tmp_path / "out", tmpdir=rig_tmp)
    oracles = {f["oracle"] for f in run.findings}
    assert oracles & {"wire"} == expected, run.findings
    if expected:
        assert any("altered" in f["title"] or "changed" in f["title"] for f in run.findings)


@pytest.mark.timeout(120)
def test_match_rules_select_what_the_reference_says(bus: str, tmp_path: Path, rig_tmp: Path):
    # Rules every bus version gets right; the known broker bugs are in
    # scenarios/wire_match_rules.toml (allowed, never required: fuzz/oracles/known.py).
    # A unicast signal reaches its destination (the second listener) whatever its rule and
    # no one else; a sender rule on the emitter's well-known name follows its owner.
    sc = {"name": "m", "clients": [{"role": "service"}],
          "schedule": [{"at": 0.2, "action": "match", "duration": 8.0,
                        "rule_list": ["member='A'", "arg0='x'", "path_namespace='/a'",
                                      "arg0path='/a/'", "arg0namespace='a.b'", "bogus='1'",
                                      "sender='$name',member='B'"],
                        "signal_list": [
                            {"path": "/a", "interface": "$interface", "member": "A",
                             "signature": "s", "args": "['x']"},
                            {"path": "/a/b", "interface": "$interface", "member": "B",
                             "signature": "s", "args": "['a.b.c']"},
                            {"path": "/ab", "interface": "$interface", "member": "B",
                             "signature": "o", "args": "['/a/b']"},
                            {"path": "/a", "interface": "$interface", "member": "A",
                             "signature": "s", "args": "['x']", "destination": "$listener1"}]}],
          "bound": {"duration": 12}}
    path = tmp_path / "m.toml"
    path.write_text(tomli_w.dumps(sc))
    run = run_rig("run", str(path), "--bus", bus, out=tmp_path / "out", tmpdir=rig_tmp)
    cases = {e.get("n"): e.data for e in run.history
             if e.op == "attack-step" and e.get("step") == "match-case"}
    assert [cases[n]["received"] for n in range(7) if n != 5] == \
        [[0], [0, 3], [0, 1], [2], [1], [1, 2]], run.findings
    assert cases[5]["error"] == "org.freedesktop.DBus.Error.MatchRuleInvalid"
    assert cases[6]["rule"].startswith("sender='org.busrig.Match.x")
    assert not [f for f in run.findings if f["oracle"] == "match"], run.findings


@pytest.mark.timeout(120)
def test_driver_calls_that_change_the_bus_are_answered_and_taint_it(bus: str, tmp_path: Path,
                                                                    rig_tmp: Path):
    """UpdateActivationEnvironment with odd keys and a thousand entries, BecomeMonitor with
    drawn rule lists and flags: the driver answers each (or refuses the sender where its
    documentation says so), and the operator marks the bus as not reusable."""
    from fuzz.faults import OPERATORS
    from fuzz.wire.generate import STATE_CALLS, step_cases
    step = {"at": 0.2, "action": "driver-state", "seed": 3, "count": 40, "duration": 20.0}
    assert {c["member"] for c in step_cases(step)} & set(STATE_CALLS)
    assert OPERATORS["driver-state"].taints_bus and not OPERATORS["wire"].taints_bus
    sc = {"name": "driver_state", "clients": [{"role": "service"}], "schedule": [step],
          "bound": {"duration": 25}}
    path = tmp_path / "driver_state.toml"
    path.write_text(tomli_w.dumps(sc))
    run = run_rig("run", str(path), "--bus", bus, out=tmp_path / "out", tmpdir=rig_tmp)
    steps = wire_steps(run)
    assert len(steps) == 40, run.stdout + run.stderr
    assert not [f for f in run.findings if f["oracle"] == "wire" and not f.get("by_policy")], \
        run.findings
    answered = [s for s in steps if s["verdict"] == "valid" and s["case"]["member"] in STATE_CALLS]
    assert answered and all(s["outcome"] == "reply" or s["outcome"].startswith("error:")
                            for s in answered), answered


def test_a_wire_step_may_not_change_the_bus_for_its_lifetime(tmp_path: Path):
    sc = {"name": "x", "clients": [{"role": "service"}],
          "schedule": [{"at": 0.2, "action": "wire", "cases": [
              {"kind": "driver", "member": "UpdateActivationEnvironment", "signature": "a{ss}",
               "body": "[{'A': 'b'}]"}]}]}
    path = tmp_path / "x.toml"
    path.write_text(tomli_w.dumps(sc))
    run = run_rig("run", str(path), out=tmp_path / "out")
    assert run.returncode != 0
    assert "cases[0].member" in run.stdout + run.stderr and "driver-state" in run.stdout + run.stderr
