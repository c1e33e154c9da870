"""Campaigns: seeded random schedules are run by the runner and judged by the invariants.

A campaign first replays the regression corpus (if one is configured), then
searches: the schedules come from ``harness.search.generate`` (seeded random bytes
decoded by the schedule codec, a pure function of the seed, with no
Hypothesis bookkeeping per example), after the failing schedules the example
database kept from earlier campaigns. On a violation ``harness.search.shrink``
shrinks the schedule to a minimal one, keeping to the invariant found first;
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
search at once and is saved, cut after the step that hung and shrunk under
a short per-run limit (``harness.search.shrink_hang``; the result confirmed
under the full one), as a ``harness.hang`` failure. A
target whose trace differs when the same schedule is run again (checked on
every failure and on a sample of passing examples) is reported as
nondeterministic, with the first two lines that differ. A target error
(``build`` or ``stop`` raising, the global reactor, a nondeterministic
target) stops the campaign with that error; the error carries the result so
far as ``error.result``, so nothing found before it is lost.
"""

from __future__ import annotations

import hashlib
import json
import os
from harness.guard import clocks as time  # bound at import: a target cannot replace them
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

from hypothesis.database import ExampleDatabase

from harness.search import corpus
from harness.store import failure_file
from harness.search.corpus import Replay
from harness.store.database import open_database
from harness.errors import HarnessError
from harness.store.failure_file import FailureRecord
from harness.search.generate import DEFAULT_DEPTH, DEFAULT_STRATEGY, STRATEGIES, Examples
from harness.invariants import Violation
from harness.invariants.shared_note import noted
from harness.run.runner import Run
from harness.run.session import RunSession
from harness.search.clock_causes import clock_note, tame_clock
from harness.search.job_causes import Behaviour, raising_cancellers
from harness.search.arguments import shrink_arguments
from harness.search.coverage_feedback import tracer_for
from harness.search.nondeterminism import keep_schedule
from harness.model.schedule import MAX_DEPTH, Schedule
from harness.model.trace import one_line
from harness.search.shard import round_seed
from harness.search.shrink import shrink_schedule
from harness.search.shrink_hang import cut_at_hang, hang_budget, hang_kind, short_limit
from harness.search.stop_reasons import StopReason
from harness.search.shrink_teardown import Measured, stop_earlier, story_length
from harness.model.menu import Menu
from harness.model.target import Target
from harness.search.verdict import HANG, NONDETERMINISTIC_FIX, check_deterministic, judge
from harness.search.verdict import NondeterministicTarget as NondeterministicTarget  # re-exported: raised by campaigns
from harness.guard.watchdog import DEFAULT_TIMEOUT_S

#: Schedules a campaign runs when neither a count nor a wall-clock budget is given: the one
#: default of ``harness fuzz --max-examples``, of ``CampaignConfig`` and of the pytest plugin's
#: ``--harness-max-examples`` (per fuzz test).
DEFAULT_MAX_EXAMPLES = 1_000

#: Seconds that shrinking a failure may run past the wall-clock budget.
SHRINK_GRACE_S = 30.0

#: The key under which failing schedules are kept in the example database (see ``_saved``).
SAVED_KEY = b"harness-schedules"

#: Why a campaign stopped (``CampaignResult.stopped_by``); ``error`` when a target error stopped it,
#: ``crash`` when every worker of a parallel campaign crashed.
STOP_REASONS: tuple[StopReason, ...] = tuple(StopReason)

#: Examples run twice to check that the target is deterministic, counted among those whose
#: trace has at least ``DETERMINISM_MIN_EVENTS`` events: the 1st, 3rd and 10th, then every
#: ``DETERMINISM_EVERY``-th (a failure is always checked before it is saved).
DETERMINISM_EVERY = 50
DETERMINISM_MIN_EVENTS = 8


class _GraceOver(Exception):
    """Shrinking ran past the wall-clock budget plus ``SHRINK_GRACE_S``: keep the smallest schedule so far."""


@dataclass
class Finding:
    """A failing schedule, the run that shows it, and where it is saved.

    ``source`` is ``"fuzz"`` for a failure this campaign found (``path`` is its
    file under the report directory) or ``"regression"`` for a regression
    corpus file that still fails (``path`` is that file). ``shrunk`` is False
    when the campaign was interrupted before shrinking finished: the schedule
    fails but may not be minimal. ``regression_path`` is set when the failure
    was added to the regression corpus. For a fuzzed failure,
    ``examples_to_detect`` is the search examples run up to and including the
    first one that broke the invariant, ``detected_after_s`` the seconds spent
    searching until then (regression replays and shrinking earlier failures
    excluded), and ``shrink_s`` how long shrinking, replaying and saving it
    took. In a parallel campaign they are the finding worker's. ``cut_short``
    says, for a failure not shrunk to the end, what stopped its shrinking
    (``"by the budget"``, ``"by an interrupt"``, or a shrinking candidate's
    target error); empty when the reason is not known.
    """

    record: FailureRecord
    run: Run
    violation: Violation
    path: Path | None = None
    source: str = "fuzz"
    shrunk: bool = True
    cut_short: str = ""
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
    stopped_by: StopReason = StopReason.MAX_EXAMPLES
    regressions: list[Replay] = field(default_factory=list)
    shrink_runs: int = 0
    shrinking: bool = False

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == StopReason.INTERRUPT

    #: The one-line message of the target error that stopped the campaign, if one did.
    error: str | None = None


@dataclass
class CampaignConfig:
    """How long to search, how many failures to collect, and where to keep what is found.

    With neither budget set the campaign stops after ``DEFAULT_MAX_EXAMPLES``.
    ``database`` is where the example database lives (the minimal failing
    schedules found, as JSON, retried first next time): a directory or a Redis URL
    (see ``harness.store.database``), or None for none; with a
    database the search also depends on what earlier campaigns saved, so a
    campaign that must be a pure function of seed and target uses none.
    ``regressions`` is the regression corpus directory (None: no corpus);
    with ``save_regressions`` every minimal failure found is added to it.
    ``example_timeout_s`` is the wall-clock limit of one run (None: none;
    see ``harness.guard.watchdog`` for where it cannot apply).
    ``ignore`` names invariants already broken elsewhere (a parallel
    campaign's workers get those its regression replay found): the search
    passes over them, and they count towards ``max_failures``.
    ``strategy`` is how the search draws schedules (``harness.search.generate``:
    ``mixed``, ``random``, ``swarm``, ``guided`` or ``pct``), ``pct_depth``
    the bug depth the ``pct`` strategy aims at. With ``coverage_feedback``
    the guided strategies also keep schedules that took a new line or branch
    of the target's own code (``harness.search.coverage_feedback``; off by
    default: on the hard zoo it did not find bugs sooner).
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
    strategy: str = DEFAULT_STRATEGY
    pct_depth: int = DEFAULT_DEPTH
    coverage_feedback: bool = False


def new_seed() -> int:
    """A fresh campaign seed from the OS (outside any run, so runs stay deterministic)."""
    return int.from_bytes(os.urandom(4), "big")


def campaign_seed(config: CampaignConfig) -> int:
    """The campaign's seed: ``config.seed``, or a fresh one when none is given."""
    return config.seed if config.seed is not None else new_seed()


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
    check_config(config)
    seed = campaign_seed(config)
    result = CampaignResult(target=target_spec, seed=seed)
    search = _Search(target, target_spec, config, result, on_example, on_finding, stop_requested or _never)
    search.on_run = on_run
    try:
        with RunSession():  # the guard and watchdog installed once for every run (harness.run.session)
            search.replay_regressions()
            search.run()
    except KeyboardInterrupt:
        result.stopped_by = StopReason.INTERRUPT
    except HarnessError as exc:
        result.elapsed_s = time.monotonic() - search.started
        if isinstance(exc, NondeterministicTarget):
            keep_schedule(exc, target_spec, seed, config.report_dir)  # before the message is recorded
        stopped_by_error(result, exc)
        raise
    result.shrinking = False
    result.elapsed_s = time.monotonic() - search.started
    return result


def _never() -> bool:
    return False


# -- shared with parallel campaigns (harness.search.workers): one code path, so the two cannot drift apart --


def example_limit(config: CampaignConfig) -> int | None:
    """How many schedules the whole campaign may run: ``max_examples``, else ``DEFAULT_MAX_EXAMPLES``
    when no wall-clock budget is set either, else None (the budget alone stops it)."""
    if config.max_examples is not None:
        return config.max_examples
    return DEFAULT_MAX_EXAMPLES if config.budget_s is None else None


def masked_invariants(config: CampaignConfig, result: CampaignResult) -> frozenset[str]:
    """The invariants a campaign searches no more: those ``config.ignore`` names and those it found."""
    return config.ignore | {finding.violation.invariant for finding in result.findings}


def enough(config: CampaignConfig, result: CampaignResult) -> bool:
    """Whether ``max_failures`` distinct invariants have broken (the ignored ones count)."""
    return len(masked_invariants(config, result)) >= config.max_failures


def stopped_by_error(result: CampaignResult, error: BaseException) -> None:
    """Record that ``error`` stopped the campaign, and hand ``result`` to it (``error.result``) so
    nothing found before it is lost."""
    result.stopped_by, result.error = StopReason.ERROR, str(error)
    result.shrinking = False
    if isinstance(error, HarnessError):
        error.result = result


def check_config(config: CampaignConfig) -> None:
    """The checks every campaign makes of its configuration, whether it runs in one process or many."""
    if config.max_failures < 1:
        raise ValueError(f"max_failures must be at least 1, got {config.max_failures}")
    # The summary holds 64-bit integers only: a larger seed or count would write one merge and report refuse.
    for name, value, least in (("seed", config.seed, 0), ("max_examples", config.max_examples, 0),
                               ("max_failures", config.max_failures, 1)):
        if value is not None and not least <= value < failure_file.LIMIT_64:
            shown = value if abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
            raise ValueError(f"{name} must be from {least} to 2**63 - 1 (the summary holds 64-bit integers), got {shown}")
    if config.save_regressions and config.regressions is None:
        raise ValueError("save_regressions needs a regressions directory")
    if config.strategy not in STRATEGIES:
        raise ValueError(f"unknown search strategy {config.strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if not 1 <= config.pct_depth <= MAX_DEPTH:
        raise ValueError(f"pct_depth must be between 1 and {MAX_DEPTH}, got {config.pct_depth}")
    if config.example_timeout_s is not None and not config.example_timeout_s > 0:
        raise ValueError(f"example_timeout_s must be positive or None, got {config.example_timeout_s}")


def replay_corpus(
    target: Target, target_spec: str, config: CampaignConfig, stop_requested: Callable[[], bool]
) -> Iterator[tuple[Replay, Finding | None]]:
    """Replay every regression corpus file for the target, with the campaign's per-run time limit.

    Yields each replay with its finding (None once the file's invariant
    holds); raises ``KeyboardInterrupt`` when ``stop_requested()`` turns true.
    """
    if config.regressions is None:
        return
    for path, record in corpus.entries(config.regressions, target_spec):
        if stop_requested():
            raise KeyboardInterrupt
        replay = corpus.replay(target, path, record, config.example_timeout_s)
        finding = None
        if replay.violation is not None:
            finding = Finding(record, replay.run, replay.violation, path=path, source="regression")
        yield replay, finding


def keep_regression(finding: Finding, config: CampaignConfig) -> None:
    """Add a failure the search found to the regression corpus when asked to.

    Shrunk failures and hangs are added (a hang whose shrinking ran out of time
    is still a hang); a failure cut short by an interrupt is not.
    """
    if not config.save_regressions or config.regressions is None or finding.source != "fuzz":
        return
    if finding.shrunk or finding.violation.invariant == HANG:
        finding.regression_path = corpus.add(finding.record, config.regressions)


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
        limit = example_limit(config)
        self.max_examples = limit if limit is not None else 10**9
        self.started = time.monotonic()
        self.deadline = self.started + config.budget_s if config.budget_s is not None else None
        self.search_started = self.started  # reset once the corpus is replayed
        self.shrinking_s = 0.0  # seconds spent shrinking and saving failures, not searching
        self.on_run: Callable[[Schedule, Run], None] | None = None
        self.save_error: HarnessError | None = None  # why a failure file could not be written (see _save)
        self.eventful = 0
        # The target's line and branch coverage, for the guided search (harness.search.coverage_feedback).
        self.tracer = tracer_for(target_spec, config.strategy) if config.coverage_feedback else None

    def _check_stop(self) -> None:
        if self.stop_requested():
            raise KeyboardInterrupt

    def _add(self, finding: Finding) -> None:
        self.result.findings.append(finding)
        if self.on_finding is not None:
            self.on_finding(finding)

    def replay_regressions(self) -> None:
        """Replay every corpus file for this target; the ones that still fail are findings."""
        for replay, finding in replay_corpus(self.target, self.spec, self.config, self.stop_requested):
            self.result.regressions.append(replay)
            if finding is not None:
                self._add(finding)

    def run(self) -> None:
        """Search in rounds, one per distinct invariant found, until a limit is reached."""
        result = self.result
        self.search_started = time.monotonic()
        round_index = 0
        while not enough(self.config, result):
            self._check_stop()
            if result.examples >= self.max_examples:
                result.stopped_by = StopReason.MAX_EXAMPLES
                return
            if self.deadline is not None and time.monotonic() > self.deadline:
                result.stopped_by = StopReason.BUDGET
                return
            outcome = self._round(round_index)
            if outcome is not None:
                result.stopped_by = outcome
                return
            round_index += 1
        result.stopped_by = StopReason.MAX_FAILURES

    def _round(self, round_index: int) -> StopReason | None:
        """Search with this round's seed until an invariant not yet found breaks (None: search on in a
        new round that masks it) or a limit is reached (the reason)."""
        result = self.result
        masked = masked_invariants(self.config, result)
        database = _database(self.config.database, self.spec, masked)
        saved = _saved(database)
        seed = round_seed(result.seed, round_index)
        examples = Examples(self.menu, seed, self.config.strategy, self.config.pct_depth, self.tracer)
        while True:
            self._check_stop()
            if result.examples >= self.max_examples:
                return StopReason.MAX_EXAMPLES
            if self.deadline is not None and time.monotonic() > self.deadline:
                return StopReason.BUDGET
            entry = saved.pop(0) if saved else None
            schedule = entry[1] if entry is not None else next(examples)
            result.examples += 1
            broken = self._try(schedule, masked, examples if entry is None else None)
            if broken is not None:
                return self._report(schedule, *broken, database)
            if entry is not None and database is not None:
                database.delete(SAVED_KEY, entry[0])  # it passes now: fixed since it was saved

    def _try(self, schedule: Schedule, masked: frozenset[str], examples: Examples | None) -> tuple[Run, Violation] | None:
        """Run one search example; the run and the first violation of an invariant not masked, if any.

        ``examples`` (None for a database entry) watches the run and learns from it (the guided strategies).
        """
        with examples.watching() if examples is not None else nullcontext():
            # Searching on past found (or ignored) invariants, most failing examples break only those: judged
            # without the note, whose replay would be read for nothing; the one reported is noted below.
            run, violations = self._judge(schedule, notes=not masked)
        if examples is not None:
            examples.feedback(run)
        if violations and violations[0].invariant == HANG:
            return (run, violations[0]) if HANG not in masked else None
        if len(run.trace) >= DETERMINISM_MIN_EVENTS:
            self.eventful += 1
            if _spot_check(self.eventful):
                self._check_deterministic(schedule, run)
        if self.on_example is not None:
            self.on_example(self.result)
        if self.on_run is not None:
            self.on_run(schedule, run)
        for violation in violations:
            if violation.invariant not in masked:
                return run, (noted(run, [violation])[0] if masked else violation)
        return None

    def _report(self, schedule: Schedule, run: Run, violation: Violation, database: ExampleDatabase | None) -> StopReason | None:
        """Shrink (except a hang), save and report a failure the search just found."""
        detected = self._detected()
        if violation.invariant == HANG:
            # Shrunk under a short per-run limit and a bounded time, then confirmed under the full limit.
            try:
                finding, outcome = self._shrink_hang(schedule, run, violation, detected)
            except (HarnessError, KeyboardInterrupt):
                # as found, before the error (or a second stop signal: a confirming run may take the full limit) ends it
                self._add(self._save_hang(schedule, run, violation))
                raise
        else:
            # The schedule as found, before shrinking: its many operations show a nondeterministic
            # target far more surely than a minimal one, whose two replays may agree by chance.
            self._check_deterministic(schedule, run)
            self.result.shrinking = True
            if self.on_example is not None:
                self.on_example(self.result)
            try:
                finding, outcome = self._confirm(schedule, violation)
            except (HarnessError, KeyboardInterrupt) as exc:
                # A target error while shrinking, or a second stop signal while the shrunk schedule is judged
                # (a first one only ends shrinking): the violation was still seen, so it is reported (unshrunk,
                # saved if the directory takes it) before the error or the stop ends the campaign.
                why = (
                    "by an interrupt"
                    if isinstance(exc, KeyboardInterrupt)
                    else f"a shrinking candidate hit a target error, which stopped the campaign: {one_line(str(exc)):.300}"
                )
                self._keep_unshrunk(schedule, run, violation, detected, why)
                raise
            finally:
                self.result.shrinking = False
        self._timed(finding, detected)
        keep_regression(finding, self.config)
        if database is not None:
            database.save(SAVED_KEY, _encoded(finding.record.schedule))
        self._add(finding)
        if self.save_error is not None:
            # Printed and counted above, the failure had no file: stop, saying why (exit 2).
            raise self.save_error
        if outcome == StopReason.INTERRUPT:
            raise KeyboardInterrupt
        return outcome

    def _keep_unshrunk(
        self, schedule: Schedule, run: Run, violation: Violation, detected: list[float], why: str
    ) -> None:
        """Report a failure as the search found it, when confirming it was cut short by an error (``why``)."""
        record = FailureRecord.of_run(self.spec, run, violation, self.result.seed, schedule=schedule)
        finding = Finding(
            record=record, run=run, violation=violation, path=self._save(record), shrunk=False, cut_short=why
        )
        self._timed(finding, detected)
        self._add(finding)

    def _save(self, record: FailureRecord) -> Path | None:
        """Write ``record`` under the report directory; on failure keep the error and return None.

        A failure that cannot be saved is still reported (printed, counted);
        the kept error then stops the campaign (``_report``).
        """
        try:
            return failure_file.save(record, Path(self.config.report_dir) / "failures")
        except HarnessError as exc:
            self.save_error = self.save_error or exc
            return None

    def _confirm(self, schedule: Schedule, found: Violation) -> tuple[Finding, StopReason | None]:
        """Shrink the schedule, replay it twice, check the traces agree, and save it.

        Returns the finding and what cut shrinking short, if anything:
        ``"interrupt"`` (a stop request) or ``"budget"`` (the shrink grace past
        the wall-clock budget ran out); the smallest failing schedule reached
        is kept. Shrinking keeps to the invariant found first, never trading
        it for another that a smaller schedule happens to break.
        """
        smallest = [schedule]
        grace = self.deadline + SHRINK_GRACE_S if self.deadline is not None else None

        def spend() -> None:
            """Count one shrink run, unless a stop request or the end of the grace ends shrinking."""
            if self.stop_requested():
                raise KeyboardInterrupt
            if grace is not None and time.monotonic() > grace:
                raise _GraceOver
            self.result.shrink_runs += 1
            if self.on_example is not None:
                self.on_example(self.result)

        def still_fails(candidate: Schedule) -> bool:
            spend()
            fails = any(v.invariant == found.invariant for v in self._judge(candidate, notes=False)[1])
            if fails:
                smallest[0] = candidate
            return fails

        def measure(candidate: Schedule) -> Measured | None:
            spend()
            run, violations = self._judge(candidate, notes=False)
            same = [v for v in violations if v.invariant == found.invariant]
            return Measured(len(run.trace), story_length(len(run.trace), same[0].events)) if same else None

        outcome: StopReason | None = None
        needs: tuple[str, ...] = ()
        try:
            schedule = shrink_schedule(schedule, still_fails, self.menu.max_jump_ms)
            schedule = shrink_arguments(schedule, self.menu, still_fails)
            schedule = stop_earlier(schedule, measure)
            schedule, needs = tame_clock(schedule, still_fails)
        except KeyboardInterrupt:
            schedule, outcome = smallest[0], StopReason.INTERRUPT
        except _GraceOver:
            schedule, outcome = smallest[0], StopReason.BUDGET
        first, violations = self._judge(schedule)
        self._check_deterministic(schedule, first)
        same = [v for v in violations if v.invariant == found.invariant]
        if not same:
            raise NondeterministicTarget(
                f"target {self.spec!r} is nondeterministic: a schedule that broke {found.invariant} passed when "
                f"run again with the same trace; {NONDETERMINISTIC_FIX}",
                schedule,
                first,
            )
        behaviours = self._needed_behaviours(schedule, first, found.invariant) if outcome is None else ()
        if needs or behaviours:
            note = clock_note(schedule, needs, found.invariant, lambda s: not self._judge(s, notes=False)[1], behaviours)
            same[0] = replace(same[0], message=same[0].message + note)
        record = FailureRecord.of_run(self.spec, first, same[0], self.result.seed)
        cut = "" if outcome is None else "by an interrupt" if outcome == StopReason.INTERRUPT else "by the budget"
        finding = Finding(
            record=record, run=first, violation=same[0], path=self._save(record), shrunk=outcome is None, cut_short=cut
        )
        return finding, outcome

    def _needed_behaviours(self, schedule: Schedule, run: Run, invariant: str) -> tuple[Behaviour, ...]:
        """The raising cancellers of the shrunk failing ``schedule`` (``run`` its run) without which
        ``invariant`` holds: one run per canceller that raised (review 11, finding 7)."""
        return tuple(
            b
            for b in raising_cancellers(schedule, run.trace)
            if not any(v.invariant == invariant for v in self._judge(b.without, notes=False)[1])
        )

    def _detected(self) -> list[float]:
        """Search seconds so far, examples so far, and now: what a finding records of its detection."""
        now = time.monotonic()
        return [now - self.search_started - self.shrinking_s, self.result.examples, now]

    def _timed(self, finding: Finding, detected: list[float]) -> None:
        """Note when ``finding`` was first seen and how long it took since; that time is not search time."""
        finding.detected_after_s, finding.examples_to_detect = detected[0], int(detected[1])
        finding.shrink_s = time.monotonic() - detected[2]
        self.shrinking_s += finding.shrink_s

    def _judge(self, schedule: Schedule, notes: bool = True) -> tuple[Run, list[Violation]]:
        """``judge`` under the campaign's per-run limit; ``notes=False`` for a shrinking candidate (only its
        invariants are read: a message's note, ``harness.invariants.shared_note``, would cost a replay)."""
        if notes:
            return judge(self.target, schedule, self.config.example_timeout_s)
        return judge(self.target, schedule, self.config.example_timeout_s, notes=False)

    def _check_deterministic(self, schedule: Schedule, first: Run) -> None:
        """Run ``schedule`` again; raise ``NondeterministicTarget`` if the trace differs from ``first``'s."""
        check_deterministic(self.target, schedule, first, self.config.example_timeout_s, self.spec)

    def _shrink_hang(
        self, schedule: Schedule, run: Run, violation: Violation, detected: list[float]
    ) -> tuple[Finding, StopReason | None]:
        """Shrink a schedule that hung (``harness.search.shrink_hang``); the finding, and what cut it short.

        Falls back to the schedule as found, cut after the step that hung
        (``shrunk=False``), when there is no per-run limit, when the shrunk
        schedule does not hang under the full limit, or when the hang's own
        time ran out (then the smallest schedule that still hung under the
        full limit is kept only if confirmed).
        """
        limit = self.config.example_timeout_s
        cut = cut_at_hang(schedule, run)
        if limit is None or not limit > 0:
            return self._save_hang(schedule, run, violation), None
        kind = hang_kind(schedule, run)
        # A typical run: the steps before the one that hung, and the search's mean run (the hang's own time excluded).
        started = time.monotonic()
        self._judge(Schedule(cut.ops[:-1], cut.clock) if run.unfinished_step is not None else Schedule((), cut.clock))
        typical = time.monotonic() - started
        if detected[1] > 1:
            typical = max(typical, (detected[0] - limit) / (detected[1] - 1))
        short = short_limit(typical, limit)
        ends = time.monotonic() + hang_budget(limit)
        grace = self.deadline + SHRINK_GRACE_S if self.deadline is not None else None
        smallest = [cut]

        def still_hangs(candidate: Schedule) -> bool:
            if self.stop_requested():
                raise KeyboardInterrupt
            now = time.monotonic()
            if now > ends or (grace is not None and now > grace):
                raise _GraceOver
            self.result.shrink_runs += 1
            if self.on_example is not None:
                self.on_example(self.result)
            tried, violations = judge(self.target, candidate, short)
            hangs = bool(violations) and violations[0].invariant == HANG and hang_kind(candidate, tried) == kind
            if hangs:
                smallest[0] = cut_at_hang(candidate, tried)
            return hangs

        outcome: StopReason | None = None
        complete = False
        self.result.shrinking = True
        try:
            shrunk = shrink_schedule(cut, still_hangs, self.menu.max_jump_ms)
            shrunk, _ = tame_clock(shrunk, still_hangs)
            complete = True
        except KeyboardInterrupt:
            shrunk, outcome = smallest[0], StopReason.INTERRUPT
        except _GraceOver:
            shrunk = smallest[0]
            if grace is not None and time.monotonic() > grace:
                outcome = StopReason.BUDGET
        finally:
            self.result.shrinking = False
        if shrunk == cut or outcome == StopReason.INTERRUPT:
            return self._save_hang(schedule, run, violation), outcome
        confirmed, violations = self._judge(shrunk)  # under the full limit: a slow run is no hang here
        if not (violations and violations[0].invariant == HANG and hang_kind(shrunk, confirmed) == kind):
            return self._save_hang(schedule, run, violation), outcome
        return replace(self._save_hang(shrunk, confirmed, violations[0]), shrunk=complete), outcome

    def _save_hang(self, schedule: Schedule, run: Run, violation: Violation) -> Finding:
        """Save a schedule that hung, cut after the step that hung (the later steps never ran)."""
        step = run.unfinished_step
        if step is not None:
            schedule = replace(schedule, ops=schedule.ops[: step + 1])
        record = FailureRecord.of_run(self.spec, run, violation, self.result.seed, schedule=schedule)
        return Finding(record=record, run=run, violation=violation, path=self._save(record), shrunk=False)


def _spot_check(eventful: int) -> bool:
    """Whether the ``eventful``-th example with a real trace is run twice to check determinism."""
    return eventful in (1, 3, 10) or eventful % DETERMINISM_EVERY == 0


def _saved(database: ExampleDatabase | None) -> list[tuple[bytes, Schedule]]:
    """The failing schedules earlier campaigns saved in ``database``, to be tried first.

    Entries are schedule JSON (never pickle). One that is not a valid
    schedule (written by another program, or by a later harness) is skipped.
    """
    if database is None:
        return []
    found = []
    for value in sorted(database.fetch(SAVED_KEY)):
        try:
            found.append((value, Schedule.from_json(json.loads(value))))
        except (ValueError, RecursionError):  # JSON or schedule errors
            continue
    return found


def _encoded(schedule: Schedule) -> bytes:
    return json.dumps(schedule.to_json(), sort_keys=True, separators=(",", ":")).encode()


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
