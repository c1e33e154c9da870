"""Concurrency invariants: how many jobs run at once, and in which order they start.

With keys declared (``Target(keys=N)``), order is judged among the jobs of one
key, and ``key_limit`` bounds the attempts of one key running at once.
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from typing import TYPE_CHECKING
from collections.abc import Callable, Iterable, Iterator

from harness.model.target import Target
from harness.model.known import known
from harness.model.trace import Event, EventKind, format_ms
from harness.invariants.base import Invariant, Violation
from harness.run.facts import ATTEMPT_ENDS, Facts, JobFacts, abandoned_at, facts_of

if TYPE_CHECKING:
    from harness.run.runner import Run


class _Overfill(Invariant):
    """Shared walk: the first attempt start that puts more running attempts in one group than its limit."""

    limit_name = ""

    def limit(self, target: Target) -> int | None:
        raise NotImplementedError

    def applies(self, target: Target) -> bool:
        return self.limit(target) is not None

    def group_of(self, run: Run) -> Callable[[int], object]:
        return lambda job: None

    def of_group(self, group: object) -> str:
        """How the message names ``group`` after its count ("2 jobs" + ``of_group``): nothing without groups."""
        return ""

    def dropped(self, run: Run) -> dict[int, list[tuple[int, int]]]:
        """Attempts no longer counted from a trace index on, though they still run: none by default."""
        return {}

    def check(self, run: Run) -> Violation | None:
        limit = known(self.limit(run.target))  # applies() requires a limit
        if facts_of(run).peak_running <= limit:
            return None  # no group of running attempts was ever larger than all of them: nothing to walk
        group_of = self.group_of(run)
        for event, held in _overfull(run.trace, limit, group_of, self.dropped(run)):
            return self.violation(run, self.describe(run, event, held, limit), list(held.values()))
        return None

    def describe(self, run: Run, event: Event, held: dict[tuple[int, int], int], limit: int) -> str:
        """The message for the start ``event`` that overfilled its group (``held``: the group's running
        attempts, ``(job, attempt)`` -> trace index of the start, ``event``'s own attempt among them).

        A job with one attempt held is named alone ("job 3"). A job with several held (a retry or a
        repeat called while its earlier attempt still runs) has its attempts named, with their start
        times when it is the starting job's own ("job 0 attempt 1 started at 50ms while its attempt 0
        (started at 0ms) still ran"), and the count says executions, not jobs, since fewer jobs ran."""
        group = self.group_of(run)(event.job)
        by_job: dict[int, list[int]] = {}
        for job, attempt in held:
            by_job.setdefault(job, []).append(attempt)
        noun = "jobs" if len(by_job) == len(held) else "executions"
        at = format_ms(event.t_us)
        head = f"{len(held)} {noun}{self.of_group(group)} running at {at} but the {self.limit_name} is {limit}"
        own = sorted(a for a in by_job.pop(event.job) if a != event.attempt)
        if not own:
            starter = f"job {event.job} started"
            others = []
        else:
            times = ", ".join(format_ms(run.trace[held[(event.job, a)]].t_us) for a in own)
            starter = f"job {event.job} attempt {event.attempt} started at {at}"
            others = [f"its {_attempts(own)} (started at {times})"]
        for job, attempts in by_job.items():
            others.append(f"job {job}" if len(attempts) == 1 else f"job {job}'s {_attempts(sorted(attempts))}")
        return f"{head}: {starter} while {', '.join(others)} still ran"


def _attempts(numbers: list[int]) -> str:
    """``attempt 0`` or ``attempts 0 and 1`` or ``attempts 0, 1 and 2``."""
    if len(numbers) == 1:
        return f"attempt {numbers[0]}"
    return f"attempts {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"


def _overfull(
    events: Iterable[Event],
    limit: int,
    group_of: Callable[[int], object],
    dropped: dict[int, list[tuple[int, int]]] | None = None,
) -> Iterator[tuple[Event, dict[tuple[int, int], int]]]:
    """Each attempt start that makes its group (``group_of(job)``) hold more than ``limit`` running
    attempts, with that group's running attempts (``(job, attempt)`` -> trace index of the start).
    ``dropped`` maps a trace index to the attempts that stop counting there (abandoned work)."""
    running: dict[object, dict[tuple[int, int], int]] = {}
    dropped = dropped or {}
    start, ends = EventKind.JOB_START, ATTEMPT_ENDS  # bound once: this walks every event of every run
    for index, event in enumerate(events):
        if dropped:
            for job, attempt in dropped.get(index, ()):
                running.get(group_of(job), {}).pop((job, attempt), None)
        kind = event.kind
        if kind == start:
            held = running.setdefault(group_of(event.job), {})
            held[(event.job, event.attempt)] = index
            if len(held) > limit:
                yield event, held
        elif kind in ends:
            running.get(group_of(event.job), {}).pop((event.job, event.attempt), None)


class Limit(_Overfill):
    """At no point are more job attempts running than the declared limit."""

    name = "concurrency.limit"
    summary = "never more jobs running at once than the declared limit"
    limit_name = "limit"

    def limit(self, target: Target) -> int | None:
        return target.limit


class KeyLimit(_Overfill):
    """At no point are more attempts of one key running than the declared ``key_limit`` (1 when shared)."""

    name = "concurrency.key_limit"
    summary = "never more attempts of one key running at once than key_limit (1 for a shared target)"
    limit_name = "key limit"

    def limit(self, target: Target) -> int | None:
        return target.keyed_limit

    def group_of(self, run: Run) -> Callable[[int], object]:
        jobs = facts_of(run).jobs
        return lambda job: jobs[job].key if job in jobs else None

    def of_group(self, group: object) -> str:
        return f" of key {group}"

    def dropped(self, run: Run) -> dict[int, list[tuple[int, int]]]:
        """Shared: an execution every caller of its key has cancelled is abandoned; nobody waits for it, so
        a fresh execution of the key may start while it still runs (its cancel may have been refused)."""
        if not run.target.shared:
            return {}
        facts = facts_of(run)
        out: dict[int, list[tuple[int, int]]] = {}
        for job in facts.jobs.values():
            for attempt in job.attempts:
                index = abandoned_at(facts, run.target, attempt)
                if index is not None:
                    out.setdefault(index + 1, []).append((attempt.job, attempt.n))
        return out


def _waiting(facts: Facts, job: JobFacts, index: int) -> bool:
    """Submitted before ``index``, not yet started, and not withdrawn (cancelled, rejected or fired)."""
    if job.submit is None or job.submit > index or job.submit_raised is not None:
        return False
    if job.first_start is not None and job.first_start < index:
        return False
    if any(c < index for c in job.cancels) or facts.fired_before(job, index):
        return False
    return True


class _StartOrder(Invariant):
    """Shared walk: at each job's first start, look for a waiting job that should have gone first."""

    order = ""
    #: Whether ``rank`` orders jobs by submission alone (FIFO): the sweep then keeps queues, not heaps.
    in_submission_order = False

    def applies(self, target: Target) -> bool:
        return target.order == self.order and target.kind == "submit"

    def skipped(self, waiting: JobFacts, started: JobFacts) -> bool:
        raise NotImplementedError

    def describe(self, waiting: JobFacts, started: JobFacts, facts: Facts) -> str:
        raise NotImplementedError

    def rank(self, job: JobFacts) -> tuple[int, int]:
        """A key such that ``skipped(waiting, started)`` holds exactly when ``rank(waiting) > rank(started)``."""
        raise NotImplementedError

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        keyed = run.target.keys is not None
        # A sweep in trace order finds the starts at which some waiting job should have gone first, in
        # O(n log n): per group (the key, with keys), a heap of the waiting jobs by rank, highest first.
        # Whether a job waits at a trace index only turns false as the index grows (it started, was
        # cancelled, fired), so a job found not waiting at the top is dropped for good. Only at such a
        # start is the walk (``_walk``) made, the one that picks the job the message names (the first in job
        # order, as ever), so every violation is the same as a walk over all pairs would give.
        if self.in_submission_order:
            flagged = _out_of_turn(facts, keyed)
            if flagged is None:  # a trace the single pass cannot read (a start before its job's submit)
                return self._queue_sweep(run, facts, keyed)
            for index, started in flagged:
                found = self._walk(run, facts, _candidates(facts), started, index, keyed)
                if found is not None:
                    return found
            return None
        starters = sorted((j for j in facts.jobs.values() if j.first_start is not None), key=lambda j: known(j.first_start))
        # Jobs that could ever be waiting (submitted, not refused), in the same order.
        candidates = _candidates(facts)
        by_submit = sorted(candidates, key=lambda c: c[1])
        rank = self.rank
        added = 0
        total = len(by_submit)
        heaps: dict[int, list[tuple[tuple[int, int], int, JobFacts]]] = {}
        for started in starters:
            index = known(started.first_start)
            while added < total and by_submit[added][1] <= index:
                job = by_submit[added][0]
                heappush(heaps.setdefault(job.key if keyed else 0, []), (_negated(rank(job)), job.id, job))
                added += 1
            heap = heaps.get(started.key if keyed else 0)
            # The started job leaves the heap too: it is not waiting at any later start.
            while heap and (heap[0][2] is started or not _waiting(facts, heap[0][2], index)):
                heappop(heap)
            if not heap or not rank(heap[0][2]) > rank(started):
                continue
            found = self._walk(run, facts, candidates, started, index, keyed)
            if found is not None:
                return found
        return None

    def _queue_sweep(self, run: Run, facts: Facts, keyed: bool) -> Violation | None:
        """The sweep when rank is submission order (FIFO): jobs enter each group's heap in that order, so
        the heap is a queue (its top is the first job entered and not yet dropped), kept here as the
        group's jobs in submission order and the index of its head; a job enters once its submit is at
        or before the start looked at. ``_waiting`` is inlined. Used for the traces ``_out_of_turn`` cannot read."""
        jobs = facts.jobs.values()
        # (trace index, job) pairs: indices are distinct (one event, one job), so jobs are never compared.
        starters = sorted([(j.first_start, j) for j in jobs if j.first_start is not None])
        if not starters:
            return None
        queues: dict[int, list[tuple[int, JobFacts]]] = {}
        for submitted, job in sorted([(j.submit, j) for j in jobs if j.submit is not None and j.submit_raised is None]):
            group = job.key if keyed else 0
            queue = queues.get(group)
            if queue is None:
                queues[group] = [(submitted, job)]
            else:
                queue.append((submitted, job))
        heads: dict[int, int] = {}
        for index, started in starters:
            group = started.key if keyed else 0
            queue = queues.get(group)
            if queue is None:
                continue
            head = heads.get(group, 0)
            total = len(queue)
            while head < total:
                submitted, job = queue[head]
                if submitted > index:
                    break  # not entered yet: neither it nor any later one is waiting
                if job is not started:
                    first, cancels, fired = job.first_start, job.cancels, job.fired
                    if (first is None or first >= index) and not (cancels and cancels[0] < index) and (
                        fired is None or fired >= index
                    ):
                        break  # waiting (as _waiting says: cancels are in trace order, the first is the earliest)
                head += 1
            heads[group] = head
            if head < total:
                submitted, job = queue[head]
                if submitted <= index and submitted < known(started.submit):
                    found = self._walk(run, facts, _candidates(facts), started, index, keyed)
                    if found is not None:
                        return found
        return None

    def _walk(
        self,
        run: Run,
        facts: Facts,
        candidates: list[tuple[JobFacts, int, int | None]],
        started: JobFacts,
        index: int,
        keyed: bool,
    ) -> Violation | None:
        """At a start the sweep found out of order: the waiting job the message names, the first in job order."""
        for other, submitted, first in candidates:
            if submitted > index or (first is not None and first < index):
                continue  # not waiting at index (as _waiting() would say)
            if keyed and other.key != started.key:
                continue  # with keys, order is promised among the jobs of one key
            if other.id != started.id and self.skipped(other, started) and _waiting(facts, other, index):
                return self.violation(run, self.describe(other, started, facts), [known(other.submit), index])
        return None


_NEVER = math.inf


def _out_of_turn(facts: Facts, keyed: bool) -> list[tuple[int, JobFacts]] | None:
    """The first starts (trace index, job) at which a job of the same group submitted earlier was still
    waiting, in trace order: where ``_queue_sweep`` calls ``_walk``, found in one pass in submission order.

    A job that could wait (submitted, not refused) waits at every trace index after its submit up to
    and including the first of its first start, its first cancel and its firing (``_waiting``): an
    interval. A started job S was passed over at its first start exactly when some job of its group
    submitted before it waits there, that is when the latest end of those intervals, over the jobs
    submitted before S, is at or after S's first start (each of them was submitted before that start,
    since S was). None when a job started without a submit before its start (a hand-made trace): the
    queue sweep then runs.
    """
    jobs = facts.jobs.values()
    flagged: list[tuple[int, JobFacts]] = []
    for group in _by_key(jobs) if keyed else (jobs,):
        found = _passed_over(group)
        if found is _UNORDERED:  # job order is not submission order (a schedule that says otherwise)
            found = _passed_over(sorted(group, key=_submit_of))
        if found is None:
            return None
        flagged += found
    if len(flagged) > 1:
        flagged.sort(key=_index_of)
    return flagged


def _by_key(jobs: Iterable[JobFacts]) -> list[list[JobFacts]]:
    """``jobs`` by key, each group in the order given."""
    groups: dict[int, list[JobFacts]] = {}
    for job in jobs:
        group = groups.get(job.key)
        if group is None:
            groups[job.key] = [job]
        else:
            group.append(job)
    return list(groups.values())


#: ``_passed_over``'s answer when the jobs it was given are not in submission order.
_UNORDERED: list[tuple[int, JobFacts]] = []


def _passed_over(jobs: Iterable[JobFacts]) -> list[tuple[int, JobFacts]] | None:
    """``_out_of_turn``'s pass over the jobs of one group: the first starts at which a job submitted
    before is still waiting, or ``_UNORDERED`` if ``jobs`` are not in submission order, or None for a
    start before its job's submit."""
    flagged: list[tuple[int, JobFacts]] = []
    latest: float = -1  # the end of the waiting of the jobs submitted so far
    last = -1
    for job in jobs:
        submitted = job.submit
        if submitted is None:
            if job.first_start is not None:
                return None
            continue
        if submitted < last:
            return _UNORDERED
        last = submitted
        first = job.first_start
        if first is not None:
            if first < submitted:
                return None
            if latest >= first:
                flagged.append((first, job))
            until: float = first
        else:
            until = _NEVER
        if job.submit_raised is None:
            cancels, fired = job.cancels, job.fired
            if cancels and cancels[0] < until:
                until = cancels[0]
            if fired is not None and fired < until:
                until = fired
            if until > latest:
                latest = until
    return flagged


def _submit_of(job: JobFacts) -> int:
    """A job's submit index, for sorting: -1 for one never submitted (``_passed_over`` skips it)."""
    return -1 if job.submit is None else job.submit


def _index_of(flag: tuple[int, JobFacts]) -> int:
    return flag[0]


def _candidates(facts: Facts) -> list[tuple[JobFacts, int, int | None]]:
    """The jobs that could ever be waiting (submitted, not refused), in job order, with their submit and first start."""
    return [(j, j.submit, j.first_start) for j in facts.jobs.values() if j.submit is not None and j.submit_raised is None]


def _negated(rank: tuple[int, int]) -> tuple[int, int]:
    return (-rank[0], -rank[1])


class Fifo(_StartOrder):
    """Declared FIFO: jobs start in the order they were submitted."""

    name = "concurrency.fifo"
    summary = "jobs start in submission order (declared order='fifo')"
    order = "fifo"
    in_submission_order = True

    def skipped(self, waiting: JobFacts, started: JobFacts) -> bool:
        return known(waiting.submit) < known(started.submit)

    def rank(self, job: JobFacts) -> tuple[int, int]:
        return (0, -known(job.submit))

    def describe(self, waiting: JobFacts, started: JobFacts, facts: Facts) -> str:
        return (
            f"job {started.id} started at {format_ms(facts.time(known(started.first_start)))} ahead of job {waiting.id}, "
            f"which was submitted earlier (at {format_ms(facts.time(known(waiting.submit)))}) and was still waiting; "
            "FIFO order was declared"
        )


class Priority(_StartOrder):
    """Declared priority: whenever a job starts, no job already waiting has a higher priority,
    and jobs of equal priority start in submission order."""

    name = "concurrency.priority"
    summary = "no job starts while a higher-priority job waits; equal priorities start in submission order"
    order = "priority"

    def skipped(self, waiting: JobFacts, started: JobFacts) -> bool:
        if waiting.priority != started.priority:
            return waiting.priority > started.priority
        return known(waiting.submit) < known(started.submit)

    def rank(self, job: JobFacts) -> tuple[int, int]:
        return (job.priority, -known(job.submit))

    def describe(self, waiting: JobFacts, started: JobFacts, facts: Facts) -> str:
        at = format_ms(facts.time(known(started.first_start)))
        since = format_ms(facts.time(known(waiting.submit)))
        if waiting.priority == started.priority:
            return (
                f"job {started.id} (priority {started.priority}) started at {at} ahead of job {waiting.id}, "
                f"which has the same priority, was submitted earlier (at {since}) and was still waiting; "
                "equal priorities start in submission order"
            )
        return (
            f"job {started.id} (priority {started.priority}) started at {at} while job {waiting.id} "
            f"(priority {waiting.priority}, waiting since {since}) was still waiting; the higher priority goes first"
        )
