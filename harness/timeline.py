"""Readable text timelines of schedules and traces, with the violating events marked."""

from __future__ import annotations

from collections.abc import Iterable

from .schedule import Call, Cancel, JobSpec, Jump, Schedule, Start, Stop, Submit
from .trace import Event, format_ms, one_line

MARK = ">>"


def describe_policy(schedule: Schedule) -> str:
    policy = schedule.clock
    advance = "punctual" if policy.step_ms == 0 else f"strides of {policy.step_ms}ms"
    ties = policy.tie_break + (f" (seed {policy.seed})" if policy.tie_break == "shuffle" else "")
    jitter = f", calls up to {policy.jitter_ms}ms late (seed {policy.seed})" if policy.jitter_ms else ""
    return f"clock: ties {ties}, advance {advance}{jitter}"


def render_schedule(schedule: Schedule) -> str:
    """The schedule's operations, one per line: what the harness will do and when."""
    count = len(schedule.ops)
    lines = [f"schedule: {count} operation{'' if count == 1 else 's'}; {describe_policy(schedule)}"]
    for op in schedule.ops:
        lines.append(f"  {format_ms(op.at_ms * 1000):>10}  {_describe_op(op)}")
    return "\n".join(lines)


def describe_spec(spec: JobSpec) -> str:
    """A job behaviour in words: ``fail after 20ms with ValueError``."""
    what = spec.kind
    if spec.kind in ("succeed", "fail"):
        what += f" after {spec.after_ms}ms"
    if spec.fails:
        what += f" with {spec.error}"
    if spec.canceller_raises:
        what += ", canceller raises"
    return what


def _describe_op(op: object) -> str:
    if isinstance(op, (Submit, Start)):
        what = describe_spec(op.spec)
        if op.then:
            what += "; then " + "; then ".join(describe_spec(spec) for spec in op.then)
        if isinstance(op, Start):
            return f"start periodic work as job {op.job} ({what})"
        prio = f", priority {op.priority}" if op.priority else ""
        key = f", key {op.key}" if op.key else ""
        return f"submit job {op.job} ({what}{prio}{key})"
    if isinstance(op, Cancel):
        return f"cancel job {op.job}"
    if isinstance(op, Jump):
        return f"wall clock jumps {op.delta_ms:+d}ms"
    if isinstance(op, Stop):
        return "stop the subject"
    if isinstance(op, Call):
        return f"call {op.operation}({', '.join(repr(arg) for arg in op.args)})"
    return repr(op)


def render_trace(events: Iterable[Event], marked: Iterable[int] = ()) -> str:
    """The trace as a timeline; events at the indices in ``marked`` get a ``>>`` margin."""
    marks = set(marked)
    lines = [f"   {'time':>10}  {'event':<16} {'job':<7} detail"]
    for index, event in enumerate(events):
        if event.kind == "end":
            continue
        job = "" if event.job < 0 else f"{event.job}" + (f"#{event.attempt}" if event.attempt else "")
        margin = MARK if index in marks else "  "
        # Escaped: a trace read from someone else's file must not drive the terminal.
        lines.append(f"{margin} {format_ms(event.t_us):>10}  {one_line(event.kind):<16} {job:<7} {one_line(event.detail)}".rstrip())
    return "\n".join(lines)
