"""Attacks in one execution never observe each other's traffic."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_rig

TWO_FORGERS = """
name = "two_forgers"
[[clients]]
role = "service"
[[clients]]
role = "caller"
ops = 20
[[schedule]]
at = 0.0
action = "forge-sender"
sender = "org.freedesktop.DBus"
duration = 1.0
[[schedule]]
at = 0.0
action = "forge-sender"
sender = ":1.1"
duration = 1.0
[bound]
duration = 4
"""


@pytest.mark.timeout(90)
def test_two_forge_sender_witnesses_see_only_their_own_signal(bus: str, tmp_path: Path,
                                                              rig_tmp: Path):
    scenario = tmp_path / "two.toml"
    scenario.write_text(TWO_FORGERS)
    run = run_rig("run", str(scenario), "--bus", bus, "--seed", "1", out=tmp_path / "out",
                  tmpdir=rig_tmp)
    assert run.returncode == 0, run.stdout + run.stderr
    outcomes = [e.data for e in run.history if e.op == "attack" and e.type == "ok"]
    assert len(outcomes) == 2
    # Each witness got its own attacker's signal, with the real sender the bus wrote in.
    assert all(o["outcome"] == "rewritten" and o["delivered_sender"] == o["real"]
               for o in outcomes), outcomes
