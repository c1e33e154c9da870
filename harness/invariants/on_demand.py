"""On-demand calls of periodic work: an operation that asks the loop to call its work now is heeded.

A periodic target's operation declared ``Operation(calls_now=True)`` (buildbot's
``Poller.__call__``: "Force a call to the decorated method now. If the
decorated method is currently running, another call will begin as soon as it
completes") promises a call of the work soon after each request: one that
starts within the clock's lateness of the request, or, when a call was running
then, of that call's end. Requests coalesce: one call after the running one
serves every request made while it ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from harness.model.target import Target
from harness.model.trace import EventKind, format_ms
from harness.invariants.base import Invariant, Violation
from harness.run.calls import called_name
from harness.run.facts import Attempt, Facts, JobFacts, facts_of

if TYPE_CHECKING:
    from harness.run.runner import Run

_CALL, _REFUSALS = EventKind.CALL, (EventKind.CALL_REFUSED, EventKind.CALL_RAISED, EventKind.CALL_FAILURE)


def asking(target: Target) -> frozenset[str]:
    """The names of the target's operations declared ``calls_now`` (none on most targets)."""
    return frozenset(name for name, op in target.operations.items() if getattr(op, "calls_now", False))


def on_demand_calls(facts: Facts, names: frozenset[str]) -> set[tuple[int, int]]:
    """``(job, attempt)`` of each periodic call that answered a request of an operation in ``names``: the
    first call of the work starting after the request, by its due time plus the clock's lateness. Such a
    call keeps no interval with the loop's periodic calls (``time.early`` leaves it out)."""
    answered: set[tuple[int, int]] = set()
    if not names or _CALL not in facts.by_kind:
        return answered
    for index in facts.of_kind(_CALL):
        if called_name(facts, index) not in names:
            continue
        for job in (j for j in facts.jobs.values() if j.periodic):
            owed = _owed(facts, job, index)
            if owed is not None and owed.next is not None and facts.time(owed.next.start) <= owed.limit_us:
                answered.add((job.id, owed.next.n))
    return answered


class _Owed(NamedTuple):
    """What a request at one trace index is owed: the calls running then, the index it is due at (the
    request, or the end of the running call), that time plus the lateness, and the next call after it."""

    running: list[Attempt]
    due: int
    limit_us: int
    next: Attempt | None


def _owed(facts: Facts, job: JobFacts, index: int) -> _Owed | None:
    """What the request at ``index`` is owed by ``job``'s loop; None when a call running then never ends."""
    running = [a for a in job.attempts if a.running_at(index)]
    if any(a.end is None for a in running):
        return None  # the call running at the request never ends: the next one may wait for it
    due = max((a.end for a in running if a.end is not None), default=index)
    later = next((a for a in job.attempts if a.start > index), None)
    return _Owed(running, due, facts.time(due) + facts.late_us, later)


class OnDemand(Invariant):
    """Each request of a ``calls_now`` operation is followed by a call of the periodic work in time.

    A request counts while the loop runs: after its ``start()``, before any
    ``stop()`` and before the loop reported its end (a failed ``start()``
    Deferred, ``report_end``). It is due at the request, or at the end of the
    call of the work running then; a call of the work must start after the
    request and by that time plus the clock's lateness. Excused: a running
    call that never ends, a request the operation refused (it raised, or its
    Deferred failed, in the instant of the request), a request made again
    before a call came and by the due time (the later one is judged: each
    request may reschedule the call, late anew), and a ``stop()``, a
    reported end or the drain by the due time.
    """

    name = "time.on_demand"
    summary = "a calls_now operation is followed by a call of the periodic work at once, or right after the running one"

    def applies(self, target: Target) -> bool:
        return target.kind == "periodic" and bool(asking(target))

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        if _CALL not in facts.by_kind:
            return None
        names = asking(run.target)
        stop = facts.first_stop()
        ends = facts.of_kind(EventKind.FAILURE, EventKind.LOOP_END)
        calls = facts.of_kind(_CALL)
        requests = [
            (index, name) for position, index in enumerate(calls)
            for name in (called_name(facts, index),)
            if name in names and not (stop is not None and stop < index) and not self._refused(facts, index, calls, position, name)
        ]
        for number, (index, name) in enumerate(requests):
            again = requests[number + 1][0] if number + 1 < len(requests) else None
            for job in (j for j in facts.jobs.values() if j.periodic):
                found = self._judge(run, facts, job, index, name, stop, [i for i in ends if facts.events[i][2] == job.id], again)
                if found is not None:
                    return found
        return None

    @staticmethod
    def _refused(facts: Facts, index: int, calls: list[int], position: int, name: str) -> bool:
        """Whether the operation's call at ``index`` raised, or its Deferred failed, in the instant of the request."""
        until = calls[position + 1] if position + 1 < len(calls) else len(facts.events)
        at = facts.time(index)
        return any(
            facts.events[i][1] in _REFUSALS and facts.events[i][4].startswith(f"{name}: ") and facts.time(i) == at
            for i in range(index + 1, until)
        )

    def _judge(
        self, run: Run, facts: Facts, job: JobFacts, index: int, name: str, stop: int | None, ends: list[int],
        again: int | None,
    ) -> Violation | None:
        """The violation of the request at ``index``, if its call did not come in time. ``again``: the next
        request, which, made before a call came and by the due time, takes this one over (a poller
        reschedules its call "now" at each request, and a rescheduled call may be late anew)."""
        if job.submit is None or job.submit > index or any(e < index for e in ends):
            return None  # not started yet, or the loop had reported its end: nothing is owed
        owed = _owed(facts, job, index)
        if owed is None:
            return None
        running, due, limit_us, later = owed
        if later is not None and facts.time(later.start) <= limit_us:
            return None
        if again is not None and (later is None or again < later.start) and facts.time(again) <= limit_us:
            return None  # asked again before a call came: the later request is judged
        excuses = [i for i in ends + ([stop] if stop is not None else []) + ([facts.drained] if facts.drained is not None else [])
                   if i > index and facts.time(i) <= limit_us]
        if excuses and (later is None or min(excuses) < later.start):
            return None  # stopped, ended or no longer watched by the due time
        t_us = facts.time(index)
        was = "" if not running else f" while call {running[-1].n} ran (until {format_ms(facts.time(due))})"
        if later is not None:
            what = f"the next call started at {format_ms(facts.time(later.start))}"
        else:
            what = "no call of the work came after it"
        return self.violation(
            run,
            f"operation {name} asked for a call of the work now at {format_ms(t_us)}{was}; {what}, past "
            f"{format_ms(limit_us)} ({'its end' if running else 'the request'} plus {format_ms(facts.late_us)} of "
            "lateness): a call asked for now starts at once, or right after the running one",
            [index] + ([later.start] if later is not None else []),
        )
