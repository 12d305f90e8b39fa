"""A run's report, from what the runner returned."""

from __future__ import annotations

from typing import Any

from fuzz.report.model import BY_POLICY, KNOWN, NEW, Report, ReportFinding


def report_finding(f: Any, reproduce: str) -> ReportFinding:
    """An oracle's Finding as a report line: new, documented behaviour (by policy), or a
    known behaviour of this bus version (its upstream reference leads the explanation)."""
    status = BY_POLICY if f.by_policy else KNOWN if getattr(f, "known", None) else NEW
    explanation = f"Known upstream: {f.known}. {f.explanation}" if status == KNOWN \
        else f.explanation
    return ReportFinding(signature=f.signature, oracle=f.oracle, severity=f.severity,
                         title=f.title, status=status, count=f.count,
                         explanation=explanation, reproduce=reproduce)


def run_reproduce_command(scenario_path: str, bus_cli_args: str, seed: int) -> str:
    return f"python rig.py run {scenario_path} {bus_cli_args} --seed {seed}"


def run_report(summary: dict[str, Any], findings: list[Any], scenario_path: str,
               bus_label: str, bus_cli_args: str, seconds: float, error: str | None) -> Report:
    reproduce = run_reproduce_command(scenario_path, bus_cli_args, summary["seed"])
    calls = summary.get("calls", {})
    latency = calls.get("latency_us", {})
    bus = summary.get("bus", {})
    facts = {
        "scenario": scenario_path,
        "seed": summary["seed"],
        "events in the history": summary.get("events"),
        "calls ok": calls.get("ok"),
        "round trips/s": calls.get("round_trips_per_s"),
        "latency us p50 / p99 / max": f"{latency.get('p50')} / {latency.get('p99')}"
                                      f" / {latency.get('max')}" if latency else None,
        "bus context switches per round trip": bus.get("ctx_switches_per_rt"),
        "reproduce": reproduce,
    }
    return Report(
        kind="run", name=summary["scenario"],
        bus={"label": bus_label, "kind": bus.get("kind"), "version": bus.get("version")},
        seconds=seconds,
        findings=[report_finding(f, reproduce) for f in findings],
        facts=facts, error=error)
