"""Write OUT/report.json, OUT/junit.xml and OUT/report.html, each atomically."""

from __future__ import annotations

import json
import os

from fuzz.report.html import report_html
from fuzz.report.junit import junit_xml
from fuzz.report.model import Report
from fuzz.report.plots import all_plots
from fuzz.report.series import Series

REPORT_FILES = ("report.json", "junit.xml", "report.html")


def write_reports(out_dir: str, report: Report, series: Series) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    document = {**report.to_json(), "series": series.to_json()}
    written = [
        _atomic(os.path.join(out_dir, "report.json"), json.dumps(document, indent=1).encode()),
        _atomic(os.path.join(out_dir, "junit.xml"), junit_xml(report)),
        _atomic(os.path.join(out_dir, "report.html"),
                report_html(report, all_plots(series)).encode()),
    ]
    return written


def _atomic(path: str, data: bytes) -> str:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path
