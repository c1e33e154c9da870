"""Cancellation modes: ``cancellable=True`` cancels the work, ``"detach"`` fails the caller and lets the work run on."""

from __future__ import annotations

import dataclasses

import pytest

from harness import CampaignConfig, JobSpec, Menu, Schedule, Submit, Target, TargetError, check, run_campaign, run_schedule
from harness.invariants import invariants_for
from harness.model.schedule import Cancel
from scenarios.cancel import DetachingPool
from scenarios.pools import SemaphorePool

DETACHED = Target(build=lambda clock: DetachingPool(clock, limit=2), limit=2, order="fifo", cancellable="detach")
#: A pool that cancels the running work, declared as one that detaches: the wrong promise.
CANCELLING = Target(build=lambda clock: SemaphorePool(clock, limit=2), limit=2, cancellable="detach")
CANCEL_RUNNING = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Cancel(5, 0)))


def _names(target: Target) -> set[str]:
    return {inv.name for inv in invariants_for(target)}


def test_each_mode_switches_on_its_own_invariants() -> None:
    detach, cancel = _names(DETACHED), _names(Target(build=SemaphorePool))
    assert "cancellation.detaches" in detach and "cancellation.propagates" not in detach
    assert "cancellation.propagates" in cancel and "cancellation.detaches" not in cancel
    assert not {n for n in _names(Target(build=SemaphorePool, cancellable=False)) if n.startswith("cancellation.")}
    assert DETACHED.default_menu().cancels and not Target(build=SemaphorePool, cancellable=False).default_menu().cancels


def test_a_detached_caller_fails_at_once_while_its_job_runs_on() -> None:
    run = run_schedule(DETACHED, CANCEL_RUNNING)
    kinds = [(e.t_us // 1000, e.kind) for e in run.trace if e.job == 0]
    assert (5, "failure") in kinds and (10, "job.finish") in kinds
    assert check(run) == []


def test_work_cancelled_under_a_detach_promise_is_caught() -> None:
    [violation] = check(run_schedule(CANCELLING, CANCEL_RUNNING))
    assert violation.invariant == "cancellation.detaches"
    assert "job 0's caller was cancelled at 5ms" in violation.message


def test_a_detaching_pool_declared_as_such_passes_a_campaign(tmp_path) -> None:
    config = CampaignConfig(seed=4, max_examples=300, report_dir=str(tmp_path), database=None, regressions=None)
    result = run_campaign(DETACHED, "tests.test_cancel_modes:DETACHED", config)
    assert [f.record.message for f in result.findings] == []


# cancellable="abandon" (review findings 1-3): detach, but work every caller has cancelled may be dropped.

_ABANDON_SCHEDULES = {
    # both callers of key 0 cancel: the shared work is abandoned (cancelled) at the second cancel
    "every caller cancels": (Submit(0, 0, JobSpec("succeed", 10)), Submit(0, 1, JobSpec("succeed", 10)), Cancel(2, 1), Cancel(3, 0)),
}


@pytest.mark.parametrize("name", sorted(_ABANDON_SCHEDULES))
def test_a_single_flight_that_abandons_work_nobody_waits_for_keeps_its_abandon_promise(name) -> None:
    from scenarios.single_flight import last_caller_flight

    schedule = Schedule(_ABANDON_SCHEDULES[name])
    assert check(run_schedule(last_caller_flight, schedule)) == []
    detached = dataclasses.replace(last_caller_flight, cancellable="detach")
    if name == "every caller cancels":  # with "detach", dropping the work is a violation, as before
        assert [v.invariant for v in check(run_schedule(detached, schedule))] == ["cancellation.detaches"]


def test_an_abandoned_execution_nobody_waits_for_is_not_counted_by_the_key_limit() -> None:
    from scenarios.single_flight import LastCallerFlight, last_caller_flight

    class LeavesWorkRunning(LastCallerFlight):
        """Abandons a flight without cancelling its work (as a shielded job would): it runs on, unwatched."""

        def _cancel_caller(self, flight, caller):
            flight.callers.remove(caller)
            if not flight.callers:
                flight.done = True
                self._flights = {k: f for k, f in self._flights.items() if f is not flight}

    target = dataclasses.replace(last_caller_flight, build=LeavesWorkRunning)
    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Cancel(2, 0), Submit(3, 1, JobSpec("succeed", 10))))
    assert check(run_schedule(target, schedule)) == []
    # while a caller still waits for the first execution, a second one for the key is over the limit
    waiting = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(3, 1, JobSpec("succeed", 10))))
    assert check(run_schedule(dataclasses.replace(target, build=_TwoAtOnce), waiting))[0].invariant == "concurrency.key_limit"


class _TwoAtOnce:
    """Starts every call at once, even for a key already running."""

    def __init__(self, clock) -> None:
        self.clock = clock

    def submit(self, job, key):
        from twisted.internet import defer

        return defer.maybeDeferred(job)


def test_abandon_still_catches_work_cancelled_while_a_caller_waits() -> None:
    from scenarios.single_flight import owner_cancels_flight

    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(0, 1, JobSpec("succeed", 10)), Cancel(5, 0)))
    names = [v.invariant for v in check(run_schedule(owner_cancels_flight, schedule))]
    assert names[:1] == ["cancellation.detaches"] and "sharing.isolated" in names, names


def test_sharing_isolated_does_not_vanish_with_the_cancel_mode() -> None:
    from scenarios.single_flight import single_flight

    for mode in (True, "detach", "abandon", False):
        assert "sharing.isolated" in _names(dataclasses.replace(single_flight, cancellable=mode))


def test_a_cancelling_menu_on_a_target_that_promises_nothing_about_cancels_is_refused() -> None:
    with pytest.raises(TargetError, match=r"cancellable=False .* but its menu draws cancels: pass Menu\(cancels=False"):
        Target(build=SemaphorePool, cancellable=False, menu=Menu(keys=0))
    Target(build=SemaphorePool, cancellable=False, menu=Menu(cancels=False))
    Target(build=SemaphorePool, cancellable="abandon", menu=Menu())


def test_abandon_judges_the_cancel_that_left_nobody_waiting_not_an_earlier_one_of_the_same_instant() -> None:
    from scenarios.single_flight import last_caller_flight

    # found by a 5,000-example campaign: job 0's cancel leaves job 1 waiting; job 1's cancel, same instant, abandons
    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(0, 1, JobSpec("succeed", 0)), Cancel(0, 0), Cancel(0, 1)))
    assert check(run_schedule(last_caller_flight, schedule)) == []


def test_a_hostile_work_canceller_raising_through_the_last_callers_cancel_is_not_the_subjects_fault() -> None:
    from scenarios.single_flight import last_caller_flight

    # found by a 5,000-example campaign: job 1's cancel abandons job 0's work, whose canceller raises
    hostile = JobSpec("succeed", 10, canceller_raises=True)
    schedule = Schedule((Submit(0, 0, hostile), Submit(0, 1, JobSpec("succeed", 0)), Cancel(0, 0), Cancel(0, 1)))
    assert check(run_schedule(last_caller_flight, schedule)) == []
