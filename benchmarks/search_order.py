"""Fingerprint the schedules whole campaigns run, in order, and what they find, to compare two versions.

    python benchmarks/search_order.py out.json                     # every scenario, seeds 0 and 1, mixed
    python benchmarks/search_order.py out.json --examples 100 --strategies mixed swarm guided pct random
    python benchmarks/search_order.py --compare base.json new.json

``benchmarks/equivalence.py`` holds the runs to the same traces and violations
for the schedules ``Examples`` draws; this holds the campaign loop around them
to the same search: for every scenario of ``scenarios.CATALOG`` (or those named
with ``--only``), each seed and each strategy, it runs a campaign
(``run_campaign``, no database, no corpus, at most ``--examples`` examples,
one failure) and records the digest of every search example's schedule and
trace in the order the campaign ran them (``on_run``), and each finding: the
invariant, its message, the examples before it was first seen, the shrunk
schedule. Speed work on generation and the campaign loop must leave all of
it unchanged (issue 18 items 1 and 5: same seed, same search, same first
failure). Run it with two checkouts (``PYTHONPATH`` pointing at each) and
``--compare`` the files: any difference is printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from typing import Any


def fingerprint(only: list[str] | None, seeds: list[int], strategies: list[str], examples: int) -> dict[str, Any]:
    from harness import load_target
    from harness.errors import HarnessError
    from harness.search.campaign import CampaignConfig, run_campaign
    from scenarios import CATALOG

    out: dict[str, Any] = {}
    names = only or [scenario.target for scenario in CATALOG]
    with tempfile.TemporaryDirectory() as reports:
        for name in names:
            target = load_target(name)
            for strategy in strategies:
                for seed in seeds:
                    digest = hashlib.sha256()

                    def seen(schedule: Any, run: Any, digest: Any = digest) -> None:
                        text = json.dumps(schedule.to_json(), sort_keys=True, separators=(",", ":"))
                        digest.update(text.encode() + run.trace.digest().encode())

                    config = CampaignConfig(
                        seed=seed, max_examples=examples, strategy=strategy, report_dir=reports, regressions=None
                    )
                    try:
                        result = run_campaign(target, name, config, on_run=seen)
                    except HarnessError as exc:
                        out[f"{name} {strategy} {seed}"] = ["error", str(exc), digest.hexdigest()]
                        continue
                    found = [
                        [f.violation.invariant, f.violation.message, f.examples_to_detect,
                         f.record.schedule.to_json(), f.shrunk]
                        for f in result.findings
                    ]
                    out[f"{name} {strategy} {seed}"] = [
                        result.examples, str(result.stopped_by), result.shrink_runs, digest.hexdigest(), found
                    ]
    return out


def compare(base: dict[str, Any], new: dict[str, Any]) -> int:
    differences = 0
    for key in sorted(set(base) | set(new)):
        if base.get(key) != new.get(key):
            print(f"{key}:\n  base {json.dumps(base.get(key))[:400]}\n  new  {json.dumps(new.get(key))[:400]}")
            differences += 1
    found = sum(1 for row in base.values() if row[0] != "error" and row[-1])
    print(f"{len(base)} campaigns ({found} with a finding): {differences} differ")
    return 1 if differences else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="the file to write, or with --compare the two to compare")
    parser.add_argument("--only", nargs="*", help="target strings (default: every scenario of the catalog)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--strategies", nargs="*", default=["mixed"])
    parser.add_argument("--examples", type=int, default=150, help="the example cap of each campaign")
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args(argv)
    if args.compare:
        if len(args.files) != 2:
            parser.error("--compare takes two files")
        with open(args.files[0]) as a, open(args.files[1]) as b:
            return compare(json.load(a), json.load(b))
    result = fingerprint(args.only, args.seeds, args.strategies, args.examples)
    with open(args.files[0], "w") as f:
        json.dump(result, f)
    print(f"{len(result)} campaigns -> {args.files[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
