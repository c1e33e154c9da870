"""The ``harness`` command: fuzz a target, replay or show a failure file, list the scenarios.

Exit codes: 0 clean (or a replay that no longer fails), 1 an invariant was
violated (or reproduced), 2 a usage, target or file error, 3 an internal
error of the harness itself.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from . import failure_file
from .campaign import DEFAULT_MAX_EXAMPLES, CampaignConfig, CampaignResult, Finding, run_campaign
from .errors import HarnessError, UsageError
from .invariants import check
from .runner import run_schedule
from .target import load_target
from .timeline import render_schedule, render_trace
from .trace import first_divergence

EXIT_CLEAN, EXIT_VIOLATION, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {value}")
    return value


def _seconds(text: str) -> float:
    raw = text[:-1] if text.endswith("s") else text
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds such as 60 or 60s, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Property-based fault-injection testing for Twisted scheduling code.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    fuzz = commands.add_parser("fuzz", help="search for schedules that break a target's invariants")
    fuzz.add_argument("target", help="the target, as package.module:attribute")
    fuzz.add_argument("--max-examples", type=_positive_int, help="stop after N schedules (default 1000 without --budget)")
    fuzz.add_argument("--budget", type=_seconds, help="stop after this many wall-clock seconds (e.g. 60 or 60s)")
    fuzz.add_argument("--seed", type=_seed, help="campaign seed; the same seed and target give the same result")
    fuzz.add_argument("--report-dir", default="reports", help="where failures/<id>.json are written (default reports)")
    fuzz.set_defaults(handler=_cmd_fuzz)

    replay = commands.add_parser("replay", help="run a saved failure file again and say whether it reproduces")
    replay.add_argument("file", help="a failure file written by 'harness fuzz'")
    replay.set_defaults(handler=_cmd_replay)

    show = commands.add_parser("show", help="print a failure file's timeline without running anything")
    show.add_argument("file", help="a failure file written by 'harness fuzz'")
    show.set_defaults(handler=_cmd_show)

    listing = commands.add_parser("list", help="list the bundled scenarios and what each must give")
    listing.add_argument("--json", action="store_true", help="print a JSON list of {target, expect, description}")
    listing.set_defaults(handler=_cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except Exception:
        print("harness: internal error (a bug in the harness, please report it):", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL


def _cmd_fuzz(args: argparse.Namespace) -> int:
    target = load_target(args.target)
    config = CampaignConfig(
        max_examples=args.max_examples,
        budget_s=args.budget,
        seed=args.seed,
        report_dir=args.report_dir,
    )
    limits = []
    if args.max_examples or not args.budget:
        limits.append(f"{args.max_examples or DEFAULT_MAX_EXAMPLES} examples")
    if args.budget:
        limits.append(f"{args.budget:g}s")
    result = run_campaign(target, args.target, config)
    print(f"harness: fuzzed {args.target} with seed {result.seed} (budget: {' or '.join(limits)})")
    for finding in result.findings:
        _print_finding(finding)
    _print_summary(result)
    return EXIT_VIOLATION if result.findings else EXIT_CLEAN


def _print_finding(finding: Finding) -> None:
    record = finding.record
    print(f"\nFAIL {record.invariant}: {record.message}\n")
    print("minimal " + render_schedule(record.schedule))
    print("\ntrace (>> marks the events that break the invariant):")
    print(render_trace(record.trace, record.marked))
    if finding.path is not None:
        print(f"\nsaved: {finding.path}")
        print(f"replay: harness replay {shlex.quote(str(finding.path))}")


def _print_summary(result: CampaignResult) -> None:
    rate = result.examples_per_second
    verdict = f"{len(result.findings)} failure(s)" if result.findings else "no violations"
    print(
        f"\n{verdict}; {result.examples} examples in {result.elapsed_s:.1f}s ({rate:.0f}/s); "
        f"stopped by {result.stopped_by}; seed {result.seed}"
    )


def _cmd_replay(args: argparse.Namespace) -> int:
    record = failure_file.load(args.file)
    target = load_target(record.target)
    run = run_schedule(target, record.schedule)
    violations = check(run)
    same = [v for v in violations if v.invariant == record.invariant]
    print(f"harness: replaying {args.file} against {record.target}\n")
    print(render_schedule(record.schedule))
    print()
    print(render_trace(run.trace, same[0].events if same else ()))
    print()
    lines = run.trace.lines()
    if not same:
        print(f"no longer fails: {record.invariant} holds on this schedule (it failed with: {record.message})")
        return EXIT_CLEAN
    print(f"FAIL {same[0].invariant}: {same[0].message}")
    if run.trace.digest() == record.trace_hash:
        print(f"reproduced exactly (trace hash {record.trace_hash[:16]})")
    else:
        index = first_divergence(lines, [event.line() for event in record.trace])
        print(f"reproduced, but the trace diverged from the saved one at event {index}")
    return EXIT_VIOLATION


def _cmd_show(args: argparse.Namespace) -> int:
    record = failure_file.load(args.file)
    print(f"failure {record.id}: {record.target}, seed {record.seed}")
    print(f"FAIL {record.invariant}: {record.message}\n")
    print(render_schedule(record.schedule))
    print()
    print(render_trace(record.trace, record.marked))
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


if __name__ == "__main__":
    sys.exit(main())
