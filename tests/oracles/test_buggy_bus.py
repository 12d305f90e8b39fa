"""End to end: each bug of the buggy relay bus is caught by the oracle meant for it, and a
relay with no bug switched on (and real dbus-daemon / dbus-broker) leaves every oracle silent."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w

from tests.conftest import DATA, ROOT, SCENARIOS, run_rig

RELAY = f"{sys.executable} {ROOT / 'tests' / 'buggy_bus' / 'relay.py'}"

BUGS = {
    "--drop-signals 0.01": {("loss", "broadcast-lost")},
    "--dup-signals 0.01": {("loss", "broadcast-duplicated")},
    "--reorder-signals 0.01": {("ordering", "broadcast-reordered"),
                               ("ordering", "total-order-violated")},
    "--drop-replies 0.02": {("loss", "reply-lost")},
    "--dup-replies 0.02": {("loss", "reply-duplicated")},
    "--forge-sender 0.01": {("credentials", "signal-sender-wrong")},
    "--wrong-credentials": {("credentials", "reported-credentials-wrong")},
    "--leak-fds": {("leak", "bus-fds"), ("leak", "bus-kept-departed-connections")},
    "--grow-memory 64": {("leak", "bus-memory")},
    "--crash-after 1000": {("crash", "bus-died:SIGABRT")},
}


def found(run) -> set[tuple[str, str]]:
    return {(f["oracle"], f["kind"]) for f in run.findings}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flags", list(BUGS), ids=lambda f: f.split()[0].lstrip("-"))
def test_each_bug_is_caught_by_its_oracle(flags: str, tmp_path: Path):
    run = run_rig("run", str(DATA / "relay.toml"), "--bus-cmd", f"{RELAY} {flags}",
                  "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 1, run.stdout + run.stderr
    assert found(run) == BUGS[flags], run.stdout


CRASHES = {
    "--assert-on-fds 1": ("assertion", "assertion failed in check_fd_table (relay.c)"),
    "--assert-on-size 300": ("assertion", "assertion failed in check_message_size (relay.c)"),
    "--raise-on-fds 1": ("python", "RuntimeError in deliver (relay.py)"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flags", list(CRASHES), ids=lambda f: f.split()[0].lstrip("-"))
def test_a_crash_is_named_by_what_the_bus_printed(flags: str, tmp_path: Path):
    """Two bugs that both die of SIGABRT are two signatures, told apart by the assertion each
    prints; a Python traceback names its exception and innermost frame."""
    run = run_rig("run", str(DATA / "relay.toml"), "--bus-cmd", f"{RELAY} {flags}",
                  "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 1, run.stdout + run.stderr
    crashes = [f for f in run.findings if f["oracle"] == "crash"]
    report, title = CRASHES[flags]
    assert len(crashes) == 1 and crashes[0]["kind"].startswith(f"bus-died:{report}:")
    assert crashes[0]["title"].startswith(title), crashes[0]["title"]
    assert {f["oracle"] for f in run.findings} == {"crash"}


def test_the_two_assertions_have_two_signatures():
    from fuzz.history import Event
    from fuzz.oracles.crash import check_crash
    logs = ["relay: relay.c:301: check_fd_table: Assertion `n_fds < 1' failed.",
            "relay: relay.c:306: check_message_size: Assertion `size < 300' failed."]
    sigs = {check_crash([Event(0, 0, "rig", "ok", "bus-start", {}),
                         Event(1, 1, "rig", "info", "bus-exit",
                               {"signal": "SIGABRT", "log_tail": log})])[0].signature
            for log in logs}
    assert len(sigs) == 2


@pytest.mark.timeout(120)
@pytest.mark.alone  # "spinning" needs 90% of a CPU: parallel tests would take it
@pytest.mark.parametrize("spin, how", [(False, "blocked"), (True, "spinning")])
def test_hang_is_caught_and_classified(spin: bool, how: str, tmp_path: Path):
    # Early enough that the caller (300 calls) is surely mid-call when the bus stops.
    flags = "--hang-after 300" + (" --spin" if spin else "")
    run = run_rig("run", str(DATA / "relay.toml"), "--bus-cmd", f"{RELAY} {flags}",
                  "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 1, run.stdout + run.stderr
    hangs = [f for f in run.findings if f["oracle"] == "hang"]
    assert [f["kind"].split(":")[0] for f in hangs] == [how]
    assert {f["oracle"] for f in run.findings} == {"hang"}  # its consequences are not re-reported
    if not spin:
        assert "clock_nanosleep" in hangs[0]["kind"]
    assert "caller.0 -> service.0" in hangs[0]["explanation"]
    assert list((tmp_path / "out" / "snapshots").glob("hang-*.json"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scenario", [DATA / "relay.toml", SCENARIOS / "smoke.toml"],
                         ids=["relay-traffic", "smoke"])
def test_relay_without_bugs_is_judged_healthy(scenario: Path, tmp_path: Path):
    run = run_rig("run", str(scenario), "--bus-cmd", RELAY, "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.findings == []


# How far into the chain bug each variant of relay_chain.toml gets, and what that shows.
CHAIN_STEPS = {
    1: set(),  # refused calls (LimitsExceeded) are the relay's quota, not a bug
    2: {("loss", "broadcast-lost")},
    3: {("crash", "bus-died:SIGSEGV")},
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("steps", list(CHAIN_STEPS))
def test_chain_bug_shows_each_step(steps: int, tmp_path: Path):
    scenario = tomllib.loads((DATA / "relay_chain.toml").read_text())
    keep = {"service", "caller", "listener", "emitter", "late", "namer"}
    keep -= {"emitter", "late", "namer"} if steps == 1 else {"namer"} if steps == 2 else set()
    scenario["clients"] = [c for c in scenario["clients"] if c.get("name", c["role"]) in keep]
    scenario["schedule"] = [s for s in scenario["schedule"] if s["target"] in keep]
    path = tmp_path / "chain.toml"
    path.write_text(tomli_w.dumps(scenario))
    run = run_rig("run", str(path), "--bus-cmd", f"{RELAY} --chain-bug", "--seed", "1",
                  out=tmp_path / "out")
    assert run.returncode == (1 if CHAIN_STEPS[steps] else 0), run.stdout + run.stderr
    assert found(run) >= CHAIN_STEPS[steps] and found(run) <= CHAIN_STEPS[steps] | {
        ("loss", "broadcast-lost")}, run.stdout
    history = (tmp_path / "out" / "history.jsonl").read_text()
    assert "org.freedesktop.DBus.Error.LimitsExceeded" in history
    assert ("org.freedesktop.DBus.Error.NoMemory" in history) == (steps >= 2)


@pytest.mark.timeout(120)
def test_a_bug_switched_on_by_the_environment_reproduces_from_the_printed_line(tmp_path: Path):
    """--bus-env travels into the reproduce line, so the replay runs the bus as the run did."""
    import shlex
    run = run_rig("run", str(DATA / "relay.toml"), "--bus-cmd", RELAY, "--bus-env",
                  "RELAY_BUGS=--assert-on-fds 1", "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 1, run.stdout + run.stderr
    line = next(l for l in run.stdout.splitlines() if l.startswith("reproduce: "))
    assert "--bus-env 'RELAY_BUGS=--assert-on-fds 1'" in line
    argv = shlex.split(line[len("reproduce: "):])
    assert argv[:3] == ["python", "rig.py", "run"]
    again = run_rig(*argv[2:], out=tmp_path / "again")
    assert again.returncode == 1 and {f["signature"] for f in again.findings} == \
        {f["signature"] for f in run.findings}
    plain = run_rig("run", str(DATA / "relay.toml"), "--bus-cmd", RELAY, "--seed", "1",
                    out=tmp_path / "plain")
    assert plain.returncode == 0, plain.stdout


STALLS = DATA / "stall.toml"


@pytest.mark.timeout(120)
def test_a_periodic_short_stall_is_found(tmp_path: Path):
    """The main loop blocked for 80 ms every 250 ms (a lock held by a housekeeping job)."""
    run = run_rig("run", str(STALLS), "--bus-cmd", f"{RELAY} --stall-every 250 --stall-ms 80",
                  "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 1, run.stdout + run.stderr
    assert found(run) == {("latency", "repeated-stalls")}, run.stdout


@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", ["relay", "dbus-daemon", "dbus-broker"])
def test_steady_traffic_on_a_healthy_bus_shows_no_stall(target: str, tmp_path: Path):
    bus = ["--bus-cmd", RELAY] if target == "relay" else ["--bus", target]
    run = run_rig("run", str(STALLS), *bus, "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.findings == []
