"""Priority scheduling, hand-rolled on ``heapq`` (``Deferred`` has no notion of priority).

The reference scheduler keeps waiting jobs in a heap keyed by (higher
priority first, then submission order) and starts the best one whenever a
slot frees up; a cancelled waiting job is deleted lazily (skipped when it
reaches the top).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Menu, Target

from . import Scenario
from ._pool import Entry, Pool


class SchedulerStopped(Exception):
    """The scheduler was stopped before the job could run."""


class PriorityPool(Pool):
    """At most ``limit`` jobs at once; a free slot goes to the highest-priority waiting job (FIFO among equals).

    The shared pool skeleton (``scenarios._pool.Pool``) with a heap for a
    queue (``_enqueue``, ``_pump``) and lazy deletion of cancelled waiting
    jobs (``_cancel``).
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        super().__init__(clock, limit)
        self._heap: list[tuple[int, int, Entry]] = []
        self._seq = itertools.count()
        self._stopped = False

    def submit(self, job: Callable[[], Any], priority: int = 0) -> defer.Deferred[Any]:
        return self._submit(Entry(job, priority))

    def _refusal(self) -> Exception | None:
        return SchedulerStopped("submitted after stop()") if self._stopped else None

    def _enqueue(self, entry: Entry) -> None:
        heapq.heappush(self._heap, (-entry.priority, next(self._seq), entry))
        self._pump()

    def stop(self) -> None:
        self._stopped = True
        heap, self._heap = self._heap, []
        for _, _, entry in sorted(heap):
            if not entry.cancelled:
                entry.caller.errback(SchedulerStopped("scheduler stopped before the job ran"))

    def _cancel(self, entry: Entry) -> None:
        if entry.running is not None:
            entry.running.cancel()  # its CancelledError reaches the caller through _done
        else:
            entry.cancelled = True  # lazy deletion: skipped when it reaches the top of the heap

    def _pump(self) -> None:
        while self._heap and self.active < self.limit:
            _, _, entry = heapq.heappop(self._heap)
            if entry.cancelled:
                continue
            self.active += 1
            self._start(entry)


class MinHeapPriorityPool(PriorityPool):
    """The same scheduler with the heap key written the "obvious" way.

    BUG: ``heapq`` is a min-heap, so keying entries by ``(priority, seq)``
    in ``_enqueue`` serves the *lowest* priority first, the opposite of the
    documented "higher number first". Caught by: ``concurrency.priority``.
    """

    def _enqueue(self, entry: Entry) -> None:
        heapq.heappush(self._heap, (entry.priority, next(self._seq), entry))  # BUG: should be -priority
        self._pump()


class IdleFlagScheduler(Pool):
    """Urgent work (priority > 0) first; background work (priority 0) only when the scheduler is idle.

    ``idle`` is cleared when a job starts and set again when the last running
    job finishes with no urgent work queued. A job that finishes while it is
    being started (an already-fired Deferred, a plain value) takes a fast path
    that skips the completion bookkeeping. BUG: the fast path in ``_start``
    never sets ``idle`` again, so after such a job background work waits for
    an asynchronous job to finish, and when none comes it is starved for ever.
    Caught by: ``completion.deadline``. Otherwise the shared pool skeleton
    (``scenarios._pool.Pool``) with two queues.
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        super().__init__(clock, limit)
        self.idle = True
        self.urgent: deque[Entry] = deque()
        self.background: deque[Entry] = deque()

    def submit(self, job: Callable[[], Any], priority: int = 0) -> defer.Deferred[Any]:
        return self._submit(Entry(job, priority))

    def _enqueue(self, entry: Entry) -> None:
        (self.urgent if entry.priority > 0 else self.background).append(entry)
        self._pump()

    def _cancel(self, entry: Entry) -> None:
        if entry.running is not None:
            entry.running.cancel()
        else:
            (self.urgent if entry.priority > 0 else self.background).remove(entry)

    def _pump(self) -> None:
        while self.active < self.limit:
            if self.urgent:
                entry = self.urgent.popleft()
            elif self.background and self.idle:
                entry = self.background.popleft()
            else:
                return
            self.idle = False
            self._start(entry)

    def _start(self, entry: Entry) -> None:
        d = defer.maybeDeferred(entry.job)
        if d.called:
            # Fast path: finished already, no slot to account for. BUG: ``idle`` is not restored.
            d.addBoth(self._deliver, entry)
            return
        self.active += 1
        entry.running = d
        d.addBoth(self._done, entry)

    def _done(self, result: Any, entry: Entry) -> None:
        self.active -= 1
        if self.active == 0 and not self.urgent:
            self.idle = True
        self._deliver(result, entry)
        self._pump()


priority_pool = Target(
    build=lambda clock: PriorityPool(clock, limit=2),
    limit=2,
    order="priority",
    description="heapq priority scheduler, two jobs at once, lazy deletion of cancelled jobs",
)

min_heap_priority_pool = Target(
    build=lambda clock: MinHeapPriorityPool(clock, limit=1),
    limit=1,
    order="priority",
    # Bursts: short gaps, so that jobs of different priorities wait together.
    menu=Menu(max_gap_ms=50, priorities=3),
    description="heapq priority scheduler keyed by (priority, seq): lowest priority served first",
)

idle_flag_scheduler = Target(
    build=lambda clock: IdleFlagScheduler(clock, limit=2),
    limit=2,
    order="priority",
    # Successes only, no cancels: a job stranded in a run that also had a failure or a cancel is
    # (plausibly, from the trace alone) blamed on them, as errors.poison or cancellation.releases.
    menu=Menu(job_kinds=("succeed", "immediate", "value", "hang"), cancels=False, priorities=3),
    description="urgent-first scheduler that serves background work only when idle, and forgets to go idle",
)

SCENARIOS = (
    Scenario(
        "scenarios.priority:priority_pool",
        "pass",
        "hand-rolled heapq priority scheduler: two at once, highest priority first, FIFO among equals",
        "heapq + Deferred",
    ),
    Scenario(
        "scenarios.priority:min_heap_priority_pool",
        "concurrency.priority",
        "heapq keyed by (priority, seq) though higher numbers go first: one worker serves the lowest priority first",
        "heapq + Deferred",
    ),
    Scenario(
        "scenarios.priority:idle_flag_scheduler",
        "completion.deadline",
        "background work runs only when an 'idle' flag is set, which a fast path forgets: starvation",
        "Deferred",
    ),
)
