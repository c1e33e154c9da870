"""The runner: play one schedule against one target and record the trace.

A run has four phases, all recorded in the trace:

1. **ops**: build a fresh subject on a fresh ``FaultClock`` and apply each
   operation at its virtual time, advancing the clock punctually or in
   strides as the schedule's clock policy says;
2. **drain**: keep advancing until nothing is pending or the drain horizon
   passes, then mark ``drained`` (completion is judged here);
3. **teardown**: stop the subject if the schedule did not, drain again, and
   record what is left behind (pending calls, running ``LoopingCall``\\ s);
4. **release**: run the target's own invariants, drop every reference to
   the subject, collect garbage and record any "Unhandled error in
   Deferred" that Twisted logs, so that invariants judge the trace alone.
"""

from __future__ import annotations

import gc
import math
import re
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, task
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure

from .clock import FaultClock, Livelock, call_name, func_name
from .errors import TargetError
from .jobs import Job
from .schedule import Cancel, Jump, Schedule, Start, Stop, Submit
from .target import Target
from .trace import Trace

#: Virtual time the runner keeps draining after the last operation, beyond
#: the total duration of all jobs, before it calls the run finished.
DRAIN_SLACK_MS = 10_000
#: Late timer hops the drain horizon allows for: under a strided or jittery
#: clock policy every delayed call in a chain (a retry's backoff, the next
#: queued job) may fire up to ``step_ms + jitter_ms`` late, and lateness
#: alone must not leave a job unfinished when the run drains.
LATE_HOPS = 64
#: Periods a periodic subject is watched after the last operation.
PERIODS_OBSERVED = 4

#: Runs between full sweeps of the garbage frozen before each run.
SWEEP_EVERY = 500

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_DEFER_NAMESPACE = "twisted.internet.defer"


def describe(value: Any, limit: int = 80) -> str:
    """A deterministic one-line description: memory addresses are masked."""
    text = _ADDRESS.sub("0x?", repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_ADDRESS.sub('0x?', str(exc))}"


@dataclass
class Run:
    """What one run produced.

    ``trace`` is all invariants read. ``subject``, ``clock``, ``jobs`` and
    ``handles`` are live only while the target's own invariants run; the
    runner then drops them so garbage collection can reveal unhandled errors.
    """

    target: Target
    schedule: Schedule
    trace: Trace
    clock: FaultClock | None = None
    subject: Any = None
    jobs: dict[int, Job] = field(default_factory=dict)
    handles: dict[int, defer.Deferred[Any]] = field(default_factory=dict)
    stopped: bool = False


def run_schedule(target: Target, schedule: Schedule) -> Run:
    """Run ``schedule`` against a fresh subject built by ``target``; return the finished run."""
    _isolate_garbage()
    policy = schedule.clock
    clock = FaultClock(policy.tie_break, policy.seed, jitter=policy.jitter_ms / 1000)
    trace = Trace(lambda: round(clock.rightNow * 1_000_000))
    clock.on_escape = lambda call, exc: trace.record("reactor.error", detail=f"{call_name(call)}: {describe_error(exc)}")
    observer = _LogRecorder(trace)
    globalLogPublisher.addObserver(observer)
    try:
        run = Run(target=target, schedule=schedule, trace=trace, clock=clock)
        try:
            run.subject = target.build(clock)
        except Exception as exc:
            raise TargetError(f"the target's build(clock) raised {describe_error(exc)}") from None
        _play(run)
        _release(run)
    finally:
        globalLogPublisher.removeObserver(observer)
    return run


def _play(run: Run) -> None:
    clock, trace, schedule, target = run.clock, run.trace, run.schedule, run.target
    assert clock is not None
    policy = schedule.clock
    longest = max((spec.after_ms for op in schedule.submits for spec in op.specs), default=0)
    drain_ms = sum(spec.after_ms for op in schedule.submits for spec in op.specs) + longest + DRAIN_SLACK_MS
    drain_ms += LATE_HOPS * (policy.step_ms + policy.jitter_ms)
    observe_ms = PERIODS_OBSERVED * (target.interval_ms or 0)
    errors = target.error_types
    try:
        for op in schedule.ops:
            _advance_until(clock, op.at_ms / 1000, policy.step_ms)
            _apply(run, op, errors)
        end = schedule.end_ms / 1000
        _drain(clock, end + drain_ms / 1000, policy.step_ms)
        _advance_until(clock, end + observe_ms / 1000, policy.step_ms)
        trace.record("drained", detail=f"pending={len(clock.calls)}")
        if not run.stopped and target.can_stop(run.subject):
            _stop(run, "teardown")
            _drain(clock, clock.rightNow + drain_ms / 1000, policy.step_ms)
    except Livelock as exc:
        trace.record("reactor.livelock", detail=str(exc))
    if run.stopped:
        _record_leftovers(run)


def _record_leftovers(run: Run) -> None:
    """Record pending DelayedCalls and running LoopingCalls left after stop and drain."""
    clock, trace = run.clock, run.trace
    assert clock is not None
    for call in sorted(clock.calls, key=lambda c: (c.getTime(), c.key)):
        if isinstance(getattr(call.func, "__self__", None), Job):
            continue
        trace.record("leak.call", detail=f"{call_name(call)} due at {round(call.getTime() * 1000)}ms")
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


def _release(run: Run) -> None:
    """Run the target's own invariants, then drop the subject and collect garbage."""
    trace = run.trace
    for invariant in run.target.invariants:
        name = getattr(invariant, "__name__", type(invariant).__name__)
        try:
            invariant(run)
        except AssertionError as exc:
            trace.record("user.fail", detail=f"{name}: {_ADDRESS.sub('0x?', str(exc)) or 'assertion failed'}")
        except Exception as exc:
            raise TargetError(f"the target's invariant {name} raised {describe_error(exc)}, not AssertionError") from None
    if run.clock is not None:
        trace.freeze()
        run.clock.calls.clear()
        run.clock.created.clear()
    run.subject = None
    run.clock = None
    run.jobs = {}
    run.handles = {}
    gc.collect()
    trace.record("end")


_runs_since_sweep = 0


def _isolate_garbage() -> None:
    """Freeze every object that predates the run, so the collection at its end
    scans only what the run made: exact (deterministic) and cheap. Every
    ``SWEEP_EVERY`` runs the frozen objects are swept once, keeping memory flat.
    """
    global _runs_since_sweep
    _runs_since_sweep += 1
    if _runs_since_sweep >= SWEEP_EVERY:
        _runs_since_sweep = 0
        gc.unfreeze()
        gc.collect()
    gc.freeze()


class _LogRecorder:
    """A Twisted log observer that records errors logged during a run into its trace."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def __call__(self, event: dict[str, Any]) -> None:
        failure = event.get("log_failure")
        if failure is not None:
            kind = "unhandled" if event.get("log_namespace") == _DEFER_NAMESPACE else "log.error"
            self.trace.record(kind, detail=describe_error(failure.value))
        elif event.get("log_level") in (LogLevel.error, LogLevel.critical) and not event.get("isError"):
            self.trace.record("log.error", detail=_ADDRESS.sub("0x?", str(event.get("log_format", ""))))


def _fire_time(due: float, step_ms: int) -> float:
    """When a call due at ``due`` fires: then, or at the next stride of a strided reactor."""
    if not step_ms:
        return due
    stride = step_ms / 1000
    return math.ceil(round(due / stride, 9)) * stride


def _advance_until(clock: FaultClock, when: float, step_ms: int) -> None:
    """Fire every call that falls due up to ``when``, then move the clock to ``when``."""
    while True:
        due = clock.next_due()
        if due is None or due > when:
            break
        clock.advance_to(min(_fire_time(due, step_ms), when))
    clock.advance_to(when)


def _drain(clock: FaultClock, horizon: float, step_ms: int) -> None:
    """Keep firing calls until none is left or the next one is past the horizon."""
    while clock.calls:
        due = clock.next_due()
        if due is None or due > horizon:
            return
        _advance_until(clock, _fire_time(due, step_ms), step_ms)


def _stop(run: Run, why: str) -> None:
    run.trace.record("stop", detail=why)
    run.stopped = True
    try:
        result = run.target.stop_subject(run.subject)
    except Exception as exc:
        raise TargetError(f"the subject's stop() raised {describe_error(exc)}") from None
    if isinstance(result, defer.Deferred):
        result.addErrback(_on_failure, run.trace, -1, "stop.failure")


def _watch(run: Run, job: int, d: Any, what: str) -> None:
    if not isinstance(d, defer.Deferred):
        raise TargetError(
            f"the target's {what} returned {describe(d)} for job {job}, not a Deferred; "
            "return the Deferred of the job's result"
        )
    run.handles[job] = d
    d.addCallbacks(_on_result, _on_failure, callbackArgs=(run.trace, job), errbackArgs=(run.trace, job))


def _apply(run: Run, op: Any, errors: dict[str, type[BaseException]]) -> None:
    trace = run.trace
    assert run.clock is not None
    if isinstance(op, Submit):
        job = Job(op.job, op.specs, run.clock, trace, errors)
        run.jobs[op.job] = job
        trace.record("submit", op.job, f"p{op.priority}")
        try:
            d = run.target.submit_job(run.subject, job, op.priority)
        except Exception as exc:
            trace.record("submit.raised", op.job, describe_error(exc))
            return
        _watch(run, op.job, d, "submit")
    elif isinstance(op, Start):
        job = Job(op.job, op.specs, run.clock, trace, errors)
        run.jobs[op.job] = job
        trace.record("start", op.job)
        try:
            d = run.target.start_subject(run.subject, job)
        except Exception as exc:
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
            _stop(run, "scheduled")
    elif isinstance(op, Jump):
        run.clock.jump(op.delta_ms / 1000)
        trace.record("clock.jump", detail=f"{op.delta_ms:+d}ms")


def _on_result(value: Any, trace: Trace, job: int) -> None:
    trace.record("result", job, describe(value))


def _on_failure(failure: Failure, trace: Trace, job: int, kind: str = "failure") -> None:
    trace.record(kind, job, describe_error(failure.value))

