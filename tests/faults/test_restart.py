"""restart-bus: the oracles judge both bus lifetimes, and a bad restart is a finding."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fuzz.bus.command import shell_line
from fuzz.history import Event
from fuzz.oracles.facts import read_facts
from tests.conftest import ROOT, SCENARIOS, leftover_processes, run_rig

RELAY = f"{sys.executable} {ROOT / 'tests' / 'buggy_bus' / 'relay.py'}"
SCENARIO = str(SCENARIOS / "fault_restart_bus.toml")


def ev(index: int, time: int, process: str, type_: str, op: str, **data) -> Event:
    return Event.from_json({"index": index, "time": time, "process": process, "type": type_,
                            "op": op, **data})


def test_unique_names_belong_to_their_bus_lifetime():
    history = [ev(0, 0, "rig", "ok", "bus-start", kind="x"),
               ev(1, 10, "caller.0", "ok", "connect", unique_name=":1.1"),
               ev(2, 20, "listener.0", "ok", "connect", unique_name=":1.2"),
               ev(3, 30, "caller.0", "info", "disconnect"),
               ev(4, 40, "rig", "invoke", "bus-restart", signal="SIGTERM", old_code=0),
               ev(5, 50, "listener.0", "ok", "connect", unique_name=":1.1"),
               ev(6, 60, "caller.0", "ok", "reconnect"),
               ev(7, 61, "caller.0", "ok", "connect", unique_name=":1.2")]
    facts = read_facts(history)
    assert facts.process_at(":1.1", 15) == "caller.0"
    assert facts.process_at(":1.1", 55) == "listener.0"
    assert facts.process_at(":1.2", 70) == "caller.0"
    assert "caller.0" not in facts.ended_at  # it came back


def test_simple_bus_commands_are_execd_compound_ones_are_not():
    assert shell_line("python relay.py --x 1") == "exec python relay.py --x 1"
    assert shell_line("cd /tmp && python relay.py") == "cd /tmp && python relay.py"


@pytest.mark.timeout(60)
def test_a_bus_that_exits_badly_on_sigterm_is_a_crash(tmp_path: Path, rig_tmp: Path):
    run = run_rig("run", SCENARIO, "--bus-cmd", f"{RELAY} --bad-exit 3", "--seed", "1",
                  out=tmp_path / "out", tmpdir=rig_tmp)
    assert run.returncode == 1, run.stdout + run.stderr
    assert [f["kind"] for f in run.findings] == ["bus-restart-exit:exit code 3"]
    assert list(rig_tmp.iterdir()) == [] and leftover_processes(str(rig_tmp)) == []


@pytest.mark.timeout(60)
def test_losses_after_the_restart_are_still_found(tmp_path: Path, rig_tmp: Path):
    """The restart window excuses what was in flight, not what the new bus loses later."""
    run = run_rig("run", SCENARIO, "--bus-cmd", f"{RELAY} --drop-replies 0.05", "--seed", "1",
                  out=tmp_path / "out", tmpdir=rig_tmp)
    assert run.returncode == 1, run.stdout + run.stderr
    restarted = next(e.time for e in run.history if e.op == "bus-restart" and e.type == "ok")
    lost = [f for f in run.findings if f["oracle"] == "loss"]
    assert lost, run.stdout
    assert any(run.history[i].time > restarted + 1_000_000_000
               for f in lost for i in f["evidence"])


@pytest.mark.timeout(60)
def test_a_bus_that_cannot_start_again_is_reported(tmp_path: Path, rig_tmp: Path):
    once = (f'if [ -e "$BUSRIG_DIR/started" ]; then echo "no second start" >&2; exit 1; fi;'
            f' touch "$BUSRIG_DIR/started"; exec {RELAY}')
    run = run_rig("run", SCENARIO, "--bus-cmd", once, "--seed", "1",
                  out=tmp_path / "out", tmpdir=rig_tmp)
    assert run.returncode == 1, run.stdout + run.stderr
    kinds = [f["kind"] for f in run.findings if f["oracle"] == "crash"]
    assert kinds == ["bus-restart-failed"], run.stdout
    failed = next(e for e in run.history if e.op == "bus-restart" and e.type == "fail")
    assert "no second start" in failed.get("log_tail")
    assert list(rig_tmp.iterdir()) == [] and leftover_processes(str(rig_tmp)) == []


AFTER_RESTART = """
name = "after_restart"
description = "activation and ReloadConfig served by the restarted bus"
[bus]
activatable = ["org.busrig.Activated"]
[[bus.deny]]
receive_interface = "org.busrig.Secret"
[[clients]]
role = "service"
[[schedule]]
at = 0.2
action = "restart-bus"
[[schedule]]
at = 1.5
action = "activation"
expect = "denied"
duration = 3.0
[[schedule]]
at = 1.5
action = "reload"
count = 2
expect = "stable-granted"
duration = 3.0
[bound]
duration = 8
"""


@pytest.mark.timeout(60)
def test_the_restarted_bus_is_set_up_like_the_first(bus: str, tmp_path: Path, rig_tmp: Path):
    """Activatable names, the deny rule and (dbus-broker) the rig's controller duties are
    all there again on the new bus."""
    path = tmp_path / "after_restart.toml"
    path.write_text(AFTER_RESTART)
    run = run_rig("run", str(path), "--bus", bus, "--seed", "1", out=tmp_path / "out",
                  tmpdir=rig_tmp)
    assert run.returncode == 0, run.stdout + run.stderr
    outcomes = {e.get("kind"): e.get("outcome") for e in run.history
                if e.op == "attack" and e.type == "ok"}
    assert outcomes == {"activation": "denied", "reload": "stable-granted"}
    assert list(rig_tmp.iterdir()) == [] and leftover_processes(str(rig_tmp)) == []


def test_a_message_read_from_the_old_connection_after_the_restart_is_judged_there():
    """A listener still draining its old connection's buffer when the rig records the
    restart: the sender's name is looked up in the old bus's names, not the new bus's."""
    from fuzz.oracles.credentials import check_credentials
    history = [ev(0, 0, "rig", "ok", "bus-start", kind="x"),
               ev(1, 10, "emitter.0", "ok", "connect", unique_name=":1.1"),
               ev(2, 20, "listener.0", "ok", "connect", unique_name=":1.2"),
               ev(3, 40, "rig", "invoke", "bus-restart", signal="SIGTERM", old_code=0),
               ev(4, 45, "listener.0", "ok", "recv", seq=9, emitter="emitter.0", sender=":1.1"),
               ev(5, 50, "listener.0", "ok", "reconnect"),
               ev(6, 51, "listener.0", "ok", "connect", unique_name=":1.1"),
               ev(7, 60, "emitter.0", "ok", "connect", unique_name=":1.2"),
               ev(8, 70, "listener.0", "ok", "recv", seq=10, emitter="emitter.0", sender=":1.2")]
    assert check_credentials(history) == []
    forged = history[:8] + [ev(8, 70, "listener.0", "ok", "recv", seq=10, emitter="emitter.0",
                               sender=":1.1")]
    assert [f.kind for f in check_credentials(forged)] == ["signal-sender-wrong"]


FROZEN = """
name = "restart_frozen"
description = "restart a bus that is frozen and traced"
clients = [ { role = "service" }, { role = "caller", ops = 100, rate = 100, timeout = 2.0 } ]
[[schedule]]
at = 0.1
action = "freeze-bus"
duration = 5.0
[[schedule]]
at = 0.4
action = "restart-bus"
[bound]
duration = 8
"""


@pytest.mark.timeout(60)
def test_faults_on_the_old_bus_end_before_it_is_restarted(tmp_path: Path, rig_tmp: Path):
    """A frozen bus cannot even be killed: the restart thaws it first (the campaign that
    found this hung in the kill)."""
    from fuzz.faults.cgroup import find_hierarchy
    if find_hierarchy("freezer") is None:
        pytest.skip("no writable cgroup freezer here")
    path = tmp_path / "frozen.toml"
    path.write_text(FROZEN)
    run = run_rig("run", str(path), "--bus", "dbus-daemon", "--seed", "1", out=tmp_path / "out",
                  tmpdir=rig_tmp)
    assert run.returncode == 0, run.stdout + run.stderr
    order = [(e.op, e.get("action")) for e in run.history
             if (e.op == "undo" and e.get("action") == "freeze-bus") or
             (e.op == "bus-restart" and e.type == "invoke")]
    assert order == [("undo", "freeze-bus"), ("bus-restart", None)]
    assert list(rig_tmp.iterdir()) == [] and leftover_processes(str(rig_tmp)) == []


WRAPPER = f"bash {ROOT / 'tests' / 'data' / 'wrap-trap-dbus-daemon.sh'}"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig, env", [("SIGTERM", ""), ("SIGINT", ""),
                                      ("SIGTERM", "env WRAP_EXIT=1 ")],
                         ids=["sigterm-143", "sigint-130", "sigterm-exit-1"])
def test_a_healthy_bus_behind_a_wrapper_with_a_trap_gives_no_finding(
        sig: str, env: str, tmp_path: Path, rig_tmp: Path):
    """The wrapper exits 143, 130 or 1 whatever dbus-daemon did: its own status is no crash;
    the bus behind it (the process holding the listening socket) is what is judged."""
    scenario = tmp_path / "restart.toml"
    scenario.write_text(Path(SCENARIO).read_text().replace('signal = "SIGTERM"',
                                                           f'signal = "{sig}"'))
    run = run_rig("run", str(scenario), "--bus-cmd", env + WRAPPER, "--seed", "1",
                  out=tmp_path / "out", tmpdir=rig_tmp)
    assert run.returncode == 0, run.stdout + run.stderr
    restart = next(e for e in run.history if e.op == "bus-restart" and e.type == "invoke")
    assert restart.get("wrapper") is True and restart.get("old_code") != 0
    assert run.findings == []
    assert list(rig_tmp.iterdir()) == [] and leftover_processes(str(rig_tmp)) == []
