"""Throughput, time to detect, shrinking and memory of the harness, measured in one run.

    python benchmarks/bench.py            # everything (several minutes)
    python benchmarks/bench.py --quick    # smaller counts, for a smoke run

Writes ``reports/bench.json`` and prints a table. Every figure that is
compared is measured in the same run on the same machine, as ratios:

1. throughput: examples/s of a harness campaign (generation, fault clock,
   trace, every invariant) against (a) a bare replay of the very same
   schedules on a plain ``task.Clock`` with no checking, the floor any
   harness pays, and (b) a straightforward hand-written Hypothesis test of
   the same subject, for schedules of 10, 50 and 200 operations; by wall
   clock and by CPU time (the steadier of the two on a shared machine);
2. time to detect: for every buggy scenario, the median and worst time and
   number of examples to the first violation over several seeds;
3. shrinking: size of the minimal schedule and time spent shrinking;
4. memory: RSS sampled along a long campaign, to show it stays flat.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer, task

from harness import CampaignConfig, Menu, Schedule, Target, load_target, run_campaign
from harness.search.generate import STRATEGIES
from harness.model.schedule import Cancel, Submit
from scenarios import CATALOG, HARD_MODULES
from scenarios.pools import SemaphorePool

SIZES = {"small": 10, "medium": 50, "large": 200}


# -- throughput ---------------------------------------------------------------


def _pool_target(size: int) -> Target:
    return Target(
        build=lambda clock: SemaphorePool(clock, 2),
        limit=2,
        order="fifo",
        menu=Menu(min_ops=size, max_ops=size, stops=False, jumps=False),
    )


#: Examples/s by CPU time (``time.process_time``) of the last measurement of each kind: on a machine
#: shared with other work, wall-clock rates swing with the load while CPU-time ratios stay put.
CPU_EPS: dict[str, float] = {}


def harness_campaign(size: int, examples: int) -> tuple[float, list[Schedule]]:
    """Examples/s of a real campaign, and the schedules it ran (recorded on the way).

    Like the other two measures, it starts from a collected heap: the section before it leaves
    tens of thousands of cyclic objects (Hypothesis's), and a full collection of them at a random
    point of the campaign (50 ms: a fifth of a medium campaign's time) is no part of its cost.
    """
    seen: list[Schedule] = []
    gc.collect()
    cpu = time.process_time()
    result = run_campaign(
        _pool_target(size),
        "bench:pool",
        CampaignConfig(seed=1, max_examples=examples, regressions=None, report_dir="reports/bench"),
        on_run=lambda schedule, run: seen.append(schedule),
    )
    CPU_EPS["harness"] = result.examples / (time.process_time() - cpu)
    assert not result.findings, "the reference pool must not fail"
    return result.examples / result.elapsed_s, seen


def bare_replay(schedules: list[Schedule]) -> float:
    """Examples/s replaying the same schedules on a plain task.Clock, checking nothing.

    The garbage collector's heap is frozen first: the floor is measured at its
    fastest, not slowed by whatever the campaign before it left in memory.
    """
    gc.collect()
    gc.freeze()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for schedule in schedules:
            _bare_run(schedule)
        CPU_EPS["bare"] = len(schedules) / (time.process_time() - cpu)
        return len(schedules) / (time.perf_counter() - started)
    finally:
        gc.unfreeze()


def _bare_job(clock: task.Clock, spec: Any):
    def job() -> Any:
        if spec.kind == "raise":
            raise ValueError("boom")
        if spec.kind == "value":
            return "value"
        if spec.kind == "immediate":
            return defer.succeed("value")
        d: defer.Deferred[Any] = defer.Deferred(lambda d: call.cancel() if call.active() else None)
        if spec.kind == "hang":
            call = clock.callLater(10**9, lambda: None)
        elif spec.kind == "succeed":
            call = clock.callLater(spec.after_ms / 1000, d.callback, "value")
        else:
            call = clock.callLater(spec.after_ms / 1000, d.errback, ValueError("boom"))
        return d

    return job


def _bare_run(schedule: Schedule) -> None:
    clock = task.Clock()
    pool = SemaphorePool(clock, 2)
    handles: dict[int, defer.Deferred[Any]] = {}
    now = 0.0
    for op in schedule.ops:
        at = op.at_ms / 1000
        if at > now:
            clock.advance(at - now)
            now = at
        if isinstance(op, Submit):
            d = pool.submit(_bare_job(clock, op.spec))
            d.addErrback(lambda f: None)
            handles[op.job] = d
        elif isinstance(op, Cancel) and op.job in handles:
            handles[op.job].cancel()
    for _ in range(10_000):
        pending = [c.getTime() for c in clock.getDelayedCalls() if c.getTime() < 10**8]
        if not pending:
            break
        clock.advance(max(min(pending) - clock.seconds(), 0))


def handwritten_hypothesis(size: int, examples: int) -> float:
    """Examples/s of the test a user would write by hand for the same pool."""
    op = st.tuples(st.integers(0, 50), st.integers(0, 100), st.booleans(), st.booleans())

    @settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(op, min_size=size, max_size=size))
    def test(ops: list[tuple[int, int, bool, bool]]) -> None:
        clock = task.Clock()
        pool = SemaphorePool(clock, 2)
        running = [0]
        peak = [0]

        def make(duration: int, fails: bool):
            def job() -> defer.Deferred[Any]:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
                d: defer.Deferred[Any] = defer.Deferred()
                d.addBoth(lambda r: running.__setitem__(0, running[0] - 1) or r)
                clock.callLater(duration / 100, d.errback if fails else d.callback, ValueError() if fails else 1)
                return d

            return job

        handles = []
        for gap, duration, fails, cancel in ops:
            clock.advance(gap / 100)
            d = pool.submit(make(duration, fails))
            d.addErrback(lambda f: None)
            handles.append(d)
            if cancel and handles:
                handles[len(handles) // 2].cancel()
        clock.advance(1000)
        assert peak[0] <= 2

    gc.collect()  # (from a collected heap, as the other two measures)
    started, cpu = time.perf_counter(), time.process_time()
    test()
    CPU_EPS["handwritten"] = examples / (time.process_time() - cpu)
    return examples / (time.perf_counter() - started)


def throughput(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, size in SIZES.items():
        examples = {"small": 600, "medium": 200, "large": 60}[name] // (4 if quick else 1)
        harness_eps, schedules = harness_campaign(size, examples)
        bare_eps = bare_replay(schedules)
        hand_eps = handwritten_hypothesis(size, examples)
        cpu = dict(CPU_EPS)
        out[name] = {
            "operations": size,
            "examples": examples,
            "harness_eps": round(harness_eps, 1),
            "bare_replay_eps": round(bare_eps, 1),
            "handwritten_eps": round(hand_eps, 1),
            "harness_vs_bare": round(harness_eps / bare_eps, 3),
            "harness_vs_handwritten": round(harness_eps / hand_eps, 3),
            "cpu": {key: round(value, 1) for key, value in cpu.items()},
            "harness_vs_bare_cpu": round(cpu["harness"] / cpu["bare"], 3),
            "harness_vs_handwritten_cpu": round(cpu["harness"] / cpu["handwritten"], 3),
        }
        print(
            f"  {name:<6} ({size:>3} ops): harness {harness_eps:8.1f}/s  bare {bare_eps:8.1f}/s  "
            f"hand-written {hand_eps:8.1f}/s  ->  {harness_eps / bare_eps:.3f}x bare, "
            f"{harness_eps / hand_eps:.2f}x hand-written (CPU time: {cpu['harness'] / cpu['bare']:.3f}x bare, "
            f"{cpu['harness'] / cpu['handwritten']:.2f}x hand-written)",
            flush=True,
        )
    return out


# -- time to detect and shrinking ---------------------------------------------------


def detection(seeds: int, budget_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scenario in CATALOG:
        if scenario.expect == "pass":
            continue
        target = load_target(scenario.target)
        times: list[float] = []
        counts: list[int] = []
        sizes: list[int] = []
        shrink: list[float] = []
        misses = 0
        for seed in range(seeds):
            result = run_campaign(
                target,
                scenario.target,
                CampaignConfig(seed=seed, budget_s=budget_s, regressions=None, report_dir="reports/bench"),
            )
            if not result.findings or not scenario.caught_by(result.findings[0].record.invariant):
                misses += 1
                continue
            finding = result.findings[0]
            times.append(finding.detected_after_s)
            counts.append(finding.examples_to_detect)
            sizes.append(len(finding.record.schedule.ops))
            shrink.append(finding.shrink_s)
        entry = {
            "expect": scenario.expect,
            "seeds": seeds,
            "missed": misses,
            "median_s": round(statistics.median(times), 3) if times else None,
            "worst_s": round(max(times), 3) if times else None,
            "median_examples": statistics.median(counts) if counts else None,
            "worst_examples": max(counts) if counts else None,
            "minimal_ops_median": statistics.median(sizes) if sizes else None,
            "minimal_ops_worst": max(sizes) if sizes else None,
            "shrink_s_median": round(statistics.median(shrink), 3) if shrink else None,
        }
        out[scenario.target] = entry
        print(
            f"  {scenario.target:<48} {scenario.expect:<24} median {entry['median_s']}s worst {entry['worst_s']}s "
            f"examples {entry['median_examples']}/{entry['worst_examples']} ops {entry['minimal_ops_median']}"
            f"/{entry['minimal_ops_worst']} shrink {entry['shrink_s_median']}s missed {misses}",
            flush=True,
        )
    return out


# -- time to detect per search strategy ------------------------------------------------


def strategies(
    seeds: int,
    budget_s: float,
    names: tuple[str, ...] = STRATEGIES,
    max_examples: int | None = None,
    only: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Seconds and examples to the first violation of every buggy scenario, for each search strategy.

    Search seconds only (shrinking excluded): ``Finding.detected_after_s``;
    examples: ``Finding.examples_to_detect`` (the stable measure on a shared
    machine). A seed that finds nothing within ``budget_s`` (or
    ``max_examples``) counts as a miss, with the whole budget spent. Rows are
    marked with their zoo (``hard``: ``scenarios.HARD_MODULES``, else
    ``easy``); ``only`` keeps the scenarios whose target contains one of its
    strings.
    """
    out: dict[str, Any] = {}
    for scenario in CATALOG:
        if scenario.expect == "pass" or (only and not any(part in scenario.target for part in only)):
            continue
        target = load_target(scenario.target)
        hard = scenario.target.partition(":")[0] in HARD_MODULES
        row: dict[str, Any] = {"expect": scenario.expect, "zoo": "hard" if hard else "easy"}
        for name in names:
            times: list[float] = []
            counts: list[int] = []
            misses = 0
            for seed in range(seeds):
                config = CampaignConfig(
                    seed=seed,
                    budget_s=budget_s,
                    max_examples=max_examples,
                    regressions=None,
                    database=None,
                    report_dir="reports/bench",
                    strategy=name,
                )
                result = run_campaign(target, scenario.target, config)
                if not result.findings or not scenario.caught_by(result.findings[0].record.invariant):
                    misses += 1
                    times.append(round(result.elapsed_s, 3))
                    counts.append(result.examples)
                    continue
                times.append(result.findings[0].detected_after_s)
                counts.append(result.findings[0].examples_to_detect)
            row[name] = {
                "median_s": round(statistics.median(times), 3),
                "worst_s": round(max(times), 3),
                "median_examples": statistics.median(counts),
                "worst_examples": max(counts),
                "examples": counts,
                "missed": misses,
            }
        out[scenario.target] = row
        cells = "  ".join(
            f"{name} {row[name]['median_s']}/{row[name]['worst_s']}s ({row[name]['median_examples']}/"
            f"{row[name]['worst_examples']} ex, {row[name]['missed']} missed)"
            for name in names
        )
        print(f"  {scenario.target:<48} {cells}", flush=True)
    return out


def strategies_table(rows: dict[str, Any], names: tuple[str, ...]) -> str:
    """The per-strategy table in Markdown: median/worst examples and seconds, then each zoo's total of medians."""
    head = "| scenario | zoo | " + " | ".join(names) + " |"
    lines = [head, "| --- | --- | " + " | ".join("---" for _ in names) + " |"]
    for target, row in rows.items():
        cells = [
            f"{row[n]['median_examples']:g}/{row[n]['worst_examples']:g} ex, {row[n]['median_s']:.2f}/{row[n]['worst_s']:.2f} s"
            + (f", {row[n]['missed']} missed" if row[n]["missed"] else "")
            for n in names
        ]
        lines.append(f"| `{target.removeprefix('scenarios.')}` | {row['zoo']} | " + " | ".join(cells) + " |")
    for zoo in ("easy", "hard"):
        picked = [row for row in rows.values() if row["zoo"] == zoo]
        if not picked:
            continue
        cells = [
            f"{sum(r[n]['median_examples'] for r in picked):g} ex, {sum(r[n]['median_s'] for r in picked):.2f} s"
            for n in names
        ]
        lines.append(f"| **sum of medians, {zoo} zoo** ({len(picked)}) | {zoo} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- memory -------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(examples: int) -> dict[str, Any]:
    samples: list[tuple[int, float]] = []
    every = max(examples // 20, 1)

    def sample(result) -> None:
        if result.examples % every == 0:
            samples.append((result.examples, round(_rss_mb(), 1)))

    target = load_target("scenarios.pools:semaphore_pool")
    run_campaign(
        target,
        "scenarios.pools:semaphore_pool",
        CampaignConfig(seed=7, max_examples=examples, regressions=None, report_dir="reports/bench"),
        on_example=sample,
    )
    warm = [rss for n, rss in samples if n >= examples // 5]
    growth = (warm[-1] - warm[0]) if len(warm) > 1 else 0.0
    print(f"  {examples} examples: RSS after warm-up {warm[0] if warm else '?'} -> {warm[-1] if warm else '?'} MB", flush=True)
    return {"examples": examples, "samples": samples, "growth_after_warmup_mb": round(growth, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run, not a measurement")
    parser.add_argument(
        "--sections", default="throughput,detect,strategies,memory", help="comma-separated subset"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per buggy scenario for time to detect")
    parser.add_argument("--memory-examples", type=int, default=100_000, help="length of the memory campaign")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="strategies compared (--sections strategies)")
    parser.add_argument("--strategy-seeds", type=int, default=10, help="seeds per scenario and strategy")
    parser.add_argument("--max-examples", type=int, default=None, help="cap per campaign (--sections strategies)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per campaign (--sections strategies)")
    parser.add_argument("--only", default="", help="comma-separated target substrings (--sections strategies)")
    parser.add_argument("--out", default="reports/bench.json")
    args = parser.parse_args(argv)
    sections = set(args.sections.split(","))
    report: dict[str, Any] = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
        }
    }
    if "throughput" in sections:
        print("throughput (examples per second; same schedules, same run):")
        report["throughput"] = throughput(args.quick)
    if "detect" in sections:
        print("time to detect and shrink, per buggy scenario:")
        report["detect"] = detection(2 if args.quick else args.seeds, 30.0)
    if "strategies" in sections:
        print("time to detect per search strategy (median/worst search seconds, examples):")
        names = tuple(args.strategies.split(","))
        unknown = set(names) - set(STRATEGIES)
        if unknown:
            parser.error(f"unknown strategy {', '.join(sorted(unknown))}; choose among {', '.join(STRATEGIES)}")
        only = tuple(part for part in args.only.split(",") if part)
        rows = strategies(
            2 if args.quick else args.strategy_seeds, 10.0 if args.quick else args.budget, names, args.max_examples, only
        )
        report["strategies"] = rows
        print(strategies_table(rows, names))
    if "memory" in sections:
        print("memory over a long campaign:")
        report["memory"] = memory(2_000 if args.quick else args.memory_examples)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
