"""Steps of a run: how each operation of a schedule is applied to the subject, and what is recorded.

Submitting, starting, cancelling, stopping, jumping the clock and calling a
target operation; the callbacks that record what each caller received; the
subject's own timers; and what a stopped subject left behind. The run's
lifecycle around these steps (phases, limits, teardown) is ``runner``'s.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, cast

from twisted.internet import defer, task
from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from harness.errors import TargetError
from harness.guard.escapes import Escaped
from harness.guard.watchdog import Expired
from harness.model.faults import CancellerError
from harness.model.keys import submit_detail
from harness.model.known import known
from harness.model.operations import Operation
from harness.model.schedule import Call, Cancel, Jump, Start, Stop, Submit
from harness.model.trace import EventKind, Trace, format_ms
from harness.run.answers import answer_detail
from harness.run.clock import FaultClock, Livelock, _FaultDelayedCall, call_name, func_name
from harness.run.describe import describe, describe_error, describe_result, describe_returned, double_fire
from harness.run.jobs import Job, refuse_likes_of_raised

if TYPE_CHECKING:
    from harness.run.runner import Run

#: The subject's timers recorded per run (a livelock sets thousands): each is set, then fired or cancelled.
MAX_TIMER_EVENTS = 1_000

#: The moves of the subject's timers (``reset``, ``delay``) recorded per run, counted apart from the timers set:
#: an idle timeout resets its one timer on every bit of activity, and is no livelock for it. Still bounded (a
#: ``timer.reset`` event each: the trace's memory stays flat), ten times as many as the timers.
MAX_TIMER_MOVES = 10_000

#: The ``timer.limit`` detail once the timers set, or their moves, reach their bound: recording stops there.
_LIMIT_DETAILS = (
    f"{MAX_TIMER_EVENTS} timers recorded: no more timer events",
    f"{MAX_TIMER_MOVES} timer moves recorded: no more timer events",
)

#: The kinds of event recorded for every job or cancel, read once: on Python 3.11 every attribute of an
#: Enum class is looked up through ``EnumType.__getattr__`` (about 150 ns), and a run records about 100.
_SUBMIT, _SUBMIT_RAISED, _RESULT, _FAILURE = EventKind.SUBMIT, EventKind.SUBMIT_RAISED, EventKind.RESULT, EventKind.FAILURE
_CANCEL, _CANCEL_SKIP, _CANCEL_RAISED = EventKind.CANCEL, EventKind.CANCEL_SKIP, EventKind.CANCEL_RAISED

#: Exceptions that end a run abruptly; the runner turns each into a one-line harness error.
ABORTS = (Expired, Escaped, Livelock, SystemExit)


def nothing() -> None:
    pass


def _reports_nothing(reason: object = "") -> None:
    """``report_end`` of the work a never-started subject is built with: a loop never started has no end to report."""


# The work ``build(clock, work)`` gets when the schedule never starts the subject is ``nothing``, which must
# take the ``work.report_end`` a build may read at once (an attribute: its name stays ``nothing`` in traces).
setattr(nothing, "report_end", _reports_nothing)


def work_for_build(run: Run) -> tuple[Any, ...]:
    """The periodic work for ``build(clock, work)``: the job of the schedule's first start, made now (a
    schedule that never starts the subject: ``nothing``, never called, whose ``report_end`` does nothing)."""
    if not run.target.takes_work:
        return ()
    assert run.clock is not None
    start = next((op for op in run.schedule.ops if isinstance(op, Start)), None)
    if start is None:
        return (nothing,)  # a schedule that never starts the subject: its work is never called
    job = Job(start.job, start.specs, run.clock, run.trace, run.target.error_types)
    run.jobs[start.job] = job
    return (job,)


def timer_recorder(trace: Trace, clock: FaultClock) -> Callable[[str, Any], None]:
    """Record the subject's own delayed calls as ``timer.set``, ``timer.fire``, ``timer.cancel`` and
    ``timer.reset`` (a ``reset`` or ``delay`` moved it) events.

    Each names the call by its number and function (``#3 Poller._poll``),
    ``timer.set`` with its due time. Jobs' own calls (a job settling after
    its duration) are the harness's, not the subject's, and are left out.
    The label is made once, when the call is set: it is cheap enough to be
    always on. Past ``MAX_TIMER_EVENTS`` timers set in a run (a livelock), or
    ``MAX_TIMER_MOVES`` moves (counted apart: an idle timer reset on every
    event is one timer), one ``timer.limit`` event says so and recording
    stops: no more timer events.
    """
    record = trace.record
    budget = [MAX_TIMER_EVENTS, MAX_TIMER_MOVES]  # timers set, timers moved
    # The clock holds this recorder: by weak reference back, so a run's clock and trace are freed as
    # soon as the run is dropped, not left in a cycle for the next full collection (every 2,000 runs).
    clock_ref = weakref.ref(clock)

    def on_timer(what: str, call: _FaultDelayedCall) -> None:
        label: str | None
        if what == "set":
            if _jobs_call(call):
                return  # no label: its firing, cancelling or moving is not recorded either
            call.label = label = f"#{call.seq} {call_name(call)}"
            kind, counted = EventKind.TIMER_SET, 0
        else:
            label = call.label  # None: a job's call, or set before recording began
            if label is None:
                return
            if what != "reset":
                record(EventKind.TIMER_FIRE if what == "fire" else EventKind.TIMER_CANCEL, detail=label)
                return
            kind, counted = EventKind.TIMER_RESET, 1
        # A set or a move (with its due time) counts against its budget: past either, recording stops.
        budget[counted] -= 1
        record(kind, detail=f"{label} due {format_ms(call.due_us)}")
        if not budget[counted]:
            record(EventKind.TIMER_LIMIT, detail=_LIMIT_DETAILS[counted])
            owner = clock_ref()
            if owner is not None:
                owner.on_timer = None  # recording ends here, and costs nothing from now on

    return on_timer


def record_leftovers(run: Run) -> None:
    """Record pending DelayedCalls and running LoopingCalls left after stop and drain.

    Not while a graceful ``stop()`` (one returning a Deferred) has not completed and work is still in
    flight (a job attempt unsettled, a Deferred ``submit`` or ``start`` returned unfired): the subject
    is still stopping, waiting for that work, and may keep its timers until it ends (Scrapy's engine
    closes its downloader, and the downloader's slot GC loop, only once no request is in progress).
    Work that never ends is judged by the completion invariants; a stop that completes, or that has
    nothing left to wait for, is judged here as ever.
    """
    clock, trace = run.clock, run.trace
    assert clock is not None
    stopping = run.stopping
    in_flight = _work_in_flight(run)
    if stopping is not None and not stopping.called and in_flight:
        return
    if not in_flight and not clock.calls:
        _record_unanswered(run)
    for call in _subject_calls_by_due(clock.calls):
        trace.record(EventKind.LEAK_CALL, detail=_leak_detail(call_name(call), call))
    loops: dict[int, task.LoopingCall] = {}
    for call in clock.created:
        func = getattr(call, "func", None)
        # LoopingCall schedules itself (callLater(delay, self)), not a bound method of itself.
        owner = func if isinstance(func, task.LoopingCall) else getattr(func, "__self__", None)
        if isinstance(owner, task.LoopingCall):
            loops.setdefault(id(owner), owner)
    for loop in loops.values():
        if loop.running:
            trace.record(EventKind.LEAK_LOOP, detail=f"LoopingCall({func_name(loop.f)}) still running")


def _record_unanswered(run: Run) -> None:
    """Record the Deferreds nothing can fire any more: the run is stopped and drained, no work is in flight
    and nothing is scheduled. The one ``stop()`` returned (``stop.pending``: a shutdown that hangs; a stop
    waiting on work in flight, or on a timer, is not judged here) and each an operation returned, unless it
    declares ``may_pend`` (``call.pending``: a ``whenConnected`` waiter ``stop()`` forgot)."""
    stopping, trace = run.stopping, run.trace
    for stop_at, earlier in run.earlier_stops:  # a restarted subject's earlier stops: each names its stop event
        if not earlier.called:
            trace.record(EventKind.STOP_PENDING, detail=answer_detail(_STOP_NEVER_FIRED, stop_at))
    if stopping is not None and not stopping.called:
        trace.record(EventKind.STOP_PENDING, detail=_STOP_NEVER_FIRED)
    for call_at, label, answer in run.answers:
        if not answer.called:
            trace.record(EventKind.CALL_PENDING, detail=answer_detail(label, call_at))


#: The detail of a ``stop.pending`` event (for an earlier stop of a restarted subject, with its stop event's index).
_STOP_NEVER_FIRED = "the Deferred stop() returned never fired"


#: The end of a ``leak.call`` detail for a call ``stop()`` left pending while no work was in flight.
LEFT_BY_STOP = "set before stop() and still pending when stop() completed with no work in flight"


def stop(run: Run, why: str) -> None:
    run.trace.record(EventKind.STOP, detail=why)
    run.stopped = True
    # What stop() is to cancel, or leave to work in flight (only kept for a target that promises it).
    before = list(run.clock.calls) if run.clock is not None and run.target.stop_cancels_timers else []
    try:
        result = run.target.stop_subject(run.subject)
    except ABORTS + (KeyboardInterrupt,):
        raise
    except (CancellerError, defer.AlreadyCalledError) as exc:
        # stop() cancelled a hostile job whose own canceller raised: the job's fault, not the subject's. Or
        # the subject fired one of its Deferreds twice in stop(): its bug, judged by completion.once.
        run.trace.record(EventKind.STOP_RAISED, detail=describe_error(exc))
        result = None
    except BaseException as exc:
        raise TargetError(f"the subject's stop() raised {describe_error(exc)}") from None
    run.checkpoint()
    if isinstance(result, defer.Deferred):
        run.stopping = result
        stopped = result

        def watched(outcome: Any) -> Any:
            # Recorded (a failure only) and passed on: the harness's caller of stop() only watches (``pass_on``).
            if isinstance(outcome, Failure):
                _on_failure(outcome, run.trace, -1, EventKind.STOP_FAILURE)
            if before:
                record_left_by_stop(run, before)  # once stop() completed, failed or not
            return pass_on(run, stopped, outcome)

        result.addBoth(watched)
    elif before:
        record_left_by_stop(run, before)


def record_left_by_stop(run: Run, before: list[_FaultDelayedCall]) -> None:
    """Record as ``leak.call`` each subject call set before ``stop()`` that is still pending now that it completed.

    Only for a target that promises it (``Target(stop_cancels_timers=True)``):
    a timer left to fire harmlessly into a stopped subject (a cache entry's
    expiry) keeps the default promise, which judges only after the drain.
    Judged only when nothing of the subject's work is in flight at that
    moment (no job attempt unsettled, no Deferred ``submit`` or ``start``
    returned unfired): in-flight work may still need its timers while it
    drains, and a timer it sets then is its own; nor is a call due at this
    very instant (the rest of the instant's work). With nothing in flight, a
    timer ``stop()`` left pending can only fire into a stopped subject: the
    one-shot timer a ``stop()`` forgot, which fires in the drain and so was
    never pending when the drain ended (round-2 review, F1).
    """
    clock = run.clock
    if clock is None or not run.target.stop_cancels_timers or run.phase in ("invariant", "release"):
        return
    if _work_in_flight(run):
        return
    now = clock.now_us  # a call due now is the rest of this instant's work (a callLater(0)), not left for later
    # Active ones first: a call that fired or was cancelled has no function left to name.
    for call in _subject_calls_by_due([call for call in before if call.active() and call.due_us > now]):
        name = call.label or call_name(call)  # "#3 Batcher._on_timer", as its timer.set event named it
        run.trace.record(EventKind.LEAK_CALL, detail=f"{_leak_detail(name, call)}, {LEFT_BY_STOP}")


def _work_in_flight(run: Run) -> bool:
    """Whether a job attempt is unsettled or a Deferred ``submit`` or ``start`` returned has not fired."""
    return any(job.pending for job in run.jobs.values()) or any(not d.called for d in run.handles.values())


def _jobs_call(call: _FaultDelayedCall) -> bool:
    """Whether a delayed call is a job's own (settling after its duration): the harness's, not the subject's."""
    return isinstance(getattr(call.func, "__self__", None), Job)


def _subject_calls_by_due(calls: list[_FaultDelayedCall]) -> list[_FaultDelayedCall]:
    """The subject's calls among ``calls`` (jobs' own left out), in the order they are due."""
    return sorted((call for call in calls if not _jobs_call(call)), key=lambda c: (c.due_us, c.key))


def _leak_detail(name: str, call: _FaultDelayedCall) -> str:
    """A ``leak.call`` detail: the call's name and when it is due. A running ``LoopingCall``'s pending tick is
    named by the loop's function too (``LoopingCall(LeaseHolder._renew) due at 10250ms``, as its ``leak.loop``
    names it): the clock's call is the loop itself, and a subject may run several (review 10, finding 6)."""
    loop = getattr(call, "func", None)
    if isinstance(loop, task.LoopingCall):
        name = f"{name}({func_name(loop.f)})"
    return f"{name} due at {round(call.due_us / 1000)}ms"


def _watch(run: Run, job: int, d: Any, what: str, consumers: set[int] | frozenset[int] = frozenset()) -> None:
    """Watch the Deferred ``start`` (``what``) returned for ``job``, or a ``submit`` that returned a subclass
    of Deferred (through its own ``addCallbacks``, as ever: it may refuse, or do more): what it delivers is
    recorded as the job's result or failure and passed on (``pass_on``), but by a job in ``consumers``
    (``submitter``'s: its Deferred was handed to a later submit's caller too), which returns None."""
    if not isinstance(d, defer.Deferred):
        _not_a_deferred(d, job, what)
    run.handles[job] = d
    trace, target = run.trace, run.target

    def result(value: Any) -> Any:
        _on_result(value, trace, job)
        return None if job in consumers else pass_on(run, d, value)

    def failure(failed: Failure) -> Any:
        _on_failure(failed, trace, job, EventKind.FAILURE, target.declared_errors, target, run.wrapped)
        return None if job in consumers else pass_on(run, d, failed)

    d.addCallbacks(result, failure)


def pass_on(run: Run, d: Deferred[Any], outcome: Any) -> Any:
    """What each of the harness's observers returns once it recorded what ``d`` delivered: ``outcome`` itself.

    The harness's callers (of ``submit``, ``start``, ``stop()`` and an operation) only watch: each passes its
    Deferred's answer on unchanged, so a Deferred handed to two of them (a job's Deferred an operation returns
    too) gives each the same answer, and the subject's own callbacks after the harness's see what they would
    without it. A failure passed on is noted with its Deferred (``Run.passed_on``): the teardown handles the
    ones still at the end of their chain (``handle_passed_on``), so the harness leaves none unhandled.
    Once the run let go of the subject (``Run.watching`` False) a failure is consumed instead: delivered
    then (a coroutine of the subject's closed as its garbage is collected), nothing would handle it. (The one
    exception while it runs, two ``submit`` callers handed one Deferred, is ``submitter``'s.)
    """
    if isinstance(outcome, Failure):
        if not run.watching:
            return None
        run.passed_on.append((d, outcome))
    return outcome


def _not_a_deferred(d: Any, job: int, what: str) -> NoReturn:
    raise TargetError(
        f"the target's {what} returned {describe(d)} for job {job}, not a Deferred; "
        "return the Deferred of the job's result"
    )


def apply(run: Run, op: Any, errors: Mapping[str, type[BaseException]]) -> None:
    trace = run.trace
    assert run.clock is not None
    if isinstance(op, Submit):
        submitter(run, errors)(op)
    elif isinstance(op, Start):
        job = run.jobs.get(op.job) or Job(op.job, op.specs, run.clock, trace, errors)
        run.jobs[op.job] = job
        trace.record(EventKind.START, op.job)
        if not run.target.can_start(run.subject):
            raise TargetError(
                f"the schedule starts the subject (job {op.job}), but {type(run.subject).__name__} has no start() "
                "method and the target no Target(start=...): use a schedule made for this target"
            )
        try:
            d = run.target.start_subject(run.subject, job)
        except ABORTS + (KeyboardInterrupt,):
            raise
        except BaseException as exc:
            raise TargetError(f"the subject's start() raised {describe_error(exc)}") from None
        if isinstance(d, defer.Deferred):
            _watch(run, op.job, d, "start")
    elif isinstance(op, Cancel):
        cancel_job(run.handles, trace, op.job)
    elif isinstance(op, Stop):
        if run.stopped or not run.target.can_stop(run.subject):
            trace.record(EventKind.STOP_SKIP, detail="already stopped" if run.stopped else "subject has no stop()")
        else:
            stop(run, "scheduled")
    elif isinstance(op, Jump):
        run.clock.jump_us(op.delta_ms * 1000)
        trace.record(EventKind.CLOCK_JUMP, detail=f"{op.delta_ms:+d}ms")
    elif isinstance(op, Call):
        _call(run, op)


def cancel_job(handles: Mapping[int, Deferred[Any]], trace: Trace, job: int) -> None:
    """Apply ``Cancel(job)``: cancel the Deferred the job's caller holds (``handles``), recording it.

    The runner calls it directly for an exact ``Cancel`` (with the run's handles and trace), ``apply``
    for any other: one implementation, one frame fewer per cancel.
    """
    handle = handles.get(job)
    if handle is None:
        trace.record(_CANCEL_SKIP, job, "not submitted")
        return
    if not trace.closed:  # trace.record(_CANCEL, job), appended here (``Trace.record``)
        trace.raw.append((trace.stamps.now_us, _CANCEL, job, 0, ""))
    try:
        handle.cancel()
    except Exception as exc:
        trace.record(_CANCEL_RAISED, job, describe_error(exc))


def submitter(run: Run, errors: Mapping[str, type[BaseException]]) -> Callable[[Submit], None]:
    """``apply`` of a ``Submit`` in this run, as a function of the operation (the runner makes it once a run).

    What is the same for every job of a run is worked out once: the trace's
    ``record``, the target's submit path (``Target.job_submitter``), the
    callback that records what each caller received (one for the run, added
    to each job's Deferred with its id), the submit event's detail per
    priority. Each call records the same events and raises the same errors
    as applying the operation step by step did.
    """
    trace, clock, jobs, handles, target = run.trace, run.clock, run.jobs, run.handles, run.target
    wrapped = run.wrapped
    # Two submit callers handed one Deferred (``return self._in_flight[key]``) are each a consumer, as real
    # callers are: the earlier one's observer returns None, so the later one receives None (``sharing.joined``,
    # and the shared-Deferred note, read it: review 4, finding 11). The job of each Deferred's first submit (by
    # id: every one stays alive in ``handles`` for the run), and the jobs whose Deferred a later submit got.
    firsts: dict[int, int] = {}
    consumers: set[int] = set()
    assert clock is not None
    record = trace.record
    declared = target.declared_errors
    keyed = target.keys is not None
    submit_job = target.job_submitter(run.subject)
    new = object.__new__
    details = _DETAILS

    def received(result: Any, job_id: int) -> Any:
        # One callable for both outcomes (``addBoth``: cheaper than ``addCallbacks`` with two, and
        # Twisted's own choice between them is this same test); ``_on_result`` inlined (a run fires
        # about 40 of these), ``_on_failure`` too for a target without wrappers. What it received is passed
        # on (``pass_on``), but to another submit's caller handed the same Deferred (``consumers``).
        # Each event appended as ``trace.record`` appends it (``Trace.record``: a call cost more than the append).
        if isinstance(result, Failure):
            if target.wraps:  # (read per failure, as _on_failure reads it)
                _on_failure(result, trace, job_id, _FAILURE, declared, target, wrapped)
                return None if job_id in consumers else pass_on(run, handles[job_id], result)
            exc = result.value
            if exc is None:
                exc = known(exc)  # (raises: a Failure always holds its exception)
            if type(exc) is CancelledError and not exc.args and exc.__traceback__ is None and type(result) is Failure and not result.frames:
                # A bare CancelledError that Deferred.cancel made (never raised, no frames; about 7 a run, most of
                # the errors a caller receives): describe_error's answer for it, worked out once (_BARE_CANCELLED).
                detail = _BARE_CANCELLED
            else:
                detail = describe_error(exc, result)
            if not trace.closed:
                trace.raw.append((trace.stamps.now_us, _FAILURE, job_id, 0, detail))
            _note_declared(trace, job_id, exc, declared)
            return None if job_id in consumers else pass_on(run, handles[job_id], result)
        else:
            detail = describe_result(result)
            if not trace.closed:
                trace.raw.append((trace.stamps.now_us, _RESULT, job_id, 0, detail))
        return None if job_id in consumers else result

    def submit(op: Submit) -> None:
        job_id, priority = op.job, op.priority
        # Job(job_id, (op.spec, *op.then), clock, trace, errors, op.key), made here without a call: a run makes
        # about 40 (a class call enters __init__ from C and tests its specs; a maker function was a call still).
        # tests/test_run_direct_paths.py holds every field to the class's own.
        job: Job = new(Job)
        job.id = job_id
        job.first = op.spec
        job.then = op.then
        job.key = op.key
        job.calls = 0
        job.pending = {}
        job._clock = clock
        job._trace = trace
        job._errors = errors
        jobs[job_id] = job
        detail = None if keyed else details.get(priority)
        if detail is None:
            detail = submit_detail(priority, op.key if keyed else None)
            if not keyed and len(details) < MAX_DETAILS:
                details[priority] = detail
        if not trace.closed:
            trace.raw.append((trace.stamps.now_us, _SUBMIT, job_id, 0, detail))
        try:
            d = submit_job(job, priority)
        except TargetError:
            raise
        except Exception as exc:
            record(_SUBMIT_RAISED, job_id, describe_error(exc))
            _note_declared(trace, job_id, exc, declared)
            refuse_likes_of_raised(trace, job_id)  # a glue's like= naming this job while its submit was under way
            return
        exact = type(d) is Deferred  # the common case first: no isinstance test
        if not exact and not isinstance(d, Deferred):
            _not_a_deferred(d, job_id, "submit")
        handles[job_id] = d
        first = firsts.setdefault(id(d), job_id)
        if first != job_id:
            consumers.add(first)  # the earlier caller's observer, added first, consumes what d delivers
        if exact:
            d.addBoth(received, job_id)
        else:
            _watch(run, job_id, d, "submit", consumers)  # a subclass: through its own addCallbacks

    return submit


#: ``describe_error`` of a ``CancelledError`` made without arguments, never raised, whose failure holds no frames:
#: the same text for every one (no message, so its place, and it has none). ``received`` records it as it is.
_BARE_CANCELLED = describe_error(CancelledError())

#: The detail of a submit event by priority, for targets without keys (bounded: memory stays flat).
_DETAILS: dict[int, str] = {}
MAX_DETAILS = 1_024


def _call(run: Run, op: Call) -> None:
    """Call a target operation; record it, and whether it raised (or its Deferred failed) as declared."""
    # Target.__post_init__ made every entry an Operation; the field's type is what a Target accepts.
    operation = cast(Operation, run.target.operations[op.operation])
    label = f"{op.operation}({', '.join(describe(a, 40) for a in op.args)})"
    call_at = run.trace.record(EventKind.CALL, detail=label)

    def outcome(exc: BaseException, how: EventKind, answered: bool = False) -> None:
        # A Deferred fired twice (also carried in a FirstError) is never a refusal, whatever raises= declares (a
        # broad Exception too): it stays call.raised (call.failure), which completion.once judges and errors.operation
        # leaves to it.
        expected = double_fire(exc) is None and (
            isinstance(exc, operation.raises) or isinstance(exc, CancellerError)
        )
        detail = f"{op.operation}: {describe_error(exc)}"
        run.trace.record(EventKind.CALL_REFUSED if expected else how, detail=answer_detail(detail, call_at) if answered else detail)

    try:
        result = operation.call(run.subject, *op.args)
    except ABORTS + (KeyboardInterrupt,):
        raise
    except Exception as exc:
        outcome(exc, EventKind.CALL_RAISED)
        return
    if operation.restarts and run.stopped:
        restart(run, op.operation)
    if result is not None and not isinstance(result, defer.Deferred):
        # A plain return answers the call at once (review 10, finding 5); None, most operations' return, is no
        # answer. Data as it is, another object by its type (``describe_returned``): the trace stays the same.
        run.trace.record(EventKind.CALL_RESULT, detail=answer_detail(f"{op.operation}: {describe_returned(result)}", call_at))
        return
    if isinstance(result, defer.Deferred):
        if not operation.may_pend:  # judged at the end if it never fires (record_leftovers)
            run.answers.append((call_at, label, result))

        def answered(value: Any) -> Any:
            # Described as a plain return is (``describe_returned``): an answer whose repr holds an id() or a
            # set's order made the trace differ between processes (audit 14, noticed; closed in round 15).
            run.trace.record(EventKind.CALL_RESULT, detail=answer_detail(f"{op.operation}: {describe_returned(value)}", call_at))
            return pass_on(run, result, value)

        def failed(failure: Failure) -> Any:
            # Recorded and passed on, as a caller that only watches (``pass_on``): another call handed the same
            # Deferred records the same failure, and the subject's own callbacks after this one see it too.
            outcome(known(failure.value), EventKind.CALL_FAILURE, True)
            return pass_on(run, result, failure)

        result.addCallbacks(answered, failed)


def restart(run: Run, operation: str) -> None:
    """A call of ``operation``, an ``Operation(restarts=True)``, started the stopped subject again: the run counts
    as running, so the schedule's next ``Stop`` (or the teardown) stops it again, and a ``restart`` event marks
    where the invariants judge it as running again (``Facts.stopped_at``). The Deferred the last ``stop()``
    returned is kept, to be judged at the end with the one the next ``stop()`` returns (``_record_unanswered``)."""
    run.stopped = False
    run.trace.record(EventKind.RESTART, detail=operation)
    if run.stopping is not None:
        stops = [index for index, event in enumerate(run.trace.raw) if event[1] is EventKind.STOP]
        run.earlier_stops.append((stops[-1] if stops else -1, run.stopping))
        run.stopping = None


def handle_passed_on(passed_on: list[tuple[Deferred[Any], Failure]]) -> None:
    """Handle each failure a Deferred still ends with that one of the harness's callers passed on (and no
    callback of the subject's handled or replaced since): the harness only watched it, so leaving it
    unhandled, to be logged as "Unhandled error in Deferred" when collected, would be the harness's doing."""
    for d, failure in passed_on:
        if d.called and getattr(d, "result", None) is failure:
            d.addErrback(_handled)


def _handled(failure: Failure) -> None:
    """An errback that handles the failure (the caller saw it: its answer is recorded)."""


def _on_result(value: Any, trace: Trace, job: int) -> None:
    trace.record(EventKind.RESULT, job, describe_result(value))


def _on_failure(
    failure: Failure,
    trace: Trace,
    job: int,
    kind: EventKind = EventKind.FAILURE,
    declared: tuple[type[BaseException], ...] = (),
    target: Any = None,
    wrapped: dict[int, str] | None = None,
) -> None:
    # A Failure holds its exception; Twisted types value as optional only for its constructor's sake.
    exc = known(failure.value)
    wrapper = None
    if target is not None and target.wraps:
        # A declared wrapper (GaveUp(last), FirstError) is recorded as the error it carries: what the caller got.
        carried = target.carried(exc)
        if carried is not exc:
            wrapper = type(exc).__name__
            exc, failure = carried, _failure_of(carried)
    index = trace.record(kind, job, describe_error(exc, failure))
    if wrapper is not None and wrapped is not None and index >= 0:
        wrapped[index] = wrapper  # beside the trace, not in it: Outcome.wrapper (saved traces stay as they were)
    _note_declared(trace, job, exc, declared)


#: Twisted's ``Failure(exc)``, typed: its constructor is unannotated (an untyped call under ``mypy --strict``).
_failure_of: Callable[[BaseException], Failure] = Failure


def _note_declared(trace: Trace, job: int, exc: BaseException, declared: tuple[type[BaseException], ...]) -> None:
    """After an error event, record (as ``error.is``) which declared types the error is an instance of,
    when its class name alone would say otherwise: a subclass of ``CancelledError``, or a same-named
    class that is not the declared one. Most runs never need it, so their traces stay as they were.
    """
    if not declared:
        return
    key = (type(exc), declared)
    detail = _DECLARED.get(key, _UNKNOWN)
    if detail is _UNKNOWN:
        name = type(exc).__name__
        by_type = {t.__name__ for t in declared if isinstance(exc, t)}
        detail = ",".join(sorted(by_type)) if by_type != {t.__name__ for t in declared if t.__name__ == name} else None
        if len(_DECLARED) < MAX_DECLARED and all(type(t) is type for t in declared):
            _DECLARED[key] = detail  # plain classes: isinstance depends on the error's type alone
    if detail is not None:
        trace.record(EventKind.ERROR_IS, job, detail)


#: What ``_note_declared`` records for an error type and the declared types (None: nothing), worked
#: out once each; bounded, like the description caches.
_DECLARED: dict[tuple[type[BaseException], tuple[type[BaseException], ...]], str | None] = {}
MAX_DECLARED = 1_024
_UNKNOWN: Any = object()

