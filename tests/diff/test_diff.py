"""Differential testing: what clients observed on two buses, normalized and compared; the
documented differences told apart from findings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fuzz.campaign.store import CrashStore
from fuzz.diff.compare import compare, diff_findings
from fuzz.diff.observe import observe
from tests.conftest import DATA, ROOT, SCENARIOS, require_binary, run_rig
from tests.oracles.builder import H

RELAY = f"{sys.executable} {ROOT / 'tests' / 'buggy_bus' / 'relay.py'}"


def history(call_outcome: str = "ok", attack: str | None = None, attack_outcome: str = "",
            disconnect: bool = False, attacker_uid: int = 65534) -> H:
    h = H()
    for client, role, uid in (("caller.0", "caller", 0), ("service.0", "service", 0),
                              ("attacker.1", "attacker", attacker_uid)):
        h.add("rig", "info", "client-start", client=client, role=role, pid=1, uid=uid)
    h.add("caller.0", "invoke", "connect").add("caller.0", "ok", "connect", unique_name=":1.9")
    if attack:
        h.add("nemesis", "invoke", attack, source=0)
        h.add("attacker.1", "invoke", "attack", kind=attack, params={})
        h.add("attacker.1", "ok", "attack", kind=attack, outcome=attack_outcome)
    h.add("caller.0", "invoke", "call", seq=0, serial=5)
    h.add("service.0", "ok", "serve", seq=0, caller="caller.0", fds=0, answered=True)
    if call_outcome == "ok":
        h.add("caller.0", "ok", "call", seq=0, serial=5, latency_ns=12345)
    elif call_outcome == "disconnected":
        h.add("caller.0", "info", "call", seq=0, serial=5, reason="disconnected")
    else:
        h.add("caller.0", "fail", "call", seq=0, serial=5, error=call_outcome)
    if disconnect:
        h.add("caller.0", "info", "disconnect", error="ConnectionResetError")
    return h


def diffs(a: H, b: H):
    return compare(observe(a.events), observe(b.events))


def test_same_behaviour_is_no_difference_whatever_the_timing():
    a, b = history(), history()
    b.wait(3.0)  # times and latencies differ; nothing a client observed does
    assert diffs(a, b) == []


def test_a_bus_exit_on_one_side_is_reported_once():
    a = history()
    b = history("disconnected", disconnect=True)
    b.add("rig", "info", "bus-exit", code=134, signal=None)
    [d] = diffs(a, b)
    assert (d.key, d.a, d.b) == ("bus exit", "no", "exited (code 134) after step 0")


def test_a_different_answer_is_a_finding_without_instance_numbers():
    [d] = diffs(history(), history("org.freedesktop.DBus.Error.AccessDenied"))
    assert d.key == "caller.0 call" and d.rule is None
    assert (d.a, d.b) == ("ok", "fail:org.freedesktop.DBus.Error.AccessDenied")
    [f] = diff_findings([d], "bus-a", "bus-b")
    assert f.oracle == "diff" and not f.by_policy
    assert f.kind == "caller call: ok | fail:org.freedesktop.DBus.Error.AccessDenied"


def test_documented_differences_are_classified():
    limits = "org.freedesktop.DBus.Error.LimitsExceeded"
    # A limit: LimitsExceeded on one bus, a disconnect on the other (docs/sources.md).
    # (The disconnect explains the caller's other differences: only it is reported.)
    [d] = diffs(history(limits), history("disconnected", disconnect=True))
    assert d.key == "caller.0 disconnected" and d.rule is not None
    assert d.rule.id == "limit-vs-disconnect"
    # The attacker's own outcome under an attack documented to differ.
    [d] = diffs(history(attack="slow-reader", attack_outcome="survived"),
                history(attack="slow-reader", attack_outcome="disconnected"))
    assert d.rule is not None and d.rule.id == "attack-handling"
    # ... but not under one where both buses should agree.
    [d] = diffs(history(attack="malformed", attack_outcome="disconnected"),
                history(attack="malformed", attack_outcome="survived"))
    assert d.rule is None
    # dbus-broker's per-uid quota hits an innocent of the attacker's uid: documented; an
    # innocent of another uid: a finding.
    same = diffs(history(attack="flood-signals", attack_outcome="sent", attacker_uid=0),
                 history(attack="flood-signals", attack_outcome="sent", attacker_uid=0,
                         disconnect=True))
    assert same and all(d.rule is not None and d.rule.id == "same-uid-quota" for d in same)
    other = diffs(history(attack="flood-signals", attack_outcome="sent"),
                  history(attack="flood-signals", attack_outcome="sent", disconnect=True))
    assert other and all(d.rule is None for d in other)


@pytest.mark.timeout(120)
def test_a_buggy_bus_differs_from_the_same_bus_without_the_bug(tmp_path: Path):
    run = run_rig("diff", str(DATA / "relay.toml"), "--bus", f"{RELAY} --drop-replies 0.05",
                  "--bus", RELAY, "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 1, run.stdout + run.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    kinds = {f["title"] for f in report["findings"] if f["status"] == "new"}
    assert any("caller call" in k for k in kinds), kinds
    assert "python rig.py diff" in run.stdout
    assert "Differences between the buses" in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.timeout(200)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_healthy_bus_compared_with_itself_reports_nothing(seed: int, tmp_path: Path):
    run = run_rig("diff", str(DATA / "relay.toml"), "--bus", RELAY, "--bus", RELAY,
                  "--seed", str(seed), out=tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no differences" in run.stdout


@pytest.mark.alone  # under load dbus-daemon's innocent listener may fall behind (closing note)
@pytest.mark.timeout(120)
def test_a_scenario_touching_documented_differences_reports_them_as_documented(tmp_path: Path):
    require_binary("dbus-daemon")
    require_binary("dbus-broker")
    run = run_rig("diff", str(SCENARIOS / "attack_slow_reader.toml"), "--bus", "dbus-daemon",
                  "--bus", "dbus-broker", "--seed", "1", out=tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["findings"] and all(f["status"] == "by-policy" for f in report["findings"])
    assert "attack-handling" in run.stdout


@pytest.mark.timeout(300)
def test_differential_campaign_stores_and_replays_a_difference(tmp_path: Path, rig_tmp: Path):
    store = tmp_path / "crashes"
    run = run_rig("fuzz", "--diff", f"{RELAY} --crash-on-fds 1,{RELAY}", "--budget", "45",
                  "--seed", "2", "--jobs", "2", "--crashes", str(store), "--no-dashboard",
                  out=tmp_path / "work", tmpdir=rig_tmp, timeout=250)
    assert run.returncode == 1, run.stdout + run.stderr
    cases = CrashStore(str(store))
    entries = list(cases.signatures())
    assert entries and all(cases.meta(s)["oracle"] == "diff" for s in entries)
    crash = [s for s in entries if "bus exit" in cases.meta(s)["title"]]
    assert crash, [cases.meta(s)["title"] for s in entries]
    assert "rig.py diff" in (store / crash[0] / "report.md").read_text()
    replay = run_rig("replay", str(store / crash[0]), "--times", "1",
                     "--out", str(tmp_path / "replay"), tmpdir=rig_tmp, timeout=200)
    assert replay.returncode == 1 and "still reproduces" in replay.stdout, replay.stdout


def test_timing_alone_is_no_difference():
    # The same disconnect one schedule step later, and a client the nemesis killed.
    a = history(disconnect=True)
    b = history()
    b.add("nemesis", "invoke", "pause-bus", source=1)
    b.add("caller.0", "info", "disconnect", error="ConnectionResetError")
    assert diffs(a, b) == []
    a = history()
    a.add("nemesis", "invoke", "kill", target="caller", source=2)
    b = history("org.freedesktop.DBus.Error.NoReply")
    b.add("nemesis", "invoke", "kill", target="caller", source=2)
    assert diffs(a, b) == []


def test_when_both_buses_died_client_differences_are_timing():
    a = history()
    a.add("rig", "info", "bus-exit", code=None, signal="SIGPIPE")
    b = history("org.freedesktop.DBus.Error.NoReply")
    b.add("rig", "info", "bus-exit", code=None, signal="SIGPIPE")
    assert diffs(a, b) == []


def test_a_killed_service_makes_its_callers_outcomes_timing():
    a = history()
    a.add("nemesis", "invoke", "kill", target="service", source=0)
    b = history("org.freedesktop.DBus.Error.ServiceUnknown")
    b.add("nemesis", "invoke", "kill", target="service", source=0)
    assert diffs(a, b) == []
    # ... but an error that has nothing to do with the service's absence still differs.
    b = history("org.freedesktop.DBus.Error.AccessDenied")
    b.add("nemesis", "invoke", "kill", target="service", source=0)
    assert [d.key for d in diffs(a, b)] == ["caller.0 call"]


def test_attackers_are_known_by_the_step_that_started_them():
    def two_attacks(first: str, second: str) -> H:
        h = history()
        for n, (kind, outcome) in enumerate(((first, "sent"), (second, "disconnected"))):
            who = f"attacker.{n + 1}"
            h.add("nemesis", "info", kind, source=n, result=f"{who} (pid 9) attacks: {kind}")
            h.add(who, "invoke", "attack", kind=kind, params={})
            h.add(who, "ok", "attack", kind=kind, outcome=outcome)
        return h
    a = two_attacks("flood-signals", "malformed")
    # The same attacks, started in the other order: instance numbers swap, nothing differs.
    b = history()
    for n, kind, outcome in ((1, "malformed", "disconnected"), (0, "flood-signals", "sent")):
        who = f"attacker.{2 - n}"
        b.add("nemesis", "info", kind, source=n, result=f"{who} (pid 9) attacks: {kind}")
        b.add(who, "invoke", "attack", kind=kind, params={})
        b.add(who, "ok", "attack", kind=kind, outcome=outcome)
    assert diffs(a, b) == []
    assert "malformed@step1 attack" in observe(a.events).values
    # An attack still going when the run ended has no outcome to compare.
    c = history()
    c.add("nemesis", "info", "malformed", source=1, result="attacker.1 (pid 9) attacks: malformed")
    c.add("attacker.1", "invoke", "attack", kind="malformed", params={})
    assert "malformed@step1 attack" not in observe(c.events).values
    assert diffs(a, c) == []


def test_how_a_bus_ends_on_a_termination_signal_is_documented():
    a, b = history(), history()
    a.add("rig", "info", "bus-exit", code=None, signal="SIGINT")
    b.add("rig", "info", "bus-exit", code=0, signal=None)
    [d] = diffs(a, b)
    assert d.key == "bus exit" and d.rule is not None and d.rule.id == "termination"
    c = history()
    c.add("rig", "info", "bus-exit", code=None, signal="SIGSEGV")
    [d] = diffs(c, b)
    assert d.rule is None  # a crash is not a way of ending on request
