"""Steps of a run: how each operation of a schedule is applied to the subject, and what is recorded.

Submitting, starting, cancelling, stopping, jumping the clock and calling a
target operation; the callbacks that record what each caller received; the
subject's own timers; and what a stopped subject left behind. The run's
lifecycle around these steps (phases, limits, teardown) is ``runner``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task
from twisted.python.failure import Failure

from harness.errors import TargetError
from harness.guard.escapes import Escaped
from harness.guard.watchdog import Expired
from harness.model.faults import CancellerError
from harness.model.keys import submit_detail
from harness.model.schedule import Call, Cancel, Jump, Start, Stop, Submit
from harness.model.trace import Trace, format_ms
from harness.run.clock import FaultClock, Livelock, call_name, func_name
from harness.run.describe import describe, describe_error
from harness.run.jobs import Job

if TYPE_CHECKING:
    from harness.run.runner import Run

#: The subject's timers recorded per run (a livelock sets thousands): each is set, then fired or cancelled.
MAX_TIMER_EVENTS = 1_000

#: Exceptions that end a run abruptly; the runner turns each into a one-line harness error.
ABORTS = (Expired, Escaped, Livelock, SystemExit)


def nothing() -> None:
    pass


def work_for_build(run: Run) -> tuple[Any, ...]:
    """The periodic work for ``build(clock, work)``: the job of the schedule's first start, made now."""
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
    """Record the subject's own delayed calls as ``timer.set``, ``timer.fire`` and ``timer.cancel`` events.

    Each names the call by its number and function (``#3 Poller._poll``),
    ``timer.set`` with its due time. Jobs' own calls (a job settling after
    its duration) are the harness's, not the subject's, and are left out.
    The label is made once, when the call is set: it is cheap enough to be
    always on. Past ``MAX_TIMER_EVENTS`` timers in a run (a livelock), one
    ``timer.limit`` event says so and recording stops: no more timer events.
    """
    record = trace.record
    budget = [MAX_TIMER_EVENTS]

    def on_timer(what: str, call: Any) -> None:
        if what == "set":
            if isinstance(getattr(call.func, "__self__", None), Job):
                return  # no label: its firing or cancelling is not recorded either
            call.label = label = f"#{call.seq} {call_name(call)}"
            budget[0] -= 1
            record("timer.set", detail=f"{label} due {format_ms(call.due_us)}")
            if not budget[0]:
                record("timer.limit", detail=f"{MAX_TIMER_EVENTS} timers recorded: no more timer events")
                clock.on_timer = None  # recording ends here, and costs nothing from now on
            return
        label = getattr(call, "label", None)  # None: a job's call, past the limit, or set before recording began
        if label is not None:
            record("timer.fire" if what == "fire" else "timer.cancel", detail=label)

    return on_timer


def record_leftovers(run: Run) -> None:
    """Record pending DelayedCalls and running LoopingCalls left after stop and drain."""
    clock, trace = run.clock, run.trace
    assert clock is not None
    for call in sorted(clock.calls, key=lambda c: (c.due_us, c.key)):
        if isinstance(getattr(call.func, "__self__", None), Job):
            continue
        trace.record("leak.call", detail=f"{call_name(call)} due at {round(call.due_us / 1000)}ms")
    loops: dict[int, task.LoopingCall] = {}
    for call in clock.created:
        func = getattr(call, "func", None)
        # LoopingCall schedules itself (callLater(delay, self)), not a bound method of itself.
        owner = func if isinstance(func, task.LoopingCall) else getattr(func, "__self__", None)
        if isinstance(owner, task.LoopingCall):
            loops.setdefault(id(owner), owner)
    for loop in loops.values():
        if loop.running:
            trace.record("leak.loop", detail=f"LoopingCall({func_name(loop.f)}) still running")


def stop(run: Run, why: str) -> None:
    run.trace.record("stop", detail=why)
    run.stopped = True
    try:
        result = run.target.stop_subject(run.subject)
    except ABORTS + (KeyboardInterrupt,):
        raise
    except CancellerError as exc:
        # stop() cancelled a hostile job whose own canceller raised: the job's fault, not the subject's.
        run.trace.record("stop.raised", detail=describe_error(exc))
        result = None
    except BaseException as exc:
        raise TargetError(f"the subject's stop() raised {describe_error(exc)}") from None
    run.checkpoint()
    if isinstance(result, defer.Deferred):
        result.addErrback(_on_failure, run.trace, -1, "stop.failure")


def _watch(run: Run, job: int, d: Any, what: str) -> None:
    if not isinstance(d, defer.Deferred):
        raise TargetError(
            f"the target's {what} returned {describe(d)} for job {job}, not a Deferred; "
            "return the Deferred of the job's result"
        )
    run.handles[job] = d
    d.addCallbacks(
        _on_result,
        _on_failure,
        callbackArgs=(run.trace, job),
        errbackArgs=(run.trace, job, "failure", run.target.declared_errors),
    )


def apply(run: Run, op: Any, errors: dict[str, type[BaseException]]) -> None:
    trace = run.trace
    assert run.clock is not None
    if isinstance(op, Submit):
        job = Job(op.job, op.specs, run.clock, trace, errors, op.key)
        run.jobs[op.job] = job
        trace.record("submit", op.job, submit_detail(op.priority, op.key if run.target.keys is not None else None))
        try:
            d = run.target.submit_job(run.subject, job, op.priority)
        except TargetError:
            raise
        except Exception as exc:
            trace.record("submit.raised", op.job, describe_error(exc))
            _note_declared(trace, op.job, exc, run.target.declared_errors)
            return
        _watch(run, op.job, d, "submit")
    elif isinstance(op, Start):
        job = run.jobs.get(op.job) or Job(op.job, op.specs, run.clock, trace, errors)
        run.jobs[op.job] = job
        trace.record("start", op.job)
        try:
            d = run.target.start_subject(run.subject, job)
        except ABORTS + (KeyboardInterrupt,):
            raise
        except BaseException as exc:
            raise TargetError(f"the subject's start() raised {describe_error(exc)}") from None
        if isinstance(d, defer.Deferred):
            _watch(run, op.job, d, "start")
    elif isinstance(op, Cancel):
        handle = run.handles.get(op.job)
        if handle is None:
            trace.record("cancel.skip", op.job, "not submitted")
            return
        trace.record("cancel", op.job)
        try:
            handle.cancel()
        except Exception as exc:
            trace.record("cancel.raised", op.job, describe_error(exc))
    elif isinstance(op, Stop):
        if run.stopped or not run.target.can_stop(run.subject):
            trace.record("stop.skip", detail="already stopped" if run.stopped else "subject has no stop()")
        else:
            stop(run, "scheduled")
    elif isinstance(op, Jump):
        run.clock.jump_us(op.delta_ms * 1000)
        trace.record("clock.jump", detail=f"{op.delta_ms:+d}ms")
    elif isinstance(op, Call):
        _call(run, op)


def _call(run: Run, op: Call) -> None:
    """Call a target operation; record it, and whether it raised (or its Deferred failed) as declared."""
    operation = run.target.operations[op.operation]
    run.trace.record("call", detail=f"{op.operation}({', '.join(describe(a, 40) for a in op.args)})")

    def outcome(exc: BaseException, how: str) -> None:
        expected = isinstance(exc, operation.raises) or isinstance(exc, CancellerError)
        run.trace.record(f"call.{'refused' if expected else how}", detail=f"{op.operation}: {describe_error(exc)}")

    try:
        result = operation.call(run.subject, *op.args)
    except ABORTS + (KeyboardInterrupt,):
        raise
    except Exception as exc:
        outcome(exc, "raised")
        return
    if isinstance(result, defer.Deferred):
        result.addErrback(lambda failure: outcome(failure.value, "failure"))


def _on_result(value: Any, trace: Trace, job: int) -> None:
    trace.record("result", job, describe(value))


def _on_failure(
    failure: Failure, trace: Trace, job: int, kind: str = "failure", declared: tuple[type[BaseException], ...] = ()
) -> None:
    trace.record(kind, job, describe_error(failure.value, failure))
    _note_declared(trace, job, failure.value, declared)


def _note_declared(trace: Trace, job: int, exc: BaseException, declared: tuple[type[BaseException], ...]) -> None:
    """After an error event, record (as ``error.is``) which declared types the error is an instance of,
    when its class name alone would say otherwise: a subclass of ``CancelledError``, or a same-named
    class that is not the declared one. Most runs never need it, so their traces stay as they were.
    """
    if not declared:
        return
    name = type(exc).__name__
    by_type = {t.__name__ for t in declared if isinstance(exc, t)}
    if by_type != {t.__name__ for t in declared if t.__name__ == name}:
        trace.record("error.is", job, ",".join(sorted(by_type)))

