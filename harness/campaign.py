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

The campaign stays in control of the target. Each run has a wall-clock
limit (``example_timeout_s``): a schedule that hangs the target ends the
search at once and is saved, cut after the step that hung but not shrunk
(every try would cost the full limit), as a ``harness.hang`` failure. A
target whose trace differs when the same schedule is run again (checked on
every failure and on a sample of passing examples) is reported as
nondeterministic, with the first two lines that differ. A target error
(``build`` or ``stop`` raising, the global reactor, a nondeterministic
target) stops the campaign with that error; the error carries the result so
far as ``error.result``, so nothing found before it is lost.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
from .invariants import Violation
from .runner import Run
from .schedule import Schedule
from .clock_causes import needs_note, tame_clock
from .shrink import shrink_schedule
from .strategies import Menu, schedules
from .target import Target
from .verdict import HANG, NONDETERMINISTIC_FIX, divergence, hung_at, judge
from .watchdog import DEFAULT_TIMEOUT_S

DEFAULT_MAX_EXAMPLES = 1_000

#: Seconds that shrinking a failure may run past the wall-clock budget.
SHRINK_GRACE_S = 30.0

#: Examples one Hypothesis run may take before the next round starts afresh: Hypothesis keeps
#: every choice sequence it tried (to avoid repeats), so one endless run grows without bound.
ROUND_EXAMPLES = 5_000

#: Why a campaign stopped (``CampaignResult.stopped_by``); ``error`` when a target error stopped it,
#: ``crash`` when every worker of a parallel campaign crashed.
STOP_REASONS = ("max-examples", "budget", "max-failures", "exhausted", "interrupt", "error", "crash")

#: Examples run twice to check that the target is deterministic, counted among those whose
#: trace has at least ``DETERMINISM_MIN_EVENTS`` events: the 1st, 3rd and 10th, then every
#: ``DETERMINISM_EVERY``-th (a failure is always checked before it is saved).
DETERMINISM_EVERY = 50
DETERMINISM_MIN_EVENTS = 8


class NondeterministicTarget(HarnessError):
    """The same schedule gave two different traces: the target reads state the harness does not control."""


class _Abort(KeyboardInterrupt):
    """Carries a harness error out of Hypothesis untouched (no shrinking, nothing saved to the database)."""

    def __init__(self, error: HarnessError) -> None:
        super().__init__(str(error))
        self.error = error


class _HangFound(BaseException):
    """Ends the search at once on a hang: each shrinking step would cost the full wall-clock limit.

    Not a ``KeyboardInterrupt``, so Hypothesis saves the example to the
    database and tries it first next time.
    """


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
    was added to the regression corpus. For a fuzzed failure,
    ``detected_after_s`` and ``examples_to_detect`` say how far into the
    campaign the first violation came, and ``shrink_s`` how long shrinking,
    replaying and saving it took.
    """

    record: FailureRecord
    run: Run
    violation: Violation
    path: Path | None = None
    source: str = "fuzz"
    shrunk: bool = True
    regression_path: Path | None = None
    detected_after_s: float | None = None
    examples_to_detect: int | None = None
    shrink_s: float | None = None


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

    #: The one-line message of the target error that stopped the campaign, if one did.
    error: str | None = None


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
    ``example_timeout_s`` is the wall-clock limit of one run (None: none;
    see ``harness.watchdog`` for where it cannot apply).
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
    example_timeout_s: float | None = DEFAULT_TIMEOUT_S
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
    on_run: Callable[[Schedule, Run], None] | None = None,
) -> CampaignResult:
    """Replay the regression corpus, then search for schedules that break the target's invariants.

    ``on_example`` is called after every run (keep it cheap), ``on_finding``
    with each failure as soon as it is saved. ``on_run`` is called with the
    schedule and the finished run of every search example (the runs counted
    in ``examples``; not shrinking or regression replays), for reports of
    what the campaign exercised; keep it cheap too. The campaign stops at the next
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
    search.on_run = on_run
    try:
        search.replay_regressions()
        search.run()
    except KeyboardInterrupt:
        result.stopped_by = "interrupt"
    except HarnessError as exc:
        result.stopped_by, result.error = "error", str(exc)
        result.shrinking = False
        result.elapsed_s = time.monotonic() - search.started
        exc.result = result
        raise
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
        self.on_run: Callable[[Schedule, Run], None] | None = None
        self.eventful = 0

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
            replay = corpus.replay(self.target, path, record, self.config.example_timeout_s)
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
        round_start = result.examples
        cap = min(self.max_examples - result.examples, ROUND_EXAMPLES)
        best: list[tuple[Schedule, Violation]] = []
        detected: list[float] = []  # seconds into the campaign, and examples, at the first violation
        hung: list[tuple[Schedule, Run, Violation]] = []
        grace_deadline = self.deadline + SHRINK_GRACE_S if self.deadline is not None else None

        def prop(schedule: Schedule) -> None:
            if self.stop_requested():
                raise KeyboardInterrupt
            searching = not best
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
            try:
                run, violations = self._judge(schedule)
                if violations and violations[0].invariant == HANG:
                    if HANG not in masked:
                        hung.append((schedule, run, violations[0]))
                        raise _HangFound
                    return
                if not best and len(run.trace) >= DETERMINISM_MIN_EVENTS:
                    self.eventful += 1
                    if _spot_check(self.eventful):
                        self._check_deterministic(schedule, run)
            except HarnessError as exc:
                raise _Abort(exc) from None
            if self.on_example is not None:
                self.on_example(result)
            if searching and self.on_run is not None:
                self.on_run(schedule, run)
            # The first invariant found is pinned: shrinking keeps to schedules that break it,
            # rather than drifting to whichever invariant a smaller schedule happens to break.
            pinned = best[0][1].invariant if best else None
            for violation in violations:
                if violation.invariant not in masked and pinned in (None, violation.invariant):
                    if not best:
                        detected[:] = [time.monotonic() - self.started, result.examples]
                    if not best or _size(schedule) <= _size(best[0][0]):
                        best[:] = [(schedule, violation)]
                    result.shrinking = True
                    raise _ViolationFound(violation)

        # The seed goes on the bare property, under @given: applied outside, hypothesis.seed()
        # also switches the example database off, and a campaign wants both.
        test = settings(
            max_examples=max(cap, 1),
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
            if result.examples >= self.max_examples:
                outcome = "max-examples"
            elif result.examples - round_start < cap:
                outcome = "exhausted"  # Hypothesis ran out of new schedules to try
            # else: this round's share is done; the next round searches on from a fresh seed.
        except _ViolationFound:
            pass
        except _SearchOver as over:
            outcome = over.reason
            hypothesis_shrunk = not best
        except _Abort as abort:
            raise abort.error from None
        except _HangFound:
            # A schedule hung (maybe while shrinking another failure, which is then saved as it is).
            hypothesis_shrunk = False
        except KeyboardInterrupt:
            interrupted = True
        except Flaky:
            raise self._flaky(best[0][0] if best else None) from None
        result.shrinking = False
        if hung:
            self._add(self._save_hang(*hung[0]))
        if best:
            schedule, violation = best[0]
            finding, cut_short = self._confirm(schedule, violation, shrink=not interrupted and not hung)
            finding.detected_after_s, finding.examples_to_detect = detected[0], int(detected[1])
            finding.shrink_s = time.monotonic() - self.started - detected[0]
            finding.shrunk = finding.shrunk and hypothesis_shrunk and not interrupted
            if finding.shrunk and self.config.save_regressions and self.config.regressions is not None:
                finding.regression_path = corpus.add(finding.record, self.config.regressions)
            self._add(finding)
            interrupted = interrupted or cut_short
        if interrupted:
            raise KeyboardInterrupt
        if best or hung:
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
            fails = any(v.invariant == found.invariant for v in self._judge(candidate)[1])
            if fails:
                smallest[0] = candidate
            return fails

        needs: tuple[str, ...] = ()
        if shrink:
            try:
                schedule = shrink_schedule(schedule, still_fails)
                schedule, needs = tame_clock(schedule, still_fails)
            except KeyboardInterrupt:
                schedule, cut_short = smallest[0], True
        first, violations = self._judge(schedule)
        self._check_deterministic(schedule, first)
        same = [v for v in violations if v.invariant == found.invariant]
        violation = same[0] if same else found
        if needs and same:
            violation = replace(violation, message=violation.message + needs_note(needs))
        record = FailureRecord.of_run(self.spec, first, violation, self.result.seed)
        path = failure_file.save(record, Path(self.config.report_dir) / "failures")
        finding = Finding(record=record, run=first, violation=violation, path=path, shrunk=shrink and not cut_short)
        return finding, cut_short


    def _judge(self, schedule: Schedule) -> tuple[Run, list[Violation]]:
        return judge(self.target, schedule, self.config.example_timeout_s)

    def _check_deterministic(self, schedule: Schedule, first: Run) -> None:
        """Run ``schedule`` again; raise ``NondeterministicTarget`` if the trace differs from ``first``'s."""
        again, _ = self._judge(schedule)
        where = divergence(first.trace.lines(), again.trace.lines())
        if where is not None:
            raise NondeterministicTarget(
                f"target {self.spec!r} is nondeterministic: the same schedule gave two different traces, "
                f"first differing at {where}; {NONDETERMINISTIC_FIX}"
            )

    def _flaky(self, schedule: Schedule | None) -> NondeterministicTarget:
        """The error for a failure Hypothesis could not reproduce, with the divergence when a rerun shows it."""
        if schedule is not None:
            first, _ = self._judge(schedule)
            try:
                self._check_deterministic(schedule, first)
            except NondeterministicTarget as exc:
                return exc
        return NondeterministicTarget(
            f"target {self.spec!r} is nondeterministic: a schedule that broke an invariant passed when "
            f"Hypothesis ran it again; {NONDETERMINISTIC_FIX}"
        )

    def _save_hang(self, schedule: Schedule, run: Run, violation: Violation) -> Finding:
        """Save a schedule that hung, cut after the step that hung (the later steps never ran)."""
        step = hung_at(run)
        if step is not None:
            schedule = replace(schedule, ops=schedule.ops[: step + 1])
        record = FailureRecord.of_run(self.spec, run, violation, self.result.seed, schedule=schedule)
        path = failure_file.save(record, Path(self.config.report_dir) / "failures")
        finding = Finding(record=record, run=run, violation=violation, path=path, shrunk=False)
        if self.config.save_regressions and self.config.regressions is not None:
            finding.regression_path = corpus.add(record, self.config.regressions)
        return finding


def _spot_check(eventful: int) -> bool:
    """Whether the ``eventful``-th example with a real trace is run twice to check determinism."""
    return eventful in (1, 3, 10) or eventful % DETERMINISM_EVERY == 0


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
