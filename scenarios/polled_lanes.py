"""A task scheduler polling two lanes on two loops: a stall that makes both polls due in one reactor turn.

The shape of a store-backed task scheduler (Synapse's ``TaskScheduler``
launches stored tasks from a periodic poll under one limit; database job
queues do the same): tasks wait in the store and periodic polls launch them.
Here an urgent lane is polled every ``POLL_MS`` and a bulk lane every
``BULK_MS``, its polls staggered ``BULK_OFFSET_MS`` after an urgent poll so
that the two never share an instant; both launch into one limit of
``LIMIT`` running tasks. The urgent poll marks each task active in the
store before starting it, so that a crash does not lose it: an asynchronous
write that completes on the next reactor turn. Bulk tasks are cheap to
redo: they start at once, and a bulk task that ends hands its slot to the
next bulk task waiting. Both polls keep their due times on the wall clock
(``seconds()``), as ``LoopingCall`` does, skipping the ones a late wake
missed.

The window: one reactor turn that runs the urgent poll and then the bulk
poll. The bulk poll then runs between the urgent poll's launches and their
store writes, which wait for the next round (as in
``ReactorBase.runUntilCurrent``). A punctual reactor never does it (the
polls are 40 ms apart), nor does a stall shorter than ``BULK_MS`` (it wakes
for the bulk poll, due first, and runs it first). It takes a wake over
40 ms late for the urgent poll just before a bulk poll (``jitter_ms`` here,
or a late call on a 100 ms stride), a stall longer than ``BULK_MS`` (the
next wake finds the urgent poll, due 100 ms after the last wake, ahead of
the bulk poll), or a stall after a wall-clock jump that moved one poll's
next due time and not yet the other's; and only every ``BULK_MS``, while
urgent tasks fill the free slots and a bulk task waits too. Uniform random
search needs hundreds of examples.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario
from ._pool import Entry, deliver

POLL_MS = 100
BULK_MS = 3_000
BULK_OFFSET_MS = 40
LIMIT = 2
URGENT, BULK = 0, 1


class SchedulerStopped(Exception):
    """The scheduler was stopped before the task was launched."""


class StaggeredPoll:
    """Calls ``poll`` at fixed due times, ``first_ms`` after it is made and every ``interval_ms`` after that.

    Due times are wall-clock readings on a fixed grid, not re-derived from
    the last call, so two polls made together keep their stagger. Due times
    a late wake or a forward jump missed are skipped (as ``LoopingCall``
    does), never replayed; after a backward jump the next due time steps
    back along the grid, so a poll never waits more than one interval
    (``LoopingCall`` would wait out the jump).
    """

    def __init__(self, clock: IReactorTime, interval_ms: int, first_ms: int, poll: Callable[[], None]) -> None:
        self.clock = clock
        self.interval = interval_ms / 1000
        self.poll = poll
        self.due = clock.seconds() + first_ms / 1000
        self.call: IDelayedCall | None = clock.callLater(first_ms / 1000, self._fire)

    def _fire(self) -> None:
        self.call = None
        self.poll()
        now = self.clock.seconds()
        self.due += self.interval
        while self.due <= now:
            self.due += self.interval
        while self.due - self.interval > now:
            self.due -= self.interval
        self.call = self.clock.callLater(self.due - now, self._fire)

    def stop(self) -> None:
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None


class LaneScheduler:
    """At most ``LIMIT`` tasks at once, launched by two staggered polls; key 0 is urgent, key 1 bulk.

    The urgent poll launches waiting urgent tasks while a slot is free; each
    takes its slot at once, then waits for its store write (``_marked``, on
    the next reactor turn) before it starts. The bulk poll launches waiting
    bulk tasks while a slot is free, and a bulk task that ends hands its
    slot to the next one waiting (a bulk worker works its lane through). A cancelled waiting task leaves its lane; a
    task cancelled during its write gives its slot back; a running one is
    cancelled. ``stop()`` stops both polls and fails the tasks still waiting
    with ``SchedulerStopped`` (declared in ``rejects``), as it does later
    submissions; launched tasks run to the end.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.taken = 0  # slots held by running tasks and tasks being marked active
        self.lanes: dict[int, deque[Entry]] = {URGENT: deque(), BULK: deque()}
        self.marking: list[Entry] = []
        self.stopped = False
        self._polls = (
            StaggeredPoll(clock, POLL_MS, POLL_MS, self._poll_urgent),
            StaggeredPoll(clock, BULK_MS, BULK_OFFSET_MS, self._poll_bulk),
        )

    def submit(self, job: Callable[[], Any], key: int) -> defer.Deferred[Any]:
        if self.stopped:
            return defer.fail(SchedulerStopped("the scheduler is stopped"))
        entry = Entry(job, priority=key)
        entry.caller = defer.Deferred(lambda d: self._cancel(entry))
        self.lanes[BULK if key else URGENT].append(entry)
        return entry.caller

    # -- the urgent lane: a slot, a store write, then the start --------------

    def _poll_urgent(self) -> None:
        lane = self.lanes[URGENT]
        while lane and self._free() > 0:
            self._launch(lane.popleft())

    def _free(self) -> int:
        return LIMIT - self.taken

    def _launch(self, entry: Entry) -> None:
        self.taken += 1
        self._mark(entry)

    def _mark(self, entry: Entry) -> None:
        """Mark the task active in the store: the write completes on the next reactor turn."""
        self.marking.append(entry)
        entry.call = self.clock.callLater(0, self._marked, entry)

    def _marked(self, entry: Entry) -> None:
        entry.call = None
        self.marking.remove(entry)
        self._run(entry)

    # -- the bulk lane: started at once, while a slot is free ---------------

    def _poll_bulk(self) -> None:
        lane = self.lanes[BULK]
        while lane and self._free() > 0:
            self.taken += 1
            self._run(lane.popleft())

    # -- running, results, cancels -------------------------------------------

    def _run(self, entry: Entry) -> None:
        entry.running = defer.maybeDeferred(entry.job)
        entry.running.addBoth(self._done, entry)

    def _done(self, result: Any, entry: Entry) -> None:
        deliver(result, entry)
        bulk = self.lanes[BULK]
        if entry.priority == BULK and bulk:
            self._run(bulk.popleft())  # a bulk worker keeps its slot for the next bulk task
        else:
            self.taken -= 1

    def _cancel(self, entry: Entry) -> None:
        if entry.running is not None:
            entry.running.cancel()
        elif entry in self.marking:
            self.marking.remove(entry)
            assert entry.call is not None
            entry.call.cancel()
            self._release(entry)
        else:
            for lane in self.lanes.values():
                if entry in lane:
                    lane.remove(entry)

    def _release(self, entry: Entry) -> None:
        """A task cancelled during its store write gives its slot back."""
        self.taken -= 1

    def stop(self) -> None:
        self.stopped = True
        for poll in self._polls:
            poll.stop()
        for lane in self.lanes.values():
            while lane:
                deliver(Failure(SchedulerStopped("the scheduler stopped before the task ran")), lane.popleft())


class LateCountScheduler(LaneScheduler):
    """The same scheduler, but an urgent task counts against the limit only once its store write completes.

    BUG: ``_launch`` takes no slot (the poll keeps its own count of the
    slots it fills) and ``_marked`` takes it after the write. Alone, each
    poll is right; but when one reactor turn runs the urgent poll and then
    the bulk poll (a late wake or a stall that finds both due, the urgent
    one first), the bulk poll runs between the urgent poll's launches and
    their writes, sees their slots free, and starts a bulk task beside
    them: ``LIMIT + 1`` at once.
    Caught by: ``concurrency.limit``.
    """

    def _poll_urgent(self) -> None:
        lane = self.lanes[URGENT]
        free = self._free()
        while lane and free > 0:
            free -= 1
            self._launch(lane.popleft())

    def _launch(self, entry: Entry) -> None:
        self._mark(entry)

    def _marked(self, entry: Entry) -> None:
        self.taken += 1
        super()._marked(entry)

    def _release(self, entry: Entry) -> None:
        pass  # no slot was taken yet


def _scheduler(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, limit=LIMIT, keys=2, rejects=(SchedulerStopped,), description=description)


lane_scheduler = _scheduler(
    LaneScheduler, "task scheduler polling an urgent lane every 100ms and a bulk lane every 3s, one limit of 2"
)
late_count_scheduler = _scheduler(
    LateCountScheduler, "two-lane polling scheduler that counts an urgent task only once its store write completes"
)

SCENARIOS = (
    Scenario(
        "scenarios.polled_lanes:lane_scheduler",
        "pass",
        "two staggered polls (urgent every 100ms, bulk every 3s) launch into one limit of 2; an urgent task takes its slot before its store write",
        "callLater, seconds()",
    ),
    Scenario(
        "scenarios.polled_lanes:late_count_scheduler",
        "concurrency.limit",
        "an urgent task counts only after its next-tick store write: one turn running both polls, urgent first, starts 3 tasks",
        "callLater, seconds()",
    ),
)
