"""report.html: one self-contained page (inline CSS and SVG, no scripts, nothing fetched)."""

from __future__ import annotations

import html
import time
from typing import Any

from fuzz.report.model import NEW, Report, ReportFinding

DIFF = "diff"  # the differential oracle: its findings get their own section

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 70em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code { background: #f6f6f6; padding: .1em .3em; font-size: .9em; }
.verdict-found, .status-new { color: #b00020; font-weight: bold; }
.verdict-error { color: #b36b00; font-weight: bold; }
.verdict-clean { color: #2a7d2a; font-weight: bold; }
.status-by-policy, .status-known, .status-unreproduced { color: #555; }
figure { margin: 1em 0; } svg { max-width: 100%; height: auto; }
"""

VERDICT_TEXT = {"found": "found something new", "clean": "nothing new found",
                "error": "the rig failed (details below); what was recorded is kept"}


def _e(value: Any) -> str:
    return html.escape(str(value))


def report_html(report: Report, plots: list[tuple[str, str]]) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
             f"<title>busrig {_e(report.kind)}: {_e(report.name)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>busrig {_e(report.kind)}: {_e(report.name)}</h1>",
             f"<p class='verdict-{report.verdict}'>{_e(VERDICT_TEXT[report.verdict])}</p>",
             _facts_table(report),
             _findings(report, [f for f in report.findings if f.oracle != DIFF], "Findings"),
             _findings(report, [f for f in report.findings if f.oracle == DIFF],
                       "Differences between the buses", optional=True),
             _replays(report)]
    if report.error:
        parts.append(f"<h2>Error</h2><pre>{_e(report.error)}</pre>")
    parts.append("<h2>Plots</h2>")
    if not plots:
        parts.append("<p>Nothing was sampled.</p>")
    for title, svg in plots:
        parts.append(f"<figure><figcaption>{_e(title)}</figcaption>{svg}</figure>")
    parts.append(f"<p><small>written {_e(time.strftime('%Y-%m-%d %H:%M:%S %Z'))}"
                 f" by busrig</small></p></body></html>")
    return "\n".join(parts)


def _facts_table(report: Report) -> str:
    bus = report.bus
    rows = [("bus", bus.get("label") or bus.get("kind")), ("bus version", bus.get("version")),
            ("seconds", f"{report.seconds:.1f}")]
    rows += list(report.facts.items())
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
                               for k, v in rows if v is not None) + "</table>"


def _findings(report: Report, findings: list[ReportFinding], heading: str,
              optional: bool = False) -> str:
    if not findings:
        return "" if optional else f"<h2>{_e(heading)}</h2><p>None.</p>"
    new = sum(1 for f in findings if f.status == NEW)
    rows = []
    for f in sorted(findings, key=lambda f: (f.status != NEW, f.oracle, f.signature)):
        reproduce = f"<code>{_e(f.reproduce)}</code>" if f.reproduce else ""
        case = f"<br>case: <code>{_e(f.case)}</code>" if f.case else ""
        rows.append(f"<tr><td class='status-{_e(f.status)}'>{_e(f.status)}</td>"
                    f"<td>{_e(f.oracle)}</td><td>{_e(f.severity)}</td>"
                    f"<td><b>{_e(f.title)}</b><br><small>{_e(f.explanation)}</small></td>"
                    f"<td>{f.count}</td><td><code>{_e(f.signature)}</code></td>"
                    f"<td>{reproduce}{case}</td></tr>")
    return (f"<h2>{_e(heading)} ({new} new, {len(findings)} in all)</h2><table><tr>"
            "<th>status</th><th>oracle</th><th>severity</th><th>finding</th><th>seen</th>"
            "<th>signature</th><th>reproduce</th></tr>" + "".join(rows) + "</table>")


def _replays(report: Report) -> str:
    if not report.replays:
        return ""
    rows = []
    for r in report.replays:
        outcome = (f"error: {r.error}" if r.error else r.note if r.note else
                   f"still reproduces ({r.hits}/{r.times})" if r.reproduces else
                   f"no longer reproduces (0/{r.times})")
        rows.append(f"<tr><td><code>{_e(r.case)}</code></td><td>{_e(r.title)}</td>"
                    f"<td>{_e(outcome)}</td></tr>")
    return ("<h2>Known cases replayed</h2><table><tr><th>case</th><th>finding</th>"
            "<th>outcome</th></tr>" + "".join(rows) + "</table>")
