"""A weighted fair scheduler over tenants with a global concurrency limit (stride scheduling).

Written blind (review round 6, phase 1) from general Twisted knowledge, before reading the harness.

``submit(tenant, job)`` queues ``job`` (a zero-argument callable returning a Deferred or a value)
and returns a Deferred for its result. Promises of :class:`FairScheduler`:

* at most ``limit`` jobs run at once;
* work-conserving: a job never waits while a slot is free (the scheduler dispatches synchronously
  on submit and on every completion);
* each tenant's jobs start in submission order;
* weighted fairness: every dispatch picks the backlogged tenant with the smallest pass; a tenant
  that becomes backlogged after being idle starts from the current virtual time (it cannot bank
  credit while idle). Consequence checked by the target: over any stretch in which two tenants are
  both continuously backlogged, their numbers of starts divided by their weights differ by at
  most ``1/w_a + 1/w_b``;
* a job running longer than ``job_timeout`` is cancelled (``Deferred.addTimeout``) and fails with
  ``TimeoutError``; its slot is freed exactly once;
* cancelling a queued job's Deferred removes it from the queue (it never starts); cancelling a
  running one cancels the job's Deferred and frees its slot once;
* a job that raises or fails frees its slot like one that succeeds.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from typing import Any, Callable

from twisted.internet.defer import CancelledError, Deferred, TimeoutError, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure


class _Tenant:
    def __init__(self, name: str, weight: int) -> None:
        self.name = name
        self.stride = Fraction(1, weight)
        self.passv = Fraction(0)
        self.queue: deque[tuple[Callable[[], Any], Deferred[Any]]] = deque()


class FairScheduler:
    """The correct scheduler."""

    def __init__(
        self,
        clock: IReactorTime,
        limit: int,
        weights: dict[str, int],
        job_timeout: float | None = None,
    ) -> None:
        self.clock = clock
        self.limit = limit
        self.job_timeout = job_timeout
        self.tenants = {name: _Tenant(name, w) for name, w in sorted(weights.items())}
        self.running = 0
        self.vtime = Fraction(0)  # pass of the last dispatched tenant
        self._jobs: dict[int, Deferred[Any]] = {}  # id(caller's Deferred) -> running job

    # -- public API -------------------------------------------------------------------------
    def submit(self, tenant: str, job: Callable[[], Any]) -> "Deferred[Any]":
        t = self.tenants[tenant]
        result: Deferred[Any] = Deferred(lambda d: self._cancel(t, d))
        if not t.queue:
            self._wake(t)
        t.queue.append((job, result))
        self._dispatch()
        return result

    # -- internals --------------------------------------------------------------------------
    def _wake(self, t: _Tenant) -> None:
        """``t`` becomes backlogged: it may not use credit banked while idle."""
        t.passv = max(t.passv, self.vtime)

    def _cancel(self, t: _Tenant, d: "Deferred[Any]") -> None:
        for i, (_, r) in enumerate(t.queue):
            if r is d:
                del t.queue[i]
                return
        job = self._jobs.get(id(d))
        if job is not None:
            job.cancel()  # running: cancel the job itself; its completion frees the slot

    def _pick(self) -> _Tenant | None:
        best: _Tenant | None = None
        for t in self.tenants.values():
            if t.queue and (best is None or t.passv < best.passv):
                best = t
        return best

    def _dispatch(self) -> None:
        while self.running < self.limit:
            t = self._pick()
            if t is None:
                return
            job, result = t.queue.popleft()
            self.vtime = t.passv
            t.passv += t.stride
            self._start(job, result)

    def _track(self, result: "Deferred[Any]", job: "Deferred[Any]") -> None:
        """Let a cancel of the caller's Deferred reach the running job until it completes."""
        self._jobs[id(result)] = job

        def untrack(outcome: Any) -> Any:
            self._jobs.pop(id(result), None)
            return outcome

        job.addBoth(untrack)

    def _start(self, job: Callable[[], Any], result: "Deferred[Any]") -> None:
        self.running += 1
        d = maybeDeferred(job)
        if self.job_timeout is not None:
            d.addTimeout(self.job_timeout, self.clock)
        released = [False]

        def release(outcome: Any) -> Any:
            if not released[0]:
                released[0] = True
                self.running -= 1
            return outcome

        def forward(outcome: Any) -> None:
            if not result.called:
                if isinstance(outcome, Failure):
                    result.errback(outcome)
                else:
                    result.callback(outcome)

        self._track(result, d)
        d.addBoth(release)
        d.addBoth(forward)
        d.addBoth(lambda _: self._dispatch())


class LeakOnFailScheduler(FairScheduler):
    """Twin A: the slot is released only on success (``addCallback`` where ``addBoth`` was
    meant), so every failed, timed-out or cancelled job leaks a slot until the scheduler stalls."""

    def _start(self, job: Callable[[], Any], result: "Deferred[Any]") -> None:
        self.running += 1
        d = maybeDeferred(job)
        if self.job_timeout is not None:
            d.addTimeout(self.job_timeout, self.clock)

        def release(value: Any) -> Any:
            self.running -= 1
            return value

        def forward(outcome: Any) -> None:
            if not result.called:
                if isinstance(outcome, Failure):
                    result.errback(outcome)
                else:
                    result.callback(outcome)

        self._track(result, d)
        d.addCallback(release)  # BUG: failures skip the release
        d.addBoth(forward)
        d.addBoth(lambda _: self._dispatch())


class BankedCreditScheduler(FairScheduler):
    """Twin B: a tenant that was idle keeps its old (low) pass when it becomes backlogged again,
    so after a quiet spell it gets a burst of consecutive dispatches and starves the others."""

    def _wake(self, t: _Tenant) -> None:
        pass  # BUG: no catch-up to the virtual time


class DoubleReleaseScheduler(FairScheduler):
    """Twin C: the timeout path frees the slot itself *and* the ordinary completion path frees it
    again, so after a timeout more than ``limit`` jobs run at once."""

    def _start(self, job: Callable[[], Any], result: "Deferred[Any]") -> None:
        self.running += 1
        d = maybeDeferred(job)
        if self.job_timeout is not None:

            def on_timeout(value: Any, timeout: float) -> Any:
                self.running -= 1  # BUG: "free the slot early, the job is dead anyway"
                if isinstance(value, Failure) and value.check(CancelledError):
                    raise TimeoutError(timeout, "job timed out")
                return value

            d.addTimeout(self.job_timeout, self.clock, onTimeoutCancel=on_timeout)

        def release(outcome: Any) -> Any:
            self.running -= 1
            return outcome

        def forward(outcome: Any) -> None:
            if not result.called:
                if isinstance(outcome, Failure):
                    result.errback(outcome)
                else:
                    result.callback(outcome)

        self._track(result, d)
        d.addBoth(release)
        d.addBoth(forward)
        d.addBoth(lambda _: self._dispatch())


__all__ = [
    "BankedCreditScheduler",
    "CancelledError",
    "DoubleReleaseScheduler",
    "FairScheduler",
    "LeakOnFailScheduler",
]
