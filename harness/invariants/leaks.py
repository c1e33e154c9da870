"""Leak invariants: after ``stop()`` and draining, nothing of the subject is left scheduled."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from harness.invariants.base import Invariant, Violation
from harness.model.target import Target
from harness.model.trace import EventKind, format_ms
from harness.run.facts import facts_of
from harness.run.steps import LEFT_BY_STOP

if TYPE_CHECKING:
    from harness.run.runner import Run


class _Leftover(Invariant):
    """Shared check: the first event of ``kind`` (recorded after stop and drain) is the leak."""

    kind: ClassVar[EventKind]
    what: ClassVar[str] = ""

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        leaks = facts.of_kind(self.kind)
        if not leaks:
            return None
        event = facts.event(leaks[0])
        return self.violation(run, f"after stop() and draining, {self.what}: {event.detail}", leaks[:1])


class Calls(_Leftover):
    """No DelayedCall of the subject is left pending after ``stop()``.

    Judged after the drain and, for a target that declares
    ``stop_cancels_timers``, also the moment ``stop()`` completed if no work
    was in flight then (``harness.run.steps.record_left_by_stop``): a one-shot
    timer ``stop()`` forgot fires during the drain, so only that look sees it.
    Not judged while a ``stop()`` that returned a Deferred has not completed
    and work is still in flight (``harness.run.steps.record_leftovers``): a
    graceful stop waiting for work that hangs may keep its timers, and the
    work is judged by the completion invariants.
    """

    name = "leaks.calls"
    summary = ("after stop() and draining, no DelayedCall of the subject is pending (with stop_cancels_timers, "
               "none set before stop() either, when stop() completes with nothing in flight)")
    kind = EventKind.LEAK_CALL
    what = "a DelayedCall is still pending"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        leaks = facts.of_kind(self.kind)
        if not leaks or not facts.event(leaks[0]).detail.endswith(LEFT_BY_STOP):
            return super().check(run)
        event = facts.event(leaks[0])
        call = event.detail[: -len(LEFT_BY_STOP)].rstrip(", ")
        return self.violation(
            run,
            f"stop() completed at {format_ms(event.t_us)} with no work in flight, yet left a DelayedCall of the "
            f"subject pending: {call} (set before stop(), it can only fire into a stopped subject)",
            leaks[:1],
        )


class Work(Invariant):
    """Declared ``stop_cancels_work``: ``stop()`` cancels the periodic call in flight.

    Every call of the periodic work running when ``stop()`` is called ends in
    that instant (cancelled, as ``cancellation.propagates`` asks of a
    cancel; ending otherwise in the instant is as good). A call left in
    flight keeps the work, and whatever timer guards it, alive after the
    subject was stopped; its timer fires in the drain, so ``leaks.calls``
    does not see it.
    """

    name = "leaks.work"
    summary = "with stop_cancels_work, no call of the periodic work is left in flight by stop()"

    def applies(self, target: Target) -> bool:
        return target.stop_cancels_work

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        stop = facts.first_stop()
        if stop is None:
            return None
        at = facts.time(stop)
        for job in facts.jobs.values():
            if not job.periodic:
                continue
            for attempt in job.attempts:
                if not attempt.running_at(stop) or (attempt.end is not None and facts.time(attempt.end) <= at):
                    continue
                still = "never ended" if attempt.end is None else f"ended only at {format_ms(facts.time(attempt.end))}"
                return self.violation(
                    run,
                    f"periodic call {attempt.n} (started {format_ms(facts.time(attempt.start))}) was in flight at "
                    f"stop() at {format_ms(at)} and {still}; stop_cancels_work promises stop() cancels it then",
                    [attempt.start, stop] + ([attempt.end] if attempt.end is not None else []),
                )
        return None


class Loops(_Leftover):
    name = "leaks.loops"
    summary = "after stop() and draining, no LoopingCall is still running"
    kind = EventKind.LEAK_LOOP
    what = "a LoopingCall is still running"
