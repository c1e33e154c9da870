"""Callers of a shared execution the subject cancelled, and timeouts due after the run drained.

* ``sharing.joined``: a caller that joined an execution the subject cancelled (its own timeout, say) gets
  what the caller that started it got in that instant (a cancelled execution has no outcome of its own);
* ``time.timeout`` with ``shared``: a caller still waiting on an execution when it timed out times out with
  it: it fails with the timeout error then, or, never answered while nothing else of its key runs, it is a
  timeout bug (``completion.deadline`` said only "deadlock or starvation");
* ``time.timeout`` after the drain: a timeout due after the run drained is judged when nothing at all was
  left scheduled then (``drained pending=0``): no timer could ever fire it.

Both ways: ``scenarios.timed_flight``'s correct flight and the single-flight subjects clean, every twin
caught by its invariant; long campaigns under ``slow``.
"""

from __future__ import annotations

from dataclasses import replace

from harness import Cancel, ClockPolicy, JobSpec, Schedule, Start, Stop, Submit, Target, check, load_target, run_schedule

from fault_campaigns import STRATEGIES
from scenarios import CATALOG
from zoo_checks import Zoo, name_id

FLIGHT = "scenarios.timed_flight"
HANG = JobSpec("hang")
OK = JobSpec("succeed", 10)
JOINED = (Submit(0, 0, HANG), Submit(0, 1, OK), Submit(100, 2, OK))
#: The same, the caller that started the execution cancelling (detaching) at 50ms.
DETACHED = (Submit(0, 0, HANG), Submit(0, 1, OK), Cancel(50, 0), Submit(100, 2, OK))


def _verdicts(spec: str | Target, *ops, clock: ClockPolicy | None = None) -> list[tuple[str, str]]:
    target = load_target(spec) if isinstance(spec, str) else spec
    return [(v.invariant, v.message) for v in check(run_schedule(target, Schedule(tuple(ops), clock or ClockPolicy())))]


def _names(spec: str | Target, *ops, clock: ClockPolicy | None = None) -> list[str]:
    return [name for name, _ in _verdicts(spec, *ops, clock=clock)]


# -- a shared execution that timed out -------------------------------------------------------------------

def test_every_caller_of_a_timed_out_execution_fails_with_the_timeout_error():
    assert _names(f"{FLIGHT}:timed_flight", *JOINED) == []
    # the caller that started it detached first: the joined ones still time out with it
    assert _names(f"{FLIGHT}:timed_flight", *DETACHED) == []


def test_joined_callers_left_waiting_are_a_timeout_bug():
    [(name, message), *rest] = _verdicts(f"{FLIGHT}:stranding_flight", *JOINED)
    assert name == "time.timeout"
    assert message == (
        "job 1 was waiting on job 0's execution of key 0 when it timed out at 300ms (300ms after it started), and "
        "its Deferred never fired (no other execution of key 0 ran then or started after); a caller that joined "
        "an execution times out with it, failing with TimeoutError then")
    assert [n for n, _ in rest] == ["completion.deadline"]  # what named it before


def test_joined_callers_answered_otherwise_than_the_execution_they_joined():
    (name, message), *_ = _verdicts(f"{FLIGHT}:fallback_flight", *JOINED)
    assert name == "sharing.joined"
    assert "answered its own caller (job 0) otherwise: it failed with TimeoutError" in message
    # with the first caller detached there is no answer to compare with: the timeout promise names it
    [(name, message)] = _verdicts(f"{FLIGHT}:fallback_flight", *DETACHED)
    assert name == "time.timeout" and "but its Deferred fired with None, not TimeoutError" in message


def test_joined_callers_failed_with_another_error_or_cancelled():
    assert _names(f"{FLIGHT}:rewrapping_flight", *JOINED)[0] == "time.timeout"
    assert _names(f"{FLIGHT}:rewrapping_flight", *DETACHED) == ["time.timeout"]
    assert _names(f"{FLIGHT}:cancelling_flight", *JOINED) == ["sharing.isolated"]


def test_a_caller_queued_for_the_next_execution_is_not_held_to_the_one_that_timed_out():
    # A flight that, when an execution times out, runs the waiting callers' own jobs afresh: each is then
    # judged by its own execution, not held to the one that timed out.
    from scenarios.single_flight import _Flight
    from scenarios.timed_flight import TimedFlight

    class NextFlight(TimedFlight):
        def submit(self, job, key):
            caller = super().submit(job, key)
            caller.job = job  # what a fresh execution for this caller runs
            return caller

        def _land(self, outcome, key, flight):
            waiting = flight.callers[1:]
            flight.callers[1:] = []
            super()._land(outcome, key, flight)
            if waiting:  # one fresh execution (the first waiting caller's job), the others join it
                fresh = self._flights[key] = _Flight()
                fresh.callers.extend(waiting)
                fresh.work = waiting[0].job()
                fresh.work.addBoth(super()._land, key, fresh)

    target = replace(load_target(f"{FLIGHT}:timed_flight"), build=NextFlight)
    assert _names(target, *JOINED) == []


def test_an_abandoned_execution_owes_its_callers_nothing():
    # Every caller cancelled (abandon): the execution cancelled then is no timeout, nobody is waiting.
    assert _names("scenarios.single_flight:last_caller_flight", Submit(0, 0, HANG), Submit(0, 1, OK),
                  Cancel(20, 0), Cancel(30, 1)) == []


# -- a timeout due after the drain, with nothing left scheduled ----------------------------------------------

def test_a_forgotten_timeout_is_named_by_time_timeout_even_when_the_run_drains_first():
    from specimens import WaitTimeout

    forgot = Target(build=lambda clock: WaitTimeout(clock, timeout_ms=None), limit=2, timeout_ms=300)
    [(name, message), *rest] = _verdicts(forgot, Submit(0, 0, HANG))
    assert name == "time.timeout"
    assert message == ("job 0 was still running when the run drained at 0ms with nothing left scheduled: no timeout "
                       "could cancel it at 300ms, 300ms after it started")
    assert [n for n, _ in rest] == ["completion.deadline"]
    # the correct pool's timer is pending at the drain's floor: it fires, the job times out
    assert _names("scenarios.timeout:timeout_pool", Submit(0, 0, HANG)) == []


def test_a_stop_of_the_schedule_excuses_it_the_teardown_stop_does_not():
    from scenarios.single_flight import SingleFlight
    from scenarios.timed_flight import TimedFlight

    class Stoppable(TimedFlight):
        def _execute(self, job):  # no timeout set: the twin
            return SingleFlight._execute(self, job)

        def stop(self):
            for flight in list(self._flights.values()):
                if flight.work is not None:
                    flight.work.cancel()

    target = replace(load_target(f"{FLIGHT}:timed_flight"), build=Stoppable)
    assert _names(target, Submit(0, 0, HANG))[0] == "time.timeout"  # the teardown stop cancels it at 0ms
    assert "time.timeout" not in _names(target, Submit(0, 0, HANG), Stop(100))


def test_a_periodic_call_whose_timeout_was_never_set_is_caught_after_the_drain():
    looping = replace(load_target("scenarios.thirdparty.twisted_prims:looping_call"), timeout_ms=1000)
    [(name, message)] = _verdicts(looping, Start(0, 0, HANG))
    assert name == "time.timeout" and "with nothing left scheduled: no timeout could cancel it at 1100ms" in message
    assert _names(looping, Start(0, 0, HANG), Stop(500)) == []  # a stop() before the drain excuses it


def test_calls_left_pending_at_the_drain_keep_the_old_horizon():
    # A heartbeat ticking on (its LoopingCall pending at the drain): a timeout due after the drain is not judged.
    beat = replace(load_target("scenarios.review.round4.declared:heartbeat_no_timeout"), timeout_ms=60_000)
    assert "time.timeout" not in _names(beat, Start(0, 0, HANG))


# -- campaigns -----------------------------------------------------------------------------------------------

TWINS = [s for s in CATALOG if s.target.startswith(f"{FLIGHT}:") and s.expect != "pass"]
CORRECT = [f"{FLIGHT}:timed_flight", "scenarios.single_flight:single_flight", "scenarios.single_flight:caching_flight",
           "scenarios.single_flight:last_caller_flight", "scenarios.review.round4.mistakes:swr_timeout_declared",
           "scenarios.review.round4.targets:swr"]


#: Every campaign searches on after a finding, so that every distinct alarm is counted.
ZOO = Zoo(tuple(CORRECT), tuple(TWINS), ids=name_id, search_on=True)

test_correct_timed_flight_passes_a_short_campaign = ZOO.clean(
    seed=5, examples=400, all_faults=True, subjects=[f"{FLIGHT}:timed_flight"])
test_twins_are_caught_by_their_invariant = ZOO.caught(seeds=1, examples=1000)
test_correct_shared_subjects_pass_long_campaigns_with_every_clock_fault = ZOO.clean(
    seed=31, examples=1_500, strategies=STRATEGIES, all_faults=True, slow=True)
test_twins_are_caught_whatever_the_seed = ZOO.caught(seeds=[2, 3, 4], examples=2000, slow=True)
