"""Campaigns: Hypothesis generates schedules, the runner plays them, invariants judge them.

A campaign first replays the regression corpus (if one is configured), then
searches. On a violation Hypothesis shrinks the schedule to a minimal one;
the campaign replays it to check that its trace is deterministic, saves it as
a failure file and reports it, then searches on for other invariants (with
the ones already found masked) until ``max_failures`` distinct invariants
have broken or a budget is spent.

Budgets (examples and wall-clock seconds) bound the search. Shrinking a
failure already found may run past the wall-clock budget by at most
``SHRINK_GRACE_S``; after that, or on an interrupt, the smallest failing
schedule seen so far is saved unshrunk.
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
from hypothesis.database import ExampleDatabase
from hypothesis.errors import Flaky

from . import corpus, failure_file
from .corpus import Replay
from .database import open_database
from .determinism import without_local_constants
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

#: Seconds that shrinking a failure may run past the wall-clock budget.
SHRINK_GRACE_S = 30.0

#: Why a campaign stopped (``CampaignResult.stopped_by``).
STOP_REASONS = ("max-examples", "budget", "max-failures", "exhausted", "interrupt")


class NondeterministicTarget(HarnessError):
    """The same schedule gave two different traces: the target reads state the harness does not control."""


class _ViolationFound(AssertionError):
    def __init__(self, violation: Violation) -> None:
        super().__init__(f"{violation.invariant}: {violation.message}")
        self.violation = violation


class _SearchOver(KeyboardInterrupt):
    """Raised inside the property to end the search when a budget is spent.

    A ``KeyboardInterrupt`` because Hypothesis stops at once on one and, unlike
    any other exception, does not save the example it was running to the
    example database as if it had failed.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Finding:
    """A failing schedule, the run that shows it, and where it is saved.

    ``source`` is ``"fuzz"`` for a failure this campaign found (``path`` is its
    file under the report directory) or ``"regression"`` for a regression
    corpus file that still fails (``path`` is that file). ``shrunk`` is False
    when the campaign was interrupted before shrinking finished: the schedule
    fails but may not be minimal. ``regression_path`` is set when the failure
    was added to the regression corpus.
    """

    record: FailureRecord
    run: Run
    violation: Violation
    path: Path | None = None
    source: str = "fuzz"
    shrunk: bool = True
    regression_path: Path | None = None


@dataclass
class CampaignResult:
    """How far a campaign got and what it found.

    ``examples`` counts the schedules run while searching (database replays
    included, shrinking and regression replays not); ``shrink_runs`` counts
    the runs spent shrinking; ``regressions`` lists every regression corpus
    file replayed, passing or not.
    """

    target: str
    seed: int
    examples: int = 0
    elapsed_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    stopped_by: str = "max-examples"
    regressions: list[Replay] = field(default_factory=list)
    shrink_runs: int = 0
    shrinking: bool = False

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "interrupt"


@dataclass
class CampaignConfig:
    """How long to search, how many failures to collect, and where to keep what is found.

    With neither budget set the campaign stops after ``DEFAULT_MAX_EXAMPLES``.
    ``database`` is where Hypothesis's example database lives (failures
    found once are retried first next time): a directory or a Redis URL
    (see ``harness.database``), or None for none; with a
    database the search also depends on what earlier campaigns saved, so a
    campaign that must be a pure function of seed and target uses none.
    ``regressions`` is the regression corpus directory (None: no corpus);
    with ``save_regressions`` every minimal failure found is added to it.
    ``ignore`` names invariants already broken elsewhere (a parallel
    campaign's workers get those its regression replay found): the search
    passes over them, and they count towards ``max_failures``.
    """

    max_examples: int | None = None
    budget_s: float | None = None
    seed: int | None = None
    database: str | None = None
    report_dir: str = "reports"
    max_failures: int = 1
    menu: Menu | None = None
    regressions: str | None = None
    save_regressions: bool = False
    ignore: frozenset[str] = frozenset()


def new_seed() -> int:
    """A fresh campaign seed from the OS (outside any run, so runs stay deterministic)."""
    return int.from_bytes(os.urandom(4), "big")


def run_campaign(
    target: Target,
    target_spec: str,
    config: CampaignConfig,
    on_example: Callable[[CampaignResult], None] | None = None,
    on_finding: Callable[[Finding], None] | None = None,
    stop_requested: Callable[[], bool] | None = None,
) -> CampaignResult:
    """Replay the regression corpus, then search for schedules that break the target's invariants.

    ``on_example`` is called after every run (keep it cheap), ``on_finding``
    with each failure as soon as it is saved. The campaign stops at the next
    run once ``stop_requested()`` is true, or on ``KeyboardInterrupt``; what
    was found so far, even unshrunk, is saved and returned.
    """
    if config.max_failures < 1:
        raise ValueError(f"max_failures must be at least 1, got {config.max_failures}")
    if config.save_regressions and config.regressions is None:
        raise ValueError("save_regressions needs a regressions directory")
    seed = config.seed if config.seed is not None else new_seed()
    result = CampaignResult(target=target_spec, seed=seed)
    search = _Search(target, target_spec, config, result, on_example, on_finding, stop_requested or _never)
    try:
        search.replay_regressions()
        search.run()
    except KeyboardInterrupt:
        result.stopped_by = "interrupt"
    result.shrinking = False
    result.elapsed_s = time.monotonic() - search.started
    return result


def _never() -> bool:
    return False


class _Search:
    """The state of one campaign: the clock, the budgets, the invariants found so far."""

    def __init__(
        self,
        target: Target,
        target_spec: str,
        config: CampaignConfig,
        result: CampaignResult,
        on_example: Callable[[CampaignResult], None] | None,
        on_finding: Callable[[Finding], None] | None,
        stop_requested: Callable[[], bool],
    ) -> None:
        self.target = target
        self.spec = target_spec
        self.config = config
        self.result = result
        self.on_example = on_example
        self.on_finding = on_finding
        self.stop_requested = stop_requested
        self.menu = config.menu or target.default_menu()
        max_examples = config.max_examples
        if max_examples is None:
            max_examples = DEFAULT_MAX_EXAMPLES if config.budget_s is None else 10**9
        self.max_examples = max_examples
        self.started = time.monotonic()
        self.deadline = self.started + config.budget_s if config.budget_s is not None else None
        self.found: set[str] = set(config.ignore)

    def _check_stop(self) -> None:
        if self.stop_requested():
            raise KeyboardInterrupt

    def _add(self, finding: Finding) -> None:
        self.result.findings.append(finding)
        self.found.add(finding.violation.invariant)
        if self.on_finding is not None:
            self.on_finding(finding)

    def replay_regressions(self) -> None:
        """Replay every corpus file for this target; the ones that still fail are findings."""
        if self.config.regressions is None:
            return
        for path, record in corpus.entries(self.config.regressions, self.spec):
            self._check_stop()
            replay = corpus.replay(self.target, path, record)
            self.result.regressions.append(replay)
            if replay.violation is not None:
                self._add(Finding(record, replay.run, replay.violation, path=path, source="regression"))

    def run(self) -> None:
        """Search in rounds, one per distinct invariant found, until a limit is reached."""
        result = self.result
        round_index = 0
        while len(self.found) < self.config.max_failures:
            self._check_stop()
            if result.examples >= self.max_examples:
                result.stopped_by = "max-examples"
                return
            if self.deadline is not None and time.monotonic() > self.deadline:
                result.stopped_by = "budget"
                return
            outcome = self._round(round_index)
            if outcome is not None:
                result.stopped_by = outcome
                return
            round_index += 1
        result.stopped_by = "max-failures"

    def _round(self, round_index: int) -> str | None:
        """One Hypothesis run; returns why the search is over, or None to search on."""
        result = self.result
        masked = frozenset(self.found)
        best: list[tuple[Schedule, Violation]] = []
        grace_deadline = self.deadline + SHRINK_GRACE_S if self.deadline is not None else None

        def prop(schedule: Schedule) -> None:
            if self.stop_requested():
                raise KeyboardInterrupt
            if best:
                if grace_deadline is not None and time.monotonic() > grace_deadline:
                    raise _SearchOver("budget")
                result.shrink_runs += 1
            else:
                if result.examples >= self.max_examples:
                    raise _SearchOver("max-examples")
                if self.deadline is not None and time.monotonic() > self.deadline:
                    raise _SearchOver("budget")
                result.examples += 1
            run = run_schedule(self.target, schedule)
            if self.on_example is not None:
                self.on_example(result)
            # The first invariant found is pinned: shrinking keeps to schedules that break it,
            # rather than drifting to whichever invariant a smaller schedule happens to break.
            pinned = best[0][1].invariant if best else None
            for violation in check(run):
                if violation.invariant not in masked and pinned in (None, violation.invariant):
                    if not best or _size(schedule) <= _size(best[0][0]):
                        best[:] = [(schedule, violation)]
                    result.shrinking = True
                    raise _ViolationFound(violation)

        # The seed goes on the bare property, under @given: applied outside, hypothesis.seed()
        # also switches the example database off, and a campaign wants both.
        test = settings(
            max_examples=max(self.max_examples - result.examples, 1),
            deadline=None,
            database=_database(self.config.database, self.spec, masked),
            verbosity=Verbosity.quiet,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
        )(given(schedules(self.menu))(hypothesis_seed(result.seed + round_index)(prop)))
        outcome: str | None = None
        interrupted = False
        hypothesis_shrunk = True
        try:
            with without_local_constants():  # the same seed gives the same search in any process
                test()
            outcome = "max-examples" if result.examples >= self.max_examples else "exhausted"
        except _ViolationFound:
            pass
        except _SearchOver as over:
            outcome = over.reason
            hypothesis_shrunk = not best
        except KeyboardInterrupt:
            interrupted = True
        except Flaky:
            raise NondeterministicTarget(
                f"target {self.spec!r} is nondeterministic: a schedule that broke an invariant passed when "
                "Hypothesis ran it again; it reads time, randomness or global state the harness does not control"
            ) from None
        result.shrinking = False
        if best:
            schedule, violation = best[0]
            finding, cut_short = self._confirm(schedule, violation, shrink=not interrupted)
            finding.shrunk = finding.shrunk and hypothesis_shrunk and not interrupted
            if finding.shrunk and self.config.save_regressions and self.config.regressions is not None:
                finding.regression_path = corpus.add(finding.record, self.config.regressions)
            self._add(finding)
            interrupted = interrupted or cut_short
        if interrupted:
            raise KeyboardInterrupt
        if best:
            # A failure was saved: search on for other invariants, unless the shrink grace ran out.
            return "budget" if outcome == "budget" else None
        return outcome

    def _confirm(self, schedule: Schedule, found: Violation, shrink: bool) -> tuple[Finding, bool]:
        """Finish shrinking, replay the schedule twice, check the traces agree, and save it.

        Returns the finding and whether a stop request cut the shrinking short
        (the smallest failing schedule reached is kept).
        """
        smallest = [schedule]
        cut_short = False

        def still_fails(candidate: Schedule) -> bool:
            if self.stop_requested():
                raise KeyboardInterrupt
            self.result.shrink_runs += 1
            fails = any(v.invariant == found.invariant for v in check(run_schedule(self.target, candidate)))
            if fails:
                smallest[0] = candidate
            return fails

        if shrink:
            try:
                schedule = shrink_schedule(schedule, still_fails)
            except KeyboardInterrupt:
                schedule, cut_short = smallest[0], True
        first = run_schedule(self.target, schedule)
        second = run_schedule(self.target, schedule)
        if first.trace.lines() != second.trace.lines():
            index = first_divergence(first.trace.lines(), second.trace.lines())
            raise NondeterministicTarget(
                f"target {self.spec!r} is nondeterministic: replaying the same schedule gave a different trace "
                f"at event {index}; it reads time, randomness or global state the harness does not control"
            )
        same = [v for v in check(first) if v.invariant == found.invariant]
        violation = same[0] if same else found
        record = FailureRecord(
            target=self.spec,
            schedule=schedule,
            invariant=violation.invariant,
            message=violation.message,
            trace_hash=first.trace.digest(),
            seed=self.result.seed,
            trace=tuple(first.trace),
            marked=violation.events,
        )
        path = failure_file.save(record, Path(self.config.report_dir) / "failures")
        finding = Finding(record=record, run=first, violation=violation, path=path, shrunk=shrink and not cut_short)
        return finding, cut_short


def _size(schedule: Schedule) -> tuple[int, int]:
    return (len(schedule.ops), schedule.end_ms)


def _database(location: str | None, target_spec: str, masked: frozenset[str]) -> ExampleDatabase | None:
    """The example database for one search round (a directory or a Redis URL), or None.

    Keyed by target and by the invariants already found in this campaign, so
    a later round (which ignores those invariants) neither replays nor evicts
    the examples saved by an earlier one.
    """
    if location is None:
        return None
    name = target_spec if not masked else target_spec + "|" + ",".join(sorted(masked))
    key = hashlib.sha256(name.encode()).hexdigest()[:16]
    return open_database(location, key)
