"""A third set of matrix-synapse's utilities (``synapse_prims`` and ``synapse_more`` hold the first
two), each declaring only what Synapse documents, each with a twin that misuses it the way a
user's glue would (``tests/test_thirdparty_extra.py`` names the invariant that must catch it).

``shielded_pool``: a ``DeferredSemaphore(2)`` whose holders run their job behind
``synapse.util.async_helpers.stop_cancellation``: "The new ``Deferred`` will not propagate
cancellation through to the original. When cancelled, the new ``Deferred`` will fail with a
``CancelledError``." A caller cancelled while it waits leaves the semaphore's list (``acquire``'s
canceller); one cancelled while its job runs fails at once and the job runs on, still holding
its slot until it ends (the glue releases on the job's own end). ``limit=2``, ``order="fifo"``,
``cancellable="detach"``. Twin ``shielded_pool_released_on_cancel``: the shield put inside
``DeferredSemaphore.run`` (``sem.run(lambda: stop_cancellation(work))``), as reads naturally:
``run`` releases when the Deferred it waits on fails, and cancelling the caller fails the shield
at once, so the slot is released while the shielded job still runs and a third job starts beside
two (``concurrency.limit``).

``delayed_pool``: the same with ``delay_cancellation``: "Has the same effect as
``stop_cancellation``, but the returned ``Deferred`` will not resolve with a ``CancelledError``
until the original awaitable resolves": a running job's caller fails when its job ends
(``cancellable="delayed"``), a waiting one at once. Twin ``delayed_pool_shielding_the_wait``: the whole
``sem.run(job)`` behind ``delay_cancellation``: a caller cancelled while it waits for a slot is
answered only when its job has run, so its job starts after the cancel (``cancellation.no_start``).
(``delay_cancellation`` inside ``run``, unlike ``stop_cancellation`` there, keeps the slot until
the job ends, so it is not a bug.)

``expiring_cache``: ``synapse.util.caches.expiringcache.ExpiringCache(expiry_ms=200)`` as a
memo of each key's last successful result, two keys: a caller whose key is cached gets the
cached result, else runs its job and stores its success. "expiry_ms: How long before an item is
evicted from the cache": the cache prunes, every ``expiry_ms / 2`` (a ``Clock.looping_call``),
the entries older than ``expiry_ms`` by ``clock.time_msec()``; so an entry is served for at most
``expiry_ms * 1.5`` after it was stored (plus the clock's lateness): ``keys=2``, ``shared=True``
(a caller may be served by an earlier execution of its key), ``key_limit=math.inf`` (callers of
a key in flight do not join it: each runs its job), ``cache_ms=300``. Ages are wall-clock
readings by design, so a jump back keeps an entry for longer in real time: the menu leaves
wall-clock jumps out. ``stop()`` is ``Clock.shutdown()`` (it stops the pruning loop, which the
cache keeps no handle on). Twin ``expiring_cache_reset_on_get``: ``reset_expiry_on_get=True``,
"will reset the expiry time for an item on access": a key read more often than every 200 ms
is served for ever (``sharing.joined``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target

from scenarios.thirdparty.synapse_prims import SERVER_NAME, synapse_clock

try:
    from synapse.metrics.background_process_metrics import run_as_background_process
    from synapse.util.async_helpers import delay_cancellation, stop_cancellation
    from synapse.util.caches.expiringcache import ExpiringCache
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the Synapse targets need matrix-synapse ({exc}); install it with pip install -e '.[thirdparty]'"
    ) from None

POOL_LIMIT = 2


class ShieldedPool:
    """Acquire a slot; run the job; release when the job itself ends; hand the caller the job's
    Deferred behind ``stop_cancellation`` (``delay_cancellation`` in ``DelayedPool``)."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.semaphore = defer.DeferredSemaphore(POOL_LIMIT)

    def shield(self, work: defer.Deferred[Any]) -> defer.Deferred[Any]:
        return stop_cancellation(work)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        def run(_: Any) -> defer.Deferred[Any]:
            def release(result: Any) -> Any:
                self.semaphore.release()
                return result

            return self.shield(defer.maybeDeferred(job).addBoth(release))

        return self.semaphore.acquire().addCallback(run)


class DelayedPool(ShieldedPool):
    def shield(self, work: defer.Deferred[Any]) -> defer.Deferred[Any]:
        return delay_cancellation(work)


class ReleasedOnCancelPool(ShieldedPool):
    """The shield inside ``DeferredSemaphore.run``: ``run`` releases when the shield fails."""

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return self.semaphore.run(lambda: stop_cancellation(defer.maybeDeferred(job)))


class ShieldingTheWaitPool(ShieldedPool):
    """The whole ``sem.run(job)`` behind ``delay_cancellation``, the wait for the slot included."""

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return delay_cancellation(self.semaphore.run(job))


shielded_pool = Target(
    build=ShieldedPool,
    limit=POOL_LIMIT,
    order="fifo",
    cancellable="detach",
    description="Synapse's stop_cancellation over a DeferredSemaphore(2) holder: a cancel detaches, the job keeps its slot",
)

shielded_pool_released_on_cancel = Target(
    build=ReleasedOnCancelPool,
    limit=POOL_LIMIT,
    order="fifo",
    cancellable="detach",
    description="stop_cancellation inside DeferredSemaphore.run: a cancel releases the slot of a job still running",
)

delayed_pool = Target(
    build=DelayedPool,
    limit=POOL_LIMIT,
    order="fifo",
    cancellable="delayed",
    description="Synapse's delay_cancellation over a DeferredSemaphore(2) holder: a running job's caller fails when it ends",
)


delayed_pool_shielding_the_wait = Target(
    build=ShieldingTheWaitPool,
    limit=POOL_LIMIT,
    order="fifo",
    cancellable="delayed",
    description="delay_cancellation around the whole DeferredSemaphore.run: a cancelled waiter's job still runs",
)

# -- ExpiringCache ------------------------------------------------------------------------------

EXPIRY_MS = 200
KEYS = 2


class _HomeServer:
    """What ``ExpiringCache`` reads of its ``hs``: ``run_as_background_process`` for the pruning."""

    hostname = SERVER_NAME

    def run_as_background_process(self, desc: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return run_as_background_process(desc, self.hostname, func, *args, **kwargs)


class MemoStopped(Exception):
    """A job submitted after ``stop()``."""


class Memo:
    """The last success of each key, kept in an ``ExpiringCache``; a miss runs the job."""

    reset_expiry_on_get = False

    def __init__(self, reactor: IReactorTime) -> None:
        self.clock = synapse_clock(reactor)
        self.cache: ExpiringCache[int, Any] = ExpiringCache(
            cache_name="harness", server_name=SERVER_NAME, hs=_HomeServer(),  # type: ignore[arg-type]
            clock=self.clock, expiry_ms=EXPIRY_MS, reset_expiry_on_get=self.reset_expiry_on_get)
        self.stopped = False

    def submit(self, job: Callable[[], Any], key: int = 0) -> defer.Deferred[Any]:
        if self.stopped:
            # The cache only expires entries from its pruning loop, which ``shutdown`` stopped:
            # served on, they would never expire. A stopped server serves nothing.
            return defer.fail(MemoStopped("submitted after stop()"))
        if key in self.cache:
            return defer.succeed(self.cache[key])

        def store(result: Any) -> Any:
            self.cache[key] = result
            return result

        return defer.maybeDeferred(job).addCallback(store)

    def stop(self) -> None:
        self.stopped = True
        self.clock.shutdown()


class ResetOnGetMemo(Memo):
    reset_expiry_on_get = True


def _memo(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, keys=KEYS, shared=True, key_limit=math.inf, cache_ms=EXPIRY_MS * 3 // 2,
                  menu={"jumps": False}, description=description)


expiring_cache = _memo(Memo, "Synapse's ExpiringCache(expiry_ms=200) as a memo, two keys: a result served for at most 300ms")
expiring_cache_reset_on_get = _memo(ResetOnGetMemo, "the same with reset_expiry_on_get=True: a hot key never expires")
