"""JUnit XML for CI systems: one test case per invariant family.

GitLab, Jenkins, Azure DevOps and the GitHub test-report actions all render
this format. Each family (``concurrency``, ``cancellation``, ...) is a test
case named after it, so the case names stay stable as invariants are added:
a family with a violation is a failing case carrying the message and the
file to replay; a family none of whose invariants apply to the target (it
declared none of their promises) is skipped; the rest pass. Families come
from the invariant registry, plus those of any failure (a user invariant).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from xml.etree import ElementTree as ET

from .campaign import CampaignResult, Finding
from .families import family_of, ordered
from .files import write_atomic
from . import invariants as registry
from .target import Target

#: Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("?", str(value))


def junit_xml(result: CampaignResult, target: Target) -> str:
    """The campaign as a JUnit XML document (a ``testsuites`` root holding one ``testsuite``)."""
    applicable: dict[str, list[str]] = {}
    for invariant in registry.invariants_for(target):
        applicable.setdefault(family_of(invariant.name), []).append(invariant.name)
    failed: dict[str, list[Finding]] = {}
    for finding in result.findings:
        failed.setdefault(family_of(finding.violation.invariant), []).append(finding)
    # Read the registry at call time: invariants may be registered after import.
    families = ordered([family_of(inv.name) for inv in registry.INVARIANTS] + list(failed))

    elapsed = f"{result.elapsed_s:.3f}"
    suite = ET.Element("testsuite", name=_text(f"harness fuzz {result.target}"), time=elapsed)
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("target", result.target),
        ("seed", result.seed),
        ("examples", result.examples),
        ("stopped_by", result.stopped_by),
    ):
        ET.SubElement(properties, "property", name=name, value=_text(value))

    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for family in families:
        counts["tests"] += 1
        case = ET.SubElement(suite, "testcase", classname=_text(result.target), name=family, time="0")
        if family in failed:
            counts["failures"] += 1
            findings = failed[family]
            first = findings[0].violation
            failure = ET.SubElement(
                case, "failure", message=_text(f"{first.invariant}: {first.message}"), type=_text(first.invariant)
            )
            failure.text = _text("\n\n".join(_describe(finding) for finding in findings))
        elif family in applicable:
            out = ET.SubElement(case, "system-out")
            out.text = _text(f"held over {result.examples} examples: {', '.join(applicable[family])}")
        else:
            counts["skipped"] += 1
            ET.SubElement(
                case,
                "skipped",
                message=_text(f"no {family} invariant applies to {result.target}: it declares none of their promises"),
            )
    errors = 0
    if result.error is not None:
        # A target error stopped the campaign: one erroring case, so CI shows it beside what was found.
        errors = 1
        counts["tests"] += 1
        case = ET.SubElement(suite, "testcase", classname=_text(result.target), name="target", time="0")
        ET.SubElement(case, "error", message=_text(result.error), type="harness.error").text = _text(result.error)
    suite.set("tests", str(counts["tests"]))
    suite.set("failures", str(counts["failures"]))
    suite.set("errors", str(errors))
    suite.set("skipped", str(counts["skipped"]))
    if result.regressions:
        log = ET.SubElement(suite, "system-out")
        log.text = _text(
            "\n".join(f"regression {replay.path}: {replay.record.invariant} {replay.status}" for replay in result.regressions)
        )

    root = ET.Element("testsuites", name="harness", time=elapsed)
    for key, value in counts.items():
        root.set(key, str(value))
    root.set("errors", str(errors))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _describe(finding: Finding) -> str:
    violation = finding.violation
    lines = [f"{violation.invariant}: {violation.message}"]
    if finding.source == "regression":
        lines.append(f"regression file still fails: {finding.path}")
    elif finding.path is not None:
        lines.append(f"failure file: {finding.path}")
    if not finding.shrunk:
        lines.append("(interrupted before shrinking finished: the schedule may not be minimal)")
    if finding.path is not None:
        lines.append(f"replay: harness replay {shlex.quote(str(finding.path))}")
    return "\n".join(lines)


def write_junit(result: CampaignResult, target: Target, path: str | os.PathLike[str]) -> Path:
    """Write the JUnit XML report (atomically)."""
    return write_atomic(path, junit_xml(result, target))
