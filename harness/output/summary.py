"""The campaign summary: what ``--json FILE`` writes, and the exit code it implies.

The summary is plain JSON for CI scripts to act on; its shape is pinned by
``summary.schema.json`` beside this module (a JSON Schema, every key documented
in docs/reference/summary.md) and carries ``format`` and ``version`` so readers can tell it apart
from other files and from later shapes.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
from importlib import resources
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.store import database as example_database
from harness import invariants as registry
from harness.search.campaign import CampaignConfig, CampaignResult, Finding, example_limit
from harness.invariants.families import family_of
from harness.store.failure_file import versions
from harness.errors import UsageError
from harness.store.files import json_problem, read_bounded, write_atomic
from harness.model.target import Target
from harness.model.trace import one_line
from harness.output.validate import SchemaViolation, validate
from harness.search.workers import ParallelResult, worker_reports

FORMAT = "harness-summary"
VERSION = 1


class CampaignOutcome(StrEnum):
    """How a campaign ended, as the summary's ``outcome`` says (each member is that string)."""

    CLEAN = "clean"  #: nothing failed
    FAILED = "failed"  #: an invariant was violated
    ERROR = "error"  #: a target error stopped it, or every worker crashed with nothing found
    INTERRUPTED = "interrupted"  #: interrupted with nothing found


#: Exit code for each outcome: 0 clean, 1 an invariant was violated, 2 a target error stopped the
#: campaign or a worker crashed and nothing was found, 130 interrupted with nothing found.
EXIT_CODES: dict[str, int] = {
    CampaignOutcome.CLEAN: 0,
    CampaignOutcome.FAILED: 1,
    CampaignOutcome.ERROR: 2,
    CampaignOutcome.INTERRUPTED: 130,
}


def outcome(result: CampaignResult) -> CampaignOutcome:
    """``"error"`` if a target error stopped the campaign (whatever was found before it), else
    ``"failed"`` if anything failed (even when interrupted or a worker crashed), else ``"error"`` if a
    worker crashed, else ``"interrupted"`` or ``"clean"``."""
    if result.error is not None:
        return CampaignOutcome.ERROR
    if result.findings:
        return CampaignOutcome.FAILED
    if any(report.crashed for report in worker_reports(result)):
        return CampaignOutcome.ERROR
    return CampaignOutcome.INTERRUPTED if result.interrupted else CampaignOutcome.CLEAN


def exit_code(result: CampaignResult) -> int:
    return EXIT_CODES[outcome(result)]


def summarize(
    result: CampaignResult,
    config: CampaignConfig,
    target: Target | None = None,
    *,
    exercised: dict[str, Any] | None = None,
    coverage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The summary of a finished (or interrupted) campaign as JSON-ready data.

    With ``target``, the summary lists the invariants that apply to it
    (``invariants``), so that reports built from summaries alone (``harness
    merge --junit``) can tell a family that held from one that was never checked.
    ``exercised`` (``harness.output.report.Tally.to_json()``) and ``coverage``
    (``harness.output.report.CoverageProbe.report()``) are written as they are, or
    null when the campaign did not gather them.
    """
    failing = sum(1 for replay in result.regressions if replay.fails)
    shard = result.shard if isinstance(result, ParallelResult) else None
    summary = {
        "format": FORMAT,
        "version": VERSION,
        "harness": versions()["harness"],
        "target": result.target,
        "seed": result.seed,
        "strategy": config.strategy,
        "outcome": outcome(result),
        "exit_code": exit_code(result),
        "stopped_by": result.stopped_by,
        "error": result.error,
        "examples": result.examples,
        "shrink_runs": result.shrink_runs,
        "elapsed_seconds": round(result.elapsed_s, 3),
        "examples_per_second": round(result.examples_per_second, 1),
        "limits": {
            "max_examples": config.max_examples,
            "budget_seconds": config.budget_s,
            "max_failures": config.max_failures,
        },
        "database": example_database.display(config.database),
        "regressions": {
            "directory": config.regressions,
            "replayed": len(result.regressions),
            "failing": failing,
            "fixed": len(result.regressions) - failing,
            "files": [
                {
                    "file": str(replay.path),
                    "invariant": replay.record.invariant,
                    "status": replay.status,
                    "exact": replay.exact,
                }
                for replay in result.regressions
            ],
        },
        "failures": [_failure(finding) for finding in result.findings],
        "exercised": exercised,
        "coverage": coverage,
        "workers": [report.to_json() for report in worker_reports(result)],
        "shard": None if shard is None or shard.count == 1 else {
            "index": shard.index,
            "count": shard.count,
            "max_examples": shard.share(example_limit(config)),
        },
    }
    if target is not None:
        summary["invariants"] = [invariant.name for invariant in registry.invariants_for(target)]
    return summary


def _failure(finding: Finding) -> dict[str, Any]:
    path = str(finding.path) if finding.path is not None else None
    return {
        "invariant": finding.violation.invariant,
        "family": family_of(finding.violation.invariant),
        "message": finding.violation.message,
        "file": path,
        "source": finding.source,
        "shrunk": finding.shrunk,
        "operations": len(finding.record.schedule.ops),
        "replay": f"harness replay {shlex.quote(path)}" if path is not None else None,
        "regression_file": str(finding.regression_path) if finding.regression_path is not None else None,
        "detected": _detected(finding),
    }


def _detected(finding: Finding) -> dict[str, Any] | None:
    """How long the search took to first see a failure it found (None for a regression file)."""
    if finding.examples_to_detect is None or finding.detected_after_s is None:
        return None
    return {
        "examples": finding.examples_to_detect,
        "search_seconds": round(finding.detected_after_s, 3),
        "shrink_seconds": round(finding.shrink_s, 3) if finding.shrink_s is not None else None,
    }


def write_json(summary: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the summary as strict JSON (no ``NaN`` or ``Infinity``, which strict parsers refuse), indented."""
    return write_atomic(path, json.dumps(summary, indent=2, allow_nan=False) + "\n")


#: Keys a summary read from a file must have (earlier summaries may lack the others).
REQUIRED = (
    "target", "seed", "outcome", "stopped_by", "examples", "shrink_runs", "elapsed_seconds",
    "limits", "database", "regressions", "failures",
)

#: The largest summary read: far above any the harness writes, far below what would exhaust memory.
MAX_BYTES = 64 * 1024 * 1024


def parse_json(text: str, name: str, error: type[Exception] = UsageError) -> Any:
    """Strict JSON (``NaN``/``Infinity`` refused) as one-line errors, however deep or long its numbers."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    try:
        return json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:  # ValueError: bad JSON, NaN, or an integer too long to parse
        raise error(f"{name!r} is not valid JSON {json_problem(exc)}") from None


def check(data: Any, name: str) -> dict[str, Any]:
    """``data`` read from ``name`` if it is a summary this harness can read, else a one-line ``UsageError``.

    Every field is checked against ``summary.schema.json`` before anything uses it.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{name!r} is not a harness summary (write one with 'harness fuzz --json FILE')")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
        raise UsageError(
            f"summary {name!r} has version {str(version)[:20]!r}; this harness reads version {VERSION}"
            + (": upgrade it" if isinstance(version, int) and version > VERSION else "")
        )
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise UsageError(f"summary {name!r} lacks {', '.join(missing)}; it is not a complete harness summary")
    try:
        validate(data, {**schema(), "required": list(REQUIRED)})
    except SchemaViolation as exc:
        raise UsageError(f"summary {name!r} is not a valid harness summary: {one_line(str(exc))[:300]}") from None
    except RecursionError:
        raise UsageError(f"summary {name!r} nests its data too deeply to be a harness summary") from None
    return data


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check one summary file (a bounded regular file, strict JSON, the schema)."""
    name = str(path)
    return check(parse_json(read_bounded(path, MAX_BYTES, "summary", UsageError), name), name)


@functools.lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files(__package__).joinpath("summary.schema.json").read_text(encoding="utf-8")


def schema() -> dict[str, Any]:
    """The JSON Schema the summary follows (draft 2020-12)."""
    loaded: dict[str, Any] = json.loads(_schema_text())
    return loaded
