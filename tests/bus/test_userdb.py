"""User aliases for CVE-2020-35512: a second name for an existing uid, seen by the bus only."""

from __future__ import annotations

import hashlib
import os
import pwd
from pathlib import Path

import pytest

from fuzz.bus.userdb import aliased_passwd
from fuzz.engine.scenario import parse_scenario
from fuzz.errors import ScenarioError
from tests.conftest import SCENARIOS, run_rig

NOBODY = pwd.getpwnam("nobody")


def test_aliased_passwd_copies_the_target_entry():
    text = aliased_passwd("root:x:0:0:root:/root:/bin/bash\n", (("busrig-x", NOBODY.pw_uid),))
    lines = text.splitlines()
    assert lines[0] == "root:x:0:0:root:/root:/bin/bash"
    name, _, uid, gid, _, home, shell = lines[1].split(":")
    assert (name, int(uid), int(gid), home, shell) == (
        "busrig-x", NOBODY.pw_uid, NOBODY.pw_gid, NOBODY.pw_dir, NOBODY.pw_shell)


@pytest.mark.parametrize("line, problem", [
    ("root = 'nobody'", "already a user here"),
    ("busrig-x = 'no-such-user-here'", "no user 'no-such-user-here'"),
    ("'Bad Name' = 'nobody'", "an alias must be a user name"),
])
def test_bad_aliases_are_refused_with_their_line(line: str, problem: str):
    text = f"[[clients]]\nrole = 'service'\n[bus.user_aliases]\n{line}\n"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.toml")
    assert info.value.key.startswith("bus.user_aliases") and problem in info.value.problem
    assert info.value.line == 4


def test_alias_resolves_to_the_uid():
    sc = parse_scenario("[[clients]]\nrole = 'service'\n[bus.user_aliases]\nbusrig-x = 'nobody'\n")
    assert sc.bus.user_aliases == (("busrig-x", NOBODY.pw_uid),)


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.geteuid() != 0, reason="a private mount namespace needs root")
def test_without_the_alias_the_policy_rule_is_lost_and_reported(tmp_path: Path):
    """The alias is what makes dbus-daemon apply the rule for busrig-nobody: without it the
    rule names an unknown user, the name is granted, and the expectation oracle says so.
    Neither run touches the machine's /etc/passwd."""
    before = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    text = (SCENARIOS / "cve_2020_35512_user_alias.toml").read_text()
    text = text.replace('[bus.user_aliases]\nbusrig-nobody = "nobody"\n', "")
    text = text.replace('"policies/user_alias.xml"', f'"{SCENARIOS}/policies/user_alias.xml"')
    assert "user_aliases" not in text.split("name =", 1)[1]
    path = tmp_path / "no_alias.toml"
    path.write_text(text)
    run = run_rig("run", str(path), "--bus", "dbus-daemon", "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 1, run.stdout + run.stderr
    outcome = [e.data for e in run.history if e.op == "attack" and e.type == "ok"][0]
    assert outcome["outcome"] == "stable-granted" and outcome["reloads"] == ["ok"] * 10
    assert [f["oracle"] for f in run.findings] == ["expectation"]
    assert "busrig-nobody" in (tmp_path / "out" / "bus.log").read_text()
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() == before
    assert "busrig-nobody" not in Path("/etc/passwd").read_text()
