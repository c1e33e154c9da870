"""Fingerprint what the harness does with many generated schedules, to compare two versions.

    python benchmarks/equivalence.py out.json                    # every scenario, 150 schedules each
    python benchmarks/equivalence.py out.json --per-target 30    # quicker
    python benchmarks/equivalence.py --compare base.json new.json

A speed-up must not change behaviour: for every scenario of ``scenarios.CATALOG``
it draws schedules with the default search (seed 11), judges each one and
records the trace digest and every violation (invariant, message, events,
jobs, time), or the target error. Run it with two checkouts (``PYTHONPATH``
pointing at each) and ``--compare`` the files: any difference is printed and
the exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any


def fingerprint(per_target: int, seed: int) -> dict[str, list[Any]]:
    from harness import load_target
    from harness.errors import TargetError
    from harness.search.generate import Examples
    from harness.search.verdict import judge
    from scenarios import CATALOG

    out: dict[str, list[Any]] = {}
    for scenario in CATALOG:
        target = load_target(scenario.target)
        examples = Examples(target.default_menu(), seed)
        rows: list[Any] = []
        for _ in range(per_target):
            schedule = next(examples)
            try:
                run, violations = judge(target, schedule)
            except TargetError as exc:
                rows.append(["target error", str(exc)])
                continue
            examples.feedback(run)
            rows.append(
                [run.trace.digest(), [[v.invariant, v.message, list(v.events), list(v.jobs), v.t_us] for v in violations]]
            )
        out[scenario.target] = rows
    return out


def compare(base: dict[str, list[Any]], new: dict[str, list[Any]]) -> int:
    differences = 0
    for name in sorted(set(base) | set(new)):
        left, right = base.get(name), new.get(name)
        if left == right:
            continue
        if left is None or right is None:
            print(f"{name}: only in {'new' if left is None else 'base'}")
            differences += 1
            continue
        for index, (a, b) in enumerate(zip(left, right)):
            if a != b:
                print(f"{name}: schedule {index} differs:\n  base {a}\n  new  {b}")
                differences += 1
                break
        else:
            print(f"{name}: {len(left)} schedules against {len(right)}")
            differences += 1
    schedules = sum(len(rows) for rows in base.values())
    print(f"{len(base)} scenarios, {schedules} schedules: {differences} differ")
    return 1 if differences else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="the file to write, or with --compare the two to compare")
    parser.add_argument("--per-target", type=int, default=150)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args(argv)
    if args.compare:
        if len(args.files) != 2:
            parser.error("--compare takes two files")
        with open(args.files[0]) as a, open(args.files[1]) as b:
            return compare(json.load(a), json.load(b))
    try:  # as a campaign runs them: the guard and watchdog installed once (versions that have sessions)
        from harness.run.session import RunSession
    except ImportError:
        RunSession = contextlib.nullcontext  # type: ignore[assignment,misc]
    with RunSession():
        result = fingerprint(args.per_target, args.seed)
    with open(args.files[0], "w") as f:
        json.dump(result, f)
    print(f"{len(result)} scenarios, {sum(len(r) for r in result.values())} schedules -> {args.files[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
