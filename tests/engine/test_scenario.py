"""Scenario validation: every mistake is one clear error naming file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.engine.scenario import load_scenario, parse_scenario
from fuzz.errors import ScenarioError
from tests.conftest import ROOT, SCENARIOS, run_rig

GOOD = """\
name = "t"
[[clients]]
role = "service"
[[clients]]
role = "caller"
count = 2
ops = 10
"""


def error_of(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.toml")
    return info.value


def test_good_scenario_parses_with_defaults():
    sc = parse_scenario(GOOD, "s.toml")
    assert [g.role for g in sc.clients] == ["service", "caller"]
    assert sc.clients[1].count == 2 and sc.clients[1].ops == 10
    assert sc.bound.duration == 60.0 and sc.bound.ops is None


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_scenarios_are_valid(path: Path):
    assert load_scenario(str(path)).clients


def test_unknown_key_names_key_and_line():
    err = error_of(GOOD + "colour = 'red'\n")
    assert err.key == "clients[1].colour" and err.line == 8
    assert "unknown key 'colour'" in str(err) and str(err).startswith("s.toml:8:")


def test_wrong_type_names_expected_and_got():
    err = error_of(GOOD.replace("ops = 10", "ops = 'ten'"))
    assert err.key == "clients[1].ops" and err.line == 7
    assert "expected integer, got string" in err.problem


def test_bool_is_not_an_integer():
    assert "expected integer, got boolean" in error_of(GOOD.replace("ops = 10", "ops = true")).problem


def test_missing_required_field():
    err = error_of("[[clients]]\ncount = 1\n")
    assert "missing required key 'role'" in err.problem and err.line == 1


def test_unknown_role_and_unknown_bus():
    assert "must be one of" in error_of("[[clients]]\nrole = 'bus'\n").problem
    err = error_of("[bus]\nkind = 'kdbus'\n" + GOOD.replace('name = "t"\n', ""))
    assert err.key == "bus.kind" and err.line == 2


def test_unknown_daemon_limit_and_broker_quota():
    assert error_of(GOOD + "[bus.limits]\nmax_fun = 1\n").key == "bus.limits.max_fun"
    assert error_of(GOOD + "[bus.quotas]\nmax_bytes = 0\n").key == "bus.quotas.max_bytes"


def test_role_specific_keys_are_checked():
    err = error_of(GOOD.replace("ops = 10", "silent = true"))
    assert "'silent' applies to service" in err.problem and err.line is not None
    err = error_of(GOOD.replace("ops = 10", "sillent = true"))
    assert "unknown key 'sillent'" in err.problem and "timeout" in err.problem


def test_client_fields_table_in_the_docs_is_the_schema():
    from fuzz.clients.group import markdown_table
    assert markdown_table() in (ROOT / "docs/scenarios.md").read_text(), \
        "docs/scenarios.md differs from fuzz/clients/group.py: python -m fuzz.clients.group"


def test_every_client_field_default_passes_its_own_check():
    from fuzz.clients.group import DEFAULTS, FIELDS, ROLES, draws_for
    for name, fi in FIELDS.items():
        if fi.check and DEFAULTS[name] not in (None, ""):
            assert fi.check(DEFAULTS[name]) is None, name
    for role in ROLES:
        for name, values in draws_for(role).items():
            assert role in FIELDS[name].roles, (role, name)
            assert all(FIELDS[name].check is None or FIELDS[name].check(v) is None
                       for v in values), (role, name)


def test_schedule_target_must_exist():
    err = error_of(GOOD + "[[schedule]]\nat = 1\naction = 'kill'\ntarget = 'emitter'\n")
    assert err.key == "schedule[0].target" and "no client group named 'emitter'" in err.problem


def test_duplicate_group_names():
    err = error_of(GOOD + "[[clients]]\nrole = 'caller'\n")
    assert "duplicate client group name 'caller'" in err.problem


def test_syntax_error_has_line():
    err = error_of("name = 't'\n[[clients]\nrole='caller'\n")
    assert "TOML syntax error" in err.problem and err.line == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text, needle", [
    ("name = \n", "TOML syntax error"),
    (GOOD + "colour = 'red'\n", "unknown key 'colour'"),
    (GOOD.replace("ops = 10", "ops = 'ten'"), "expected integer"),
    ("[bus]\nkind = 'kdbus'\n" + GOOD.replace('name = "t"\n', ""), "bus.kind"),
], ids=["syntax", "unknown-key", "wrong-type", "unknown-bus"])
def test_cli_rejects_bad_files_with_exit_2(tmp_path: Path, text: str, needle: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run_rig("run", str(path), "--bus", "dbus-daemon", out=tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(60)
def test_cli_usage_errors_exit_2(tmp_path: Path):
    assert run_rig("run", str(tmp_path / "missing.toml"), "--bus", "dbus-daemon").returncode == 2
    assert run_rig("run", str(SCENARIOS / "smoke.toml"), "--bus", "kdbus").returncode == 2
    assert run_rig("frobnicate").returncode == 2


def test_every_role_is_started_by_the_runner_and_has_an_agent():
    from fuzz.clients.agent import ROLES as AGENTS
    from fuzz.clients.group import ACTIVE_ROLES, PASSIVE_WAVES, ROLES
    passive = [r for wave in PASSIVE_WAVES for r in wave]
    assert sorted(ACTIVE_ROLES + tuple(passive)) == sorted(ROLES)
    assert set(ROLES) <= set(AGENTS)


def test_trigger_must_be_known_and_is_planned():
    text = GOOD + '[[schedule]]\nat = 1.0\naction = "kill"\ntarget = "caller"\nwhen = "{}"\n'
    err = str(error_of(text.format("mid-lunch")))
    assert "s.toml:12" in err and "schedule[0].when" in err and "replies-pending" in err
    from fuzz.engine.plan import make_plan
    plan = make_plan(parse_scenario(text.format("replies-pending"), "s.toml"), 1)
    assert [(a.trigger, a.within) for a in plan.actions] == [("replies-pending", 5.0)]


def test_deny_rule_must_name_something():
    err = str(error_of(GOOD + '[[bus.deny]]\nown = "a.b"\n[[bus.deny]]\nsend_member = 3\n'))
    assert "s.toml:11" in err and "bus.deny[1].send_member" in err
    err = str(error_of(GOOD + '[[bus.deny]]\n[[bus.deny]]\nown = "a.b"\n'))
    assert "bus.deny[0]" in err and "names nothing to deny" in err
    sc = parse_scenario(GOOD + '[[bus.deny]]\nsend_interface = "x.Y"\n', "s.toml")
    assert sc.bus.deny[0].send_interface == "x.Y" and sc.bus.deny[0].own is None
