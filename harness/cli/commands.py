"""The commands that read files rather than search: ``replay``, ``show``, ``report``, ``merge`` and ``list``.

``harness fuzz`` is ``harness.cli.fuzz``; the grammar of every command is
``harness.cli.parser``; ``main`` and the console script are
``harness.cli.main``. Each command takes the parsed arguments and returns
its exit code (``harness.cli.exits``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from harness.model.trace import counted
from harness.cli.exits import EXIT_CLEAN, EXIT_VIOLATION
from harness.cli.fuzz import check_distinct, check_writable
from harness.model.target import Target, load_target
from harness.model.trace import one_line
from harness.output.junit import junit_from_summary
from harness.output.merge import merge_files
from harness.output.report import load_inputs, write_report
from harness.output.summary import write_json
from harness.output.timeline import CONTEXT, render_schedule, render_trace
from harness.search.nondeterminism import run_twice
from harness.search.verdict import NONDETERMINISTIC, NONDETERMINISTIC_FIX, UNFINISHED, check_deterministic, divergence
from harness.search.verdict import replay as replay_record
from harness.store import failure_file
from harness.store.files import write_atomic
from harness.store.judged import check_judged


def cmd_replay(args: argparse.Namespace) -> int:
    """Run a failure file's schedule again: exit 1 while it still fails, 0 once it holds."""
    record = failure_file.load(args.file)
    source = f"failure file {args.file!r}"
    target = load_target(record.target)
    check_judged(record, target, source, also=(*UNFINISHED, NONDETERMINISTIC))
    print(f"harness: replaying {one_line(args.file)} against {record.target}\n", flush=True)
    if record.invariant == NONDETERMINISTIC:
        return _replay_nondeterministic(args, record, target)
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
        check_deterministic(
            target, record.schedule, run, args.example_timeout, record.target, f"replaying {args.file!r} twice"
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


def _replay_nondeterministic(args: argparse.Namespace, record: failure_file.FailureRecord, target: Target) -> int:
    """Run a schedule saved by a nondeterminism error twice and show where the runs part: exit 1 while they
    do, 0 once they agree (the file's message says how they differed when it was saved)."""
    twice = run_twice(target, record, f"failure file {args.file!r}", args.example_timeout)
    print(render_schedule(record.schedule))
    event = twice.event
    marked = () if event is None else (event,)
    hint = f"the saved trace: harness show {shlex.quote(args.file)}"
    for name, run in (("first", twice.first), ("second", twice.second)):
        print(f"\n{name} run (>> marks where the two runs part):" if marked else f"\n{name} run:")
        print(render_trace(run.trace, marked, around=CONTEXT, hint=hint))
    print()
    difference = twice.difference()
    if difference is None:
        print(
            "no longer nondeterministic: the same schedule gave the same trace and verdict twice "
            f"(when it was saved: {one_line(record.message)})"
        )
        return EXIT_CLEAN
    print(f"still nondeterministic: {one_line(difference)}; {NONDETERMINISTIC_FIX}")
    return EXIT_VIOLATION


def cmd_show(args: argparse.Namespace) -> int:
    """Print a failure file's schedule and marked trace, running nothing."""
    record = failure_file.load(args.file)
    print(f"failure {record.id}: {record.target}, seed {record.seed}")
    print(f"FAIL {one_line(record.invariant)}: {one_line(record.message)}\n")
    print(render_schedule(record.schedule))
    print()
    print(render_trace(record.trace, record.marked))
    return EXIT_CLEAN


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report from a summary and failure files."""
    check_distinct({"-o": args.output}, tuple(args.files))
    summary, views, notes = load_inputs(args.files)
    for note in notes:
        print(f"harness: note: {one_line(note)}", file=sys.stderr)
    print(f"html: {write_report(args.output, summary, views, notes)}")
    return EXIT_CLEAN


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge shard or host summaries into one; the exit code is the merged campaign's."""
    check_distinct({"--json": args.json, "--junit": args.junit}, tuple(args.summaries))
    for option, path in (("--json", args.json), ("--junit", args.junit)):
        if path is not None:
            check_writable(option, path)
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
    if merged["error"] is not None:
        print(f"\nerror: {one_line(str(merged['error']))}")
    clean = "no violations" if merged["error"] is None else "no violation found before the error"
    verdict = f"{count} failure{'' if count == 1 else 's'}" if count else clean
    print(
        f"\n{verdict}; {counted(merged['examples'], 'example')} in {merged['elapsed_seconds']:.1f}s "
        f"({merged['examples_per_second']:.0f}/s); outcome {merged['outcome']}; stopped by {merged['stopped_by']}"
    )
    if args.json is not None:
        print(f"summary: {write_json(merged, args.json)}")
    if args.junit is not None:
        print(f"junit: {write_atomic(args.junit, junit_from_summary(merged))}")
    return int(merged["exit_code"])


def cmd_list(args: argparse.Namespace) -> int:
    """List the bundled scenarios and the verdict each must give."""
    from scenarios import CATALOG

    if args.json:
        print(json.dumps([{"target": s.target, "expect": s.expect, "description": s.description} for s in CATALOG], indent=2))
    else:
        width = max(len(s.target) for s in CATALOG)
        for s in CATALOG:
            print(f"{s.target:<{width}}  {s.expect:<22}  {s.description}")
    return EXIT_CLEAN


# -- kept for what was written before the CLI was split into modules ------------------------


def main(argv: list[str] | None = None) -> int:
    """``harness.cli.main.main``, still importable from here (scripts and tests written before the split)."""
    from harness.cli.main import main as run

    return run(argv)


def console() -> None:
    """``harness.cli.main.console``: a ``harness`` script installed before the split names
    ``harness.cli.commands:console``, and must keep working until it is reinstalled."""
    from harness.cli.main import console as run

    run()
