"""``harness fuzz``: the campaign the options ask for, checked before it starts, run, printed and written out.

The search itself is ``harness.search`` (``run_workers``, which runs a
one-process campaign in this process); this module turns options into a
``CampaignConfig``, refuses paths the reports could not be written to
before any time is spent, and writes the JSON summary, JUnit XML and HTML
report afterwards, also when a target error stopped the campaign.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
from pathlib import Path

from harness.cli.printing import (
    describe_config,
    print_coverage,
    print_finding,
    print_regressions,
    print_summary,
)
from harness.errors import HarnessError, UsageError
from harness.guard.signals import StopSignals
from harness.guard.supervise import summary_written
from harness.model.target import Target, load_target
from harness.output.junit import write_junit
from harness.output.progress import Progress
from harness.output.report import REPORT_NAME, CoverageProbe, Tally, view_of_finding, write_report
from harness.output.summary import exit_code, summarize, write_json
from harness.search.campaign import CampaignConfig, CampaignResult, Finding, example_limit, new_seed
from harness.search.workers import WorkerReport, run_workers
from harness.store import database as example_database
from harness.store.files import directory_problem, writable_problem

#: The example database directory unless --database or --no-database (or --seed) says otherwise.
DEFAULT_DATABASE = ".hypothesis/harness"


def cmd_fuzz(args: argparse.Namespace) -> int:
    """Check the options and the paths, then run the campaign (under coverage with --coverage or --html)."""
    config = fuzz_config(args)
    html = str(Path(config.report_dir) / REPORT_NAME) if args.html else None
    check_distinct({"--json": args.json, "--junit": args.junit, "--html": html})
    for option, path in (("--json", args.json), ("--junit", args.junit)):
        if path is not None:
            check_writable(option, path)
    check_directory("--report-dir", config.report_dir)
    if config.regressions is not None:
        check_directory("--regressions", config.regressions, writes=config.save_regressions)
    if config.database is not None and not example_database.is_redis(config.database):
        check_directory("--database", config.database)
    scope = args.coverage_package
    if scope is not None and args.coverage is False:
        raise UsageError("--coverage-package says which package --coverage measures; drop --no-coverage")
    measure = args.coverage if args.coverage is not None else (args.html or scope is not None)
    # Coverage starts before the target is imported, so that its import-time lines count.
    probe = CoverageProbe(args.target, scope) if measure else None
    if probe is not None and scope is not None and not probe.paths:
        raise UsageError(
            f"--coverage-package {scope!r} names no package or module importable from the current directory; "
            "give a dotted name such as myproject or myproject.pools"
        )
    with probe or contextlib.nullcontext():
        return _fuzz(args, config, probe)


def _fuzz(args: argparse.Namespace, config: CampaignConfig, probe: CoverageProbe | None) -> int:
    target = load_target(args.target)
    spread = "".join(
        (f", {args.workers} workers" if args.workers > 1 else "", f", shard {args.shard}" if args.shard else "")
    )
    print(f"harness: fuzzing {args.target} with seed {config.seed}; {describe_config(config)}{spread}", flush=True)
    progress = Progress()
    tally = Tally.for_target(target, config.menu)

    def on_finding(finding: Finding) -> None:
        progress.clear()
        print_finding(finding)

    def on_crash(report: WorkerReport) -> None:
        progress.clear()
        print(f"\nharness: {report.describe_crash()}; what the other workers find is kept", flush=True)

    # Signals stay handled until the reports are written: a second one still aborts at once.
    with StopSignals() as stop:
        try:
            # One worker, one shard runs in this process: the same path as ``run_campaign``.
            result = run_workers(
                target,
                args.target,
                config,
                args.workers,
                args.shard,
                on_example=progress,
                on_finding=on_finding,
                on_crash=on_crash,
                stop_requested=stop.requested,
                exercised=tally,
            )
        except HarnessError as exc:
            # A target error stopped the campaign: report what was found before it, then the error (exit 2).
            stop.finish()
            progress.clear()
            if probe is not None:
                probe.stop()
            if isinstance(exc.result, CampaignResult):
                print_summary(exc.result)
                _write_reports(args, config, exc.result, target, tally, probe, stop)
            raise
        stop.finish()  # writing the reports: a stop signal now is not repeated (a second one still aborts)
        if probe is not None:
            probe.stop()
        progress.clear()
        print_regressions(result, config)
        print_summary(result)
        print_coverage(probe)
        _write_reports(args, config, result, target, tally, probe, stop)
    return exit_code(result)


def fuzz_config(args: argparse.Namespace) -> CampaignConfig:
    """The campaign the options ask for; the seed is chosen here so that it is printed first."""
    if args.save_regression and args.no_regressions:
        raise UsageError("--save-regression adds failures to the regression corpus; drop --no-regressions")
    if args.shard is not None and args.seed is None:
        raise UsageError(
            f"--shard {args.shard} splits one campaign between jobs: give every shard the same --seed "
            "(such as the CI pipeline's id)"
        )
    if args.no_database:
        database = None
    elif args.database is not None:
        database = args.database
        example_database.check(database)
    else:
        # A seeded campaign is a pure function of seed and target: no database unless asked for.
        database = None if args.seed is not None else DEFAULT_DATABASE
    config = CampaignConfig(
        max_examples=args.max_examples,
        budget_s=args.budget,
        seed=args.seed if args.seed is not None else new_seed(),
        database=database,
        report_dir=args.report_dir,
        max_failures=args.max_failures,
        regressions=None if args.no_regressions else args.regressions,
        save_regressions=args.save_regression,
        example_timeout_s=args.example_timeout,
        strategy=args.strategy,
        pct_depth=args.pct_depth,
        coverage_feedback=args.coverage_feedback,
    )
    total = example_limit(config)
    if args.shard is not None and total is not None and total < args.shard.count:
        raise UsageError(f"--max-examples {total} leaves shard {args.shard} no examples: use at most {total} shards")
    return config


def check_distinct(outputs: dict[str, str | None], inputs: tuple[str, ...] = ()) -> None:
    """Refuse, before anything is written, an output that is one of the inputs or another output.

    ``harness report s.json -o s.json`` would replace the summary with the page, and
    ``--json out --junit out`` keep only the XML: a careless option loses a file.
    """
    seen: dict[str, str] = {}
    for given in inputs:
        seen.setdefault(_identity(given), f"the input {given!r}")
    for option, output in outputs.items():
        if output is None:
            continue
        key = _identity(output)
        if key in seen and not _is_stream(output):
            raise UsageError(f"{option} {output!r} is {seen[key]}: writing it would lose that file; give another path")
        seen[key] = f"also the {option} output"


def _identity(path: str) -> str:
    """One name per file: the real path (links followed), so two spellings of one file compare equal."""
    return os.path.realpath(path)


def _is_stream(path: str) -> bool:
    """A device or FIFO (``/dev/stdout``, ``/dev/null``): writing it twice loses nothing."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def check_writable(option: str, path: str) -> None:
    """Fail before the campaign, not after it, when a report cannot be written."""
    problem = writable_problem(path)
    if problem is not None:
        raise UsageError(f"{option} {path!r}: {problem}; choose another path")


def check_directory(option: str, path: str, writes: bool = True) -> None:
    """Fail before the campaign when a directory it writes into is a file or cannot be written (it is created when missing)."""
    try:
        exists, is_dir = os.path.exists(path), os.path.isdir(path)
    except ValueError:  # a NUL in the path
        exists, is_dir = True, False
    if not path or (exists and not is_dir):
        example = "harness-regressions" if option == "--regressions" else "reports"
        raise UsageError(f"{option} {path!r} is not a directory; give a directory such as {example}")
    problem = directory_problem(path) if writes else None
    if problem is not None:
        raise UsageError(f"{option} {path!r}: cannot write into it ({problem}); choose a writable directory")


def _write_reports(
    args: argparse.Namespace,
    config: CampaignConfig,
    result: CampaignResult,
    target: Target,
    tally: Tally,
    probe: CoverageProbe | None,
    stop: StopSignals,
) -> None:
    """The summary first (``--json``, ``--junit``: small, each fsync'd and renamed into place; a second
    stop signal waits for them), then the HTML report, which replays every failure and may be large: a
    campaign killed while writing it (``harness.guard.supervise``) loses that report alone, and says so."""
    with stop.held():
        coverage = probe.report() if probe is not None else None
        summary = summarize(result, config, target, exercised=tally.to_json(), coverage=coverage)
        if args.json is not None:
            print(f"summary: {write_json(summary, args.json)}")
        if args.junit is not None:
            print(f"junit: {write_junit(result, target, args.junit, summary['exercised'])}")
    summary_written()
    if args.html:
        views = [view_of_finding(finding) for finding in result.findings]
        print(f"html: {write_report(Path(config.report_dir) / REPORT_NAME, summary, views)}")
