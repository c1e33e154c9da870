"""Merging JSON summaries: the shards of one campaign (or campaigns on several hosts) as one result.

``harness merge A.json B.json ...`` reads summaries written by ``harness fuzz
--json`` and writes one summary of the same format, from which ``--junit``
builds the usual report. The rules:

- every summary must be of the same target; the shards among them must be
  shards of one campaign (the same seed and shard count, each index once).
  A missing shard is noted, not an error: a cancelled CI job still lets the
  others be merged.
- ``examples`` and ``shrink_runs`` add up; ``elapsed_seconds`` is the
  longest (the jobs ran side by side), so ``examples_per_second`` is the
  throughput of all of them together.
- ``failures`` are all the inputs' failures in the order given, the same
  failure file of the same invariant once (a broken regression shows up in
  every shard); ``regressions.files`` likewise, by file.
- ``outcome`` is ``failed`` if anything failed, else ``error`` if a worker
  crashed anywhere, else ``interrupted`` if any input was, else ``clean``;
  ``exit_code`` follows it (1, 2, 130, 0). ``stopped_by`` is the most
  telling input's (interrupt, crash, max-failures, budget, max-examples,
  exhausted).
- ``workers`` lists every input's workers, renumbered in order; ``merged``
  lists the inputs: file, shard, seed, outcome, how far each got.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

from harness.errors import UsageError
from harness.search.stop_reasons import StopReason
from harness.store.failure_file import versions
from harness.output import summary as summary_file
from harness.output.summary import EXIT_CODES, FORMAT, VERSION, CampaignOutcome

REQUIRED = summary_file.REQUIRED

#: Missing shards named in a note; the rest are counted.
MAX_NAMED = 10

#: ``stopped_by`` of a merge: the first of these any input gives.
_REASON_ORDER = (StopReason.INTERRUPT, StopReason.ERROR, StopReason.CRASH, StopReason.MAX_FAILURES, StopReason.BUDGET, StopReason.MAX_EXAMPLES, StopReason.EXHAUSTED)


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read one summary; anything but a summary this harness can read is a one-line ``UsageError``."""
    return summary_file.load(path)


def merge_files(paths: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Load and merge the summaries at ``paths``; returns the merged summary and notes for the user."""
    return merge([(path, load(path)) for path in paths])


def merge(inputs: Sequence[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], list[str]]:
    """Merge ``(name, summary)`` pairs as the module docstring says; returns the summary and notes."""
    if not inputs:
        raise UsageError("merge needs at least one summary")
    notes: list[str] = []
    _check_distinct(inputs)
    target = _common_target(inputs)
    shard_count = _check_shards(inputs, notes)
    summaries = [summary for _, summary in inputs]
    first = summaries[0]

    failures = _unique(
        (failure for s in summaries for failure in s["failures"]), key=lambda f: (f["invariant"], f["file"])
    )
    files = _unique((f for s in summaries for f in s["regressions"]["files"]), key=lambda f: f["file"])
    examples = sum(s["examples"] for s in summaries)
    elapsed = max(s["elapsed_seconds"] for s in summaries)
    workers = [dict(w) for s in summaries for w in s.get("workers") or ()]
    for index, worker in enumerate(workers):
        worker["index"] = index
    outcome = _outcome(failures, summaries)
    seeds = {s["seed"] for s in summaries}
    reasons = {s["stopped_by"] for s in summaries}
    databases = sorted({s["database"] for s in summaries if s["database"] is not None})
    merged: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "harness": versions()["harness"],
        "target": target,
        "seed": first["seed"] if len(seeds) == 1 else min(seeds),
        "outcome": outcome,
        "exit_code": EXIT_CODES[outcome],
        "stopped_by": next((r for r in _REASON_ORDER if r in reasons), first["stopped_by"]),
        "examples": examples,
        "shrink_runs": sum(s["shrink_runs"] for s in summaries),
        "elapsed_seconds": round(elapsed, 3),
        "examples_per_second": round(examples / elapsed, 1) if elapsed > 0 else 0.0,
        "limits": _limits(summaries, sharded=shard_count is not None),
        "database": ", ".join(databases) if databases else None,
        "regressions": {
            "directory": next((s["regressions"]["directory"] for s in summaries if s["regressions"]["directory"]), None),
            "replayed": len(files),
            "failing": sum(1 for f in files if f["status"] == "fails"),
            "fixed": sum(1 for f in files if f["status"] != "fails"),
            "files": files,
        },
        "failures": failures,
        "error": next((s.get("error") for s in summaries if s.get("error")), None),
        "exercised": _exercised(summaries),
        # Coverage is measured per process; the files of shards cannot be added up from summaries.
        "coverage": None,
        "workers": workers,
        "shard": None,
        "merged": [
            {
                "file": name,
                "shard": f"{s['shard']['index']}/{s['shard']['count']}" if s.get("shard") else None,
                "seed": s["seed"],
                "outcome": s["outcome"],
                "stopped_by": s["stopped_by"],
                "examples": s["examples"],
                "elapsed_seconds": s["elapsed_seconds"],
            }
            for name, s in inputs
        ],
    }
    if len(seeds) > 1:
        notes.append(f"the summaries have different seeds ({', '.join(str(x) for x in sorted(seeds))}); 'seed' is the lowest")
    checked = [s["invariants"] for s in summaries if "invariants" in s]
    if checked:
        merged["invariants"] = _unique((name for names in checked for name in names), key=lambda name: name)
    return merged, notes


def _check_distinct(inputs: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Refuse the same summary given twice (by another name too): its examples would be counted twice."""
    seen: dict[str, str] = {}
    for name, summary in inputs:
        key = json.dumps(summary, sort_keys=True)
        if key in seen:
            raise UsageError(f"{name} and {seen[key]} are the same summary; give each campaign or shard once")
        seen[key] = name


def _common_target(inputs: Sequence[tuple[str, dict[str, Any]]]) -> str:
    name, first = inputs[0]
    for other_name, other in inputs[1:]:
        if other["target"] != first["target"]:
            raise UsageError(
                f"cannot merge summaries of different targets: {first['target']} ({name}) "
                f"and {other['target']} ({other_name})"
            )
    return first["target"]


def _check_shards(inputs: Sequence[tuple[str, dict[str, Any]]], notes: list[str]) -> int | None:
    """Check the sharded inputs are shards of one campaign, each once; note missing ones. Returns N or None."""
    shards = [(name, s) for name, s in inputs if s.get("shard")]
    if not shards:
        return None
    name, first = shards[0]
    count, seed = first["shard"]["count"], first["seed"]
    seen: dict[int, str] = {}
    for other_name, other in shards:
        shard = other["shard"]
        label = f"{shard['index']}/{shard['count']}"
        if not 1 <= shard["index"] <= shard["count"]:
            raise UsageError(f"{other_name} says it is shard {label}, which cannot be: a shard I/N has 1 <= I <= N")
        if shard["count"] != count or other["seed"] != seed:
            raise UsageError(
                f"{other_name} (shard {label}, seed {other['seed']}) and {name} "
                f"(shard {first['shard']['index']}/{count}, seed {seed}) are not shards of one campaign: "
                "shards need the same --seed and the same N"
            )
        if shard["index"] in seen:
            raise UsageError(f"shard {label} is given twice: {seen[shard['index']]} and {other_name}")
        seen[shard["index"]] = other_name
    absent = count - len(seen)
    if absent:
        # Named up to a few: a count of 10**12 must not build 10**12 labels.
        named = list(itertools.islice((f"{i}/{count}" for i in range(1, count + 1) if i not in seen), MAX_NAMED))
        more = f" and {absent - len(named):,} more" if absent > len(named) else ""
        notes.append(f"shard{'s' if absent > 1 else ''} {', '.join(named)}{more} missing: merged {len(seen)} of {count}")
    return count


def _outcome(failures: list[dict[str, Any]], summaries: list[dict[str, Any]]) -> CampaignOutcome:
    outcomes = {s["outcome"] for s in summaries}
    if failures or CampaignOutcome.FAILED in outcomes:
        return CampaignOutcome.FAILED
    for outcome in (CampaignOutcome.ERROR, CampaignOutcome.INTERRUPTED):
        if outcome in outcomes:
            return outcome
    return CampaignOutcome.CLEAN


def _limits(summaries: list[dict[str, Any]], sharded: bool) -> dict[str, Any]:
    """Shards share their campaign's limits; separate campaigns add their example budgets up."""
    first = summaries[0]["limits"]
    if sharded:
        return dict(first)
    totals = [s["limits"]["max_examples"] for s in summaries]
    budgets = [s["limits"]["budget_seconds"] for s in summaries if s["limits"]["budget_seconds"] is not None]
    return {
        "max_examples": sum(totals) if None not in totals else None,
        "budget_seconds": max(budgets) if budgets else None,
        "max_failures": max(s["limits"]["max_failures"] for s in summaries),
    }


def _unique(items: Iterable[Any], key: Any) -> list[Any]:
    seen: set[Any] = set()
    kept = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            kept.append(item)
    return kept


def _exercised(summaries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The shards' exercise counts added up, or None unless every shard gathered them."""
    parts = [s.get("exercised") for s in summaries]
    if not parts or any(part is None for part in parts):
        return None
    total: dict[str, Any] = {"examples": 0, "invariants": {}, "faults": {}}
    for part in parts:
        total["examples"] += part["examples"]
        for key in ("invariants", "faults"):
            for name, count in part[key].items():
                total[key][name] = total[key].get(name, 0) + count
    return total
