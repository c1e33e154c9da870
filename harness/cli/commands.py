"""The ``harness`` command: fuzz a target, replay or show a failure file, write the HTML report, list the scenarios.

Exit codes: 0 clean (or a replay that no longer fails), 1 an invariant was
violated or the target hung (or a replay reproduced it), 2 a usage, target
or file error, 3 an internal error of the harness itself, 130 a campaign
interrupted (Ctrl-C, SIGTERM) before it found anything. Every exit 2 is one
line on stderr, whatever the arguments or the files read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from harness.search import corpus
from harness.store import failure_file
from harness.guard import supervise
from harness.store import database as example_database
from harness.search.campaign import (
    DEFAULT_MAX_EXAMPLES,
    CampaignConfig,
    CampaignResult,
    Finding,
    NondeterministicTarget,
    new_seed,
)
from harness.errors import HarnessError, UsageError
from harness.store.files import directory_problem, writable_problem, write_atomic
from harness.search.generate import DEFAULT_DEPTH, DEFAULT_STRATEGY, STRATEGIES
from harness.model.schedule import MAX_DEPTH
from harness.output.junit import junit_from_summary, write_junit
from harness.output.merge import merge_files
from harness.cli.options import parse_count, parse_seconds, parse_seed
from harness.output.progress import Progress
from harness.output.report import (
    REPORT_NAME,
    CoverageProbe,
    Tally,
    load_inputs,
    view_of_finding,
    write_report,
)
from harness.search.shard import MAX_WORKERS, Shard
from harness.guard.signals import StopSignals
from harness.output.summary import exit_code, summarize, write_json
from harness.model.target import Target, load_target
from harness.output.timeline import CONTEXT, FULL_TRACE_HINT, render_schedule, render_trace
from harness.model.trace import one_line
from harness.search.verdict import NONDETERMINISTIC_FIX, UNFINISHED, divergence
from harness.search.verdict import replay as replay_record
from harness.guard.watchdog import DEFAULT_TIMEOUT_S
from harness.search.workers import WorkerReport, cpu_count, run_workers, worker_reports

EXIT_CLEAN, EXIT_VIOLATION, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: Exit code when standard output was closed by its reader: 128 + SIGPIPE, as the shell reports a writer it killed.
EXIT_BROKEN_PIPE = 141

#: The example database directory unless --database or --no-database (or --seed) says otherwise.
DEFAULT_DATABASE = ".hypothesis/harness"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _timeout(text: str) -> float | None:
    if text.strip().lower() in ("0", "0s", "none", "off"):
        return None
    return parse_seconds(text)


def _add_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--example-timeout",
        type=_timeout,
        metavar="SECONDS",
        default=DEFAULT_TIMEOUT_S,
        help=f"wall-clock limit of one run; a run that takes longer is reported as a hang "
        f"(default {DEFAULT_TIMEOUT_S:g}; 0 for none)",
    )


def _workers(text: str) -> int:
    if text == "auto":
        return min(cpu_count(), MAX_WORKERS)
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of processes or 'auto', got {text!r}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_WORKERS}, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Property-based fault-injection testing for Twisted scheduling code.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    fuzz = commands.add_parser(
        "fuzz",
        help="search for schedules that break a target's invariants",
        description="Replay the regression corpus, then search for schedules that break the target's invariants. "
        "Exit 0 clean, 1 an invariant was violated, 2 usage or target error, 3 internal error, "
        "130 interrupted before anything was found.",
    )
    fuzz.add_argument("target", help="the target, as package.module:attribute")
    budgets = fuzz.add_argument_group("budgets (the campaign stops at the first one reached)")
    budgets.add_argument(
        "--max-examples", type=parse_count, metavar="N", help="stop after N schedules (default 1000 without --budget)"
    )
    budgets.add_argument("--budget", type=parse_seconds, metavar="SECONDS", help="stop after this many wall-clock seconds (e.g. 300 or 300s)")
    budgets.add_argument(
        "--max-failures",
        type=parse_count,
        metavar="N",
        default=1,
        help="keep fuzzing after a failure until N distinct invariants have broken (default 1)",
    )
    fuzz.add_argument(
        "--seed",
        type=parse_seed,
        metavar="N",
        help="campaign seed: the same seed and target give the same first failure; without it one is chosen "
        "and printed. A seeded campaign uses no example database unless --database is given",
    )
    fuzz.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=DEFAULT_STRATEGY,
        help=f"how the search draws schedules: random bytes, swarm (each example uses a random part of the menu), "
        f"guided (mutates schedules that reached new trace features), pct (same-instant calls in PCT order), "
        f"or mixed, all four (default {DEFAULT_STRATEGY})",
    )
    fuzz.add_argument(
        "--pct-depth",
        type=int,
        choices=range(1, MAX_DEPTH + 1),
        metavar="D",
        default=DEFAULT_DEPTH,
        help=f"the bug depth the pct strategy aims at: D - 1 priority change points (1 to {MAX_DEPTH}, "
        f"default {DEFAULT_DEPTH})",
    )
    fuzz.add_argument("--report-dir", metavar="DIR", default="reports", help="where failures/<id>.json are written (default reports)")
    scale = fuzz.add_argument_group("scaling (see docs/scaling.md)")
    scale.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        default=1,
        help="fuzz in N processes with disjoint seeds, 'auto' for one per core (default 1); --max-examples is "
        "the total over all of them, --budget the wall-clock time of each; the first failure wins",
    )
    scale.add_argument(
        "--shard",
        type=Shard.parse,
        metavar="I/N",
        help="run the I-th of N shards of the campaign (numbered from 1; needs --seed, the same for every "
        "shard); merge their --json summaries with 'harness merge'",
    )
    regressions = fuzz.add_mutually_exclusive_group()
    regressions.add_argument(
        "--regressions",
        metavar="DIR",
        default=corpus.DEFAULT_DIRECTORY,
        help=f"regression corpus, replayed before fuzzing (default {corpus.DEFAULT_DIRECTORY})",
    )
    regressions.add_argument("--no-regressions", action="store_true", help="do not replay the regression corpus")
    fuzz.add_argument(
        "--save-regression", action="store_true", help="add each minimal failure found to the regression corpus"
    )
    database = fuzz.add_mutually_exclusive_group()
    database.add_argument(
        "--database",
        metavar="DIR|URL",
        help=f"Hypothesis example database, so a failure found once is retried first next time: a directory, "
        f"or redis://host:port/db to share it between machines (default {DEFAULT_DATABASE}; none with --seed)",
    )
    database.add_argument("--no-database", action="store_true", help="use no example database")
    fuzz.add_argument("--json", metavar="FILE", help="write the campaign summary as JSON (every key: docs/reference/summary.md)")
    fuzz.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test case per invariant family")
    _add_timeout(fuzz)
    fuzz.add_argument(
        "--html",
        action="store_true",
        help=f"write a self-contained HTML report (summary, failure timelines, coverage) to DIR/{REPORT_NAME}",
    )
    fuzz.add_argument(
        "--coverage",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure line and branch coverage of the target's package during the campaign "
        "(default: on with --html, else off)",
    )
    fuzz.set_defaults(handler=_cmd_fuzz)

    merge = commands.add_parser(
        "merge",
        help="merge the JSON summaries of several shards or hosts into one",
        description="Merge 'harness fuzz --json' summaries (the shards of one campaign, or campaigns run on "
        "several hosts) into one summary and report. Exit 0 clean, 1 any failure, 2 bad input or a crashed "
        "worker with nothing found, 130 a shard was interrupted.",
    )
    merge.add_argument("summaries", nargs="+", metavar="SUMMARY", help="a summary written by 'harness fuzz --json'")
    merge.add_argument("--json", metavar="FILE", help="write the merged summary as JSON")
    merge.add_argument("--junit", metavar="FILE", help="write JUnit XML for the merged result")
    merge.set_defaults(handler=_cmd_merge)

    replay = commands.add_parser("replay", help="run a saved failure file again and say whether it reproduces")
    replay.add_argument("file", help="a failure file written by 'harness fuzz'")
    _add_timeout(replay)
    replay.set_defaults(handler=_cmd_replay)

    show = commands.add_parser("show", help="print a failure file's timeline without running anything")
    show.add_argument("file", help="a failure file written by 'harness fuzz'")
    show.set_defaults(handler=_cmd_show)

    report = commands.add_parser(
        "report",
        help="write the HTML report from failure files and/or a --json summary",
        description="Write the self-contained HTML report from a campaign summary (written by 'harness fuzz --json') "
        "and failure files: the summary brings the campaign, what it exercised, its coverage and the failures it "
        "lists; each failure file adds its timeline. Runs nothing.",
    )
    report.add_argument("files", nargs="+", metavar="FILE", help="a --json summary (at most one) and failure files")
    report.add_argument(
        "-o", "--output", metavar="FILE", default=f"reports/{REPORT_NAME}", help=f"where to write it (default reports/{REPORT_NAME})"
    )
    report.set_defaults(handler=_cmd_report)

    listing = commands.add_parser("list", help="list the bundled scenarios and what each must give")
    listing.add_argument("--json", action="store_true", help="print a JSON list of {target, expect, description}")
    listing.set_defaults(handler=_cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except HarnessError as exc:
        print(f"harness: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (harness list | head -2): stop quietly, as a command killed by SIGPIPE would.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception:
        print("harness: internal error (a bug in the harness, please report it):", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that flushing it at exit does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _cmd_fuzz(args: argparse.Namespace) -> int:
    config = _fuzz_config(args)
    for option, path in (("--json", args.json), ("--junit", args.junit)):
        if path is not None:
            _check_writable(option, path)
    _check_directory("--report-dir", config.report_dir)
    if config.regressions is not None:
        _check_directory("--regressions", config.regressions, writes=config.save_regressions)
    if config.database is not None and not example_database.is_redis(config.database):
        _check_directory("--database", config.database)
    measure = args.coverage if args.coverage is not None else args.html
    # Coverage starts before the target is imported, so that its import-time lines count.
    probe = CoverageProbe(args.target) if measure else None
    with probe or contextlib.nullcontext():
        return _fuzz(args, config, probe)


def _fuzz(args: argparse.Namespace, config: CampaignConfig, probe: CoverageProbe | None) -> int:
    target = load_target(args.target)
    spread = "".join(
        (f", {args.workers} workers" if args.workers > 1 else "", f", shard {args.shard}" if args.shard else "")
    )
    print(f"harness: fuzzing {args.target} with seed {config.seed}; {_describe_config(config)}{spread}", flush=True)
    progress = Progress()
    tally = Tally.for_target(target, config.menu)

    def on_finding(finding: Finding) -> None:
        progress.clear()
        _print_finding(finding)

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
            progress.clear()
            if probe is not None:
                probe.stop()
            if isinstance(exc.result, CampaignResult):
                _print_summary(exc.result)
                _write_reports(args, config, exc.result, target, tally, probe)
            raise
        if probe is not None:
            probe.stop()
        progress.clear()
        _print_regressions(result, config)
        _print_summary(result)
        _print_coverage(probe)
        _write_reports(args, config, result, target, tally, probe)
    return exit_code(result)


def _fuzz_config(args: argparse.Namespace) -> CampaignConfig:
    """The campaign the options ask for; the seed is chosen here so that it is printed first."""
    if args.save_regression and args.no_regressions:
        raise UsageError("--save-regression adds failures to the regression corpus; drop --no-regressions")
    if args.shard is not None:
        if args.seed is None:
            raise UsageError(
                f"--shard {args.shard} splits one campaign between jobs: give every shard the same --seed "
                "(such as the CI pipeline's id)"
            )
        total = args.max_examples if args.max_examples or args.budget else DEFAULT_MAX_EXAMPLES
        if total is not None and total < args.shard.count:
            raise UsageError(
                f"--max-examples {total} leaves shard {args.shard} no examples: use at most {total} shards"
            )
    if args.no_database:
        database = None
    elif args.database is not None:
        database = args.database
        example_database.check(database)
    else:
        # A seeded campaign is a pure function of seed and target: no database unless asked for.
        database = None if args.seed is not None else DEFAULT_DATABASE
    return CampaignConfig(
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
    )


def _describe_config(config: CampaignConfig) -> str:
    limits = []
    if config.max_examples or not config.budget_s:
        limits.append(f"{config.max_examples or DEFAULT_MAX_EXAMPLES} examples")
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


def _check_writable(option: str, path: str) -> None:
    """Fail before the campaign, not after it, when a report cannot be written."""
    problem = writable_problem(path)
    if problem is not None:
        raise UsageError(f"{option} {path!r}: {problem}; choose another path")


def _check_directory(option: str, path: str, writes: bool = True) -> None:
    """Fail before the campaign when a directory it writes into is a file or cannot be written (it is created when missing)."""
    try:
        exists, is_dir = os.path.exists(path), os.path.isdir(path)
    except ValueError:  # a NUL in the path
        exists, is_dir = True, False
    if not path or (exists and not is_dir):
        raise UsageError(f"{option} {path!r} is not a directory; give a directory such as reports")
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
) -> None:
    coverage = probe.report() if probe is not None else None
    summary = summarize(result, config, target, exercised=tally.to_json(), coverage=coverage)
    if args.json is not None:
        print(f"summary: {write_json(summary, args.json)}")
    if args.junit is not None:
        print(f"junit: {write_junit(result, target, args.junit)}")
    if args.html:
        views = [view_of_finding(finding) for finding in result.findings]
        print(f"html: {write_report(Path(config.report_dir) / REPORT_NAME, summary, views)}")


def _print_coverage(probe: CoverageProbe | None) -> None:
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


def _print_finding(finding: Finding) -> None:
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
            print("the schedule that did not finish, cut after the step it stopped in (not shrunk):")
            print(render_schedule(finding.record.schedule))
        else:
            print("shrinking was cut short (by the budget or an interrupt); this schedule fails but may not be minimal:")
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


def _print_regressions(result: CampaignResult, config: CampaignConfig) -> None:
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


def _print_summary(result: CampaignResult) -> None:
    rate = result.examples_per_second
    failures = len(result.findings)
    verdict = f"{failures} failure{'' if failures == 1 else 's'}" if failures else "no violations"
    if result.interrupted:
        verdict = "interrupted; " + verdict
    workers = worker_reports(result)
    crashed = [report.describe_crash() for report in workers if report.crashed]
    spread = f" over {len(workers)} workers" if len(workers) > 1 else ""
    print(
        f"\n{verdict}; {result.examples} examples in {result.elapsed_s:.1f}s ({rate:.0f}/s){spread}; "
        f"stopped by {result.stopped_by}; seed {result.seed}"
        + "".join(f"; {line}" for line in crashed)
    )
    sys.stdout.flush()


def _cmd_merge(args: argparse.Namespace) -> int:
    for option, path in (("--json", args.json), ("--junit", args.junit)):
        if path is not None:
            _check_writable(option, path)
    merged, notes = merge_files(args.summaries)
    for note in notes:
        print(f"harness: note: {one_line(note)}", file=sys.stderr)
    shards = [entry["shard"] for entry in merged["merged"] if entry["shard"]]
    print(
        f"harness: merged {len(merged['merged'])} summaries of {one_line(merged['target'])}"
        + (f" (shards {', '.join(shards)}; seed {merged['seed']})" if shards else "")
    )
    for failure in merged["failures"]:
        print(f"\nFAIL {one_line(failure['invariant'])}: {one_line(failure['message'])}")
        if failure["replay"]:
            print(f"replay: {one_line(failure['replay'])}")
    for worker in merged["workers"]:
        if worker["crashed"]:
            print(f"\na worker crashed with {one_line(str(worker['crashed']))} (seed {worker['seed']})")
    count = len(merged["failures"])
    verdict = f"{count} failure{'' if count == 1 else 's'}" if count else "no violations"
    print(
        f"\n{verdict}; {merged['examples']} examples in {merged['elapsed_seconds']:.1f}s "
        f"({merged['examples_per_second']:.0f}/s); outcome {merged['outcome']}; stopped by {merged['stopped_by']}"
    )
    if args.json is not None:
        print(f"summary: {write_json(merged, args.json)}")
    if args.junit is not None:
        print(f"junit: {write_atomic(args.junit, junit_from_summary(merged))}")
    return merged["exit_code"]


def _cmd_replay(args: argparse.Namespace) -> int:
    record = failure_file.load(args.file)
    source = f"failure file {args.file!r}"
    target = load_target(record.target)
    print(f"harness: replaying {one_line(args.file)} against {record.target}\n", flush=True)
    run, violations = replay_record(target, record, source, args.example_timeout)
    failing = [v for v in violations if v.invariant == record.invariant]
    # A run that did not finish fails whatever the file recorded: it is not fixed.
    failing = failing or [v for v in violations if v.invariant in UNFINISHED]
    print(render_schedule(record.schedule))
    print()
    hint = f"the full trace: harness show {shlex.quote(args.file)}"
    print(render_trace(run.trace, failing[0].events if failing else (), around=CONTEXT, hint=hint))
    print()
    saved = [event.line() for event in record.trace]
    changed = run.trace.digest() != record.trace_hash
    if changed:
        # Tell a target that changed since the file was saved from one that changes on every run.
        again, _ = replay_record(target, record, source, args.example_timeout)
        where = divergence(run.trace.lines(), again.trace.lines())
        if where is not None:
            raise NondeterministicTarget(
                f"target {record.target!r} is nondeterministic: replaying {args.file!r} twice gave two different "
                f"traces, first differing at {where}; {NONDETERMINISTIC_FIX}"
            )
    message = one_line(record.message)
    if not failing:
        print(f"no longer fails: {one_line(record.invariant)} holds on this schedule (it failed with: {message})")
        return EXIT_CLEAN
    print(f"FAIL {one_line(failing[0].invariant)}: {one_line(failing[0].message)}")
    if failing[0].invariant != record.invariant:
        print(f"(the file records {one_line(record.invariant)}: {message})")
    if not changed:
        print(f"reproduced exactly (trace hash {record.trace_hash[:16]})")
    else:
        print(
            f"reproduced, but the trace diverged from the saved one at {divergence(saved, run.trace.lines())} "
            "(saved, then now): the target or the harness changed since the file was saved"
        )
    return EXIT_VIOLATION


def _cmd_show(args: argparse.Namespace) -> int:
    record = failure_file.load(args.file)
    print(f"failure {record.id}: {record.target}, seed {record.seed}")
    print(f"FAIL {one_line(record.invariant)}: {one_line(record.message)}\n")
    print(render_schedule(record.schedule))
    print()
    print(render_trace(record.trace, record.marked))
    return EXIT_CLEAN


def _cmd_report(args: argparse.Namespace) -> int:
    summary, views, notes = load_inputs(args.files)
    for note in notes:
        print(f"harness: note: {one_line(note)}", file=sys.stderr)
    print(f"html: {write_report(args.output, summary, views, notes)}")
    return EXIT_CLEAN


def _cmd_list(args: argparse.Namespace) -> int:
    from scenarios import CATALOG

    if args.json:
        print(json.dumps([{"target": s.target, "expect": s.expect, "description": s.description} for s in CATALOG], indent=2))
    else:
        width = max(len(s.target) for s in CATALOG)
        for s in CATALOG:
            print(f"{s.target:<{width}}  {s.expect:<22}  {s.description}")
    return EXIT_CLEAN


def console() -> None:
    """The ``harness`` executable: ``main`` with Twisted's own log kept off the terminal.

    Errors the subject logs (an "Unhandled error in Deferred" from a buggy
    subject, thousands of times in a campaign) are recorded in each run's
    trace; printed as well, they would drown the report.
    """
    from twisted.logger import globalLogBeginner

    globalLogBeginner.beginLoggingTo([], discardBuffer=True, redirectStandardIO=False)
    argv = sys.argv[1:]
    if argv[:1] in (["fuzz"], ["replay"]) and supervise.available():
        # The target runs in a child; this process exits 0 only if that child finished (harness.guard.supervise).
        sys.exit(supervise.supervise(lambda: main(argv), f"'harness {argv[0]}'"))
    sys.exit(main(argv))


if __name__ == "__main__":
    console()
