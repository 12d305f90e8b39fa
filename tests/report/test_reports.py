"""Reports after a run: report.json with the series, junit.xml CI systems can read, and a
self-contained report.html with the plots and every finding."""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fuzz.report.junit import junit_xml
from fuzz.report.model import (
    BY_POLICY,
    KNOWN,
    NEW,
    UNREPRODUCED,
    Report,
    ReportFinding,
    ReportReplay,
)
from tests.conftest import DATA, ROOT, SCENARIOS, require_binary, run_rig

RELAY = f"{sys.executable} {ROOT / 'tests' / 'buggy_bus' / 'relay.py'}"


def finding(sig: str, status: str, oracle: str = "leak") -> ReportFinding:
    return ReportFinding(signature=sig, oracle=oracle, severity="high", title=f"title {sig}",
                         status=status, reproduce=f"python rig.py replay crashes/{sig}")


def cases(xml: bytes) -> dict[str, ET.Element]:
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None
    return {c.get("name", ""): c for c in suite.findall("testcase")}


def test_junit_marks_new_known_documented_and_replays():
    report = Report(kind="nightly", name="dbus-daemon seed 1", bus={"kind": "dbus-daemon"},
                    seconds=12.5,
                    findings=[finding("a", NEW), finding("b", KNOWN), finding("c", BY_POLICY)],
                    replays=[ReportReplay("crashes/x", "x bug", 1, 1),
                             ReportReplay("crashes/y", "y bug", 0, 2),
                             ReportReplay("crashes/z", "z bug", 0, 1, error="RigError: boom")])
    xml = junit_xml(report)
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("7", "2", "1", "2")
    by_name = cases(xml)
    assert by_name["dbus-daemon seed 1"].find("failure") is not None  # the whole run failed
    assert by_name["leak: title a [a]"].find("failure") is not None
    assert "python rig.py replay crashes/a" in (by_name["leak: title a [a]"].find("failure").text
                                                or "")
    assert by_name["leak: title b [b]"].find("failure") is None
    assert by_name["leak: title c [c]"].find("skipped") is not None
    assert by_name["replay crashes/x"].find("skipped") is not None  # still a known bug
    assert by_name["replay crashes/y"].find("skipped") is None  # fixed: passes
    assert by_name["replay crashes/z"].find("error") is not None


def test_a_finding_no_fresh_run_showed_again_is_skipped_not_failed():
    report = Report(kind="campaign", name="c", bus={"kind": "dbus-daemon"}, seconds=1.0,
                    findings=[finding("u", UNREPRODUCED)])
    assert report.verdict == "clean"
    [case] = [c for n, c in cases(junit_xml(report)).items() if "[u]" in n]
    assert case.find("skipped") is not None and case.find("failure") is None


def test_junit_of_a_clean_run_has_no_failure():
    xml = junit_xml(Report(kind="run", name="smoke", bus={"kind": "dbus-broker"}, seconds=1.0,
                           findings=[finding("c", BY_POLICY)]))
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == "2"


@pytest.mark.timeout(120)
def test_run_with_findings_writes_all_three_reports(tmp_path: Path):
    out = tmp_path / "out"
    run = run_rig("run", str(DATA / "relay.toml"), "--bus-cmd", f"{RELAY} --leak-fds",
                  "--seed", "1", "--no-dashboard", out=out)
    assert run.returncode == 1, run.stdout + run.stderr
    signatures = {f["signature"] for f in run.findings}
    assert signatures
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "found" and report["kind"] == "run"
    assert {f["signature"] for f in report["findings"]} == signatures
    assert all(f["reproduce"].startswith("python rig.py run ") for f in report["findings"])
    series = report["series"]
    assert series["calls"] and series["ping"] and series["buses"] and series["queued"]
    fds = [b[3] for b in series["buses"]]
    assert max(fds) > fds[0] + 10  # the leak is visible in the plotted series
    by_name = cases((out / "junit.xml").read_bytes())
    failed = {n for n, c in by_name.items() if c.find("failure") is not None}
    assert failed == {"relay"} | {n for n in by_name if any(s in n for s in signatures)}
    page = (out / "report.html").read_text()
    for sig in signatures:
        assert sig in page
    assert page.count("<svg") == 3  # latency, bus resources, socket queues
    # Self-contained: nothing a browser would fetch.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)|<link|<script|url\((?!#)""", page)


@pytest.mark.timeout(120)
def test_fault_intervals_are_in_the_series(tmp_path: Path):
    require_binary("dbus-daemon")
    out = tmp_path / "out"
    run = run_rig("run", str(SCENARIOS / "fault_freeze_bus.toml"), "--bus", "dbus-daemon",
                  "--seed", "1", "--no-dashboard", out=out)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    report = json.loads((out / "report.json").read_text())
    [(start, end, what)] = report["series"]["faults"]
    assert what == "freeze-bus" and 0.8 < end - start < 2.0, (start, end)
    page = (out / "report.html").read_text()
    assert re.search(r"freeze-bus", page)
    suite = ET.fromstring((out / "junit.xml").read_bytes()).find("testsuite")
    assert suite is not None and int(suite.get("tests", "0")) >= 1
