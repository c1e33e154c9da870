"""The FaultClock's self-fuzz (``harness.run.clock_fuzz``): a short run, and proof that it catches a broken clock."""

from __future__ import annotations

from harness.run.clock import FaultClock, _order
from harness.run.clock_fuzz import ReferenceClock, Script, fuzz_clock


def test_the_clock_agrees_with_the_reference_model() -> None:
    result = fuzz_clock(5_000, seed=3, ops_per_clock=300)
    assert result.ops >= 5_000 and result.clocks >= 10 and result.fired > 500
    assert result.failures == 0, result.problems


def test_the_short_fuzz_is_deterministic() -> None:
    first, second = fuzz_clock(1_000, seed=9), fuzz_clock(1_000, seed=9)
    assert (first.ops, first.fired, first.clocks) == (second.ops, second.fired, second.clocks)


class LateOrderClock(FaultClock):
    """The old bug: calls run in the order of their own late fire times, not in due order."""

    def wake(self, when_us: int, rounds: int | None = None) -> int:
        if rounds is not None:  # a paused wake (after_rounds) as the real one: the bug is elsewhere
            return super().wake(when_us, rounds)
        self.now_us = max(self.now_us, when_us)
        while True:
            due = sorted((c for c in self.calls if c.due_us <= self.now_us), key=lambda c: (c.due_us + c.late_us, c.key))
            if not due:
                return 0
            for call in due:
                if not (call.cancelled or call.called):
                    self._fire(call)


class EarlyWakeClock(FaultClock):
    """A loop that can wake a microsecond before anything is due: the old float hang."""

    def next_wake_us(self) -> int | None:
        wake = super().next_wake_us()
        return None if wake is None else max(min(c.due_us for c in self.calls) - 1, self.now_us)


class EagerClock(FaultClock):
    """Runs calls due within the next millisecond."""

    def wake(self, when_us: int, rounds: int | None = None) -> int:
        if rounds is not None:  # a paused wake (after_rounds) as the real one: the bug is elsewhere
            return super().wake(when_us, rounds)
        self.now_us = max(self.now_us, when_us)
        while due := sorted((c for c in self.calls if c.due_us <= self.now_us + 1_000), key=_order):
            for call in due:
                if not (call.cancelled or call.called):
                    self._fire(call)
        return 0


class FlatDriftClock(FaultClock):
    """seconds() drifting by a fixed 1e-11 a call: lost in float rounding far from zero."""

    def seconds(self) -> float:
        return (self.now_us + self.skew_us) / 1_000_000 + self.fired * 1e-11


def _fuzz(clock: type[FaultClock], ops: int = 30_000):
    return fuzz_clock(ops, seed=5, ops_per_clock=200, make_clock=clock, max_wakes=1_000)


def test_it_catches_late_firing_that_reorders_calls() -> None:
    assert _fuzz(LateOrderClock).order_differences > 0


def test_it_catches_a_loop_that_never_runs_what_is_due() -> None:
    assert _fuzz(EarlyWakeClock, ops=1_000).hangs > 0


def test_it_catches_early_calls() -> None:
    assert _fuzz(EagerClock).early > 0


def test_it_catches_seconds_that_stand_still() -> None:
    assert _fuzz(FlatDriftClock).seconds_errors > 0


class UnpausedClock(FaultClock):
    """Ignores a pause after some rounds (an operation with after_rounds would run after every round)."""

    def wake(self, when_us: int, rounds: int | None = None) -> int:
        return super().wake(when_us)


def test_it_catches_a_wake_that_ignores_a_pause_between_rounds() -> None:
    assert _fuzz(UnpausedClock, ops=5_000).order_differences > 0


def test_the_model_runs_calls_in_due_then_tie_order() -> None:
    model = ReferenceClock("lifo", seed=0, step_us=0, jitter_us=0)
    ran: list[int] = []
    model.run = lambda call: ran.append(call.id)
    model.call_later(0, 20, Script())
    model.call_later(1, 10, Script())
    model.call_later(2, 10, Script())
    model.run_until(100)
    assert ran == [2, 1, 0]
