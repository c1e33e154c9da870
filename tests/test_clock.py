"""Each FaultClock feature: tie-break policies, rounds, wall-clock jumps, escapes, tracking."""

from __future__ import annotations

import pytest
from twisted.internet import task
from twisted.internet.interfaces import IReactorTime

from harness import FaultClock


def _fire_order(tie_break: str, seed: int = 0, n: int = 5) -> list[int]:
    clock = FaultClock(tie_break=tie_break, seed=seed)
    fired: list[int] = []
    for i in range(n):
        clock.callLater(1, fired.append, i)
    clock.advance(1)
    return fired


def test_provides_ireactortime() -> None:
    assert IReactorTime.providedBy(FaultClock())


def test_fifo_runs_equal_time_calls_in_insertion_order() -> None:
    assert _fire_order("fifo") == [0, 1, 2, 3, 4]


def test_lifo_runs_equal_time_calls_in_reverse() -> None:
    assert _fire_order("lifo") == [4, 3, 2, 1, 0]


def test_shuffle_is_seeded_and_reorders() -> None:
    orders = {tuple(_fire_order("shuffle", seed, n=6)) for seed in range(20)}
    assert len(orders) > 1
    assert _fire_order("shuffle", 3, n=6) == _fire_order("shuffle", 3, n=6)


def test_unknown_tie_break_is_refused() -> None:
    with pytest.raises(ValueError, match="tie_break must be one of"):
        FaultClock(tie_break="random")


def test_earlier_due_time_wins_over_tie_break() -> None:
    clock = FaultClock(tie_break="lifo")
    fired: list[str] = []
    clock.callLater(2, fired.append, "late")
    clock.callLater(1, fired.append, "early")
    clock.advance(5)
    assert fired == ["early", "late"]


def test_reentrant_call_later_zero_waits_for_already_due_calls() -> None:
    clock = FaultClock(tie_break="lifo")
    fired: list[str] = []

    def first() -> None:
        fired.append("first")
        clock.callLater(0, fired.append, "nested")

    clock.callLater(1, fired.append, "second")
    clock.callLater(1, first)
    clock.advance(1)
    # lifo runs ``first`` before ``second``; the nested call still waits for the next round.
    assert fired == ["first", "second", "nested"]


def test_jumps_move_seconds_but_not_due_times() -> None:
    clock = FaultClock()
    fired: list[float] = []
    clock.callLater(10, lambda: fired.append(clock.seconds()))
    clock.jump(-100)
    assert clock.seconds() == -100
    clock.advance(9)
    assert fired == []
    clock.advance(1)
    assert fired == [pytest.approx(-90, abs=1e-9)]  # plus a sub-nanosecond drift per call run
    clock.jump(+50)
    assert clock.seconds() == pytest.approx(-40, abs=1e-9)
    assert clock.monotonic() == 10


def test_escaping_exception_is_reported_and_the_clock_goes_on() -> None:
    escapes: list[tuple[str, str]] = []
    clock = FaultClock(on_escape=lambda call, exc: escapes.append((call.func.__name__, str(exc))))
    fired: list[str] = []

    def boom() -> None:
        raise RuntimeError("boom")

    clock.callLater(1, boom)
    clock.callLater(1, fired.append, "after")
    clock.advance(1)
    assert escapes == [("boom", "boom")]
    assert fired == ["after"]


def test_escape_without_handler_propagates_like_task_clock() -> None:
    clock = FaultClock()
    clock.callLater(1, lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        clock.advance(1)


def test_tracks_every_delayed_call_it_created() -> None:
    clock = FaultClock()
    a = clock.callLater(1, lambda: None)
    b = clock.callLater(2, lambda: None)
    b.cancel()
    clock.advance(1)
    assert clock.created == [a, b]
    assert clock.getDelayedCalls() == []
    assert a.called and b.cancelled


def test_cancelled_call_in_same_round_does_not_run() -> None:
    clock = FaultClock()
    fired: list[str] = []
    holder: list = []
    clock.callLater(1, lambda: holder[0].cancel())
    holder.append(clock.callLater(1, fired.append, "cancelled"))
    clock.advance(1)
    assert fired == []


def test_due_times_are_exact_to_the_microsecond() -> None:
    clock = FaultClock()
    clock.advance(0.1)
    call = clock.callLater(0.2, lambda: None)
    assert call.getTime() == 0.3


def test_livelock_is_detected() -> None:
    from harness.run.clock import Livelock

    clock = FaultClock()

    def again() -> None:
        clock.callLater(0, again)

    clock.callLater(0, again)
    with pytest.raises(Livelock):
        clock.advance(0)


@pytest.mark.parametrize("start_ms", [0, 10, 30, 70, 130])
@pytest.mark.parametrize("interval", [0.01, 0.03, 0.1, 0.25])
def test_looping_call_ticks_exactly_every_interval(start_ms: int, interval: float) -> None:
    # On exact virtual times LoopingCall's ``interval - (now - start) % interval`` used to come
    # out one float ulp short of a boundary: the call was rescheduled at the same instant until
    # the clock declared a livelock. A real clock moves on while calls run; so does seconds().
    clock = FaultClock()
    ticks: list[int] = []

    def begin() -> None:
        loop = task.LoopingCall(lambda: ticks.append(round(clock.monotonic() * 1_000_000)))
        loop.clock = clock
        loop.start(interval, now=True)

    clock.callLater(start_ms / 1000, begin)
    for _ in range(300):
        clock.advance_to(clock.next_due())
    assert len(ticks) == 300
    assert {b - a for a, b in zip(ticks, ticks[1:])} == {round(interval * 1_000_000)}


# -- integer time: the harness never hangs in its own loop (issue 13, false alarm 1) -----------------


def test_a_late_call_due_between_strides_fires_on_the_next_stride() -> None:
    # Due at 9.13s, 50ms late, 10ms strides: in floats 9.13 + 0.05 is 9.180000000000001, which the
    # old stride rounding turned into 9.18, before the call's own time: the runner woke at 9.18 for
    # ever. On integer microseconds the reactor wakes at exactly 9.18s and runs it.
    clock = FaultClock(step=0.01)
    clock.advance(9)
    fired: list[int] = []
    call = clock.callLater(0.13, lambda: fired.append(clock.now_us))
    call.late_us = 50_000
    assert clock.next_wake_us() == 9_180_000
    clock.run_until(10_000_000)
    assert fired == [9_180_000]
    assert clock.now_us == 10_000_000


def test_float_boundaries_are_integers_inside() -> None:
    clock = FaultClock()
    clock.advance(0.1)
    call = clock.callLater(0.2, lambda: None)
    assert call.due_us == 300_000 and call.getTime() == 0.3
    call.reset(0.2)
    assert call.due_us == 300_000
    call.delay(0.05)
    assert call.due_us == 350_000
    assert clock.rightNow == 0.1 and clock.monotonic() == 0.1
    clock.rightNow = 9.13  # task.Clock code may set it
    assert clock.now_us == 9_130_000


def _looping_target():
    from harness import Target

    class Ticker:
        def __init__(self, clock) -> None:
            self.clock = clock
            self.loop = None

        def start(self, beat):
            self.loop = task.LoopingCall(beat)
            self.loop.clock = self.clock
            return self.loop.start(0.1, now=True)

        def stop(self) -> None:
            if self.loop is not None and self.loop.running:
                self.loop.stop()

    return Target(build=Ticker, kind="periodic", interval_ms=100)


def test_looping_call_under_strides_and_jitter_does_not_hang_the_runner() -> None:
    # The schedule that hung the harness at 9180ms of virtual time, blaming the user.
    from harness.invariants import check
    from harness.run.runner import run_schedule
    from harness.model.schedule import ClockPolicy, JobSpec, Schedule, Start

    schedule = Schedule((Start(0, 1, JobSpec("succeed", 0)),), ClockPolicy(step_ms=10, jitter_ms=50, seed=17341))
    run = run_schedule(_looping_target(), schedule, timeout_s=30)
    assert check(run) == []
    beats = [e.t_us for e in run.trace if e.kind == "job.start"]
    assert beats[-1] > 9_180_000 and len(beats) > 90


def _rearm_target():
    from twisted.internet import defer

    from harness import Target

    class Rearm:
        """Arms callLater(0.2), cancels it, arms another callLater(0.2) that runs the job."""

        def __init__(self, clock) -> None:
            self.clock = clock

        def submit(self, job):
            d = defer.Deferred()
            self.clock.callLater(0.2, lambda: None).cancel()
            self.clock.callLater(0.2, lambda: defer.maybeDeferred(job).chainDeferred(d))
            return d

    return Target(build=Rearm)


@pytest.mark.parametrize("seed", [1193, 3664])
def test_cancel_and_rearm_does_not_hang_the_runner(seed: int) -> None:
    # Two of the clock seeds (about 1 in 3,000) on which the float clock looped for ever.
    from harness.invariants import check
    from harness.run.runner import run_schedule
    from harness.model.schedule import ClockPolicy, JobSpec, Schedule, Submit

    schedule = Schedule((Submit(0, 1, JobSpec("succeed", 0)),), ClockPolicy(step_ms=10, jitter_ms=50, seed=seed))
    run = run_schedule(_rearm_target(), schedule, timeout_s=30)
    assert check(run) == []
    assert [e.kind for e in run.trace if e.job == 1] == ["submit", "job.start", "job.finish", "result"]


@pytest.mark.slow
def test_cancel_and_rearm_never_hangs_on_any_of_6000_seeds() -> None:
    from harness.run.runner import run_schedule
    from harness.model.schedule import ClockPolicy, JobSpec, Schedule, Submit

    target = _rearm_target()
    for seed in range(6_000):
        schedule = Schedule((Submit(0, 1, JobSpec("succeed", 0)),), ClockPolicy(step_ms=10, jitter_ms=50, seed=seed))
        run_schedule(target, schedule, timeout_s=30)


# -- late wakes keep due order (issue 13, false alarm 2) ---------------------------------------------


@pytest.mark.parametrize("tie_break", ["fifo", "lifo", "shuffle"])
@pytest.mark.parametrize("step_us", [0, 1_000, 10_000, 30_000])
@pytest.mark.parametrize("jitter_us", [0, 5_000, 50_000])
def test_late_wakes_never_run_a_later_call_first(tie_break: str, step_us: int, jitter_us: int) -> None:
    for seed in range(100):
        clock = FaultClock(tie_break, seed)
        clock.step_us, clock.jitter_us = step_us, jitter_us
        fired: list[str] = []
        clock.callLater(0.049673, fired.append, "49.673ms")
        clock.callLater(0.025247, fired.append, "25.247ms")
        clock.callLater(0.049673, fired.append, "49.673ms")
        clock.run_until(1_000_000)
        assert fired == ["25.247ms", "49.673ms", "49.673ms"], (seed, fired)


def test_a_late_wake_runs_every_overdue_call_in_due_order() -> None:
    clock = FaultClock(tie_break="lifo")
    fired: list[int] = []
    first = clock.callLater(0.025247, fired.append, 25)
    clock.callLater(0.049673, fired.append, 49)
    clock.callLater(0.030, fired.append, 30)
    first.late_us = 40_000  # the reactor oversleeps the first call until 65.247ms
    clock.callLater(0.080, fired.append, 80)
    clock.run_until(70_000)
    assert fired == [25, 30, 49]
    assert clock.now_us == 70_000


def test_a_late_wake_can_come_after_the_next_operation() -> None:
    # The reactor still sleeps when the schedule's next operation comes: a late call may run after it.
    clock = FaultClock()
    fired: list[str] = []
    call = clock.callLater(0.270, fired.append, "end")
    call.late_us = 45_000
    clock.run_until(310_000)
    assert fired == [] and clock.now_us == 310_000
    clock.run_until(400_000)
    assert fired == ["end"] and clock.now_us == 400_000


def test_jitter_does_not_change_the_shuffled_tie_order() -> None:
    def order(jitter: float) -> list[int]:
        clock = FaultClock("shuffle", seed=11, jitter=jitter)
        fired: list[int] = []
        for i in range(8):
            clock.callLater(1, fired.append, i)
        clock.run_until(3_000_000)
        return fired

    assert order(0.05) == order(0.0)


def test_seconds_moves_on_between_calls_even_far_from_zero() -> None:
    clock = FaultClock()
    clock.advance(86_400)  # a day: 1e-11 is below a float ulp here
    readings: list[float] = []
    for _ in range(5):
        clock.callLater(0, lambda: readings.append(clock.seconds()))
    clock.advance(0)
    assert all(a < b for a, b in zip(readings, readings[1:]))
    assert readings[-1] - 86_400 < 1e-6


@pytest.mark.slow
def test_looping_call_never_hangs_nor_alarms_under_strides_and_jitter() -> None:
    from harness.invariants import check
    from harness.run.runner import run_schedule
    from harness.model.schedule import ClockPolicy, JobSpec, Jump, Schedule, Start

    target = _looping_target()
    for seed in range(300):
        policy = ClockPolicy(("fifo", "lifo", "shuffle")[seed % 3], seed, (0, 10, 7, 100)[seed % 4], (0, 5, 50)[seed % 5 % 3])
        schedule = Schedule((Start(0, 1, JobSpec("succeed", 0)), Jump(450, 86_400_000)), policy)
        assert check(run_schedule(target, schedule, timeout_s=30)) == [], policy
