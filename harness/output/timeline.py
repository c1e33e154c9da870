"""Readable text timelines of schedules and traces, with the violating events marked."""

from __future__ import annotations

from collections.abc import Iterable

from harness.model.schedule import Call, Cancel, JobSpec, Jump, Schedule, Start, Stop, Submit
from harness.model.trace import Event, EventKind, format_ms, one_line

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
        lines.append(f"  {format_ms(op.at_ms * 1000):>10}  {_describe_op(op)}{describe_landing(op.after_rounds)}")
    return "\n".join(lines)


def describe_landing(after_rounds: int | None) -> str:
    """Where an operation lands among the rounds of its instant, when not after every round."""
    if after_rounds is None:
        return ""
    if after_rounds == 0:
        return ", before the calls due then"
    return f", after {after_rounds} round{'' if after_rounds == 1 else 's'} of the calls due then"


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


#: Events printed either side of each event that breaks the invariant, in an excerpt.
CONTEXT = 3
#: The most trace lines an excerpt prints; beyond it, only the first and last marked events keep their context.
MAX_EXCERPT = 22
FULL_TRACE_HINT = "the full trace: harness show FILE, or the HTML report"


def render_trace(
    events: Iterable[Event], marked: Iterable[int] = (), around: int | None = None, hint: str = FULL_TRACE_HINT
) -> str:
    """The trace as a timeline; events at the indices in ``marked`` get a ``>>`` margin.

    With ``around``, only the events within ``around`` of a marked event are
    printed (the whole trace when nothing is marked), each stretch left out
    replaced by a line counting it, and a last line saying where ``hint`` the
    full trace is: a minimal failure reads in a screenful.

    A failure file may hold a million events (``harness show``): each costs one
    pass, no object the garbage collector tracks, and a kind's column is
    formatted once per kind.
    """
    marks = set(marked)
    events = events if isinstance(events, (list, tuple)) else list(events)
    end = str(EventKind.END)
    lines = [f"   {'time':>10}  {'event':<16} {'job':<7} detail"]
    kept: set[int] | None = None
    shown = 0
    if around is not None and marks:
        indices = [index for index, event in enumerate(events) if event.kind != end]
        kept = _excerpt(indices, marks, around)
        shown = len(indices)
    kinds: dict[str, str] = {}
    last_t_us: int | None = None
    when = ""
    skipped = 0
    for index, (t_us, kind, job_number, attempt, detail) in enumerate(events):
        if kind == end:
            continue
        if kept is not None and index not in kept:
            skipped += 1
            continue
        if skipped:
            lines.append(_left_out(skipped))
            skipped = 0
        job = "" if job_number < 0 else f"{job_number}" + (f"#{attempt}" if attempt else "")
        margin = MARK if index in marks else "  "
        column = kinds.get(kind)
        if column is None:
            column = kinds[kind] = f"{one_line(kind):<16}"
        if t_us != last_t_us:  # events come in runs at one instant: each instant formatted once
            last_t_us, when = t_us, f"{format_ms(t_us):>10}"
        # Escaped: a trace read from someone else's file must not drive the terminal.
        text = detail if detail.isprintable() else one_line(detail)
        lines.append(f"{margin} {when}  {column} {job:<7} {text}".rstrip())
    if skipped:
        lines.append(_left_out(skipped))
    if kept is not None and len(kept) < shown:
        lines.append(f"({len(kept)} of {shown} lines shown, around the marked events; {hint})")
    return "\n".join(lines)


def _left_out(count: int) -> str:
    return f"   {'':>10}  ... {count} line{'' if count == 1 else 's'} left out"


def _excerpt(indices: list[int], marks: set[int], around: int) -> set[int]:
    """The indices of the rows to print: ``around`` rows either side of each mark, within ``MAX_EXCERPT``."""
    if len(indices) <= MAX_EXCERPT:
        return set(indices)  # it fits: the whole trace reads better than a part of it
    position = {index: n for n, index in enumerate(indices)}
    spots = sorted(position[m] for m in marks if m in position)
    if not spots:
        return set(indices)
    for width in range(around, -1, -1):
        chosen = _windows(spots, width, len(indices))
        if len(chosen) <= MAX_EXCERPT:
            break
    else:
        chosen = _windows([spots[0], spots[-1]], around, len(indices))
    # A stretch of one line costs as much to show as to count: show it.
    chosen |= {n for n in range(len(indices)) if (n - 1 in chosen or n == 0) and (n + 1 in chosen or n == len(indices) - 1)}
    return {indices[n] for n in chosen}


def _windows(spots: list[int], width: int, size: int) -> set[int]:
    return {n for spot in spots for n in range(max(0, spot - width), min(size, spot + width + 1))}
