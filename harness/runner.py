"""The runner: play one schedule against one target and record the trace.

It builds a fresh subject on a fresh ``FaultClock``, applies each operation at
its virtual time (advancing the clock punctually or in strides, as the
schedule's clock policy says), then drains: keeps advancing until nothing is
pending or the drain horizon passes. Everything the subject and the jobs do
lands in the trace.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.base import DelayedCall
from twisted.python.failure import Failure

from .clock import FaultClock, Livelock, call_name
from .errors import TargetError
from .jobs import Job
from .schedule import Cancel, Jump, Schedule, Stop, Submit
from .target import Target
from .trace import Trace

#: Virtual time the runner keeps draining after the last operation, beyond
#: the total duration of all jobs, before it calls the run finished.
DRAIN_SLACK_MS = 10_000

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def describe(value: Any, limit: int = 80) -> str:
    """A deterministic one-line description: memory addresses are masked."""
    text = _ADDRESS.sub("0x?", repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_ADDRESS.sub('0x?', str(exc))}"


@dataclass
class Run:
    """Everything one run produced: the trace plus the objects invariants may inspect."""

    target: Target
    schedule: Schedule
    trace: Trace
    clock: FaultClock
    subject: Any
    jobs: dict[int, Job] = field(default_factory=dict)
    handles: dict[int, defer.Deferred[Any]] = field(default_factory=dict)
    horizon_us: int = 0


def run_schedule(target: Target, schedule: Schedule) -> Run:
    """Run ``schedule`` against a fresh subject built by ``target``; return the run."""
    policy = schedule.clock
    trace_holder: list[Trace] = []

    def on_escape(call: DelayedCall, exc: BaseException) -> None:
        trace_holder[0].record("reactor.error", detail=f"{call_name(call)}: {describe_error(exc)}")

    clock = FaultClock(policy.tie_break, policy.seed, on_escape)
    trace = Trace(lambda: round(clock.rightNow * 1_000_000))
    trace_holder.append(trace)
    try:
        subject = target.build(clock)
    except Exception as exc:
        raise TargetError(f"the target's build(clock) raised {describe_error(exc)}") from None
    run = Run(target=target, schedule=schedule, trace=trace, clock=clock, subject=subject)
    drain_ms = sum(op.spec.after_ms for op in schedule.submits) + DRAIN_SLACK_MS
    horizon_s = (schedule.end_ms + drain_ms) / 1000
    run.horizon_us = round(horizon_s * 1_000_000)
    errors = target.error_types
    try:
        for op in schedule.ops:
            _advance_until(clock, op.at_ms / 1000, policy.step_ms)
            _apply(run, op, errors)
        _drain(clock, horizon_s, policy.step_ms)
    except Livelock as exc:
        trace.record("reactor.livelock", detail=str(exc))
    trace.record("end", detail=f"pending={len(clock.calls)}")
    return run


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
    """After the last operation, keep firing calls until none is left or the horizon passes."""
    while clock.calls:
        due = clock.next_due()
        if due is None or due > horizon:
            return
        _advance_until(clock, _fire_time(due, step_ms), step_ms)


def _apply(run: Run, op: Any, errors: dict[str, type[BaseException]]) -> None:
    trace = run.trace
    if isinstance(op, Submit):
        job = Job(op.job, op.spec, run.clock, trace, errors)
        run.jobs[op.job] = job
        trace.record("submit", op.job, f"{op.spec.kind} {op.spec.after_ms}ms p{op.priority}")
        try:
            d = run.target.submit_job(run.subject, job, op.priority)
        except Exception as exc:
            trace.record("submit.raised", op.job, describe_error(exc))
            return
        if not isinstance(d, defer.Deferred):
            raise TargetError(
                f"the target's submit returned {describe(d)} for job {op.job}, not a Deferred; "
                "return the Deferred of the job's result"
            )
        run.handles[op.job] = d
        d.addCallbacks(_on_result, _on_failure, callbackArgs=(trace, op.job), errbackArgs=(trace, op.job))
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
        trace.record("stop")
        if run.target.can_stop(run.subject):
            try:
                run.target.stop_subject(run.subject)
            except Exception as exc:
                raise TargetError(f"the subject's stop() raised {describe_error(exc)}") from None
    elif isinstance(op, Jump):
        run.clock.jump(op.delta_ms / 1000)
        trace.record("clock.jump", detail=f"{op.delta_ms:+d}ms")


def _on_result(value: Any, trace: Trace, job: int) -> None:
    trace.record("result", job, describe(value))


def _on_failure(failure: Failure, trace: Trace, job: int) -> None:
    trace.record("failure", job, describe_error(failure.value))
