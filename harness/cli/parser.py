"""The grammar of the ``harness`` command: every subcommand, option, default and help text.

Defaults come from the modules that own them (``DEFAULT_MAX_EXAMPLES``,
``DEFAULT_TIMEOUT_S``, ``DEFAULT_STRATEGY``, ...), so the help always
states the value the search really uses. A usage error is one line and
exit 2 (``Parser``), never argparse's usage block.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from harness.cli.commands import cmd_list, cmd_merge, cmd_replay, cmd_report, cmd_show
from harness.cli.fuzz import DEFAULT_DATABASE, cmd_fuzz
from harness.cli.options import parse_count, parse_seconds, parse_seed
from harness.errors import UsageError
from harness.guard.watchdog import DEFAULT_TIMEOUT_S
from harness.model.schedule import MAX_DEPTH
from harness.output.report import REPORT_NAME
from harness.search import corpus
from harness.search.campaign import DEFAULT_MAX_EXAMPLES
from harness.search.generate import DEFAULT_DEPTH, DEFAULT_STRATEGY, STRATEGIES
from harness.search.shard import MAX_WORKERS, Shard
from harness.search.workers import cpu_count


class Parser(argparse.ArgumentParser):
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
    """The ``harness`` parser; each subcommand sets ``handler``, the function that runs it."""
    parser = Parser(prog="harness", description="Property-based fault-injection testing for Twisted scheduling code.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _add_fuzz(commands)

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
    merge.set_defaults(handler=cmd_merge)

    replay = commands.add_parser("replay", help="run a saved failure file again and say whether it reproduces")
    replay.add_argument("file", help="a failure file written by 'harness fuzz'")
    _add_timeout(replay)
    replay.set_defaults(handler=cmd_replay)

    show = commands.add_parser("show", help="print a failure file's timeline without running anything")
    show.add_argument("file", help="a failure file written by 'harness fuzz'")
    show.set_defaults(handler=cmd_show)

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
    report.set_defaults(handler=cmd_report)

    listing = commands.add_parser("list", help="list the bundled scenarios and what each must give")
    listing.add_argument("--json", action="store_true", help="print a JSON list of {target, expect, description}")
    listing.set_defaults(handler=cmd_list)
    return parser


def _add_fuzz(commands: argparse._SubParsersAction[Parser]) -> None:
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
        "--max-examples",
        type=parse_count,
        metavar="N",
        help=f"stop after N schedules (default {DEFAULT_MAX_EXAMPLES} without --budget)",
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
    fuzz.add_argument(
        "--coverage-feedback",
        action="store_true",
        help="guided and mixed searches also keep schedules that took a new line or branch of the target's own "
        "code (off by default: it costs up to a third of the throughput and did not find the hard zoo's bugs sooner)",
    )
    fuzz.add_argument("--report-dir", metavar="DIR", default="reports", help="where failures/<id>.json are written (default reports)")
    scale = fuzz.add_argument_group("scaling (see docs/scaling.md)")
    scale.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        default=1,
        help="fuzz in N processes with disjoint seeds, 'auto' for one per core (default 1); --max-examples is "
        "the total over all of them, --budget the search time of each (from when it has loaded the target); "
        "the first failure wins",
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
    fuzz.add_argument(
        "--coverage-package",
        metavar="NAME",
        help="the package (or module) whose coverage --coverage measures, such as myproject when the targets "
        "live elsewhere (default: the package that holds the target's module); implies --coverage",
    )
    fuzz.set_defaults(handler=cmd_fuzz)
