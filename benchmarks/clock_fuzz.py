"""The FaultClock's self-fuzz: millions of random timer operations against a reference model.

    python benchmarks/clock_fuzz.py                       # 1,000,000 operations
    python benchmarks/clock_fuzz.py --ops 5000000 --seed 7

Each operation is applied to a ``FaultClock`` and to ``ReferenceClock`` (a
plain integer simulation sorted by due time and tie-break key), under
random tie-breaks, strides, jitter and wall-clock jumps; see
``harness.run.clock_fuzz``. Prints the operations run, the calls fired, and the
hangs, order differences, early and too-late calls and ``seconds()``
mismatches, every one of which must be 0; exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.run.clock_fuzz import FuzzResult, fuzz_clock  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000, help="timer operations to run (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random operations (default 0)")
    parser.add_argument("--ops-per-clock", type=int, default=2_000, help="driver operations on each fresh clock")
    args = parser.parse_args(argv)
    if args.ops < 1 or args.ops_per_clock < 1:
        parser.error("--ops and --ops-per-clock must be positive")
    started = time.monotonic()
    next_report = [args.ops // 10]

    def progress(result: FuzzResult) -> None:
        if result.ops >= next_report[0]:
            next_report[0] += args.ops // 10
            print(f"  {result.ops:>12,} ops  {result.failures} failures  {time.monotonic() - started:7.1f}s", flush=True)

    result = fuzz_clock(args.ops, args.seed, args.ops_per_clock, progress)
    elapsed = time.monotonic() - started
    print(f"seed                 {args.seed}")
    print(f"timer operations     {result.ops:,}")
    print(f"clocks (policies)    {result.clocks:,}")
    print(f"calls fired          {result.fired:,}")
    print(f"hangs                {result.hangs}")
    print(f"order differences    {result.order_differences}")
    print(f"early calls          {result.early}")
    print(f"too-late calls       {result.too_late}")
    print(f"seconds() mismatches {result.seconds_errors}")
    print(f"elapsed              {elapsed:.1f}s ({result.ops / elapsed:,.0f} ops/s)")
    for problem in result.problems:
        print(f"  {problem}")
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
