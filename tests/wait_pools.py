"""Correct pools for ``timeout_from="wait"`` that hand a freed slot over in ways the free-slot rule must
accept (audit 11), and one twin whose dispatcher dies.

:class:`WaitPool` runs at most ``n`` jobs (at most ``per_key`` of one key), keeps the rest in a FIFO queue,
and fails a waiter with ``TimeoutError`` ``T`` after it queued. A freed slot goes to the first eligible
waiter: at once (``handoff="direct"``), in a ``callLater(0)`` (``"later0"``), or on the next tick of a
``LoopingCall`` dispatcher (``"loop"``). With ``retries``, a failed attempt is retried after ``backoff``
seconds, its slot kept meanwhile.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet import defer, task

from harness import Target

N, T_S, PERIOD_S, HEARTBEAT_S = 2, 0.2, 0.05, 0.3


class _Waiter:
    def __init__(self, pool: WaitPool, job: Any, key: Any) -> None:
        self.pool, self.job, self.key = pool, job, key
        self.d: defer.Deferred[Any] = defer.Deferred(self._cancel)
        self.timer: Any = None
        self.inner: defer.Deferred[Any] | None = None

    def _cancel(self, _d: Any) -> None:
        if self in self.pool.queue:
            self.pool.queue.remove(self)
            self.timer.cancel()
        elif self.inner is not None:
            self.inner.cancel()


class WaitPool:
    """See the module."""

    def __init__(self, clock: Any, handoff: str = "direct", per_key: int | None = None, retries: int = 0,
                 backoff: float = 0.03) -> None:
        self.clock, self.handoff, self.per_key, self.retries, self.backoff = clock, handoff, per_key, retries, backoff
        self.running = 0
        self.by_key: dict[Any, int] = {}
        self.queue: deque[_Waiter] = deque()
        self.loop: task.LoopingCall | None = None
        if handoff == "loop":
            self.loop = task.LoopingCall(self._dispatch)
            self.loop.clock = clock
            self.loop.start(PERIOD_S, now=False)

    def _eligible(self, key: Any) -> bool:
        return self.running < N and (self.per_key is None or self.by_key.get(key, 0) < self.per_key)

    def submit(self, job: Any, key: Any = None) -> defer.Deferred[Any]:
        if self._eligible(key) and not any(self._eligible(w.key) for w in self.queue):
            return self._run(job, key)
        w = _Waiter(self, job, key)
        w.timer = self.clock.callLater(T_S, self._expire, w)
        self.queue.append(w)
        return w.d

    def _run(self, job: Any, key: Any) -> defer.Deferred[Any]:
        self.running += 1
        self.by_key[key] = self.by_key.get(key, 0) + 1
        return self._attempt(job, 0).addBoth(self._release, key)

    def _attempt(self, job: Any, n: int) -> defer.Deferred[Any]:
        d = defer.maybeDeferred(job)
        if n < self.retries:
            def again(failure: Any) -> Any:
                if failure.check(defer.CancelledError):
                    return failure
                return task.deferLater(self.clock, self.backoff, self._attempt, job, n + 1)
            d.addErrback(again)
        return d

    def _release(self, result: Any, key: Any) -> Any:
        self.running -= 1
        self.by_key[key] -= 1
        if self.handoff == "direct":
            self._dispatch()
        elif self.handoff == "later0":
            self.clock.callLater(0, self._dispatch)
        return result

    def _dispatch(self) -> None:
        while True:
            w = next((w for w in self.queue if self._eligible(w.key)), None)
            if w is None:
                return
            self.queue.remove(w)
            w.timer.cancel()
            w.inner = self._run(w.job, w.key)
            w.inner.chainDeferred(w.d)

    def _expire(self, w: _Waiter) -> None:
        if w in self.queue:
            self.queue.remove(w)
            w.d.errback(defer.TimeoutError())

    def stop(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()


class DeafDispatcher(WaitPool):
    """BUG: the dispatcher stops handing out slots once a job has failed (its error handling leaves a flag set)."""

    deaf = False

    def _release(self, result: Any, key: Any) -> Any:
        if isinstance(result, Exception) or hasattr(result, "check"):
            self.deaf = True
        return super()._release(result, key)

    def _dispatch(self) -> None:
        if not self.deaf:
            super()._dispatch()


class LeakBesideHeartbeat(WaitPool):
    """BUG: a failed job's slot is freed but no waiter is started; a ``LoopingCall`` heartbeat every
    ``HEARTBEAT_S`` (longer than the wait timeout) runs beside, dispatching nothing."""

    def __init__(self, clock: Any, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.heartbeat = task.LoopingCall(lambda: None)
        self.heartbeat.clock = clock
        self.heartbeat.start(HEARTBEAT_S, now=False)

    def _release(self, result: Any, key: Any) -> Any:
        if hasattr(result, "check"):  # a failure: the slot is freed, nobody started
            self.running -= 1
            self.by_key[key] -= 1
            return result
        return super()._release(result, key)

    def stop(self) -> None:
        super().stop()
        if self.heartbeat.running:
            self.heartbeat.stop()


def wait_pool(cls: type[WaitPool] = WaitPool, **kwargs: Any) -> Target:
    """The target of a pool built with ``kwargs``: limit ``N`` (FIFO, or per key with ``per_key``), a
    ``T_S`` wait timeout, retries when the pool makes them."""
    per_key = kwargs.get("per_key")
    keyed: dict[str, Any] = {"keys": 3, "key_limit": per_key} if per_key is not None else {"order": "fifo"}
    return Target(build=lambda clock: cls(clock, **kwargs), limit=N, timeout_ms=int(T_S * 1000), timeout_from="wait",
                  stop=lambda pool: pool.stop(), retries=kwargs.get("retries") or None, **keyed)
