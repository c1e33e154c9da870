"""Backoff loops: periodic targets declaring backoff_ms, judged by time.early, time.backoff, overlap, after_stop, loop_died."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness import JobSpec, Schedule, Stop, Target, TargetError, check, run_schedule
from harness.model.schedule import Start
from scenarios.backoff_loop import ReconnectingClient, flat_backoff, reconnecting_client, retry_outlives_stop

FAIL = JobSpec("fail", 0)
OK = JobSpec("succeed", 0)


def _names(target: Target, *ops) -> list[str]:
    return [v.invariant for v in check(run_schedule(target, Schedule(tuple(ops))))]


def test_a_stop_during_a_long_backoff_wait_is_no_dead_loop() -> None:
    # Failures at 0, 100, 300, 700: the fourth retry waits 800ms, until 1500; stop() at 1200 is mid-wait.
    assert _names(reconnecting_client, Start(0, 0, FAIL), Stop(1200)) == []
    # Judged against a fixed 100ms period instead, the same correct run looked like a loop that died.
    periodic = replace(reconnecting_client, backoff_ms=None, interval_ms=100)
    assert "time.loop_died" in _names(periodic, Start(0, 0, FAIL), Stop(1200))


def test_a_correct_backoff_loop_passes_failures_successes_and_stops() -> None:
    then = (FAIL, OK, FAIL, FAIL, JobSpec("succeed", 30))
    assert _names(reconnecting_client, Start(0, 0, FAIL, then), Stop(2_000)) == []
    assert _names(reconnecting_client, Start(0, 0, FAIL, then)) == []  # stopped at the end of the run


def test_a_backoff_that_never_grows_is_early() -> None:
    run = run_schedule(flat_backoff, Schedule((Start(0, 0, FAIL),)))
    (early,) = [v for v in check(run) if v.invariant == "time.early"]
    assert early.message == (
        "periodic call 2 came at 200ms, 100ms after call 1 failed (retry 2); the declared wait is at least 200ms"
    )


def test_a_retry_left_pending_by_stop_runs_after_stop() -> None:
    # Failure at 0, retry due at 100; stop() at 50 forgets it.
    assert _names(retry_outlives_stop, Start(0, 0, FAIL), Stop(50))[:1] == ["time.after_stop"]
    # A stop during the wait after a session is handled: that reconnect is cancelled.
    assert _names(retry_outlives_stop, Start(0, 0, OK), Stop(50)) == []


class SlowBackoff(ReconnectingClient):
    """Waits three times the declared backoff."""

    def _failed(self, _) -> None:
        self.failures += 1
        self._later(3 * 100 * 2 ** (self.failures - 1))


class Overlapping(ReconnectingClient):
    """Schedules the next attempt when an attempt starts, not when it ends."""

    def _attempt(self) -> None:
        self._next = None
        self._later(100)
        self._connect()


class GivesUp(ReconnectingClient):
    """Stops retrying after the second failure in a row, silently."""

    def _failed(self, failure) -> None:
        if self.failures < 1:
            super()._failed(failure)


def _like(build) -> Target:
    return replace(reconnecting_client, build=build)


def test_waits_beyond_the_backoff_range_break_time_backoff() -> None:
    names = _names(_like(SlowBackoff), Start(0, 0, FAIL), Stop(2_000))
    assert names[:1] == ["time.backoff"]


def test_overlapping_attempts_break_time_overlap() -> None:
    assert "time.overlap" in _names(_like(Overlapping), Start(0, 0, JobSpec("succeed", 250)), Stop(1_000))


def test_a_loop_that_gives_up_silently_dies() -> None:
    assert _names(_like(GivesUp), Start(0, 0, FAIL)) == ["time.loop_died"]


def test_a_periodic_target_declares_an_interval_or_a_backoff() -> None:
    with pytest.raises(TargetError, match="interval_ms .* or backoff_ms"):
        Target(build=ReconnectingClient, kind="periodic")
    assert reconnecting_client.period_ms() == 800 and reconnecting_client.backoff_loop


def test_time_backoff_counts_as_exercised_only_after_a_failed_call() -> None:
    from harness.search.exercised import INVARIANT_EXERCISE, expose

    rule = INVARIANT_EXERCISE["time.backoff"].rule
    ok_only = run_schedule(reconnecting_client, Schedule((Start(0, 0, OK), Stop(500))))
    assert len([e for e in ok_only.trace if e.kind == "job.start"]) >= 2
    assert not rule(expose(ok_only.trace), reconnecting_client)
    failing = run_schedule(reconnecting_client, Schedule((Start(0, 0, FAIL), Stop(500))))
    assert rule(expose(failing.trace), reconnecting_client)
