"""Every shipped scenario on both buses: ends with 0 or 1 (never 2 or 3), leaves nothing
behind, and shows the effect of its operator in the history, with the bus's own answer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fuzz.faults.cgroup import find_hierarchy
from fuzz.faults.inject import supported
from tests.conftest import SCENARIOS, leftover_processes, run_rig

# Scenarios whose point is a finding: the priority-inversion ones, where the real-time caller
# misses its deadline behind a starved bus whatever the bus's version (it is the scheduler's
# doing, not a bug of the bus).
MUST_FIND = {(f"priority_bus_{cfg}", bus): {("latency", "deadline-call")}
             for cfg in ("nice0", "nice-5") for bus in ("dbus-daemon", "dbus-broker")}
# What a released bus may show on a scenario: known upstream behaviours (fuzz/oracles/known.py,
# reported `known`, not counted) and open findings of this machine's versions. A run may show
# them or not: the day upstream fixes one, the test stays green. Anything else fails it.
MAY_FIND = {
    # After one ENOBUFS dbus-broker stops writing to that peer: its broadcasts and replies stay
    # queued (docs/nemesis.md); no upstream report of it is known yet.
    ("syscall_send_enobufs", "dbus-broker"): {("loss", "broadcast-lost"), ("loss", "reply-lost")},
    # dbus-broker has no pending_fd_timeout: a connection pinned by its own fd in flight stays
    ("cve_2014_3637_pending_fd", "dbus-broker"): {("leak", "bus-kept-departed-connections")},
    # dbus-broker 33, stopped with SIGTERM after the unread-calls attack, aborts in its own
    # teardown: user.c user_registry_deinit asserts c_rbtree_is_empty(&registry->user_tree).
    # No upstream report of it is known yet (docs/attacks.md).
    ("attack_unread_calls", "dbus-broker"): {("crash", "bus-died:assertion:d0798dab15c0")},
}
SLOW = {"mixed", "roundtrip"}  # covered by tests/engine/test_runs.py


def attack_results(run) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in run.history:
        if e.op == "attack" and e.type == "ok":
            out.setdefault(e.get("kind"), []).append(e.data)
    return out


def injected(run) -> dict:
    """The ptrace helper's own summary: what it saw, matched and failed in the bus."""
    done = [e.data for e in run.history if e.op == "inject-run" and e.type == "ok"]
    assert len(done) == 1, "the injection helper did not finish"
    return done[0]


def nemesis(run, op: str, type_: str = "info") -> list:
    return [e for e in run.history if e.process == "nemesis" and e.op == op and e.type == type_]


CHECKS = {
    "attack_flood_matches": lambda run, bus: attack_results(run)["flood-matches"][0]["error"]
        == "org.freedesktop.DBus.Error.LimitsExceeded",
    "attack_flood_names": lambda run, bus: attack_results(run)["flood-names"][0]["error"]
        == "org.freedesktop.DBus.Error.LimitsExceeded",
    "attack_flood_connections": lambda run, bus: attack_results(run)["flood-connections"][0]["refused"] > 0,
    "attack_malformed_header": lambda run, bus: all(
        m["outcome"] == "disconnected"
        for m in attack_results(run)["malformed"][0]["mutations"].values())
        and attack_results(run)["malformed"][0]["bus_alive"],
    "attack_sasl": lambda run, bus: attack_results(run)["sasl"][0]["abuses"]["no-nul"]["outcome"]
        == "disconnected" and attack_results(run)["sasl"][0]["bus_alive"],
    "attack_spoof_uid": lambda run, bus: attack_results(run)["spoof-uid"][0]["reply"].startswith("REJECTED"),
    "attack_forge_sender": lambda run, bus: attack_results(run)["forge-sender"][0]["delivered_sender"]
        == attack_results(run)["forge-sender"][0]["real"],
    "attack_impersonate_bus": lambda run, bus: any(
        f["kind"] == "bus-signal-from-peer" and f["by_policy"] for f in run.findings),
    "cve_2014_3636_fd_limit": lambda run, bus: len(attack_results(run)["fd-flood"]) == 5,
    "broker_435_fd_exhaustion": lambda run, bus: any(
        "RLIMIT_NOFILE soft limit 64" in e.get("result", "") for e in nemesis(run, "limit-bus-fds"))
        and any(e.get("result") == "RLIMIT_NOFILE restored" for e in nemesis(run, "undo")),
    "attack_fd_abuse": lambda run, bus: len(attack_results(run)["fd-abuse"]) == 4
        and attack_results(run)["fd-exhaust-client"][0]["sender_connected"]
        and not any(f["oracle"] == "expectation" for f in run.findings),
    "cve_2014_3637_pending_fd": lambda run, bus: attack_results(run)["fd-abuse"][0]["outcome"]
        in (("released",) if bus == "dbus-daemon" else ("pinned", "released"))
        and (bus == "dbus-broker" or attack_results(run)["fd-abuse"][0]["seconds"] < 2.0),
    "cve_2014_3532_fd_recursion": lambda run, bus: attack_results(run)["fd-abuse"][0]
        == {"kind": "fd-abuse", "outcome": "intact", "sent": 1, "received": 1, "errors": [], "depth": 6},
    "cve_2014_3533_fd_pipelining": lambda run, bus: attack_results(run)["fd-abuse"][0]["sent"] == 3
        and not any(f["oracle"] == "expectation" for f in run.findings),
    "cve_2022_42012_foreign_endian_fds": lambda run, bus:
        attack_results(run)["fd-abuse"][0]["outcome"] == "intact",
    "cve_2023_34969_monitor": lambda run, bus: attack_results(run)["monitor"][0]["others_messages"] > 100
        and attack_results(run)["monitor"][0]["errors_without_reply_serial"] == 0
        and attack_results(run)["unread-calls"][0]["sent"] == 3000,
    "attack_monitor_unprivileged": lambda run, bus: sorted(
        m["error"] for m in attack_results(run)["monitor"]) == sorted(
        ["org.freedesktop.DBus.Error.AccessDenied",
         "org.freedesktop.DBus.Error.AccessDenied" if bus == "dbus-daemon"
         else "org.freedesktop.DBus.Error.MatchRuleInvalid"]),
    "cve_2015_0245_activation_failure": lambda run, bus:
        attack_results(run)["driver-signal"][0]["errors"]
        == (["org.freedesktop.DBus.Error.AccessDenied"] if bus == "dbus-daemon" else []),
    "cve_2014_3477_activation_deny": lambda run, bus: attack_results(run)["activation"][0]
        == {"kind": "activation", "outcome": "denied", "service_owns_name": True,
            "answer": "org.freedesktop.DBus.Error.AccessDenied"}
        and activated_service(run) == {"request_name_result": 1, "exit": 0},
    "cve_2020_35512_user_alias": lambda run, bus: attack_results(run)["reload"][0]
        == {"kind": "reload", "reloads": ["ok"] * 10,
            "outcome": "stable-denied" if bus == "dbus-daemon" else "stable-granted",
            "verdicts": ["org.freedesktop.DBus.Error.AccessDenied" if bus == "dbus-daemon"
                         else "granted"] * 11},
    "cve_2019_12749_cookie_sha1": lambda run, bus: attack_results(run)["sasl"][0]["abuses"]
        ["cookie-other-user"]["replies"][0].startswith("REJECTED"),
    "attack_credentials": lambda run, bus: attack_results(run)["scm-credentials"][0]["reported_pid"]
        == attack_results(run)["scm-credentials"][0]["real_pid"]
        and attack_results(run)["handoff"][0]["reported_pid"]
        == attack_results(run)["handoff"][0]["opener_pid"],
    "attack_policy": lambda run, bus: attack_results(run)["policy-probe"][0]["answers"]
        == {"own": "org.freedesktop.DBus.Error.AccessDenied",
            "call": "org.freedesktop.DBus.Error.AccessDenied"}
        and run.summary["calls"]["ok"] == 400,
    "syscall_accept_emfile": lambda run, bus: injected(run)["by_syscall"].get("accept4", 0) >= 1
        and injected(run)["outcome"] in (("bus-exited", "detached") if bus == "dbus-broker"
                                         else ("detached",)),  # bus1/dbus-broker#435
    "syscall_send_enobufs": lambda run, bus: 1 <= injected(run)["injected"] <= 3,
    "syscall_epoll_eintr": lambda run, bus: injected(run)["injected"] > 10
        and injected(run)["outcome"] == "detached" and run.summary["calls"]["ok"] == 800,
    "fault_pause_bus": lambda run, bus: any(
        "SIGCONT" in e.get("result", "") for e in nemesis(run, "undo"))
        and run.summary["calls"]["ok"] == 400,
    "fault_freeze_bus": lambda run, bus: any(
        "thawed" in e.get("result", "") and "cgroup removed" in e.get("result", "")
        for e in nemesis(run, "undo")) and run.summary["calls"]["ok"] == 400,
    "sched_cpu_quota": lambda run, bus: any(
        "CPU quota lifted" in e.get("result", "") for e in nemesis(run, "undo"))
        and run.summary["calls"]["ok"] == 5000,
    "fault_triggers": lambda run, bus: sorted(
        e.get("trigger") for e in nemesis(run, "pause-bus", "invoke") + nemesis(run, "kill", "invoke"))
        == ["mid-auth", "mid-broadcast", "replies-pending"]
        and run.summary["signals"]["received"] == 2000
        and [e.get("error") for e in run.history if e.op == "call" and e.type == "fail"
             and e.get("error", "").endswith("NoReply")] != []
        and sum(1 for e in run.history
                if e.process == "late.0" and e.op == "call" and e.type == "ok") == 50,
    # Calls made before the service has its name again fail with ServiceUnknown.
    "fault_restart_bus": lambda run, bus: restarted_and_back(run)
        and run.summary["calls"]["ok"] >= 550,
    "fault_pause_listener": lambda run, bus: run.summary["signals"]["received"] == 400,
    "sched_priority_hog": lambda run, bus: any(
        "hog(s) stopped" in e.get("result", "") for e in nemesis(run, "undo"))
        and any(e.get("result") == "CPU affinity restored" for e in nemesis(run, "undo")),
    "sched_priority_cure": lambda run, bus: any(
        e.get("result") == "scheduling policy restored" for e in nemesis(run, "undo")),
    **{name: (lambda run, bus, missed=name.startswith("priority_bus_nice"): realtime_caller(run)
              and missed == ("deadline-call" in {f["kind"] for f in run.findings}))
       for name in ("priority_bus_nice0", "priority_bus_nice-5", "priority_bus_fifo",
                    "priority_normal_hogs_nice0", "priority_normal_hogs_nice-5")},
}


def restarted_and_back(run) -> bool:
    """The old bus ended cleanly, a new one took its address, and every client reconnected
    and went on: calls answered and pings answered after the restart."""
    start = [e for e in run.history if e.op == "bus-restart" and e.type == "invoke"]
    done = [e for e in run.history if e.op == "bus-restart" and e.type == "ok"]
    if not (len(start) == len(done) == 1 and start[0].get("old_code") == 0
            and done[0].get("pid") != start[0].get("old_pid")):
        return False
    back = {e.process for e in run.history if e.op == "reconnect" and e.type == "ok"}
    after = {e.process for e in run.history if e.time > done[0].time and e.type == "ok"
             and e.op in ("call", "ping", "recv")}
    return back == {"sentinel.0", "service.0", "caller.0", "emitter.0", "listener.0"} \
        and after == {"sentinel.0", "caller.0", "listener.0"}


def activated_service(run) -> dict:
    """What the service the bus started did: its RequestName result and its exit code."""
    mine = [e for e in run.history if e.process == "activated.0"]
    return {"request_name_result": next((e.get("request_name_result") for e in mine
                                         if e.op == "ready"), None),
            "exit": next((e.get("code") for e in mine if e.op == "exit"), None)}


def realtime_caller(run) -> bool:
    """The rt caller and the service really ran SCHED_FIFO 50 on CPU 1."""
    ok = {e.process: e.data for e in run.history if e.op == "sched" and e.type == "ok"}
    return all(ok.get(p, {}).get("sched") == "fifo 50" and ok[p].get("cpu") == 1
               for p in ("rt.0", "service.0"))


# Scenarios that need something this machine may not offer, and how to tell.
NEEDS = {
    "fault_freeze_bus": lambda: find_hierarchy("freezer") is not None,
    "sched_cpu_quota": lambda: find_hierarchy("cpu") is not None,
    **{name: lambda: supported() is None
       for name in ("syscall_accept_emfile", "syscall_send_enobufs", "syscall_epoll_eintr")},
    "cve_2020_35512_user_alias": lambda: os.geteuid() == 0,  # a mount namespace
    **{p.stem: lambda: (os.cpu_count() or 1) >= 2 and os.geteuid() == 0
       for p in SCENARIOS.glob("priority_*.toml")},
}


def scenario_ids() -> list:
    """Every shipped scenario but the slow ones; the priority scenarios run alone (they pin
    real-time work and CPU hogs to one CPU: parallel tests would change what they measure)."""
    return [pytest.param(p.stem, marks=[pytest.mark.alone] if p.stem.startswith(
                ("priority_", "sched_priority")) else [])
            for p in sorted(SCENARIOS.glob("*.toml")) if p.stem not in SLOW]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", scenario_ids())
def test_scenario_runs_and_shows_its_effect(name: str, bus: str, tmp_path: Path, rig_tmp: Path):
    if name in NEEDS and not NEEDS[name]():
        pytest.skip(f"{name} needs a facility this machine does not offer")
    run = run_rig("run", str(SCENARIOS / f"{name}.toml"), "--bus", bus, "--seed", "1",
                  out=tmp_path / "out", tmpdir=rig_tmp, timeout=110)
    counted = {(f["oracle"], f["kind"]) for f in run.findings
               if not f["by_policy"] and not f.get("known")}
    assert counted <= MUST_FIND.get((name, bus), set()) | MAY_FIND.get((name, bus), set()), \
        run.stdout
    assert counted >= MUST_FIND.get((name, bus), set()), run.stdout
    assert run.returncode == (1 if counted else 0), run.stdout + run.stderr
    assert list(rig_tmp.iterdir()) == [] and leftover_processes(str(rig_tmp)) == []
    check = CHECKS.get(name)
    if check is not None:
        assert check(run, bus), run.stdout
    # Nothing the nemesis changed outlives the run: every undo ran.
    applied = {e.get("source") for e in nemesis(run, "undo")}
    assert all(e.get("source") in applied for e in nemesis(run, "pause-bus", "invoke"))


def test_scenarios_command_lists_every_scenario():
    result = run_rig("scenarios")
    assert result.returncode == 0
    for path in SCENARIOS.glob("*.toml"):
        assert path.name in result.stdout
    assert "CVE-2022-42010" in result.stdout


def test_operators_command_lists_every_operator():
    from fuzz.faults import OPERATORS
    result = run_rig("operators")
    assert result.returncode == 0 and all(name in result.stdout for name in OPERATORS)
