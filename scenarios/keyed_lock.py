"""A per-key lock: jobs of one key run one at a time, in order; different keys run at once.

The shape of Synapse's ``Linearizer`` and of any "one request per user at a
time" guard: a table from key to lock, an entry made on first use and
dropped when the key goes idle, so the table does not grow for ever. The
reference keeps one ``DeferredLock`` per busy key. The buggy ones get the
two hard parts wrong: a cancelled waiter that keeps its key's slot, and an
entry dropped while its key is still held.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target

from . import Scenario


class KeyedLock:
    """Runs the jobs of one key one at a time, first come first served; keys are independent."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._locks: dict[Any, defer.DeferredLock] = {}

    def submit(self, job: Callable[[], Any], key: Any) -> defer.Deferred[Any]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = defer.DeferredLock()
        return lock.run(job).addBoth(self._tidy, key, lock)

    def _tidy(self, result: Any, key: Any, lock: defer.DeferredLock) -> Any:
        if not lock.locked and not lock.waiting and self._locks.get(key) is lock:
            del self._locks[key]
        return result


class EarlyDropKeyedLock(KeyedLock):
    """Bug: the entry is dropped once nobody waits for it, although a job still holds it.

    The next job of that key finds no entry, makes a fresh lock and runs
    beside the holder.
    """

    def _tidy(self, result: Any, key: Any, lock: defer.DeferredLock) -> Any:
        if not lock.waiting and self._locks.get(key) is lock:
            del self._locks[key]
        return result


class QueueKeyedLock:
    """A hand-rolled keyed lock: a held set and a queue of waiter Deferreds per key.

    Bug: a waiter's Deferred is cancelled where it stands, but it stays in its
    key's queue; when the slot is handed to it, nobody runs and nobody hands
    it on, so every later job of that key waits for ever.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._held: set[Any] = set()
        self._waiters: dict[Any, deque[defer.Deferred[None]]] = {}

    def submit(self, job: Callable[[], Any], key: Any) -> defer.Deferred[Any]:
        if key in self._held:
            turn: defer.Deferred[None] = defer.Deferred()
            self._waiters.setdefault(key, deque()).append(turn)
        else:
            self._held.add(key)
            turn = defer.succeed(None)
        turn.addCallback(lambda _: defer.maybeDeferred(job).addBoth(self._release, key))
        return turn

    def _release(self, result: Any, key: Any) -> Any:
        queue = self._waiters.get(key)
        if queue:
            turn = queue.popleft()
            if not turn.called:
                turn.callback(None)
        else:
            self._held.discard(key)
            self._waiters.pop(key, None)
        return result


def _keyed(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, keys=3, key_limit=1, order="fifo", description=description)


keyed_lock = _keyed(KeyedLock, "a DeferredLock per busy key: one job per key at a time, FIFO within a key")
early_drop_keyed_lock = _keyed(EarlyDropKeyedLock, "drops a key's lock once nobody waits, while a job still holds it")
queue_keyed_lock = _keyed(QueueKeyedLock, "a cancelled waiter stays queued and keeps its key's slot")

SCENARIOS = (
    Scenario("scenarios.keyed_lock:keyed_lock", "pass", "a per-key lock: one job per key at a time, FIFO per key", "DeferredLock"),
    Scenario(
        "scenarios.keyed_lock:early_drop_keyed_lock",
        "concurrency.key_limit",
        "a key's entry dropped while a job still holds it: the next job of the key runs beside it",
        "DeferredLock",
    ),
    Scenario(
        "scenarios.keyed_lock:queue_keyed_lock",
        "cancellation.releases",
        "a cancelled waiter stays in its key's queue and keeps the slot",
        "Deferred",
    ),
)
