"""Throughput of ``harness fuzz --workers``: examples per second with 1 and with N workers, same run.

Runs the same fixed-seed campaign on a correct scenario (no failure, so every
run spends its whole wall-clock budget fuzzing) with ``--workers 1`` and
``--workers N``, alternating which goes first in each round so a change in
the machine's load hits both alike, and reports examples per second for
each and their ratio. Rates come from each campaign's own JSON summary:
examples over the campaign's wall-clock time, worker start-up included.
The load average and Linux's CPU pressure are recorded before every run, and
the CPU time each campaign got (``cores_used``: CPU seconds over wall-clock
seconds, 2.0 at best with two workers on two idle cores): on
a shared machine other work takes cores from the workers, and the ratio
says so. (Linux shares the CPUs fairly between sessions, not processes: while
other sessions keep the cores busy, a second worker mostly splits this
session's share with the first, and the ratio drops towards 1.)

    python benchmarks/workers.py                       # 3 rounds of 20 s each way
    python benchmarks/workers.py --budget 10 --rounds 1 --workers 4
    python benchmarks/workers.py --quiet 90           # on a shared machine: wait for idle CPUs first

Writes ``reports/bench-workers.json`` (``--out``). With ``--require R``, exits 1
when the median ratio is below R.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def campaign(target: str, seed: int, budget: float, workers: int) -> dict:
    """One ``harness fuzz`` process; returns what its summary says about throughput."""
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as scratch:
        summary_path = Path(scratch) / "summary.json"
        argv = [
            sys.executable, "-m", "harness", "fuzz", target,
            "--seed", str(seed), "--budget", str(budget), "--workers", str(workers),
            "--no-database", "--no-regressions", "--report-dir", scratch, "--json", str(summary_path),
        ]
        load = os.getloadavg()[0]
        pressure = cpu_pressure()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=budget * 3 + 120)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"benchmark: {' '.join(argv[2:])} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        summary = json.loads(summary_path.read_text())
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "workers": workers,
        "examples": summary["examples"],
        "elapsed_seconds": summary["elapsed_seconds"],
        "examples_per_second": summary["examples"] / summary["elapsed_seconds"],
        # CPU time of the harness process and its workers (imports included): how many cores they got.
        "cpu_seconds": round(cpu, 2),
        "cores_used": round(cpu / summary["elapsed_seconds"], 2),
        "per_worker": [w["examples"] for w in summary["workers"]],
        "stopped_by": [w["stopped_by"] for w in summary["workers"]],
        "load_before": round(load, 2),
        "cpu_pressure_before": pressure,
    }


def wait_for_quiet(idle_percent: float, max_wait: float) -> float | None:
    """Wait until the CPUs were at least ``idle_percent`` idle over 5 s (or ``max_wait`` passed).

    Returns the idle share last measured (None where /proc/stat is missing).
    """
    deadline = time.monotonic() + max_wait
    while True:
        idle = cpu_idle(5.0)
        if idle is None or idle >= idle_percent or time.monotonic() >= deadline:
            return idle


def cpu_idle(seconds: float) -> float | None:
    """The percentage of all CPUs' time spent idle over the next ``seconds``."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return round(100.0 * (idle1 - idle0) / max(total1 - total0, 1), 1)


def cpu_pressure() -> float | None:
    """Linux's CPU pressure (share of the last 10 s in which some runnable task waited for a CPU), if known."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    fields = dict(part.split("=") for part in first.split()[1:])
    return float(fields["avg10"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="scenarios.pools:semaphore_pool")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per campaign (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of campaigns (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="workers to compare with one (default 2)")
    parser.add_argument("--out", default="reports/bench-workers.json")
    parser.add_argument("--require", type=float, help="exit 1 if the median ratio is below this")
    parser.add_argument(
        "--quiet",
        type=float,
        metavar="PERCENT",
        help="before each campaign, wait (up to --max-wait seconds) until the CPUs were at least PERCENT idle "
        "over 5 s: on a shared machine, start only when nobody else is computing",
    )
    parser.add_argument("--max-wait", type=float, default=600.0)
    args = parser.parse_args(argv)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.target}, seed {args.seed}, {args.budget:g}s per campaign, {cores} cores, "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rounds = []
    for index in range(args.rounds):
        order = (1, args.workers) if index % 2 == 0 else (args.workers, 1)
        runs = {}
        for n in order:
            idle = wait_for_quiet(args.quiet, args.max_wait) if args.quiet is not None else None
            runs[n] = campaign(args.target, args.seed, args.budget, n)
            runs[n]["idle_before"] = idle
        one, many = runs[1], runs[args.workers]
        ratio = many["examples_per_second"] / one["examples_per_second"]
        rounds.append({"one": one, "many": many, "ratio": round(ratio, 3)})
        print(
            f"round {index + 1}: 1 worker {one['examples_per_second']:.1f}/s "
            f"(load {one['load_before']}, cpu pressure {one['cpu_pressure_before']}), "
            f"{args.workers} workers {many['examples_per_second']:.1f}/s "
            f"(load {many['load_before']}, cpu pressure {many['cpu_pressure_before']}, "
            f"per worker {many['per_worker']}): {ratio:.2f}x; cores used {one['cores_used']} and {many['cores_used']}",
            flush=True,
        )
    ratios = [r["ratio"] for r in rounds]
    median = statistics.median(ratios)
    result = {
        "benchmark": "workers",
        "target": args.target,
        "seed": args.seed,
        "budget_seconds": args.budget,
        "workers": args.workers,
        "cores": cores,
        "python": sys.version.split()[0],
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "rounds": rounds,
        "ratios": ratios,
        "median_ratio": median,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"median {median:.2f}x over {len(ratios)} rounds ({', '.join(f'{r:.2f}' for r in ratios)}); written to {out}")
    if args.require is not None and median < args.require:
        print(f"below the required {args.require:g}x", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
