"""JUnit XML, the format CI systems read: one test case per scenario, finding or replayed case.

A new finding is a <failure>; documented behaviour, a finding no fresh run showed again and a
known bug that still reproduces are <skipped> with the reason; a rig error is an <error>. Known findings pass (they are counted).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fuzz.report.model import BY_POLICY, KNOWN, NEW, UNREPRODUCED, Report


def junit_xml(report: Report) -> bytes:
    suite = ET.Element("testsuite", name=f"busrig {report.kind}: {report.name}",
                       time=f"{report.seconds:.3f}")
    classname = f"busrig.{report.kind}.{report.bus.get('kind') or report.bus.get('label', 'bus')}"
    cases: list[ET.Element] = []

    def case(name: str) -> ET.Element:
        element = ET.SubElement(suite, "testcase", name=name, classname=classname, time="0")
        cases.append(element)
        return element

    whole = case(report.name)
    whole.set("time", f"{report.seconds:.3f}")
    if report.error is not None:
        ET.SubElement(whole, "error", message=report.error.splitlines()[0][:200]).text = \
            report.error
    elif report.verdict == "found":
        new = [f for f in report.findings if f.status == NEW]
        ET.SubElement(whole, "failure", message=f"{len(new)} new finding(s)").text = \
            "\n".join(f"{f.oracle}: {f.title} ({f.signature})" for f in new)
    for f in report.findings:
        element = case(f"{f.oracle}: {f.title} [{f.signature}]")
        detail = "\n".join(x for x in (f.explanation, f"reproduce: {f.reproduce}"
                                       if f.reproduce else "", f"case: {f.case}"
                                       if f.case else "") if x)
        if f.status == NEW:
            ET.SubElement(element, "failure", message=f"new finding: {f.title}",
                          type=f.oracle).text = detail
        elif f.status == BY_POLICY:
            ET.SubElement(element, "skipped", message="documented behaviour of the bus")
        elif f.status == UNREPRODUCED:
            ET.SubElement(element, "skipped", message="seen once, not reproduced by fresh runs:"
                                                      " not stored").text = detail
        elif f.status == KNOWN:
            ET.SubElement(element, "system-out").text = f"known finding, seen {f.count} time(s)"
    for r in report.replays:
        element = case(f"replay {r.case}")
        if r.error is not None:
            ET.SubElement(element, "error", message=r.error[:200]).text = r.error
        elif r.reproduces:
            ET.SubElement(element, "skipped",
                          message=f"known bug still reproduces ({r.hits}/{r.times}): {r.title}")
        else:
            ET.SubElement(element, "system-out").text = \
                f"no longer reproduces (0/{r.times}): {r.title}"
        if r.note and r.error is None:
            ET.SubElement(element, "system-err").text = r.note
    suite.set("tests", str(len(cases)))
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        suite.set(attr, str(sum(1 for c in cases if c.find(tag) is not None)))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
