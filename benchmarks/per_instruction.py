"""CPU time per instruction of the bare replay and of the harness's parts, on the same medium schedules.

    python benchmarks/per_instruction.py                       # CPU time per example of each block
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=starmap_next \\
        --toggle-collect=functools_reduce --toggle-collect=methodcaller_call \\
        --toggle-collect=calliter_iternext python benchmarks/per_instruction.py --repeats 1
    callgrind_annotate --inclusive=yes callgrind.out.<pid> | grep -E 'starmap_next|functools_reduce|methodcaller_call|calliter_iternext'

``bench.py`` compares CPU time; the rounds of issue 18 measured instructions.
This runs four blocks over the schedules of one of ``bench.py``'s medium
campaigns, each inside a C function nothing else in them calls, so that under
callgrind the function's inclusive cost is the block's instructions (with a
few thousand for the trampoline), and natively each block's CPU time is the
best of ``--repeats``:

- the bare replay (``bench._bare_run``, heap frozen, as ``bench.py``): ``itertools.starmap``;
- the runs alone (``run_schedule`` in a ``RunSession``): ``functools.reduce``;
- the runs each checked as it ends (``check``): ``operator.methodcaller``;
- a whole campaign of as many examples (``bench.harness_campaign``'s): ``iter(callable, sentinel)``.

Divide each block's time by its instructions (``docs/benchmarks.md``, "Ninth
round"): the difference between the instruction ratio and ``bench.py``'s CPU
ratio is in how fast each part's instructions run.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import operator
import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench  # noqa: E402  (benchmarks/bench.py, beside this file)

from harness.invariants import check  # noqa: E402
from harness.run.runner import run_schedule  # noqa: E402
from harness.run.session import RunSession  # noqa: E402

#: The C function each block runs inside (the name callgrind reports), in the order they are printed.
TRAMPOLINES = {
    "bare": "starmap_next",
    "runs": "functools_reduce",
    "runs+check": "methodcaller_call",
    "campaign": "calliter_iternext",
}


def _in_starmap(work: Callable[[], Any]) -> None:
    list(itertools.starmap(work, [()]))


def _in_reduce(work: Callable[[], Any]) -> None:
    functools.reduce(lambda _, __: work(), [0], 0)


class _Box:
    def __init__(self, work: Callable[[], Any]) -> None:
        self.work = work

    def go(self) -> None:
        self.work()


def _in_methodcaller(work: Callable[[], Any]) -> None:
    operator.methodcaller("go")(_Box(work))


def _in_calliter(work: Callable[[], Any]) -> None:
    def once() -> None:
        work()

    next(iter(once, 1))


def _cpu(work: Callable[[], Any]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def blocks(count: int, repeats: int) -> dict[str, list[float]]:
    """CPU seconds of each block over ``count`` schedules, ``repeats`` times each (alternated)."""
    target = bench._pool_target(50)
    bench.bare_replay(bench.harness_campaign(10, count)[1])  # warm up, as bench.py's small section does
    schedules = bench.harness_campaign(50, count)[1]

    def bare() -> float:
        gc.collect()
        gc.freeze()
        try:
            return _cpu(lambda: _in_starmap(lambda: [bench._bare_run(schedule) for schedule in schedules]))
        finally:
            gc.unfreeze()

    def runs() -> None:
        with RunSession():
            for schedule in schedules:
                run_schedule(target, schedule)

    def runs_checked() -> None:
        with RunSession():
            for schedule in schedules:
                check(run_schedule(target, schedule))

    def campaign() -> None:
        bench.run_campaign(
            target,
            "bench:pool",
            bench.CampaignConfig(seed=1, max_examples=count, regressions=None, report_dir="reports/bench"),
        )

    found: dict[str, list[float]] = {name: [] for name in TRAMPOLINES}
    for _ in range(repeats):
        found["bare"].append(bare())
        for name, work, trampoline in (
            ("runs", runs, _in_reduce),
            ("runs+check", runs_checked, _in_methodcaller),
            ("campaign", campaign, _in_calliter),
        ):
            gc.collect()
            found[name].append(_cpu(lambda: trampoline(work)))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=200, help="medium schedules (a campaign's first ones)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    found = blocks(args.schedules, args.repeats)
    for name, seconds in found.items():
        each = sorted(round(s / args.schedules * 1e6) for s in seconds)
        print(f"{name:<11} ({TRAMPOLINES[name]}): best {min(seconds) / args.schedules * 1e6:7.1f} us an example; all {each}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
