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
    from harness.clock import Livelock

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
