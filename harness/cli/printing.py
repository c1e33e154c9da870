"""What ``harness fuzz`` prints: the campaign line, each failure as it is found, the corpus, the summary.

Printing only: every function reads a result the search layer produced and
writes lines to standard output, flushed, so a campaign's log reads well
when piped. Text read from files or targets goes through ``one_line``.
"""

from __future__ import annotations

import shlex
import sys

from harness.model.trace import counted
from harness.model.trace import one_line
from harness.output.report import CoverageProbe
from harness.output.timeline import CONTEXT, FULL_TRACE_HINT, render_schedule, render_trace
from harness.search.campaign import CampaignConfig, CampaignResult, Finding, example_limit
from harness.search.verdict import UNFINISHED
from harness.search.workers import worker_reports
from harness.store import database as example_database


def describe_config(config: CampaignConfig) -> str:
    """The campaign's limits and stores in one clause: ``budget 1000 examples, up to 1 failure, ...``."""
    limits = []
    total = example_limit(config)
    if total is not None:
        limits.append(f"{total} examples")
    if config.budget_s:
        limits.append(f"{config.budget_s:g}s")
    return ", ".join(
        (
            f"budget {' or '.join(limits)}",
            f"up to {config.max_failures} failure{'' if config.max_failures == 1 else 's'}",
            f"database {example_database.display(config.database)}" if config.database else "no database",
            f"regressions {config.regressions}" if config.regressions else "no regressions",
        )
    )


def print_coverage(probe: CoverageProbe | None) -> None:
    if probe is None:
        return
    report = probe.report()
    if report is None:
        print(f"coverage: not measured (cannot find the package of {probe.target_spec!r})")
        return
    lines, branches = report["lines"], report["branches"]
    print(
        f"coverage of {report['scope']}: {lines['percent']}% of lines ({lines['covered']}/{lines['total']}), "
        f"{branches['percent']}% of branches ({branches['covered']}/{branches['total']})"
    )
    sys.stdout.flush()


def print_finding(finding: Finding) -> None:
    """A failure as soon as it is saved: the message, the schedule, the marked trace, the replay line."""
    violation = finding.violation
    if finding.source == "regression":
        print(
            f"\nFAIL {one_line(violation.invariant)} (regression {one_line(str(finding.path))} still fails): "
            f"{one_line(violation.message)}\n"
        )
        print(render_schedule(finding.record.schedule))
    else:
        print(f"\nFAIL {one_line(violation.invariant)}: {one_line(violation.message)}\n")
        if finding.shrunk:
            print("minimal " + render_schedule(finding.record.schedule))
        elif violation.invariant in UNFINISHED:
            print(
                "the schedule that did not finish, cut after the step it stopped in (not shrunk, or shrinking it "
                "ran out of its time: it may not be minimal):"
            )
            print(render_schedule(finding.record.schedule))
        else:
            why = finding.cut_short or "by the budget or an interrupt"
            print(f"shrinking was cut short ({one_line(why)}); this schedule fails but may not be minimal:")
            print(render_schedule(finding.record.schedule))
    print("\ntrace (>> marks the events that break the invariant):")
    hint = f"the full trace: harness show {shlex.quote(str(finding.path))}" if finding.path is not None else FULL_TRACE_HINT
    print(render_trace(finding.run.trace, violation.events, around=CONTEXT, hint=hint))
    if finding.path is not None:
        if finding.source != "regression":
            print(f"\nsaved: {finding.path}")
        print(f"replay: harness replay {shlex.quote(str(finding.path))}")
    if finding.regression_path is not None:
        print(f"added to the regression corpus: {finding.regression_path}")
    sys.stdout.flush()


def print_regressions(result: CampaignResult, config: CampaignConfig) -> None:
    """The regression corpus replayed: how many still fail, one line a file."""
    if config.regressions is None:
        return
    if not result.regressions:
        print(f"\nregressions: none replayed (no files for this target in {config.regressions})")
    else:
        failing = sum(1 for replay in result.regressions if replay.fails)
        print(
            f"\nregressions: replayed {len(result.regressions)} from {config.regressions}: "
            f"{failing} still fail, {len(result.regressions) - failing} fixed"
        )
        for replay in result.regressions:
            print(f"  {replay.status:<5}  {one_line(str(replay.path))}  ({one_line(replay.record.invariant)})")
    if config.save_regressions:
        for finding in result.findings:
            if finding.source == "fuzz" and finding.regression_path is None:
                print(f"not added to the regression corpus (interrupted before it was minimal): {finding.path}")


def print_summary(result: CampaignResult) -> None:
    """The last line of a campaign: the verdict, the examples and their rate, why it stopped, the seed."""
    rate = result.examples_per_second
    failures = len(result.findings)
    # After an error (its line follows) "no violations" would read as a verdict: the error may be the finding.
    clean = "no violations" if result.error is None else "no violation found before the error"
    verdict = f"{failures} failure{'' if failures == 1 else 's'}" if failures else clean
    if result.interrupted:
        verdict = "interrupted; " + verdict
    workers = worker_reports(result)
    crashed = [report.describe_crash() for report in workers if report.crashed]
    spread = f" over {len(workers)} workers" if len(workers) > 1 else ""
    print(
        f"\n{verdict}; {counted(result.examples, 'example')} in {result.elapsed_s:.1f}s ({rate:.0f}/s){spread}; "
        f"stopped by {result.stopped_by}; seed {result.seed}"
        + "".join(f"; {line}" for line in crashed)
    )
    sys.stdout.flush()
