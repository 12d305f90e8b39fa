"""The nightly workflow stays a complete example: every rig command in it parses, and the
corpus goes round the night (restored before fuzzing, uploaded, merged, minimized, saved)."""

from __future__ import annotations

import re
import shlex

import yaml

from fuzz.cli import build_parser
from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"


def jobs() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]


def rig_commands(steps: list[dict]) -> list[list[str]]:
    """The argv of every `python rig.py ...` in the steps' scripts, `${{ ... }}` and shell
    variables filled with sample values."""
    out = []
    for step in steps:
        script = step.get("run", "").replace("${{ matrix.bus }}", "dbus-daemon")
        script = re.sub(r"\$\{\{[^}]*\}\}", "1", script).replace("$SHARDS", "3")
        script = script.replace('"$BUDGET"', "1200").replace("\\\n", " ")
        for line in script.replace(">\n", " ").splitlines():
            if "rig.py" in line:
                argv = shlex.split(line)
                out.append(argv[argv.index("rig.py") + 1:])
    return out


def test_every_rig_command_of_the_workflow_parses():
    commands = [argv for job in jobs().values() for argv in rig_commands(job["steps"])]
    assert {argv[0] for argv in commands} >= {"nightly", "merge", "cmin"}
    for argv in commands:
        build_parser().parse_args([a for a in argv if "*" not in a] + (
            ["x"] if argv[0] in ("merge",) else []))


def test_the_corpus_is_restored_before_fuzzing_and_saved_after_merging():
    fuzz, merge = jobs()["fuzz"]["steps"], jobs()["merge"]["steps"]
    names = [s.get("uses", "") + s.get("run", "") for s in fuzz]
    restore = next(i for i, n in enumerate(names) if "cache/restore" in n)
    nightly = next(i for i, n in enumerate(names) if "rig.py nightly" in n)
    assert restore < nightly and "--corpus corpus" in fuzz[nightly]["run"]
    upload = next(s for s in fuzz if "upload-artifact" in s.get("uses", ""))
    assert "corpus/" in upload["with"]["path"]
    script = "\n".join(s.get("run", "") for s in merge)
    assert "rig.py merge corpus shards/*/corpus" in script and "rig.py cmin corpus" in script
    saved = next(s for s in merge if "cache/save" in s.get("uses", ""))
    restored = next(s for s in fuzz if "cache/restore" in s.get("uses", ""))
    assert saved["with"]["key"].startswith(restored["with"]["restore-keys"])
