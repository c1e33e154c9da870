"""A priority work queue with aging: ``workers`` jobs run at once; a waiting job's priority
grows by one every ``aging`` seconds it waits (a tick of a ``LoopingCall`` that runs only while
jobs wait), so low-priority work is not starved; the job with the highest aged priority starts
next, the earlier submitted first among equals.  ``stop()`` stops the aging and refuses new
work (``QueueStopped``); what is queued still runs.  Plain Twisted, clock passed in."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Optional

from twisted.internet import defer, task


class QueueStopped(Exception):
    """The queue was stopped: no new work is taken."""


@dataclass(eq=False)
class _Entry:
    seq: int
    priority: int
    work: Callable[[], Any]
    caller: defer.Deferred
    running: Optional[defer.Deferred] = None


class AgingQueue:
    def __init__(self, clock: Any, workers: int = 1, aging: float = 0.1) -> None:
        self.clock = clock
        self.workers = workers
        self.aging = aging
        self.running = 0
        self.waiting: list[_Entry] = []
        self.stopped = False
        self._seq = itertools.count()
        self._ticker = task.LoopingCall(self._age)
        self._ticker.clock = clock

    def submit(self, work: Callable[[], Any], priority: int = 0) -> defer.Deferred:
        if self.stopped:
            return defer.fail(QueueStopped("the queue is stopped"))
        entry = _Entry(next(self._seq), priority, work, defer.Deferred(lambda _: self._cancel(entry)))
        self.waiting.append(entry)
        self._pump()
        if self.waiting and not self._ticker.running and not self.stopped:
            self._ticker.start(self.aging, now=False)
        return entry.caller

    def _cancel(self, entry: _Entry) -> None:
        if entry.running is not None:
            entry.running.cancel()
        elif entry in self.waiting:
            self.waiting.remove(entry)

    def _age(self) -> None:
        for entry in self.waiting:
            entry.priority += 1
        if not self.waiting:
            self._ticker.stop()

    def _next(self) -> _Entry:
        return max(self.waiting, key=lambda e: (e.priority, -e.seq))

    def _pump(self) -> None:
        while self.running < self.workers and self.waiting:
            entry = self._next()
            self.waiting.remove(entry)
            self.running += 1
            entry.running = defer.maybeDeferred(entry.work)
            entry.running.addBoth(self._finished, entry)

    def _finished(self, outcome: Any, entry: _Entry) -> None:
        entry.running = None
        self.running -= 1
        if not entry.caller.called:
            entry.caller.callback(outcome)
        self._pump()
        return None

    def stop(self) -> None:
        self.stopped = True
        if self._ticker.running:
            self._ticker.stop()


class AgingQueueLifoTies(AgingQueue):
    """BUG: the pick sorts on (priority, seq) to break ties \"by age\", but max() then takes the
    *highest* seq: among equal aged priorities the newest job goes first."""

    def _next(self) -> _Entry:
        return max(self.waiting, key=lambda e: (e.priority, e.seq))


class AgingQueueTickerLeak(AgingQueue):
    """BUG: stop() only refuses new work; the aging ticker keeps running while jobs still wait
    (and, once a job hangs, for ever)."""

    def stop(self) -> None:
        self.stopped = True
