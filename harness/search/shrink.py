"""Domain-aware shrinking: the campaign's only shrinker (its search does not run Hypothesis).

It works on the schedule itself, not on the bytes it was decoded from (where
an operation cannot be deleted without shifting the records behind it), and
keeps each change only while the same invariant still breaks (the one found
first, never another that a smaller schedule happens to break): it deletes runs of operations, then
single ones and pairs (a cancel of a deleted job goes with it), merges wall-clock jumps in a row
into one (when their sum stays within the menu's ``max_jump_ms``), drops later-attempt
behaviours and hostile cancellers, shortens behaviour chains from the front, moves jobs to key 0, zeroes durations, moves operations earlier
in time (one alone into the instant of the one before, or it and all later
ones by a whole gap or part of it), puts operations back after every round of
their instant (``after_rounds`` None), tames the clock policy, brings a cancel up to
a job submitted before it (the operations between deleted), and finally
numbers the jobs (and keys) 0, 1, 2... The passes are a table (``PASSES``): a
new kind of simplification is one more generator in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial

from harness.model.schedule import Cancel, JobSpec, Jump, Schedule, Start, Submit

#: Replays the pass may spend on one schedule.
MAX_ATTEMPTS = 2_000
#: Up to this many operations, pairs are deleted too: two jobs that only
#: matter together (two slots to fill) are a common local minimum.
PAIRS_UP_TO = 24


def shrink_schedule(
    schedule: Schedule, still_fails: Callable[[Schedule], bool], max_jump_ms: int | None = None
) -> Schedule:
    """Greedily remove and simplify operations while ``still_fails`` holds; return the result.

    ``max_jump_ms`` is the menu's bound on one wall-clock jump: given, jumps in a row are merged
    into one when their sum stays within it (a schedule the menu could have drawn).
    """
    passes = _passes(max_jump_ms)
    attempts = 0
    improved = True
    while improved and attempts < MAX_ATTEMPTS:
        improved = False
        for candidate in _candidates(schedule, passes):
            attempts += 1
            if still_fails(candidate):
                schedule = candidate
                improved = True
                break
            if attempts >= MAX_ATTEMPTS:
                break
    renumbered = _renumbered(schedule)
    if renumbered != schedule and still_fails(renumbered):
        schedule = renumbered
    return schedule


def _without(schedule: Schedule, doomed: set[int]) -> Schedule:
    """The schedule minus the operations at ``doomed``, and minus cancels of jobs no longer submitted."""
    kept = [op for i, op in enumerate(schedule.ops) if i not in doomed]
    jobs = {op.job for op in kept if isinstance(op, (Submit, Start))}
    return replace(schedule, ops=tuple(op for op in kept if not isinstance(op, Cancel) or op.job in jobs))


def _delete_runs(schedule: Schedule) -> Iterator[Schedule]:
    """Halves, quarters, ... of the operations, deleted at once."""
    count = len(schedule.ops)
    size = count // 2
    while size >= 2:
        for begin in range(0, count - size + 1, size):
            yield _without(schedule, set(range(begin, begin + size)))
        size //= 2


def _delete_singles(schedule: Schedule) -> Iterator[Schedule]:
    for index in range(len(schedule.ops)):
        yield _without(schedule, {index})


def _delete_pairs(schedule: Schedule) -> Iterator[Schedule]:
    count = len(schedule.ops)
    if count <= PAIRS_UP_TO:
        for first in range(count):
            for second in range(first + 1, count):
                yield _without(schedule, {first, second})


def _merge_jumps(schedule: Schedule, max_jump_ms: int) -> Iterator[Schedule]:
    """Two wall-clock jumps in a row made one jump of their sum, if it is within ``max_jump_ms``.

    A minimal schedule of ``jump -2450ms, jump -2410ms`` leaves the reader asking what each
    jump does, when one jump of -4860 ms breaks the invariant the same way (review 7,
    finding 4); no deletion finds it, as each jump alone is too small. The merged jump
    is tried at the first jump's time and landing, then at the second's (the wall clock
    reaches the sum only there). A sum of 0 is left to the deletion of the pair, and a
    sum beyond the menu's bound is never tried: the menu could not have drawn it.
    """
    ops = schedule.ops
    for index in range(len(ops) - 1):
        first, second = ops[index], ops[index + 1]
        if isinstance(first, Jump) and isinstance(second, Jump):
            total = first.delta_ms + second.delta_ms
            if total and abs(total) <= max_jump_ms:
                for kept in (first, second):
                    yield replace(schedule, ops=ops[:index] + (replace(kept, delta_ms=total),) + ops[index + 2 :])


def _simplify_jobs(schedule: Schedule) -> Iterator[Schedule]:
    ops = schedule.ops
    for index, op in enumerate(ops):
        if isinstance(op, (Submit, Start)):
            for simpler in _simpler_jobs(op):
                yield replace(schedule, ops=ops[:index] + (simpler,) + ops[index + 1 :])


def _shorten_chains(schedule: Schedule) -> Iterator[Schedule]:
    """Behaviour chains made shorter from the front, and their later behaviours simpler.

    ``_simplify_jobs`` drops a chain's later behaviours (``then``, the last
    of which repeats) and simplifies its first; here, for each job with a
    chain: its first behaviour dropped (the next one becomes the first: a
    periodic ``succeed; then fail after 920ms`` whose success only came
    before the failing calls becomes ``fail after 920ms``, review 4,
    finding 12), then each later behaviour simpler as ``_simpler_specs``
    makes the first (a hostile canceller tamed, no duration, a success,
    the default error).
    """
    ops = schedule.ops
    for index, op in enumerate(ops):
        if isinstance(op, (Submit, Start)) and op.then:
            for simpler in _shorter_chains(op):
                yield replace(schedule, ops=ops[:index] + (simpler,) + ops[index + 1 :])


def _shorter_chains(op: Submit | Start) -> Iterator[Submit | Start]:
    then = op.then
    yield replace(op, spec=then[0], then=then[1:])
    for position, spec in enumerate(then):
        for simpler in _simpler_specs(spec):
            yield replace(op, then=then[:position] + (simpler,) + then[position + 1 :])


def _move_earlier(schedule: Schedule) -> Iterator[Schedule]:
    """Operations moved earlier in time, every candidate lowering the sum of the operations' times.

    For each gap before an operation: that operation alone to the instant of
    the one before it (two operations in the same instant, the other ones
    where they were), then it and every later operation earlier by the whole
    gap, by half of it, a quarter... (a window boundary or a timer the bug
    needs stays reachable at some shift, where closing the whole gap loses it).
    """
    ops = schedule.ops
    for index in range(len(ops)):
        before = ops[index - 1].at_ms if index else 0
        gap = ops[index].at_ms - before
        if not gap:
            continue
        if index:
            yield replace(schedule, ops=ops[:index] + (replace(ops[index], at_ms=before),) + ops[index + 1 :])
        shift = gap
        while shift:
            yield replace(schedule, ops=ops[:index] + tuple(replace(op, at_ms=op.at_ms - shift) for op in ops[index:]))
            shift //= 2


def _cancel_closer(schedule: Schedule) -> Iterator[Schedule]:
    """A cancel brought up to a job submitted before it: the operations between that job's submission and
    the cancel deleted, and the cancel made that job's, every candidate with fewer operations.

    The cancel that breaks an invariant need not be of the job the search drew it for: a stream's stall
    timer that outlives its queue needs a cancel that empties the queue, and the search found it as
    ``submit 3, grant(2), submit 4, cancel 3`` where ``cancel 2`` right after job 2's submission does
    it (review 10, finding 4). No deletion reaches that (without job 3 the cancel has nothing to
    cancel, and with it the grant and job 4 refill what it frees), and a cancel retargeted alone
    keeps the operations around it. One candidate per cancel and job submitted (or started) before
    it, tried after every other pass, where the schedule is at a local minimum: a handful of runs.
    """
    ops = schedule.ops
    for index, cancel in enumerate(ops):
        if not isinstance(cancel, Cancel):
            continue
        for begin in range(index):
            submit = ops[begin]
            if not isinstance(submit, (Submit, Start)) or begin == index - 1:
                continue  # nothing between them: the cancel retargeted alone would be no smaller schedule
            moved = replace(cancel, job=submit.job)
            yield _without(replace(schedule, ops=ops[:index] + (moved,) + ops[index + 1 :]), set(range(begin + 1, index)))


def _usual_landings(schedule: Schedule) -> Iterator[Schedule]:
    """Operations back to the usual order of their instant (after every round), one at a time."""
    ops = schedule.ops
    for index, op in enumerate(ops):
        if op.after_rounds is not None:
            yield replace(schedule, ops=ops[:index] + (replace(op, after_rounds=None),) + ops[index + 1 :])


def _tame_clock(schedule: Schedule) -> Iterator[Schedule]:
    policy = schedule.clock
    if policy.jitter_ms:
        yield replace(schedule, clock=replace(policy, jitter_ms=0))
    if policy.step_ms:
        yield replace(schedule, clock=replace(policy, step_ms=0))
    if policy.step_ms or policy.jitter_ms:
        yield _lateness_as_durations(schedule)
    if policy.tie_break != "fifo":
        yield replace(schedule, clock=replace(policy, tie_break="fifo", seed=0))


def _lateness_as_durations(schedule: Schedule) -> Schedule:
    """A punctual clock, every 0 ms job made to last the lateness the clock faults gave it.

    A bug that needs jobs to overlap (a limit overshot) shows on a late clock with 0 ms jobs, whose
    calls fire late together; a story with jobs that take time on a punctual clock is the truer
    one (round-2 review, F13). Nothing adds a clock fault back, so shrinking still ends.
    """
    policy = schedule.clock
    lateness = policy.step_ms + policy.jitter_ms

    def longer(spec: JobSpec) -> JobSpec:
        return replace(spec, after_ms=lateness) if spec.after_ms == 0 and spec.kind in ("succeed", "fail") else spec

    ops = tuple(
        replace(op, spec=longer(op.spec), then=tuple(longer(s) for s in op.then)) if isinstance(op, (Submit, Start)) else op
        for op in schedule.ops
    )
    return replace(schedule, ops=ops, clock=replace(policy, step_ms=0, jitter_ms=0))


#: The passes, tried in this order; each proposes simpler schedules, and the first that still fails
#: is kept and the passes start over. Every candidate must be smaller by some measure (fewer
#: operations, simpler behaviours, earlier times, a tamer clock) so that shrinking ends.
PASSES: list[Callable[[Schedule], Iterator[Schedule]]] = [
    _delete_runs,
    _delete_singles,
    _delete_pairs,
    _simplify_jobs,
    _shorten_chains,
    _move_earlier,
    _usual_landings,
    _tame_clock,
    _cancel_closer,
]


def _passes(max_jump_ms: int | None) -> list[Callable[[Schedule], Iterator[Schedule]]]:
    """``PASSES``, with the merge of jumps in a row after the deletions when the menu's bound is known."""
    if not max_jump_ms:
        return PASSES
    after = PASSES.index(_delete_pairs) + 1
    return [*PASSES[:after], partial(_merge_jumps, max_jump_ms=max_jump_ms), *PASSES[after:]]


def _candidates(schedule: Schedule, passes: list[Callable[[Schedule], Iterator[Schedule]]]) -> Iterator[Schedule]:
    for shrink_pass in passes:
        yield from shrink_pass(schedule)


def _simpler_jobs(op: Submit | Start) -> Iterator[Submit | Start]:
    if op.then:
        yield replace(op, then=())
        if len(op.then) > 1:
            yield replace(op, then=op.then[:-1])
    for spec in _simpler_specs(op.spec):
        yield replace(op, spec=spec)
    if isinstance(op, Submit) and op.priority:
        yield replace(op, priority=0)
    if isinstance(op, Submit) and op.key:
        yield replace(op, key=0)


def _simpler_specs(spec: JobSpec) -> Iterator[JobSpec]:
    if spec.canceller_raises:
        yield replace(spec, canceller_raises=False)
    if spec.after_ms:
        yield replace(spec, after_ms=0)
    if spec.kind != "succeed":
        yield replace(spec, kind="succeed", canceller_raises=False)
    if spec.error != "InjectedError" and spec.fails:
        yield replace(spec, error="InjectedError")


def _renumbered(schedule: Schedule) -> Schedule:
    """The same schedule with jobs, and keys, numbered 0, 1, 2... in submission order, for readability."""
    numbers: dict[int, int] = {}
    keys: dict[int, int] = {}
    for op in schedule.ops:
        if isinstance(op, (Submit, Start)):
            numbers[op.job] = len(numbers)
        if isinstance(op, Submit):
            keys.setdefault(op.key, len(keys))
    ops = tuple(replace(op, job=numbers[op.job]) if isinstance(op, (Submit, Start, Cancel)) else op for op in schedule.ops)
    return replace(schedule, ops=tuple(replace(op, key=keys[op.key]) if isinstance(op, Submit) else op for op in ops))
