"""The third third-party set (``scenarios.thirdparty.twisted_extra`` and ``synapse_extra``), both ways.

Each correct target (Twisted's or Synapse's code with a user's glue, declaring what its docs
promise) stays clean over a bounded campaign, a longer one in the slow tier (the false-alarm
soak of ``tests/test_soak.py`` runs them too, every clock fault on); each planted twin, a
subclass or glue breaking one documented promise the way a user's code would, is caught with
the invariant named in ``EXPECTED``. Synapse targets skip without the thirdparty extra.

Also here: the false alarm these targets found in the harness (``TimerService`` reports a
failed call with the legacy ``twisted.python.log.err``, which the log capture did not read,
so ``time.loop_died`` called the loop silent), kept as regression tests.
"""

from __future__ import annotations

import pytest
from twisted.python import log
from twisted.python.failure import Failure

from harness import JobSpec, Schedule, Start, Submit, check, load_target, run_schedule
from harness.model.trace import EventKind, Trace
from harness.run.logcapture import LogRecorder, logging_into
from review_campaigns import campaign, spec_id
from scenarios.thirdparty import SCENARIOS, SYNAPSE_EXTRA, TWISTED_EXTRA, available

EXTRA = tuple(s for s in SCENARIOS if s.target.startswith((TWISTED_EXTRA + ":", SYNAPSE_EXTRA + ":")))

#: The planted twins and the invariant that must catch each.
EXPECTED = {
    f"{TWISTED_EXTRA}:timer_service_restarting": "time.early",
    f"{TWISTED_EXTRA}:first_of_timeout": "time.timeout",
    f"{TWISTED_EXTRA}:coroutine_pool_swallowing_cancel": "cancellation.fires",
    f"{TWISTED_EXTRA}:looping_call_count_ones": "user.counts_every_interval",
    f"{TWISTED_EXTRA}:idle_connection_input_only": "user.times_out_only_when_idle",
    f"{SYNAPSE_EXTRA}:shielded_pool_released_on_cancel": "concurrency.limit",
    f"{SYNAPSE_EXTRA}:delayed_pool_shielding_the_wait": "cancellation.no_start",
    f"{SYNAPSE_EXTRA}:expiring_cache_reset_on_get": "user.served_only_while_fresh",
    f"{SYNAPSE_EXTRA}:wheel_timeouts_relative": "user.times_out_after_deadline",
}

#: ExpiringCache's pruning loop and the WheelTimer's poll run Synapse's background-process
#: machinery on every tick until the drain horizon (10 s past the last operation): about 10 to 20
#: times slower a run than the others.
SLOW_TARGETS = {f"{SYNAPSE_EXTRA}:expiring_cache": 5, f"{SYNAPSE_EXTRA}:wheel_timeouts": 5}


def _skip_without_synapse(spec: str) -> None:
    if spec.startswith(SYNAPSE_EXTRA + ":"):
        pytest.importorskip("synapse", reason="needs the thirdparty extra: pip install -e '.[thirdparty]'")


def test_every_correct_target_is_listed_and_available_here_or_skipped() -> None:
    assert len(EXTRA) == 9
    assert {s.target.split(":")[0] for s in EXTRA} == {TWISTED_EXTRA, SYNAPSE_EXTRA}
    assert all(available(s) for s in EXTRA if s.target.startswith(TWISTED_EXTRA))


# --- both ways, fast tier ----------------------------------------------------------------------


@pytest.mark.parametrize("spec", [s.target for s in EXTRA], ids=spec_id)
def test_correct_target_stays_clean(spec: str, tmp_path) -> None:
    _skip_without_synapse(spec)
    examples = 300 // SLOW_TARGETS.get(spec, 1)
    result = campaign(spec, seed=11, examples=examples, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == examples


@pytest.mark.parametrize("spec", sorted(EXPECTED), ids=spec_id)
def test_planted_bug_is_caught_with_the_right_invariant(spec: str, tmp_path) -> None:
    _skip_without_synapse(spec)
    result = campaign(spec, seed=11, examples=3000, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == [EXPECTED[spec]]


# --- the harness defect these targets found: legacy log.err was not read -----------------------


def test_a_failure_logged_with_legacy_log_err_is_recorded() -> None:
    trace = Trace(lambda: 0)
    with logging_into(LogRecorder(trace)):
        log.err(Failure(RuntimeError("logged the old way")), "a failed call")
    kinds = [event.kind for event in trace.events]
    assert kinds == [EventKind.LOG_ERROR]
    assert "RuntimeError" in trace.events[0].detail


def test_timer_service_reporting_a_failed_call_with_log_err_is_not_a_dead_loop() -> None:
    """The first schedule the campaign shrank to: the first call (at start, ``now=True``) raises;
    ``TimerService._failed`` logs it with ``log.err`` and the loop ends, as documented."""
    target = load_target(f"{TWISTED_EXTRA}:timer_service")
    run = run_schedule(target, Schedule(ops=(Start(at_ms=0, job=0, spec=JobSpec(kind="raise", error="RuntimeError")),)))
    assert any(event.kind == EventKind.LOG_ERROR for event in run.trace.events)
    assert check(run) == []


def test_a_timer_service_that_never_started_stops_cleanly() -> None:
    """The harness stops every subject at the end of a run, a periodic one never started too (a
    schedule may hold no ``Start``); the glue's ``stop()`` must not call ``stopService`` then."""
    target = load_target(f"{TWISTED_EXTRA}:timer_service")
    run = run_schedule(target, Schedule(ops=()))
    assert check(run) == []


# --- the twins are what their docstrings say, by hand --------------------------------------------


def test_idle_connection_times_out_300ms_after_the_last_response() -> None:
    target = load_target(f"{TWISTED_EXTRA}:idle_connection")
    run = run_schedule(target, Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=100)),)))
    fired = [event.t_us for _, event in run.view.of_kind("timer.fire") if "__timedOut" in event.detail]
    assert fired == [400_000] and check(run) == []


def test_delay_cancellation_inside_semaphore_run_keeps_the_slot() -> None:
    """Unlike ``stop_cancellation`` there (the twin ``shielded_pool_released_on_cancel``), a
    ``delay_cancellation`` inside ``DeferredSemaphore.run`` fails only when the job ends, so the
    slot is released no sooner: by hand, three jobs, the first cancelled while it runs."""
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    from twisted.internet import defer, task

    from synapse.util.async_helpers import delay_cancellation, stop_cancellation

    for shield, most in ((stop_cancellation, 3), (delay_cancellation, 2)):
        clock, semaphore, running = task.Clock(), defer.DeferredSemaphore(2), [0]
        peak = [0]

        def job() -> defer.Deferred[None]:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            d = task.deferLater(clock, 1.0, lambda: None)
            return d.addBoth(lambda r: running.__setitem__(0, running[0] - 1))

        callers = [semaphore.run(lambda: shield(defer.maybeDeferred(job))) for _ in range(3)]
        for caller in callers:
            caller.addErrback(lambda f: None)
        callers[0].cancel()
        clock.advance(2.0)
        assert peak[0] == most, shield.__name__


# --- long campaigns, slow tier -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("spec", [s.target for s in EXTRA if s.target not in SLOW_TARGETS], ids=spec_id)
def test_correct_target_stays_clean_over_a_long_campaign(spec: str, tmp_path) -> None:
    _skip_without_synapse(spec)
    result = campaign(spec, seed=3, examples=2000, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []


def test_idle_connection_refusing_before_its_timeout_is_caught_by_errors_rejects() -> None:
    """``rejects_only_while=refused_only_once_timed_out``: ``rejects`` alone would excuse a
    connection that refuses requests while it is open."""
    from harness import Target
    from scenarios.thirdparty import twisted_extra

    class ClosedAtOnce(twisted_extra.IdleConnection):
        def __init__(self, clock) -> None:  # type: ignore[no-untyped-def]
            super().__init__(clock)
            self.open = False

    target = Target(build=ClosedAtOnce, rejects=(twisted_extra.ConnectionTimedOut,),
                    rejects_only_while=twisted_extra.refused_only_once_timed_out)
    run = run_schedule(target, Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=10)),)))
    assert [v.invariant for v in check(run)] == ["errors.rejects"]
