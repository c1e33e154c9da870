"""Where an example's time goes: each part timed alone, in units of the bare replay of the same schedules.

    python benchmarks/parts.py                  # medium schedules (50 operations), 300 of them
    python benchmarks/parts.py --ops 200 --schedules 100
    PYTHONPATH=/path/to/other/checkout python benchmarks/parts.py   # the same for another version
    python benchmarks/parts.py --cold-check     # the check judged as each run ends against warm

Generation (decoding seeded bytes into schedules), the runs, the invariants
(the facts index, the diagnosis and every check) and a whole campaign over
the same number of examples, each by CPU time (``time.process_time``, the
best of ``--repeats``), divided by the bare ``task.Clock`` replay of
``bench.py``. On a shared machine these ratios stay within a few percent
where the rates themselves swing with the load; alternate two versions and
compare the ratios (``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench  # noqa: E402  (benchmarks/bench.py, beside this file)

from harness.invariants import check  # noqa: E402
from harness.run.runner import Run, run_schedule  # noqa: E402
from harness.search.generate import Examples  # noqa: E402

try:
    from harness.run.session import RunSession  # noqa: E402
except ImportError:  # a version from before run sessions
    from contextlib import nullcontext as RunSession  # type: ignore[assignment]  # noqa: E402


def _best(work: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def parts(
    ops: int, count: int, repeats: int, campaign_schedules: bool = False, long_campaign: int = 0
) -> dict[str, float]:
    target = bench._pool_target(ops)
    menu = target.default_menu()

    def generate() -> list:
        examples = Examples(menu, 1)
        return [next(examples) for _ in range(count)]

    # The campaign learns from its runs (the guided pool), so its schedules are not quite generate()'s:
    # with campaign_schedules the bare replay, the runs and the invariants are timed on its own.
    schedules = bench.harness_campaign(ops, count)[1] if campaign_schedules else generate()
    gc.collect()
    gc.freeze()
    try:
        bare = _best(lambda: [bench._bare_run(schedule) for schedule in schedules], repeats)
    finally:
        gc.unfreeze()
    runs: list[Run] = []

    def play() -> None:
        with RunSession():  # as a campaign runs them (a version without sessions: each run alone)
            runs[:] = [run_schedule(target, schedule) for schedule in schedules]

    def judge() -> None:
        for run in runs:  # forget what an earlier pass worked out, so each pass does all of it
            run.diagnosis = None
            run.__dict__.pop("_facts", None)
            run.__dict__.pop("_facts_length", None)
            check(run)

    def verdicts() -> None:  # each run judged as soon as it ends and then dropped, as a campaign does
        for schedule in schedules:
            check(run_schedule(target, schedule))

    found = {
        "bare_ms": bare / count * 1000,
        "generation": _best(generate, repeats) / bare,
        "run": _best(play, repeats) / bare,
        "invariants": _best(judge, repeats) / bare,
        "campaign": _best(lambda: bench.harness_campaign(ops, count), repeats) / bare,
    }
    if campaign_schedules:
        found["run_and_check"] = _best(verdicts, repeats) / bare
    if long_campaign:
        # Once, not the best of several: a campaign this long pays the garbage sweeps the short ones may miss.
        found["long_campaign"] = _best(lambda: bench.harness_campaign(ops, long_campaign), 1) / long_campaign / (bare / count)
    return found


def cold_check(ops: int, count: int, repeats: int) -> dict[str, float]:
    """The check's two steps timed per run, each run judged as it ends (as a campaign does) and all runs judged
    after all have run (the check's code warm), best of ``repeats``, in microseconds an example: the facts pass
    (``facts_of``) and the rest (the diagnosis and every invariant). Where the second is much dearer interleaved,
    what costs is code run once an example (``docs/benchmarks.md``, "Thirteenth round")."""
    from harness.run.facts import facts_of

    target = bench._pool_target(ops)
    schedules = bench.harness_campaign(ops, count)[1]
    clock = time.process_time
    best = {"facts_interleaved": float("inf"), "rest_interleaved": float("inf"), "facts_warm": float("inf"), "rest_warm": float("inf")}
    for _ in range(repeats):
        for how in ("interleaved", "warm"):
            gc.collect()
            spent = [0.0, 0.0]
            with RunSession():
                runs = [run_schedule(target, schedule) for schedule in schedules] if how == "warm" else []
                for index, schedule in enumerate(schedules):
                    run = runs[index] if runs else run_schedule(target, schedule)
                    started = clock()
                    facts_of(run)
                    middle = clock()
                    check(run)
                    spent[0] += middle - started
                    spent[1] += clock() - middle
            best[f"facts_{how}"] = min(best[f"facts_{how}"], spent[0] / count * 1e6)
            best[f"rest_{how}"] = min(best[f"rest_{how}"], spent[1] / count * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50, help="operations per schedule")
    parser.add_argument("--schedules", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--campaign-schedules",
        action="store_true",
        help="time the bare replay, runs and invariants on the schedules the campaign ran, and each run "
        "checked as soon as it ends (run and check), as the campaign does",
    )
    parser.add_argument(
        "--long-campaign",
        type=int,
        default=0,
        metavar="N",
        help="also time one campaign of N examples (once: the full collections every few thousand runs, which "
        "the best of several short campaigns leaves out, are in it)",
    )
    parser.add_argument(
        "--cold-check",
        action="store_true",
        help="only time the facts pass and the rest of the check, each run judged as it ends and all runs judged "
        "after all have run (us an example)",
    )
    args = parser.parse_args(argv)
    if args.cold_check:
        cold = cold_check(args.ops, args.schedules, args.repeats)
        print(
            f"facts pass {cold['facts_interleaved']:.1f} us an example judged as it ends, {cold['facts_warm']:.1f} after all "
            f"runs; the rest of the check {cold['rest_interleaved']:.1f} and {cold['rest_warm']:.1f} "
            f"({cold['rest_interleaved'] / cold['rest_warm']:.2f}x)"
        )
        return 0
    found = parts(args.ops, args.schedules, args.repeats, args.campaign_schedules, args.long_campaign)
    both = f", run and check {found['run_and_check']:.2f}x" if "run_and_check" in found else ""
    if "long_campaign" in found:
        both += f", a campaign of {args.long_campaign} examples {found['long_campaign']:.2f}x"
    print(
        f"bare replay {found['bare_ms']:.3f} ms an example; in units of it: generation {found['generation']:.2f}x, "
        f"run {found['run']:.2f}x, invariants {found['invariants']:.2f}x{both}, whole campaign {found['campaign']:.2f}x "
        f"(harness / bare {1 / found['campaign']:.3f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
