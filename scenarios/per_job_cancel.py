"""A reader/writer lock whose cancellation promise differs per job: a per-job ``cancellable``.

Jobs at priority 0 read, at priority 1 write (in queue order: a job waits
for every conflicting job queued before it). Cancelling a caller behaves as
Synapse's ``ReadWriteLock`` does (docs/reviews/outside-user.md, F8):

* a reader's cancel is at once: a waiting reader leaves the queue, a running
  one has its job's Deferred cancelled (``cancellable=True``);
* a waiting writer's cancel is delayed until its turn (``delay_cancellation``:
  the caller's Deferred fails then, paused until that moment, and the job
  never runs), a running writer's job is cancelled (``"delayed"``).

One mode for all jobs cannot say this: ``True`` is broken by the writers,
``"delayed"`` lets a reader's late cancel pass. So the target declares
``cancellable=lambda key, priority: "delayed" if priority == WRITER else True``.

``per_job_rw_lock`` is correct and stays clean. Bugs each per-job promise
catches where ``"delayed"`` for all would not:
``per_job_rw_lock_delays_readers`` (a waiting reader's cancel delayed too):
``cancellation.fires``; ``per_job_rw_lock_leaves_readers_running`` (a
running reader's job runs on after its caller's cancel): ``cancellation.propagates``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target
from scenarios import Scenario

READER, WRITER = 0, 1


@dataclass(eq=False)
class _Waiter:
    job: Callable[[], Any]
    write: bool
    caller: defer.Deferred[Any] = field(default_factory=defer.Deferred)
    work: defer.Deferred[Any] | None = None
    #: A cancelled writer still in the queue: at its turn, its caller fails (unpaused) and its job never runs.
    cancelled: bool = False


class ReadWriteLock:
    """Readers together, a writer alone, in queue order; ``submit(job, priority)`` runs ``job`` under the lock."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.queue: deque[_Waiter] = deque()
        self.readers = 0
        self.writing = False

    def submit(self, job: Callable[[], Any], priority: int) -> defer.Deferred[Any]:
        waiter = _Waiter(job, priority == WRITER)
        waiter.caller = defer.Deferred(lambda caller: self._cancel(waiter))
        self.queue.append(waiter)
        self._grant()
        return waiter.caller

    def _grant(self) -> None:
        while self.queue:
            head = self.queue[0]
            if self.writing or (head.write and self.readers):
                return
            self.queue.popleft()
            if head.cancelled:  # a writer whose cancel waited for its turn: its caller fails now
                head.caller.unpause()
                continue
            if head.write:
                self.writing = True
            else:
                self.readers += 1
            self._run(head)

    def _run(self, waiter: _Waiter) -> None:
        work = waiter.work = defer.maybeDeferred(waiter.job)
        work.addBoth(self._finished, waiter)

    def _finished(self, result: Any, waiter: _Waiter) -> None:
        if waiter.write:
            self.writing = False
        else:
            self.readers -= 1
        if not waiter.caller.called:
            if isinstance(result, defer.Failure):
                waiter.caller.errback(result)
            else:
                waiter.caller.callback(result)
        self._grant()

    def _cancel(self, waiter: _Waiter) -> None:
        if waiter.work is not None:
            self._cancel_running(waiter)
        elif waiter.write or self._delays_readers():
            # delay_cancellation: the caller fails at its turn; paused until then, then unpaused.
            waiter.cancelled = True
            waiter.caller.pause()
            waiter.caller.errback(defer.CancelledError())
        else:
            self.queue.remove(waiter)  # the caller fails now, with CancelledError (Deferred.cancel)
            self._grant()

    def _cancel_running(self, waiter: _Waiter) -> None:
        assert waiter.work is not None
        waiter.work.cancel()

    def _delays_readers(self) -> bool:
        return False


class DelaysReaders(ReadWriteLock):
    """BUG: a waiting reader's cancel is delayed until its turn, as a writer's is. Caught by: ``cancellation.fires``
    (readers promise a cancel at once; ``cancellable="delayed"`` for every job would let it pass)."""

    def _delays_readers(self) -> bool:
        return True


class LeavesReadersRunning(ReadWriteLock):
    """BUG: a running reader's cancel fails its caller but leaves its job running. Caught by:
    ``cancellation.propagates`` (readers promise their work is cancelled; ``"delayed"`` lets work run on)."""

    def _cancel_running(self, waiter: _Waiter) -> None:
        if waiter.write:
            super()._cancel_running(waiter)


def writers_delayed_readers_at_once(key: int, priority: int) -> bool | str:
    """The lock's promise per job: a writer's cancel may wait for its turn, a reader's is at once."""
    return "delayed" if priority == WRITER else True


def _target(build: Callable[[IReactorTime], ReadWriteLock], description: str) -> Target:
    return Target(
        build=build,
        cancellable=writers_delayed_readers_at_once,
        menu={"priorities": 2},
        # The default submit passes priority= only with order="priority" (no order is promised).
        submit=lambda subject, job, priority: subject.submit(job, priority),
        description=description,
    )


per_job_rw_lock = _target(ReadWriteLock, "a reader/writer lock: readers cancel at once, a waiting writer at its turn")
per_job_rw_lock_delays_readers = _target(DelaysReaders, "a reader/writer lock that delays a waiting reader's cancel too")
per_job_rw_lock_leaves_readers_running = _target(
    LeavesReadersRunning, "a reader/writer lock that leaves a cancelled reader's job running"
)


SCENARIOS = (
    Scenario(
        "scenarios.per_job_cancel:per_job_rw_lock",
        "pass",
        "a reader/writer lock promising cancellation per job: readers at once, a waiting writer at its turn",
        "Deferred.pause",
    ),
    Scenario(
        "scenarios.per_job_cancel:per_job_rw_lock_delays_readers",
        "cancellation.fires",
        "a waiting reader's cancel is delayed until its turn, as a writer's is",
        "Deferred.pause",
    ),
    Scenario(
        "scenarios.per_job_cancel:per_job_rw_lock_leaves_readers_running",
        "cancellation.propagates",
        "a running reader's cancel fails its caller but leaves its job running",
        "Deferred.pause",
    ),
)
