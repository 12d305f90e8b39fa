"""What a scenario says about its bus reaches the bus: limits, quotas, policy, auth."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.bus.daemon import daemon_config
from fuzz.engine.scenario import parse_scenario
from fuzz.errors import ScenarioError
from tests.conftest import DATA, require_binary, run_rig


def add_match_outcomes(run) -> list[tuple[str, str | None]]:
    return sorted((e.type, e.get("error")) for e in run.history
                  if e.op == "add-match" and e.type != "invoke")


@pytest.mark.timeout(60)
def test_daemon_limit_is_enforced(tmp_path: Path):
    run = run_rig("run", str(DATA / "limits.toml"), "--bus", "dbus-daemon", out=tmp_path / "o")
    assert run.returncode == 0, run.stderr
    assert add_match_outcomes(run) == [("fail", "org.freedesktop.DBus.Error.LimitsExceeded")] * 2


@pytest.mark.timeout(60)
def test_broker_quota_is_enforced(tmp_path: Path):
    require_binary("dbus-broker")
    run = run_rig("run", str(DATA / "limits.toml"), "--bus", "dbus-broker", out=tmp_path / "o")
    assert run.returncode == 0, run.stderr
    assert add_match_outcomes(run) == [("fail", "org.freedesktop.DBus.Error.LimitsExceeded"),
                                       ("ok", None)]


@pytest.mark.timeout(60)
def test_daemon_policy_file_replaces_allow_all(tmp_path: Path):
    run = run_rig("run", str(DATA / "deny_own.toml"), "--bus", "dbus-daemon", out=tmp_path / "o")
    assert run.returncode == 0, run.stderr
    outcome = [(e.type, e.get("error")) for e in run.history
               if e.op == "request-name" and e.type != "invoke"]
    assert outcome == [("fail", "org.freedesktop.DBus.Error.AccessDenied")]


def test_config_carries_auth_and_limits():
    xml = daemon_config("/x/bus.sock", {"reply_timeout": 100}, None, ("EXTERNAL", "ANONYMOUS"))
    assert "<auth>EXTERNAL</auth>" in xml and "<auth>ANONYMOUS</auth>" in xml
    assert "<allow_anonymous/>" in xml
    assert '<limit name="reply_timeout">100</limit>' in xml
    assert "<listen>unix:path=/x/bus.sock</listen>" in xml


def test_policy_file_errors_name_the_key(tmp_path: Path):
    (tmp_path / "bad.xml").write_text("<policy context='default'><allow own='*'></policy>")
    (tmp_path / "notpolicy.xml").write_text("<listen>tcp:host=example.org</listen>")
    base = "[[clients]]\nrole = 'service'\n[bus]\ndaemon_policy = '{}'\n"
    for name, needle in [("missing.xml", "cannot read policy file"),
                         ("bad.xml", "not well-formed XML"),
                         ("notpolicy.xml", "only <policy> elements")]:
        with pytest.raises(ScenarioError) as info:
            parse_scenario(base.format(name), str(tmp_path / "s.toml"))
        assert info.value.key == "bus.daemon_policy" and needle in info.value.problem
        assert info.value.line == 4


def test_unknown_auth_mechanism():
    with pytest.raises(ScenarioError) as info:
        parse_scenario("[[clients]]\nrole = 'service'\n[bus]\nauth = ['KERBEROS_V4']\n", "s.toml")
    assert "unknown mechanism 'KERBEROS_V4'" in info.value.problem
