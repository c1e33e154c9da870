"""Does coverage feedback help the guided search? Time to detect and throughput, with and without it.

    python benchmarks/coverage_feedback.py                   # the hard zoo, 10 seeds, guided (many minutes)
    python benchmarks/coverage_feedback.py --seeds 2 --budget 10 --strategy mixed

For every buggy scenario of the hard zoo (``tests/test_scenarios_hard.py``'s
``ZOO``), each seed runs one campaign (one process, ``--workers 1``) with
coverage feedback off and one with it on, and records the examples and
search seconds to the first violation (a miss counts as the budget). Then
the throughput cost: examples per second of the same campaign on each
correct twin, off and on. Writes ``reports/coverage_feedback.json`` and
prints the tables (figures in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness import CampaignConfig, load_target, run_campaign  # noqa: E402
from harness.search import coverage_feedback  # noqa: E402
from test_scenarios_hard import ZOO  # noqa: E402  (the hard zoo is the one that test file checks)


def _campaign(spec: str, seed: int, strategy: str, on: bool, **limits: Any) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        config = CampaignConfig(
            seed=seed, report_dir=folder, strategy=strategy, database=None, coverage_feedback=on, **limits
        )
        return run_campaign(load_target(spec), spec, config)


def detection(specs: list[str], seeds: int, budget_s: float, strategy: str) -> list[dict[str, Any]]:
    rows = []
    for spec in specs:
        for on in (False, True):
            examples, seconds, missed = [], [], 0
            for seed in range(1, seeds + 1):
                result = _campaign(spec, seed, strategy, on, budget_s=budget_s)
                if result.findings:
                    examples.append(result.findings[0].examples_to_detect)
                    seconds.append(result.findings[0].detected_after_s)
                else:
                    missed += 1
                    examples.append(result.examples)
                    seconds.append(budget_s)
            row = {
                "scenario": spec,
                "coverage": on,
                "median_s": statistics.median(seconds),
                "worst_s": max(seconds),
                "median_examples": statistics.median(examples),
                "worst_examples": max(examples),
                "missed": missed,
                "examples": examples,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def throughput(specs: list[str], examples: int, strategy: str) -> list[dict[str, Any]]:
    rows = []
    for spec in specs:
        rates = {}
        for on in (False, True, False, True):  # twice each, interleaved, so load drifts hit both
            started = time.perf_counter()
            _campaign(spec, 7, strategy, on, max_examples=examples)
            rates.setdefault(on, []).append(examples / (time.perf_counter() - started))
        row = {"scenario": spec, "off_per_s": max(rates[False]), "on_per_s": max(rates[True])}
        row["ratio"] = row["on_per_s"] / row["off_per_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per campaign before it counts as missed")
    parser.add_argument("--strategy", default="guided")
    parser.add_argument("--examples", type=int, default=3_000, help="examples per throughput campaign")
    parser.add_argument("--only", default="", help="only scenarios whose target contains this")
    parser.add_argument("--sections", default="detection,throughput")
    parser.add_argument("--quiet", type=int, default=coverage_feedback.QUIET, help="watched examples before thinning out")
    parser.add_argument("--every", type=int, default=coverage_feedback.EVERY, help="then one example in this many")
    parser.add_argument("--out", default="reports/coverage_feedback.json")
    args = parser.parse_args(argv)
    coverage_feedback.QUIET, coverage_feedback.EVERY = args.quiet, args.every
    zoo = [s for s in ZOO if args.only in s.target]
    out: dict[str, Any] = {
        "strategy": args.strategy,
        "seeds": args.seeds,
        "budget_s": args.budget,
        "quiet": args.quiet,
        "every": args.every,
    }
    if "detection" in args.sections:
        out["detection"] = detection([s.target for s in zoo if s.expect != "pass"], args.seeds, args.budget, args.strategy)
    if "throughput" in args.sections:
        out["throughput"] = throughput([s.target for s in zoo if s.expect == "pass"], args.examples, args.strategy)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    for row in out.get("detection", []):
        print(
            f"| `{row['scenario'].removeprefix('scenarios.')}` | {'on' if row['coverage'] else 'off'} | "
            f"{row['median_s']:.2f} s | {row['worst_s']:.2f} s | {row['median_examples']:,.0f} | "
            f"{row['worst_examples']:,} | {row['missed']} |"
        )
    for row in out.get("throughput", []):
        print(
            f"| `{row['scenario'].removeprefix('scenarios.')}` | {row['off_per_s']:,.0f}/s | "
            f"{row['on_per_s']:,.0f}/s | {row['ratio']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
