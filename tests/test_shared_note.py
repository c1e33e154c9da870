"""Review 4, finding 11: a subject that hands one Deferred to several callers is told so.

The violation is whichever promise the schedule reaches first (``sharing.joined``, ``cancellation.detaches``,
``cancellation.fires``); ``check`` appends the cause to its message (``harness.invariants.shared_note``),
found by replaying a failing run in which some caller received None (``harness.run.shared_handles``). The
verdict (invariant, events, jobs, time) is unchanged; a correct subject, and a buggy one whose callers each
have their own Deferred, get no note; a passing run replays nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from twisted.internet import defer

import harness.invariants
import harness.run.runner
from harness import Cancel, JobSpec, Schedule, Submit, Target, check, load_target, run_schedule
from harness.run.diagnosis import diagnose
from harness.run.shared_handles import shared_deferreds

TWIN = "scenarios.review.round4.targets:swr_shared_deferred"
SWR = "scenarios.review.round4.targets:swr"
NOTE = "submit returned the same Deferred for"

# The shrunk schedules campaigns of the twin reported (seeds 1 to 4, 3,000 examples), and what each broke.
SEEN = [
    ("sharing.joined", "job 1 (key 0) received None but the execution it joined (job 0) failed",
     Schedule((Submit(0, 0, JobSpec("fail", 5)), Submit(0, 1, JobSpec())))),
    ("cancellation.detaches", "job 0's caller was cancelled at 0ms and the job's own work was cancelled too",
     Schedule((Submit(0, 0, JobSpec("succeed", 5)), Submit(0, 1, JobSpec()), Cancel(0, 0)))),
    ("cancellation.fires", "job 1 was cancelled at 0ms but its Deferred then delivered a result (None)",
     Schedule((Submit(0, 0, JobSpec("succeed", 5)), Submit(0, 1, JobSpec()), Cancel(0, 1)))),
]
CAUSE = ("; the cause: submit returned the same Deferred for job 0 and job 1 (each caller needs its own Deferred: "
         "a caller receives what an earlier caller's callbacks returned, and one caller's cancel reaches them all)")


@pytest.mark.parametrize("invariant, fragment, schedule", SEEN, ids=[row[0] for row in SEEN])
def test_the_twin_is_told_its_callers_share_one_deferred(invariant: str, fragment: str, schedule: Schedule) -> None:
    [first, *_] = check(run_schedule(load_target(TWIN), schedule))
    assert first.invariant == invariant
    assert fragment in first.message
    assert first.message.endswith(CAUSE), first.message


@pytest.mark.parametrize("invariant, fragment, schedule", SEEN, ids=[row[0] for row in SEEN])
def test_the_verdict_is_unchanged_only_the_message_says_more(invariant, fragment, schedule, monkeypatch) -> None:
    run = run_schedule(load_target(TWIN), schedule)
    noted = check(run)
    monkeypatch.setattr(harness.invariants, "noted", lambda run, found: found)
    plain = check(run_schedule(load_target(TWIN), schedule))
    assert [replace(v, message="") for v in noted] == [replace(v, message="") for v in plain]
    assert [v.message for v in noted] == [v.message + CAUSE for v in plain]


@pytest.mark.parametrize("invariant, fragment, schedule", SEEN, ids=[row[0] for row in SEEN])
def test_the_correct_cache_keeps_its_promises_on_the_same_schedules(invariant, fragment, schedule) -> None:
    assert check(run_schedule(load_target(SWR), schedule)) == []


class OneFlight:
    """Every caller gets the one Deferred of the running job (of any key); a new job once it fired."""

    def __init__(self, clock: Any, delay_ms: int = 0) -> None:
        self.clock = clock
        self.delay_ms = delay_ms
        self.flight: defer.Deferred[Any] | None = None

    def submit(self, job: Any, key: int = 0) -> defer.Deferred[Any]:
        if self.flight is None or self.flight.called:
            self.flight = defer.maybeDeferred(job)
            if self.delay_ms:
                self.clock.callLater(self.delay_ms / 1000, lambda: None)
        return self.flight


ONE_FLIGHT = Target(build=OneFlight, keys=2, shared=True, cancellable="detach")
THREE = Schedule((Submit(0, 0, JobSpec("fail", 10)), Submit(0, 1, JobSpec()), Submit(0, 2, JobSpec())))


def test_three_callers_of_one_deferred_are_named_together() -> None:
    run = run_schedule(ONE_FLIGHT, THREE)
    assert shared_deferreds(run) == ((0, 1, 2),)
    [first, *_] = check(run)
    assert first.invariant == "sharing.joined"
    assert "the cause: submit returned the same Deferred for jobs 0, 1 and 2 (" in first.message


def test_callers_with_their_own_deferreds_get_no_note_though_one_received_none() -> None:
    # MisSharing("swallow") answers a joining caller with None when the execution fails: the same
    # symptom, but from a Deferred of its own. The replay runs (a caller received None) and finds no sharing.
    from specimens import MisSharing

    target = Target(build=lambda clock: MisSharing(clock, "swallow"), keys=2, shared=True, cancellable="detach")
    run = run_schedule(target, THREE)
    assert any(e.kind == "result" and e.detail == "None" for e in run.trace)
    assert shared_deferreds(run) == ()
    [first, *_] = check(run)
    assert first.invariant == "sharing.joined" and NOTE not in first.message


BUILDS = [0]


def _drifting(clock: Any) -> OneFlight:
    """A nondeterministic subject: each build sets its timer 1 ms later than the one before."""
    BUILDS[0] += 1
    return OneFlight(clock, delay_ms=BUILDS[0])


def test_a_replay_that_parts_from_the_run_says_nothing() -> None:
    # The Deferred is shared in the replay too, but the replay's trace is not the run's: the note is not
    # about the run the violation judged, so none is given.
    run = run_schedule(replace(ONE_FLIGHT, build=_drifting), THREE)
    assert shared_deferreds(run) == ()
    [first, *_] = check(run)
    assert first.invariant == "sharing.joined" and NOTE not in first.message


def test_a_passing_run_and_a_failing_run_without_none_replay_nothing(monkeypatch) -> None:
    passing = run_schedule(load_target(SWR), SEEN[0][2])
    failing = run_schedule(load_target("scenarios.single_flight:leader_holds_work_flight"), SEEN[1][2])
    failing.diagnosis = diagnose(failing)
    passing.diagnosis = diagnose(passing)

    def no_replay(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("replayed")

    monkeypatch.setattr(harness.run.runner, "run_schedule", no_replay)
    assert check(passing) == []
    [first, *_] = check(failing)
    assert first.invariant == "cancellation.detaches" and NOTE not in first.message


def test_a_campaign_reports_and_saves_the_cause(tmp_path) -> None:
    from harness import CampaignConfig, run_campaign
    from harness.store import failure_file

    config = CampaignConfig(max_examples=3000, seed=1, report_dir=str(tmp_path), regressions=None, database=None)
    [finding] = run_campaign(load_target(TWIN), TWIN, config).findings
    assert finding.violation.message.endswith(CAUSE)
    assert failure_file.load(finding.path).message.endswith(CAUSE)


def test_shrinking_candidates_are_judged_without_the_note(tmp_path, monkeypatch) -> None:
    # Only the failing search example and the shrunk schedule's final judgement look for the cause:
    # the candidates shrinking tries need only which invariants broke (no replay each).
    from harness import CampaignConfig, run_campaign

    calls: list[int] = []
    real = harness.invariants.noted

    def counting(run, found):
        calls.append(len(found))
        return real(run, found)

    monkeypatch.setattr(harness.invariants, "noted", counting)
    config = CampaignConfig(max_examples=3000, seed=1, report_dir=str(tmp_path), regressions=None, database=None)
    result = run_campaign(load_target(TWIN), TWIN, config)
    assert result.findings[0].violation.message.endswith(CAUSE)
    assert result.shrink_runs > 10 and len(calls) == 2


def test_the_none_looked_for_is_how_the_harness_describes_none() -> None:
    from harness.run import shared_handles
    from harness.run.describe import describe

    assert shared_handles.NONE == describe(None)
    run = run_schedule(ONE_FLIGHT, THREE)
    assert shared_handles.received_none(run) and shared_deferreds(run) == ((0, 1, 2),)


class _Loop:
    """A periodic subject whose start() Deferred delivers None when stopped, and which leaks a timer at stop."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def start(self, work: Any) -> defer.Deferred[Any]:
        from twisted.internet import task

        self.loop = task.LoopingCall(work)
        self.loop.clock = self.clock
        return self.loop.start(0.1).addCallback(lambda _: None)

    def stop(self) -> None:
        self.loop.stop()
        self.clock.callLater(100, lambda: None)


def test_a_periodic_run_that_received_none_replays_nothing(monkeypatch) -> None:
    # A periodic target's submit is never called: no replay can find a shared Deferred in its runs.
    from harness.model.schedule import Start, Stop

    target = Target(build=_Loop, kind="periodic", interval_ms=100, stop_cancels_timers=True)
    run = run_schedule(target, Schedule((Start(0, 0, JobSpec("succeed", 5)), Stop(300))))
    assert any(e.kind == "result" and e.detail == "None" for e in run.trace)
    replays: list[int] = []
    real = harness.run.runner.run_schedule
    monkeypatch.setattr(harness.run.runner, "run_schedule", lambda *a, **k: replays.append(1) or real(*a, **k))
    [first] = check(run)
    assert first.invariant == "leaks.calls" and NOTE not in first.message
    assert replays == []


def test_a_campaign_searching_on_replays_only_for_what_it_reports(tmp_path, monkeypatch) -> None:
    # Searching on past found (or ignored) invariants, most failing examples break only those: their
    # messages are never read, so no replay looks for the cause (it did for each: 738 replays in 3,000
    # examples of the twin, a whole run each). What is reported keeps its note.
    from harness import CampaignConfig, run_campaign
    import harness.invariants.shared_note as shared_note

    replays: list[int] = []
    real = shared_note.shared_deferreds
    monkeypatch.setattr(shared_note, "shared_deferreds", lambda run: replays.append(1) or real(run))
    config = CampaignConfig(
        max_examples=800, seed=1, max_failures=10, ignore=frozenset({"sharing.joined"}),
        report_dir=str(tmp_path), regressions=None, database=None,
    )
    result = run_campaign(load_target(TWIN), TWIN, config)
    assert [f.violation.invariant for f in result.findings] == ["cancellation.fires", "cancellation.detaches", "sharing.isolated"]
    assert len(replays) <= 2 * len(result.findings)  # the example found, and the shrunk schedule's final judgement
    assert all(f.violation.message.endswith(CAUSE) for f in result.findings)


def test_a_target_invariant_that_checks_its_run_is_not_replayed_without_end() -> None:
    # The note's replay runs the target's own invariants (its trace must be the run's): one that calls
    # check(run) on a failing run replayed the run again from inside the replay, and again, until the
    # wall-clock limit blamed a hang on the invariant. A replay inside a replay looks for no cause.
    checked: list[list[str]] = []

    def checks_itself(run: Any) -> None:
        checked.append([v.invariant for v in check(run)])

    target = replace(load_target(TWIN), invariants=(checks_itself,))
    run = run_schedule(target, SEEN[0][2], timeout_s=3)
    assert checked == [["sharing.joined"]] * 2  # the run's, and that of the one replay its check made
    [first, *_] = check(run)
    assert first.invariant == "sharing.joined" and first.message.endswith(CAUSE)
    assert len(checked) == 3  # the one replay of this check's note, whose invariant's check replayed nothing


class _PoolTarget(Target):
    """A Target of the user's own making: its ``__init__`` takes other arguments than the fields."""

    def __init__(self, delay_ms: int) -> None:
        super().__init__(build=lambda clock: OneFlight(clock, delay_ms), keys=2, shared=True, cancellable="detach")


class _Uncopyable(_PoolTarget):
    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("not copyable")


def test_a_target_subclass_of_the_users_own_making_is_noted_and_never_a_traceback() -> None:
    # The watched replay was made by dataclasses.replace, which calls the class with every field:
    # check() raised "TypeError: __init__() got an unexpected keyword argument 'submit'".
    [first, *_] = check(run_schedule(_PoolTarget(0), THREE))
    assert first.invariant == "sharing.joined" and "the same Deferred for jobs 0, 1 and 2 (" in first.message
    [first, *_] = check(run_schedule(_Uncopyable(0), THREE))
    assert first.invariant == "sharing.joined" and NOTE not in first.message


def test_a_second_stop_while_the_shrunk_schedule_is_judged_keeps_the_failure(tmp_path, monkeypatch) -> None:
    # A stop during shrinking ends it; the shrunk schedule is then judged once more (with the note's replay:
    # about three runs) and saved. A second stop signal there, or the repeat of the first after its grace
    # (harness.guard.signals: 5 s, short for a slow target), raised KeyboardInterrupt out of that judgement:
    # the failure found was neither saved nor reported, and the campaign ended as if clean.
    from harness import CampaignConfig, run_campaign
    from harness.search.stop_reasons import StopReason
    from harness.store import failure_file
    import harness.invariants.shared_note as shared_note

    stopping: list[bool] = []
    real = shared_note.shared_deferreds

    def interrupted(run: Any) -> Any:
        if stopping:
            raise KeyboardInterrupt  # the second signal, in the note's replay of the shrunk schedule
        return real(run)

    monkeypatch.setattr(shared_note, "shared_deferreds", interrupted)
    config = CampaignConfig(max_examples=3000, seed=1, report_dir=str(tmp_path), regressions=None, database=None)
    result = run_campaign(
        load_target(TWIN), TWIN, config,
        on_example=lambda result: result.shrink_runs >= 3 and stopping.append(True),
        stop_requested=lambda: bool(stopping),
    )
    assert result.stopped_by == StopReason.INTERRUPT
    [finding] = result.findings
    assert finding.violation.invariant == "sharing.joined" and not finding.shrunk
    assert failure_file.load(finding.path).invariant == "sharing.joined"
