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
(``cancellable="delayed"``), a waiting one at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target

try:
    from synapse.util.async_helpers import delay_cancellation, stop_cancellation
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
