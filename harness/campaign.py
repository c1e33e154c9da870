"""Campaigns: Hypothesis generates schedules, the runner plays them, invariants judge them.

On a violation Hypothesis shrinks the schedule to a minimal one; the campaign
replays it to check that its trace is deterministic, saves it as a failure
file and reports it. Budgets (examples and wall-clock seconds) bound the
search, never the shrinking of a failure already found.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from . import failure_file
from .errors import HarnessError
from .failure_file import FailureRecord
from .invariants import Violation, check
from .runner import Run, run_schedule
from .schedule import Schedule
from .shrink import shrink_schedule
from .strategies import Menu, schedules
from .target import Target
from .trace import first_divergence

DEFAULT_MAX_EXAMPLES = 1_000


class NondeterministicTarget(HarnessError):
    """The same schedule gave two different traces: the target reads state the harness does not control."""


class _ViolationFound(AssertionError):
    def __init__(self, violation: Violation) -> None:
        super().__init__(f"{violation.invariant}: {violation.message}")
        self.violation = violation


class _BudgetSpent(BaseException):
    """Raised inside the property to end the search when the wall-clock budget is spent."""


@dataclass
class Finding:
    """A minimal failing schedule, the run that shows it, and where it was saved."""

    record: FailureRecord
    run: Run
    violation: Violation
    path: Path | None = None


@dataclass
class CampaignResult:
    target: str
    seed: int
    examples: int = 0
    elapsed_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    stopped_by: str = "max-examples"

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class CampaignConfig:
    """How long to search and where to keep what is found.

    With neither budget set the campaign stops after ``DEFAULT_MAX_EXAMPLES``.
    ``database`` is a directory for Hypothesis's example database, or None for
    none; a campaign with an explicit seed uses none unless one is given, so
    that it is a pure function of seed and target.
    """

    max_examples: int | None = None
    budget_s: float | None = None
    seed: int | None = None
    database: str | None = None
    report_dir: str = "reports"
    max_failures: int = 1
    menu: Menu | None = None


def new_seed() -> int:
    """A fresh campaign seed from the OS (outside any run, so runs stay deterministic)."""
    return int.from_bytes(os.urandom(4), "big")


def run_campaign(
    target: Target,
    target_spec: str,
    config: CampaignConfig,
    on_example: Callable[[CampaignResult], None] | None = None,
) -> CampaignResult:
    """Search for schedules that break the target's invariants; save and return what is found.

    Ctrl-C ends the search; anything found so far, even unshrunk, is kept.
    """
    seed = config.seed if config.seed is not None else new_seed()
    result = CampaignResult(target=target_spec, seed=seed)
    menu = config.menu or target.menu or Menu()
    max_examples = config.max_examples
    if max_examples is None:
        max_examples = DEFAULT_MAX_EXAMPLES if config.budget_s is None else 10**9
    started = time.monotonic()
    deadline = started + config.budget_s if config.budget_s is not None else None
    found_invariants: set[str] = set()
    try:
        while len(result.findings) < config.max_failures:
            best: list[tuple[Schedule, Violation]] = []

            def prop(schedule: Schedule) -> None:
                if not best and deadline is not None and time.monotonic() > deadline:
                    raise _BudgetSpent
                result.examples += 1
                run = run_schedule(target, schedule)
                for violation in check(run):
                    if violation.invariant not in found_invariants:
                        if not best or _size(schedule) <= _size(best[0][0]):
                            best[:] = [(schedule, violation)]
                        raise _ViolationFound(violation)
                if on_example is not None:
                    result.elapsed_s = time.monotonic() - started
                    on_example(result)

            test = settings(
                max_examples=max_examples,
                deadline=None,
                database=_database(config, target_spec),
                verbosity=Verbosity.quiet,
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
                phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
            )(given(schedules(menu))(prop))
            test = hypothesis_seed(seed + len(result.findings))(test)
            try:
                test()
            except _ViolationFound:
                pass
            except _BudgetSpent:
                result.stopped_by = "budget"
                break
            finally:
                if best:
                    schedule, violation = best[0]
                    finding = _confirm(target, target_spec, schedule, violation, seed, config.report_dir)
                    result.findings.append(finding)
                    found_invariants.add(finding.violation.invariant)
            if not best:
                result.stopped_by = "max-examples"
                break
            result.stopped_by = "failure"
    except KeyboardInterrupt:
        result.stopped_by = "interrupt"
    result.elapsed_s = time.monotonic() - started
    return result


def _size(schedule: Schedule) -> tuple[int, int]:
    return (len(schedule.ops), schedule.end_ms)


def _database(config: CampaignConfig, target_spec: str) -> ExampleDatabase | None:
    if config.database is None:
        return None
    key = hashlib.sha256(target_spec.encode()).hexdigest()[:16]
    return DirectoryBasedExampleDatabase(os.path.join(config.database, key))


def _confirm(
    target: Target, target_spec: str, schedule: Schedule, found: Violation, seed: int, report_dir: str
) -> Finding:
    """Finish shrinking, replay the minimal schedule twice, check the traces agree, and save it."""

    def still_fails(candidate: Schedule) -> bool:
        return any(v.invariant == found.invariant for v in check(run_schedule(target, candidate)))

    schedule = shrink_schedule(schedule, still_fails)
    first = run_schedule(target, schedule)
    second = run_schedule(target, schedule)
    if first.trace.lines() != second.trace.lines():
        index = first_divergence(first.trace.lines(), second.trace.lines())
        raise NondeterministicTarget(
            f"target {target_spec!r} is nondeterministic: replaying the same schedule gave a different trace "
            f"at event {index}; it reads time, randomness or global state the harness does not control"
        )
    same = [v for v in check(first) if v.invariant == found.invariant]
    violation = same[0] if same else found
    record = FailureRecord(
        target=target_spec,
        schedule=schedule,
        invariant=violation.invariant,
        message=violation.message,
        trace_hash=first.trace.digest(),
        seed=seed,
        trace=tuple(first.trace),
        marked=violation.events,
    )
    path = failure_file.save(record, Path(report_dir) / "failures")
    return Finding(record=record, run=first, violation=violation, path=path)
