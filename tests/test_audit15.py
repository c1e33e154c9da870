"""Audit 15 (docs/reviews/audit-15.md): round 14's changes attacked; the small reproductions of what broke.

``backoff_counts_timeouts=True`` (fix11a) counted every call a backoff loop's subject cancelled before any
``stop()`` as a timed-out, failed call, also one an ``Operation(cancels_work=True)`` ended on purpose (an
aborted poll, 40ms into a 250ms timeout): a poller that does not back off after an abort was a false
``time.early``. Such a call now counts as a failure or not, as the subject counts it; a call cancelled at its
own timeout still counts as one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness import Call, JobSpec, Operation, Schedule, Start, Stop, Target, check, run_schedule
from scenarios.review.round11 import poller, targets


class AbortNotCounted(poller.AdaptivePoller):
    """abort_poll() cancels the poll in flight on purpose; an aborted poll is no idle poll: the interval stays."""

    def abort_poll(self) -> None:
        if self._inflight is not None:
            self._aborted = self._inflight
            self._inflight.cancel()

    def _failed(self, failure: Any, d: Any) -> None:
        if d is getattr(self, "_aborted", None):
            if self._settle(d):
                self._schedule()  # no back-off
            return
        super()._failed(failure, d)


class AbortCounted(poller.AdaptivePoller):
    """abort_poll() cancels the poll in flight; the poller counts it as idle, as any cancelled poll (back-off)."""

    def abort_poll(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()


class AbortNotCountedTimeoutNeither(AbortNotCounted):
    """BUG: a poll cancelled at its own timeout does not back off either (review 11, finding 4's twin)."""

    def _failed(self, failure: Any, d: Any) -> None:
        if d is self._expired:
            if self._settle(d):
                self._schedule()
            return
        super()._failed(failure, d)


def _abortable(cls: type[poller.AdaptivePoller]) -> Target:
    """The round-11 poller's declaration (base after a success, timeouts counted) with abort_poll() beside poll_now()."""
    base = targets._poller(cls, f"audit 15: {cls.__name__}")
    abort = Operation(lambda p: p.abort_poll(), cancels_work=True)
    return dataclasses.replace(base, operations={**base.operations, "abort_poll": abort})


def _found(target: Target, *ops: Any) -> list[tuple[str, str]]:
    return [(v.invariant, v.message) for v in check(run_schedule(target, Schedule(ops=tuple(ops))))]


#: Call 0 succeeds at 10ms; call 1 (110ms) hangs; the rest succeed in 10ms.
_CALLS = Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=10),
               then=(JobSpec(kind="hang"), JobSpec(kind="succeed", after_ms=10)))


def test_an_aborted_poll_the_loop_does_not_count_is_no_timeout() -> None:
    """Call 1 is aborted at 150ms, 40ms into its 250ms timeout; the poller keeps its base interval and polls at
    250ms. Before: time.early, "call 2 came at 250ms, 100ms after call 1 timed out (retry 1); the declared wait is
    at least 200ms"."""
    assert _found(_abortable(AbortNotCounted), _CALLS, Call(at_ms=150, operation="abort_poll"), Stop(at_ms=600)) == []


def test_an_aborted_poll_the_loop_counts_as_idle_is_clean_too() -> None:
    """The other design: the aborted poll backs off (200ms), as a cancel counted as a failure."""
    assert _found(_abortable(AbortCounted), _CALLS, Call(at_ms=150, operation="abort_poll"), Stop(at_ms=600)) == []


def test_a_timed_out_poll_left_uncounted_is_still_caught() -> None:
    """Without an abort, call 1 times out at 360ms: the twin polls again after the base 100ms, not 200ms."""
    ops = (_CALLS, Stop(at_ms=900))
    assert _found(_abortable(AbortNotCounted), *ops) == []
    [(invariant, message)] = _found(_abortable(AbortNotCountedTimeoutNeither), *ops)
    assert invariant == "time.early"
    assert message == ("periodic call 2 came at 460ms, 100ms after call 1 timed out (retry 1); the declared wait is "
                       "at least 200ms"), message
