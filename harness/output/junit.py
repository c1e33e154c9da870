"""JUnit XML for CI systems: one test case per invariant family.

GitLab, Jenkins, Azure DevOps and the GitHub test-report actions all render
this format. Each family (``concurrency``, ``cancellation``, ...) is a test
case named after it, so the case names stay stable as invariants are added:
a family with a violation is a failing case carrying the message and the
file to replay; a family none of whose invariants apply to the target (it
declared none of their promises) is skipped; the rest pass. Families come
from the invariant registry, plus those of any failure (a user invariant).
A passing case names each of its invariants with the examples that exercised
it (gave it something to judge: the summary's ``exercised.invariants``), not
the campaign's whole count, which an invariant judged in fewer did not earn.
A worker of a parallel campaign that crashed is a test case in error.
The document is built from the JSON summary's data, so ``harness merge``
writes the same report for shards merged after the fact.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from harness.search.campaign import CampaignResult
from harness.invariants.families import family_of, ordered
from harness.store.files import write_atomic
from harness import invariants as registry
from harness.model.target import Target
from harness.search.workers import worker_reports

#: Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("?", str(value))


def junit_xml(result: CampaignResult, target: Target, exercised: dict[str, Any] | None = None) -> str:
    """The campaign as a JUnit XML document (a ``testsuites`` root holding one ``testsuite``).

    ``exercised`` is what the campaign exercised (``Tally.to_json()``, the summary's ``exercised``):
    with it a passing family gives each invariant's count of examples that exercised it."""
    return junit_from_summary(
        {
            "target": result.target,
            "seed": result.seed,
            "examples": result.examples,
            "stopped_by": result.stopped_by,
            "error": result.error,
            "elapsed_seconds": result.elapsed_s,
            "invariants": [invariant.name for invariant in registry.invariants_for(target)],
            "failures": [
                {
                    "invariant": finding.violation.invariant,
                    "message": finding.violation.message,
                    "file": str(finding.path) if finding.path is not None else None,
                    "source": finding.source,
                    "shrunk": finding.shrunk,
                }
                for finding in result.findings
            ],
            "regressions": {
                "files": [
                    {"file": str(replay.path), "invariant": replay.record.invariant, "status": replay.status}
                    for replay in result.regressions
                ]
            },
            "workers": [report.to_json() for report in worker_reports(result)],
            "exercised": exercised,
        }
    )


def junit_from_summary(summary: dict[str, Any]) -> str:
    """JUnit XML from a JSON summary (what ``harness merge --junit`` writes).

    Families with no failure pass if the summary lists an invariant of theirs
    in ``invariants`` (the ones that apply to the target), else are skipped.
    A crashed worker is a test case of its own, in error.
    """
    judged: dict[str, int] | None = (summary.get("exercised") or {}).get("invariants")
    applicable: dict[str, list[str]] = {}
    for name in summary.get("invariants") or ():
        applicable.setdefault(family_of(name), []).append(name)
    failed: dict[str, list[dict[str, Any]]] = {}
    for failure in summary["failures"]:
        failed.setdefault(family_of(failure["invariant"]), []).append(failure)
    # Read the registry at call time: invariants may be registered after import.
    families = ordered([family_of(inv.name) for inv in registry.INVARIANTS] + list(failed))
    target = summary["target"]

    elapsed = f"{summary['elapsed_seconds']:.3f}"
    suite = ET.Element("testsuite", name=_text(f"harness fuzz {target}"), time=elapsed)
    properties = ET.SubElement(suite, "properties")
    for name in ("target", "seed", "examples", "stopped_by"):
        ET.SubElement(properties, "property", name=name, value=_text(summary[name]))

    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for family in families:
        counts["tests"] += 1
        case = ET.SubElement(suite, "testcase", classname=_text(target), name=family, time="0")
        if family in failed:
            counts["failures"] += 1
            failures = failed[family]
            first = failures[0]
            failure = ET.SubElement(
                case,
                "failure",
                message=_text(f"{first['invariant']}: {first['message']}"),
                type=_text(first["invariant"]),
            )
            failure.text = _text("\n\n".join(_describe(each) for each in failures))
        elif family in applicable:
            out = ET.SubElement(case, "system-out")
            out.text = _text(_held(family, applicable[family], summary["examples"], judged))
        else:
            counts["skipped"] += 1
            ET.SubElement(
                case,
                "skipped",
                message=_text(f"no {family} invariant applies to {target}: it declares none of their promises"),
            )
    error = summary.get("error")
    if error:
        # A target error stopped the campaign: one erroring case, so CI shows it beside what was found.
        counts["tests"] += 1
        counts["errors"] += 1
        case = ET.SubElement(suite, "testcase", classname=_text(target), name="target", time="0")
        ET.SubElement(case, "error", message=_text(error), type="harness.error").text = _text(error)
    for worker in summary.get("workers") or ():
        if worker.get("crashed"):
            counts["tests"] += 1
            counts["errors"] += 1
            case = ET.SubElement(suite, "testcase", classname=_text(target), name=f"worker {worker['index']}", time="0")
            ET.SubElement(
                case, "error", message=_text(f"worker {worker['index']} crashed with {worker['crashed']}"), type="crash"
            )
    for key, value in counts.items():
        suite.set(key, str(value))
    files = summary["regressions"]["files"]
    if files:
        log = ET.SubElement(suite, "system-out")
        log.text = _text("\n".join(f"regression {f['file']}: {f['invariant']} {f['status']}" for f in files))

    root = ET.Element("testsuites", name="harness", time=elapsed)
    for key, value in counts.items():
        root.set(key, str(value))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _held(family: str, names: list[str], examples: int, judged: dict[str, int] | None) -> str:
    """A passing family's text: no violation in the campaign's examples, and for each invariant how many
    of them exercised it (``judged``; the user family's entries are its invariants one by one). Without
    the counts (a summary that did not gather them) it says so, never that each held over every example."""
    counts = [(name, count) for name, count in (judged or {}).items() if family_of(name) == family]
    if not counts:
        return (
            f"no violation in {examples} examples: {', '.join(names)} "
            "(how many examples exercised each is not recorded)"
        )
    each = ", ".join(f"{name} {count}" + (" (never exercised)" if not count else "") for name, count in counts)
    return f"no violation in {examples} examples; examples that exercised each invariant (gave it something to judge): {each}"


def _describe(failure: dict[str, Any]) -> str:
    lines = [f"{failure['invariant']}: {failure['message']}"]
    path = failure["file"]
    if failure["source"] == "regression":
        lines.append(f"regression file still fails: {path}")
    elif path is not None:
        lines.append(f"failure file: {path}")
    if not failure["shrunk"]:
        lines.append("(interrupted before shrinking finished: the schedule may not be minimal)")
    if path is not None:
        lines.append(f"replay: harness replay {shlex.quote(str(path))}")
    return "\n".join(lines)


def write_junit(
    result: CampaignResult, target: Target, path: str | os.PathLike[str], exercised: dict[str, Any] | None = None
) -> Path:
    """Write the JUnit XML report (atomically); ``exercised`` as for ``junit_xml``."""
    return write_atomic(path, junit_xml(result, target, exercised))
