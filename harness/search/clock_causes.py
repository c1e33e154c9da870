"""Which of a failing schedule's clock faults the failure needs, after shrinking.

A schedule runs under a clock policy (``ClockPolicy``): a tie-break for calls
due at the same instant, a stride, a jitter. A failure that needs one of them
is a different finding from one that does not: "job 3 started ahead of job 2"
only because calls due together ran last-in first-out says the subject relies
on the order of same-instant ``callLater`` calls. This pass tries each fault
away on its own (jitter -> 0, stride -> 0, tie-break -> fifo), keeps every
simplification under which the same invariant still breaks, and names the
faults that remain, for the failure's message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from harness.model.schedule import ClockPolicy, Schedule
from harness.search.job_causes import Behaviour

#: Each clock fault: whether a policy has it, the policy without it, and how to say it is needed.
_FAULTS: tuple[tuple[Callable[[ClockPolicy], bool], Callable[[ClockPolicy], ClockPolicy], Callable[[ClockPolicy], str]], ...] = (
    (
        lambda p: p.jitter_ms > 0,
        lambda p: replace(p, jitter_ms=0),
        lambda p: f"calls firing up to {p.jitter_ms}ms late",
    ),
    (
        lambda p: p.step_ms > 0,
        lambda p: replace(p, step_ms=0),
        lambda p: f"the reactor waking only every {p.step_ms}ms",
    ),
    (
        lambda p: p.tie_break != "fifo",
        lambda p: replace(p, tie_break="fifo", seed=0 if p.jitter_ms == 0 else p.seed),
        lambda p: f"calls due at the same instant run in {p.tie_break} order",
    ),
)


def tame_clock(schedule: Schedule, still_fails: Callable[[Schedule], bool]) -> tuple[Schedule, tuple[str, ...]]:
    """The schedule with every clock fault it does not need removed, and the ones it needs, described.

    An operation landing between the rounds of its instant (``after_rounds``) counts as a clock
    fault too: the reactor handling I/O between two passes."""
    for has, without, _ in _FAULTS:
        if has(schedule.clock):
            candidate = replace(schedule, clock=without(schedule.clock))
            if still_fails(candidate):
                schedule = candidate
    for index, op in enumerate(schedule.ops):
        if op.after_rounds is not None:
            candidate = _landed(schedule, index)
            if still_fails(candidate):
                schedule = candidate
    needs = tuple(say(schedule.clock) for has, _, say in _FAULTS if has(schedule.clock))
    landings = tuple(_landing(index, op.after_rounds) for index, op in enumerate(schedule.ops) if op.after_rounds is not None)
    return schedule, needs + landings


def _landing(index: int, after_rounds: int) -> str:
    where = "before the calls due then" if after_rounds == 0 else f"after {after_rounds} round{'' if after_rounds == 1 else 's'} of the calls due then"
    return f"step {index + 1} handled {where} (as I/O between two reactor passes)"


def each_removed(schedule: Schedule) -> tuple[Schedule, ...]:
    """The schedule with each of its clock faults (and landings between rounds) taken away on its own."""
    policy = schedule.clock
    out = [replace(schedule, clock=without(policy)) for has, without, _ in _FAULTS if has(policy)]
    out.extend(_landed(schedule, index) for index, op in enumerate(schedule.ops) if op.after_rounds is not None)
    return tuple(out)


def _landed(schedule: Schedule, index: int) -> Schedule:
    """The schedule with operation ``index`` handled after every round of its instant (``after_rounds`` None)."""
    ops = schedule.ops
    return replace(schedule, ops=ops[:index] + (replace(ops[index], after_rounds=None),) + ops[index + 1 :])


def needs_note(needs: tuple[str, ...], invariant: str | None = None, behaviours: tuple[str, ...] = ()) -> str:
    """The clause appended to a violation's message when the failure needs clock faults ('' when none).

    ``invariant`` None: taking any one of the faults away makes the schedule pass. Otherwise it names the
    invariant that then holds, for a schedule that without a fault still breaks another one (a loop whose
    late call is "early" with jitter may be "overlapping" without it): the note says only what is true.
    ``behaviours``: the hostile job behaviours the failure needs as well ("job 0's canceller raising at
    300ms", ``harness.search.job_causes``), named after the clock faults (review 11, finding 7)."""
    causes = needs + behaviours
    if not causes:
        return ""
    kind = "clock fault" if not behaviours else "job behaviour" if not needs else ""
    if len(causes) == 1:
        which = f"this {kind}"
    else:
        which = f"any one of these {kind}s" if kind else "any one of these"
    if invariant is None:
        holds = "the schedule passes"
    else:
        still = "still breaks" if len(causes) == 1 else "may still break"
        holds = f"{invariant} holds (another invariant {still})"
    return f"; it fails only with {' and with '.join(causes)}: without {which} {holds}"


def clock_note(
    schedule: Schedule, needs: tuple[str, ...], invariant: str, passes: Callable[[Schedule], bool], behaviours: tuple[Behaviour, ...] = ()
) -> str:
    """``needs_note`` for a tamed failing ``schedule`` of ``invariant``: "the schedule passes" only when
    ``passes`` holds for the schedule with each needed fault taken away (a run or two per finding).
    ``behaviours``: the hostile job behaviours the failure needs too, each with the schedule without it."""
    if not needs and not behaviours:
        return ""
    removed = (each_removed(schedule) if needs else ()) + tuple(b.without for b in behaviours)
    return needs_note(needs, None if all(passes(c) for c in removed) else invariant, tuple(b.said for b in behaviours))
