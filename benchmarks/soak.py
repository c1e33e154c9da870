"""The false-alarm soak: every correct target, every clock fault on, and a count of alarms.

A correct subject must never be reported. This runs a campaign on every
reference scenario that must pass (``harness list``: expect ``pass``, the
third-party test bed included) with tie-breaks, strides, jitter and
wall-clock jumps all on, whatever the target's own menu says, and reports,
per target, the examples run and the alarms raised: each distinct invariant
a campaign broke (shrunk and saved under ``--report-dir``), or the target
error (``nondeterministic``, a hang) that stopped it. The goal (issue 13) is
0 alarms over at least 1,000,000 examples in total:

    python benchmarks/soak.py                                   # 2,000 examples per target
    python benchmarks/soak.py --examples-per-target 25000 --workers 2   # ~1.2M examples in total
    python benchmarks/soak.py --only thirdparty --examples-per-target 500

Prints a table and writes ``reports/soak.json`` (``--out``). Exits 1 when any
target raised an alarm, 0 otherwise. Targets whose extra is not installed
(the Synapse ones without ``pip install -e '.[thirdparty]'``) are listed as
skipped, not run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness import CampaignConfig, HarnessError, INVARIANTS, Menu, load_target, run_workers
from harness.model.schedule import TIE_BREAKS
from scenarios import CATALOG, Scenario
from scenarios.thirdparty import KNOWN_FALSE_ALARMS, available, requires

#: Every clock fault a schedule can hold, at full strength (the ``Menu`` defaults).
ALL_FAULTS = Menu()


@dataclass
class Soaked:
    """One target's soak: examples run, alarms raised, and what was forced on in its menu."""

    target: str
    examples: int = 0
    seconds: float = 0.0
    alarms: list[dict[str, str]] = field(default_factory=list)
    forced_on: list[str] = field(default_factory=list)
    skipped: str = ""
    #: The known false alarm of the harness this target hits today, if any (``KNOWN_FALSE_ALARMS``).
    known: str = ""


def correct_scenarios(only: str = "") -> list[Scenario]:
    """The reference subjects that must pass (the buggy zoo excluded), optionally filtered by a substring."""
    return [s for s in CATALOG if s.expect == "pass" and only in s.target]


def with_all_faults(menu: Menu) -> tuple[Menu, list[str]]:
    """``menu`` with every clock fault switched on; also the names of the ones it had off or narrowed."""
    forced = []
    changes: dict[str, object] = {}
    if not menu.jumps:
        forced.append("jumps")
        changes["jumps"] = True
    for name in ("tie_breaks", "steps_ms", "jitters_ms"):
        wanted = getattr(ALL_FAULTS, name)
        have = getattr(menu, name)
        if not set(wanted) <= set(have):
            forced.append(name)
            changes[name] = tuple(dict.fromkeys((*have, *wanted)))
    return replace(menu, **changes), forced


def soak_one(scenario: Scenario, examples: int, seed: int, workers: int, report_dir: str, timeout_s: float) -> Soaked:
    """Run one campaign on ``scenario`` with every clock fault on; count its alarms."""
    soaked = Soaked(scenario.target, known=KNOWN_FALSE_ALARMS.get(scenario.target, ""))
    if not available(scenario):
        soaked.skipped = f"needs {requires(scenario)} (pip install -e '.[thirdparty]')"
        return soaked
    target = load_target(scenario.target)
    menu, soaked.forced_on = with_all_faults(target.default_menu())
    config = CampaignConfig(
        max_examples=examples,
        seed=seed,
        database=None,
        regressions=None,
        report_dir=report_dir,
        max_failures=len(INVARIANTS),  # search on after an alarm: count every distinct one
        menu=menu,
        example_timeout_s=timeout_s,
    )
    started = time.monotonic()
    try:
        result = run_workers(target, scenario.target, config, workers)
    except HarnessError as exc:
        result = getattr(exc, "result", None)
        soaked.alarms.append({"invariant": type(exc).__name__, "message": str(exc), "file": ""})
    soaked.seconds = round(time.monotonic() - started, 2)
    if result is not None:
        soaked.examples = result.examples
        for finding in result.findings:
            soaked.alarms.append(
                {"invariant": finding.record.invariant, "message": finding.record.message, "file": str(finding.path or "")}
            )
    return soaked


def table(rows: list[Soaked]) -> str:
    width = max(len(r.target) for r in rows)
    lines = [f"{'target':<{width}}  {'examples':>9}  {'seconds':>8}  {'alarms':>6}  notes"]
    for r in rows:
        notes = r.skipped or "; ".join(f"{a['invariant']}: {a['message'][:90]}" for a in r.alarms)
        if r.alarms and r.known:
            notes = "known: " + r.known.split(":")[0] + "; " + notes
        if r.forced_on and not r.skipped:
            notes = (notes + "; " if notes else "") + "forced on: " + ",".join(r.forced_on)
        lines.append(f"{r.target:<{width}}  {r.examples:>9,}  {r.seconds:>8.1f}  {len(r.alarms):>6}  {notes}")
    run = [r for r in rows if not r.skipped]
    total = sum(r.examples for r in run)
    alarms = sum(len(r.alarms) for r in run)
    lines.append(f"{'total':<{width}}  {total:>9,}  {sum(r.seconds for r in run):>8.1f}  {alarms:>6}  "
                 f"{len(run)} targets run, {len(rows) - len(run)} skipped")
    return "\n".join(lines)


def soak(
    examples: int,
    seed: int = 0,
    workers: int = 1,
    only: str = "",
    report_dir: str | None = None,
    timeout_s: float = 10.0,
    progress: bool = False,
) -> list[Soaked]:
    """Soak every correct target; returns one row per target (also usable from tests).

    With ``progress``, a line per target goes to stderr as each campaign ends.
    """
    directory = report_dir or tempfile.mkdtemp(prefix="soak-")
    scenarios = correct_scenarios(only)
    rows = []
    for index, scenario in enumerate(scenarios, 1):
        row = soak_one(scenario, examples, seed, workers, directory, timeout_s)
        rows.append(row)
        if progress:
            status = row.skipped or f"{row.examples:,} examples, {len(row.alarms)} alarms, {row.seconds:.1f}s"
            print(f"soak: {index}/{len(scenarios)} {row.target}: {status}", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples-per-target", type=int, default=2_000, help="examples per target (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="campaign seed of every target (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="processes per campaign (harness fuzz --workers)")
    parser.add_argument("--only", default="", help="only targets whose name contains this")
    parser.add_argument("--report-dir", default="reports/soak", help="where the alarms' failure files go")
    parser.add_argument("--example-timeout", type=float, default=10.0, help="wall-clock limit of one run (s)")
    parser.add_argument("--out", default="reports/soak.json", help="the JSON report")
    args = parser.parse_args(argv)
    if args.examples_per_target < 1:
        parser.error("--examples-per-target must be at least 1")
    logging.disable(logging.CRITICAL)  # Synapse logs every cancelled waiter through the stdlib
    started = time.monotonic()
    rows = soak(
        args.examples_per_target, args.seed, args.workers, args.only, args.report_dir, args.example_timeout, progress=True
    )
    print(table(rows))
    run = [r for r in rows if not r.skipped]
    report = {
        "examples_per_target": args.examples_per_target,
        "seed": args.seed,
        "workers": args.workers,
        "faults": {"tie_breaks": list(TIE_BREAKS), "steps_ms": list(ALL_FAULTS.steps_ms),
                   "jitters_ms": list(ALL_FAULTS.jitters_ms), "jumps": True},
        "total_examples": sum(r.examples for r in run),
        "total_alarms": sum(len(r.alarms) for r in run),
        "known_false_alarms": sum(len(r.alarms) for r in run if r.known),
        "elapsed_seconds": round(time.monotonic() - started, 1),
        "targets": [asdict(r) for r in rows],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {out}")
    return 1 if report["total_alarms"] else 0


if __name__ == "__main__":
    sys.exit(main())
