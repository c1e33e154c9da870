"""The skeleton the hand-rolled pools of the scenarios share: one submission record, one correct pool.

Most buggy scenarios are a careful pool with one thing wrong. Written out in
full each time, the careful part was copied across a dozen classes and the
bug was hard to find among the copies. Here the careful part is written
once: ``Pool`` runs at most ``limit`` jobs at once from a FIFO queue,
delivers each job's result or error to its caller exactly once, takes a
cancelled waiting job out of the queue and cancels a running one. A
scenario subclasses it and overrides the one step where its bug (or its
different design) lives; the override's docstring or a ``BUG:`` comment
says what is wrong. ``tests/test_pool_skeleton.py`` checks the skeleton
itself, and the scenario tests that every pool built on it is still
caught, or still clean, exactly as before.

The steps, in the order a job goes through them::

    submit(job) -> _submit(entry): _refusal()?  _new_caller(entry)  _enqueue(entry)
    _enqueue: waiting.append, _pump()
    _pump: while a job waits and a slot is free: active += 1, _start(entry)
    _start: running = maybeDeferred(job), running.addBoth(_done, entry)
    _done: active -= 1, _deliver(result, entry), _pump()
    _cancel(entry) (the caller's canceller): cancel the running job, or take the entry out of the queue
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class Entry:
    """One submission: the job, its priority, the caller's Deferred, and the job's own Deferred once it runs.

    ``cancelled`` marks an entry whose caller cancelled it where the pool
    cannot take it out at once (a heap, a ``DeferredQueue``, a slot handed
    over on the next tick); ``call`` is a delayed call that still has to
    admit or start it, for pools that defer work to the next tick.
    """

    __slots__ = ("job", "priority", "caller", "running", "cancelled", "call")

    def __init__(self, job: Callable[[], Any], priority: int = 0) -> None:
        self.job = job
        self.priority = priority
        self.caller: defer.Deferred[Any] = defer.Deferred()
        self.running: defer.Deferred[Any] | None = None
        self.cancelled = False
        self.call: IDelayedCall | None = None


def deliver(result: Any, entry: Entry) -> None:
    """Fire the caller with the job's result or failure, unless it has fired already (it was cancelled)."""
    if not entry.caller.called:
        if isinstance(result, Failure):
            entry.caller.errback(result)
        else:
            entry.caller.callback(result)


class Pool:
    """At most ``limit`` jobs at once, FIFO; results and errors reach the caller once; cancels handled.

    Cancelling a waiting job takes it out of the queue (Twisted then fails
    the caller with ``CancelledError``); cancelling a running one cancels
    the job's own Deferred, whose ``CancelledError`` reaches the caller
    through ``_done``. Correct as it stands (``tests/test_pool_skeleton.py``
    fuzzes it); each step is a method so that a subclass changes one.
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        self.clock = clock
        self.limit = limit
        self.active = 0
        self.waiting: deque[Entry] = deque()

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return self._submit(Entry(job))

    def _submit(self, entry: Entry) -> defer.Deferred[Any]:
        refusal = self._refusal()
        if refusal is not None:
            return defer.fail(refusal)
        entry.caller = self._new_caller(entry)
        self._enqueue(entry)
        return entry.caller

    def _refusal(self) -> Exception | None:
        """Why a new job is refused at once (a stopped pool), or None to take it."""
        return None

    def _new_caller(self, entry: Entry) -> defer.Deferred[Any]:
        return defer.Deferred(lambda d: self._cancel(entry))

    def _enqueue(self, entry: Entry) -> None:
        self.waiting.append(entry)
        self._pump()

    def _cancel(self, entry: Entry) -> None:
        if entry.running is not None:
            entry.running.cancel()
        elif entry in self.waiting:
            self.waiting.remove(entry)

    def _pump(self) -> None:
        while self.waiting and self.active < self.limit:
            entry = self.waiting.popleft()
            self.active += 1
            self._start(entry)

    def _start(self, entry: Entry) -> None:
        entry.running = defer.maybeDeferred(entry.job)
        entry.running.addBoth(self._done, entry)

    def _done(self, result: Any, entry: Entry) -> None:
        self.active -= 1
        self._deliver(result, entry)
        self._pump()

    def _deliver(self, result: Any, entry: Entry) -> None:
        deliver(result, entry)
