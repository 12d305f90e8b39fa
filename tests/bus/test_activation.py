"""Bus activation: the bus starts a service for an activatable name (dbus-daemon from a
.service file, dbus-broker through the rig as its controller); receive-deny rules reach both
buses; the CVE-2014-3477 attack's oracle fires when a bus lets the forbidden call through."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from fuzz.bus.base import DenyRule
from fuzz.bus.broker import allow_all_policy
from fuzz.bus.daemon import daemon_config, service_file
from fuzz.engine.scenario import parse_scenario
from fuzz.errors import ScenarioError
from tests.conftest import SCENARIOS, leftover_processes, run_rig

SECRET = DenyRule(receive_interface="org.busrig.Secret")


def test_daemon_config_has_the_service_dir_and_the_receive_deny():
    xml = daemon_config("/x/bus.sock", {}, None, deny=(SECRET,), service_dir="/x/services")
    assert "<servicedir>/x/services</servicedir>" in xml
    assert '<deny receive_interface="org.busrig.Secret"/>' in xml
    assert "servicedir" not in daemon_config("/x/bus.sock", {}, None)


def test_service_file_exec_line_survives_spaces():
    argv = ["/usr/bin/python3", "-m", "fuzz.clients.activated", "/tmp/a b/j.jsonl", "x.0", "a.B"]
    text = service_file("a.B", argv)
    assert text.startswith("[D-BUS Service]\nName=a.B\n")
    exec_line = text.split("Exec=", 1)[1].strip()
    assert shlex.split(exec_line) == argv


def test_broker_policy_denies_receive_above_allow_all():
    receive = allow_all_policy((SECRET,))[0][0][1][4]
    allow, deny = receive
    assert allow[0] is True and allow[1] == 1
    assert deny[:6] == (False, 2, "", "", "org.busrig.Secret", "")
    assert allow_all_policy(())[0][0][1][4] == [allow]


@pytest.mark.parametrize("value, problem", [
    ("['1bad.name']", "not a well-known bus name"),
    ("['org.busrig.A', 'org.busrig.A']", "lists a name twice"),
    ("['single']", "not a well-known bus name"),
])
def test_bad_activatable_names_are_refused_with_their_line(value: str, problem: str):
    text = f"[[clients]]\nrole = 'service'\n[bus]\nactivatable = {value}\n"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.toml")
    assert info.value.key == "bus.activatable" and problem in info.value.problem
    assert info.value.line == 4


@pytest.mark.timeout(60)
def test_a_bus_that_delivers_the_forbidden_call_is_reported(bus: str, tmp_path: Path,
                                                            rig_tmp: Path):
    """Without the receive-deny rule the started service gets the call and answers it:
    the expectation oracle reports 'delivered' where 'denied' was expected."""
    text = (SCENARIOS / "cve_2014_3477_activation_deny.toml").read_text()
    text = text.replace('[[bus.deny]]\nreceive_interface = "org.busrig.Secret"\n', "")
    assert "receive_interface" not in text
    path = tmp_path / "no_deny.toml"
    path.write_text(text)
    run = run_rig("run", str(path), "--bus", bus, "--seed", "1", out=tmp_path / "out",
                  tmpdir=rig_tmp)
    assert run.returncode == 1, run.stdout + run.stderr
    outcome = [e.data for e in run.history if e.op == "attack" and e.type == "ok"]
    assert outcome[0]["outcome"] == "delivered"
    assert outcome[0]["answer"] == "org.freedesktop.DBus.Error.UnknownMethod"
    assert [f["oracle"] for f in run.findings] == ["expectation"]
    # The service the bus started was stopped by the rig, like any client.
    stops = [e for e in run.history if e.op == "client-stop" and e.get("client") == "activated.0"]
    assert [e.get("signal") for e in stops] == ["SIGTERM"]
    assert any(e.process == "activated.0" and e.op == "exit" for e in run.history)
    assert list(rig_tmp.iterdir()) == [] and leftover_processes("fuzz.clients.activated") == []
