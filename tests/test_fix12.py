"""Round 12's findings 1 and 3, beyond the reviewer's reproductions: the shapes the long campaigns found
after the first fix, and the window rule's two halves on its own.

Finding 1: with ``shared`` and ``cancellable="abandon"``, a caller submitted after an execution started
that ran an execution of its own (or was served by another) is none of its callers. Finding 3: with
``rate`` and no ``limit``, a wait timeout is legitimate while the window is full (on a late clock, for the
lateness after it had room again), not while a phantom limit of 1 is.
"""

from __future__ import annotations

from harness import Cancel, ClockPolicy, JobSpec, Schedule, Submit, Target, check, run_schedule
from harness.invariants.wait_window import _room_from, window_left_open
from harness.model.trace import EventKind
from harness.run.facts import facts_of
from scenarios.review.round12 import limiter, targets


class _OneShortLimiter(limiter.SlidingWindowLimiter):
    """Bug: lets only n - 1 calls into a window, so a call waits beside a window with room."""

    def _has_slot(self) -> bool:
        return self.in_window < self.n - 1


#: ``limiter_short_wait`` (a max wait of 50ms) over the limiter one short: the trust row of the window's message.
limiter_one_short = targets._limiter(_OneShortLimiter, "limiter one place short", max_wait_ms=50)


def _verdict(target: Target, *ops: Submit | Cancel, clock: ClockPolicy = ClockPolicy()) -> list[str]:
    return [v.invariant for v in check(run_schedule(target, Schedule(ops=tuple(ops), clock=clock)))]


def _submit(job: int, at_ms: int = 0, kind: str = "succeed", after_ms: int = 0, raises: bool = False) -> Submit:
    return Submit(at_ms=at_ms, job=job, spec=JobSpec(kind=kind, after_ms=after_ms, canceller_raises=raises))


def test_abandon_ignores_a_later_caller_waiting_on_its_own_execution() -> None:
    """Job 1 came once job 0's batch was sent; its own execution (from 200ms) is never answered (its canceller
    raises at the call timeout), so nothing names what served it: it still waited on its own, not on job 0's."""
    ops = (_submit(0, after_ms=530), _submit(1, at_ms=100, kind="fail", after_ms=530, raises=True), Cancel(at_ms=100, job=0))
    assert "cancellation.detaches" not in _verdict(targets.coalescer_ok, *ops)


def test_abandon_ignores_an_earlier_caller_running_its_own_execution() -> None:
    """The mirror: job 1's batch (sent at 200ms) has job 1 alone; job 0 waits on its own call, running since
    100ms. Job 1's cancel at 200ms may cancel job 1's call."""
    ops = (_submit(0, after_ms=860), _submit(1, at_ms=100, after_ms=720), Cancel(at_ms=200, job=1))
    assert "cancellation.detaches" not in _verdict(targets.coalescer_ok, *ops)


def test_abandon_ignores_an_earlier_caller_whose_own_execution_is_stuck() -> None:
    """Job 0's call timed out at 600ms but its canceller raised: it never ends, and job 0 waits on it, not on
    job 1's call (sent at 590ms), which job 1's cancel at 600ms may cancel."""
    ops = (_submit(0, after_ms=860, raises=True), _submit(1, at_ms=490, after_ms=720), Cancel(at_ms=600, job=1))
    assert "cancellation.detaches" not in _verdict(targets.coalescer_ok, *ops)


def test_abandon_still_counts_a_caller_of_the_same_batch() -> None:
    """The twin that cancels the upstream call while job 1, in the same batch, waits is still caught, with job 1
    submitted in the instant the batch was sent too (before the send in the trace)."""
    ops = (_submit(0, kind="hang"), _submit(1, at_ms=50), Cancel(at_ms=150, job=0))
    assert "cancellation.detaches" in _verdict(targets.coalescer_cancel_all, *ops)
    assert _verdict(targets.coalescer_ok, *ops) == []


_LATE = ClockPolicy(step_ms=1000)


def test_window_counts_full_for_the_lateness_of_a_late_clock() -> None:
    """Job 0's place leaves the window at 100ms, but the limiter's timer counting it out fires at 1000ms on a
    clock advancing in strides of 1000ms: job 3 (submitted at 100ms, behind job 2) times out legitimately."""
    ops = (_submit(0), _submit(1, at_ms=80), _submit(2, at_ms=80), _submit(3, at_ms=100))
    assert _verdict(targets.limiter_short_wait, *ops, clock=_LATE) == []


def test_window_left_open_is_caught_both_ways() -> None:
    """A limiter whose freed places wake no waiter: job 2 waited from 0ms beside a window with room from 100ms
    ("since"), job 3, queued behind it at 150ms, beside a window with room all along its wait ("never")."""
    ops = (_submit(0), _submit(1), _submit(2), _submit(3, at_ms=150))
    run = run_schedule(targets.limiter_lazy_wake, Schedule(ops=ops))
    found = check(run)
    assert [v.invariant for v in found] == ["time.timeout"]
    assert "job 2's wait timed out at 300ms, but the declared rate of 2 per 100ms had had room for its start since 100ms" in found[0].message
    facts = facts_of(run)
    job3 = facts.jobs[3]
    fired = next(i for i, e in enumerate(run.trace) if e.kind == EventKind.FAILURE and e.job == 3)
    starts = sorted(j.first_start for j in facts.jobs.values() if j.first_start is not None)
    assert window_left_open(targets.limiter_lazy_wake, facts, job3, fired, starts) == ("never", None)
    assert _verdict(targets.limiter_ok, *ops) == []


def test_room_from_a_window_and_a_bucket() -> None:
    """The earliest moment one more start keeps the rate: the window's oldest place leaving it, or the bucket's
    next token (2 per 100ms with a burst of 3: 3 at once, then one every 50ms)."""
    window = Target(build=object, rate=(2, 100))
    assert _room_from(window, [0]) is None
    assert _room_from(window, [0, 30_000]) == 100_000
    assert _room_from(window, [0, 30_000, 100_000]) == 130_000
    bucket = Target(build=object, rate=(2, 100), burst=3)
    assert _room_from(bucket, [0, 0]) is None
    assert _room_from(bucket, [0, 0, 0]) == 50_000
    assert _room_from(bucket, [0, 0, 0, 50_000]) == 100_000
