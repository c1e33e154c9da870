"""``time.timeout``'s free-slot rule (``harness.invariants.wait_slots``) allows the clock's lateness, and no more.

A waiter's queue deadline (``timeout_from="wait"``) may fire beside a slot that was freed just before it, when
the hand-off to the waiter lands a little later: the rule lets the slot stay free, with the waiter waiting, for
up to the clock's lateness (``step_ms + jitter_ms``), what a late wake-up can cost a hand-off. ``HopBulkhead``
hands a freed slot on one hop (``hop_ms``) after the job that held it ended, and its waiter's deadline falls
inside that hop. Shown both ways: a short hop under a clock whose jitter (10ms) covers the slot's free time
passes; the same on a punctual clock is caught, and so is a slot freed earlier and left free longer than the
jitter before the deadline, the message naming the slot that had been free.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet import defer

from harness import ClockPolicy, JobSpec, Schedule, Submit, Target, check, run_schedule
from harness.model.trace import EventKind

#: A waiter's queue deadline, from its submission (job 1's, at 0, behind job 0 in the only slot).
DEADLINE_MS = 102


def _ops(held_ms: int) -> tuple[Submit, ...]:
    """Job 0 takes the slot at 0 for ``held_ms``; job 1 waits for it from 0."""
    return (Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=held_ms)),
            Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed", after_ms=10)))


class QueueDeadline(Exception):
    """The waiter's deadline passed before a slot reached it."""


class HopBulkhead:
    """One slot; a waiter fails with ``QueueDeadline`` ``DEADLINE_MS`` after its submission unless the slot
    reaches it first; a slot freed by a job's end is handed to the first waiter ``hop_ms`` later."""

    def __init__(self, clock: Any, hop_ms: int) -> None:
        self.clock, self.hop_s = clock, hop_ms / 1000
        self.active = 0
        self.waiting: deque[list[Any]] = deque()

    def submit(self, job: Any) -> defer.Deferred[Any]:
        done: defer.Deferred[Any] = defer.Deferred()
        if self.active < 1:
            self._run(job, done)
        else:
            entry: list[Any] = [job, done, None]
            entry[2] = self.clock.callLater(DEADLINE_MS / 1000, self._expire, entry)
            self.waiting.append(entry)
        return done

    def _expire(self, entry: list[Any]) -> None:
        self.waiting.remove(entry)
        entry[1].errback(QueueDeadline(f"no slot within {DEADLINE_MS}ms"))

    def _run(self, job: Any, done: defer.Deferred[Any]) -> None:
        self.active += 1
        defer.maybeDeferred(job).addBoth(self._done, done)

    def _done(self, result: Any, done: defer.Deferred[Any]) -> None:
        self.clock.callLater(self.hop_s, self._hand_on)
        done.callback(result)

    def _hand_on(self) -> None:
        self.active -= 1
        if self.waiting:
            job, done, deadline = self.waiting.popleft()
            deadline.cancel()
            self._run(job, done)


def _run(hop_ms: int, jitter_ms: int, held_ms: int = 100) -> tuple[list[Any], int, int]:
    """The violations of a run of ``HopBulkhead(hop_ms)`` under a clock of ``jitter_ms`` (seed 1), job 0 holding
    the slot ``held_ms``; and when the slot was freed (job 0's end) and when the waiter's deadline failed it
    (microseconds)."""
    target = Target(build=lambda clock: HopBulkhead(clock, hop_ms), limit=1, order="fifo", timeout_ms=DEADLINE_MS,
                    timeout_from="wait", timeout_error=QueueDeadline)
    run = run_schedule(target, Schedule(ops=_ops(held_ms), clock=ClockPolicy(seed=1, jitter_ms=jitter_ms)))
    [freed] = [e.t_us for e in run.trace if e.kind is EventKind.JOB_FINISH and e.job == 0]
    [failed] = [e.t_us for e in run.trace if e.kind is EventKind.FAILURE and e.job == 1]
    return check(run), freed, failed


def test_a_slot_freed_within_the_clocks_lateness_before_the_deadline_is_no_bug() -> None:
    violations, freed, failed = _run(hop_ms=5, jitter_ms=10)
    assert 2_000 <= failed - freed <= 10_000, (freed, failed)  # the waiter timed out beside a free slot, within 10ms
    assert violations == []


def test_the_same_hop_on_a_punctual_clock_is_caught() -> None:
    violations, freed, failed = _run(hop_ms=5, jitter_ms=0)
    assert (freed, failed) == (100_000, DEADLINE_MS * 1000)
    [violation] = violations
    assert violation.invariant == "time.timeout" and "a slot had been free since 100ms" in violation.message


def test_a_hop_beyond_the_lateness_is_caught() -> None:
    violations, freed, failed = _run(hop_ms=40, jitter_ms=10, held_ms=96)
    assert 10_000 < failed - freed < 15_000, (freed, failed)  # free a little longer than the lateness
    assert [v.invariant for v in violations] == ["time.timeout"], [v.message for v in violations]
    assert "a slot had been free since" in violations[0].message
