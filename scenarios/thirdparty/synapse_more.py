"""More of matrix-synapse's scheduling code (outside-user review, round 2), each declaring only
what Synapse documents; ``synapse_prims`` holds the first set and the helpers reused here.

``deferred_cache``: ``DeferredCache`` with the get-or-compute glue Synapse's ``@cached``
descriptors use: ``get(key)``, and on ``KeyError`` ``set(key, maybeDeferred(job))``. Its
docstrings: "Until the ``value`` completes, calls to ``get()`` for the key will also result in
an incomplete Deferred, which will ultimately complete with the same result as ``value``. If
``value`` completes successfully, subsequent calls to ``get()`` will then return a completed
deferred with the same result. If it *fails*, the cache is invalidated": callers of a key share
one computation, a success is served for as long as it stays cached (``keys=2``, ``shared=True``,
``cache_ms`` one virtual hour: nothing is evicted in a run, ``max_entries`` 1000,
``prune_unread_entries=False``). The callers' Deferreds are ``ObservableDeferred`` observers:
cancelling one detaches it (``cancellable="detach"``). ``deferred_cache_invalidate`` adds
the operation ``invalidate(key)``: a caller after it starts a new computation while the one
it dropped may still run ("(b) any ``get()``s in the interim will continue to complete with
the result from the *original* ``value``"), so two executions of a key overlap
(``key_limit=math.inf``: no bound, docs/reviews/outside-user-2.md, F9).

``retry_limiter``: ``get_retry_limiter`` and the ``RetryDestinationLimiter`` context manager
around each job, one destination, over an in-memory store (``get_destination_retry_timings``,
``set_destination_retry_timings``) and a stand-in homeserver: "will mark the destination as
down if an exception is thrown", and while it is down ``get_retry_limiter`` raises
``NotRetryingDestination`` (``rejects``). The backoff is kept in wall-clock milliseconds
(``clock.time_msec()``, stored in the database so that it outlives a restart), so it is judged
on what ``seconds()`` read: target invariant ``refuses_only_while_backing_off``. The interval
grows by ``random.uniform(0.8, 1.4)`` from the global ``random`` module; the glue gives the
module a seeded ``random.Random`` for each subject (the harness rightly reports the unpatched
target as nondeterministic: ``retry_limiter_global_random``).

``federation_rate_limiter`` (not a passing target: a finding): each job inside
``FederationRateLimiter.ratelimit(host)`` (1 s window, sleep past 4 requests, at most 2 at once,
refuse past 3 waiting). The harness finds that a refused request's exit frees a slot it never
held, so a queued request starts beside the two running (``concurrency.limit``); and, with
cancels drawn (``federation_rate_limiter_cancelled``), that a request cancelled during its
rate-limit sleep runs anyway and delivers its result. See docs/reviews/outside-user-2.md, T7, T8.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Cancel, EventKind, JobSpec, Operation, Run, Schedule, Submit, Target, format_ms

from scenarios.thirdparty.synapse_prims import SERVER_NAME, synapse_clock

try:
    import synapse.util.retryutils as retryutils
    from synapse.api.errors import LimitExceededError
    from synapse.config.ratelimiting import FederationRatelimitSettings
    from synapse.logging.context import make_deferred_yieldable
    from synapse.metrics.background_process_metrics import run_as_background_process
    from synapse.util.async_helpers import delay_cancellation
    from synapse.util.caches.deferred_cache import DeferredCache
    from synapse.util.ratelimitutils import FederationRateLimiter
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the Synapse targets need matrix-synapse ({exc}); install it with pip install -e '.[thirdparty]'"
    ) from None

KEYS = 2
#: "For as long as it stays cached": nothing is evicted within a run.
FOREVER_MS = 3_600_000

# -- DeferredCache ----------------------------------------------------------------------------


class Cached:
    """Get-or-compute over a ``DeferredCache``, as ``@cached`` descriptors do: the caller that
    started the computation gets ``set()``'s Deferred behind ``delay_cancellation``."""

    delay = True

    def __init__(self, reactor: IReactorTime) -> None:
        self.clock = synapse_clock(reactor)
        self.cache: DeferredCache[int, Any] = DeferredCache(
            name="harness", clock=self.clock, server_name=SERVER_NAME, max_entries=1000,
            apply_cache_factor_from_config=False, prune_unread_entries=False,
        )

    def submit(self, job: Callable[[], Any], key: int = 0) -> defer.Deferred[Any]:
        try:
            return self.cache.get(key)
        except KeyError:
            started = self.cache.set(key, defer.maybeDeferred(job))
            return delay_cancellation(started) if self.delay else started


class CachedUndelayed(Cached):
    """A misusing glue: ``set()``'s Deferred handed out as it is. Cancelling it runs the cache's
    own errback on it, which drops the pending entry while the computation still runs, so the
    next caller starts a second one: caught by ``concurrency.key_limit``."""

    delay = False


def _cache(build: Callable[[IReactorTime], Any], description: str, **promises: Any) -> Target:
    return Target(build=build, keys=KEYS, shared=True, cache_ms=FOREVER_MS, cancellable="delayed",
                  description=description, **promises)


deferred_cache = _cache(Cached, "Synapse's DeferredCache get-or-set, two keys: callers share a computation, a success stays cached")
deferred_cache_undelayed = _cache(CachedUndelayed, "DeferredCache glue handing out set()'s Deferred without delay_cancellation")

deferred_cache_invalidate = _cache(
    Cached, "Synapse's DeferredCache get-or-set with invalidate(key) drawn into schedules",
    key_limit=math.inf,  # each invalidate lets one more execution of the key start beside the others (F9)
    operations={"invalidate": Operation(lambda s, key: s.cache.invalidate(key), args=(st.integers(0, KEYS - 1),))},
)

# -- retryutils -------------------------------------------------------------------------------

MIN_INTERVAL_MS = 200
MULTIPLIER = 2
MAX_INTERVAL_MS = 1000
DESTINATION = "remote.test"


class _Store:
    """The two store methods the limiter uses, over a dict; and the config it reads via ``hs``."""

    def __init__(self, hs: Any) -> None:
        self.hs = hs
        self.timings: dict[str, Any] = {}

    async def get_destination_retry_timings(self, destination: str) -> Any:
        return self.timings.get(destination)

    async def set_destination_retry_timings(self, destination: str, failure_ts: Any, retry_last_ts: int,
                                            retry_interval: int) -> None:
        if retry_interval == 0 and retry_last_ts == 0 and failure_ts is None:
            self.timings.pop(destination, None)
        else:
            self.timings[destination] = SimpleNamespace(
                failure_ts=failure_ts, retry_last_ts=retry_last_ts, retry_interval=retry_interval)


class _HomeServer:
    hostname = SERVER_NAME
    config = SimpleNamespace(federation=SimpleNamespace(
        destination_min_retry_interval_ms=MIN_INTERVAL_MS,
        destination_retry_multiplier=MULTIPLIER,
        destination_max_retry_interval_ms=MAX_INTERVAL_MS,
    ))

    def run_as_background_process(self, desc: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return run_as_background_process(desc, self.hostname, func, *args, **kwargs)


class Limited:
    """Each job runs inside ``get_retry_limiter(...)`` for one destination."""

    def __init__(self, reactor: IReactorTime, seeded: bool = True) -> None:
        if seeded:
            # retryutils draws its jitter from the global ``random`` module: give it a seeded
            # generator of this subject's own (a monkeypatch, the only way in).
            retryutils.random = random.Random(3)  # type: ignore[assignment]
        else:
            retryutils.random = random  # type: ignore[assignment]
        self.clock = synapse_clock(reactor)
        self.hs = _HomeServer()
        self.store = _Store(self.hs)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        async def limited() -> Any:
            limiter = await retryutils.get_retry_limiter(
                destination=DESTINATION, our_server_name=SERVER_NAME, hs=self.hs, clock=self.clock, store=self.store)
            with limiter:
                return await make_deferred_yieldable(defer.maybeDeferred(job))
        return defer.ensureDeferred(limited())


def refuses_only_while_backing_off(run: Run) -> None:
    """``NotRetryingDestination`` only while the destination is down: after a failure that
    ended at wall-clock time ``f``, for at most ``MAX_INTERVAL_MS`` (in what ``seconds()``
    read: the backoff is wall-clock by design); and never before any job failed."""
    view = run.view
    last_failure_wall: int | None = None
    for index, event in enumerate(view.events):
        if event.kind == EventKind.STOP:
            return
        if event.kind in (EventKind.JOB_FAIL, EventKind.JOB_CANCEL):
            # The latest wall-clock reading of a failure so far, not the last failure's: after a jump back the
            # limiter may hold an earlier failure's later timestamp (audit 12: a failure at wall 0, a cancel at
            # -1580ms after a jump, a refusal at -580ms, within the limiter's 200ms of the failure at 0).
            wall = view.wall_us(index)
            last_failure_wall = wall if last_failure_wall is None else max(last_failure_wall, wall)
        elif event.kind == EventKind.SUBMIT:
            record = view.jobs[event.job]
            refused = not record.ran and record.received is not None and record.received.error == "NotRetryingDestination"
            if not refused:
                continue
            wall = view.wall_us(index)
            assert last_failure_wall is not None, f"job {event.job} was refused at {format_ms(event.t_us)} before any job failed"
            assert wall < last_failure_wall + MAX_INTERVAL_MS * 1000, (
                f"job {event.job} was refused at {format_ms(event.t_us)} (wall {format_ms(wall)}), "
                f"{format_ms(wall - last_failure_wall)} after the last failure; the backoff is at most {MAX_INTERVAL_MS}ms")


def _limiter(seeded: bool, description: str) -> Target:
    return Target(
        build=lambda reactor: Limited(reactor, seeded),
        rejects=(retryutils.NotRetryingDestination,),
        invariants=(refuses_only_while_backing_off,),
        description=description,
    )


retry_limiter = _limiter(True, "Synapse's get_retry_limiter, one destination: refused only while backing off")
retry_limiter_global_random = _limiter(False, "the same, with retryutils drawing its jitter from the global random")

# -- FederationRateLimiter --------------------------------------------------------------------

#: ``FederationRatelimitSettings``: a 1 s window, requests past the 4th in it sleep 200 ms, at
#: most 2 at once, and a request is refused when more than 3 are queued or sleeping.
WINDOW_MS, SLEEP_LIMIT, SLEEP_MS, REJECT_LIMIT, CONCURRENT = 1000, 4, 200, 3, 2


class RateLimited:
    """Each job runs inside ``FederationRateLimiter.ratelimit("host")``, as Synapse's federation
    server handles an inbound request: ``with ratelimit(origin) as wait: await wait; ...``."""

    def __init__(self, reactor: IReactorTime) -> None:
        self.clock = synapse_clock(reactor)
        settings = FederationRatelimitSettings(window_size=WINDOW_MS, sleep_limit=SLEEP_LIMIT, sleep_delay=SLEEP_MS,
                                               reject_limit=REJECT_LIMIT, concurrent=CONCURRENT)
        self.limiter = FederationRateLimiter(our_server_name=SERVER_NAME, clock=self.clock, config=settings)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        async def limited() -> Any:
            with self.limiter.ratelimit("remote.test") as wait:
                await wait
                return await make_deferred_yieldable(defer.maybeDeferred(job))
        return defer.ensureDeferred(limited())


def refuses_only_when_the_queue_is_full(run: Run) -> None:
    """``LimitExceededError`` only when more than ``REJECT_LIMIT`` requests wait (queued for a
    slot or sleeping: submitted, not refused, not started, not answered)."""
    view = run.view
    waiting: set[int] = set()
    for event in view.events:
        if event.kind == EventKind.STOP:
            return
        if event.kind in (EventKind.JOB_START, EventKind.RESULT, EventKind.FAILURE):
            waiting.discard(event.job)
        elif event.kind == EventKind.SUBMIT:
            record = view.jobs[event.job]
            refused = not record.ran and record.received is not None and record.received.error == "LimitExceededError"
            if refused:
                assert len(waiting) > REJECT_LIMIT, (
                    f"job {event.job} was refused at {format_ms(event.t_us)} with {len(waiting)} request(s) "
                    f"waiting ({sorted(waiting)}); the limiter refuses only past {REJECT_LIMIT}")
            else:
                waiting.add(event.job)


#: Not a passing target: the harness finds a Synapse bug here (docs/reviews/outside-user-2.md,
#: T7). A refused request leaves its ``with`` block, whose exit (``_on_exit``) schedules
#: ``start_next_request``: it frees a slot the refused request never held and starts a queued
#: request, so a third request runs beside two (``concurrency.limit``, ``OVERSHOOT_SCHEDULE``).
#: Synapse documents no cancellation here: not declared cancellable.
federation_rate_limiter = Target(
    build=RateLimited,
    limit=CONCURRENT,
    cancellable=False,
    rejects=(LimitExceededError,),
    invariants=(refuses_only_when_the_queue_is_full,),
    description="Synapse's FederationRateLimiter: at most 2 at once, sleeps past 4 a second, refuses past 3 waiting",
)

#: The same, held to the usual cancel promise: a request cancelled during its rate-limit sleep
#: is not failed; the sleep's Deferred is cancelled, ``on_wait_finished`` (an ``addBoth``) takes
#: the ``CancelledError`` for the end of the sleep, and the request runs at once and delivers its
#: result (``cancellation.fires``, ``CANCELLED_SLEEPER_SCHEDULE``).
federation_rate_limiter_cancelled = Target(
    build=RateLimited,
    limit=CONCURRENT,
    rejects=(LimitExceededError,),
    invariants=(refuses_only_when_the_queue_is_full,),
    description="FederationRateLimiter with cancels drawn: a cancelled sleeping request runs at once",
)

#: Seven requests of 100 ms at once: two run, two queue, two sleep, the seventh is refused, and
#: its exit starts a queued one beside the two running.
OVERSHOOT_SCHEDULE = Schedule(ops=tuple(Submit(at_ms=0, job=i, spec=JobSpec(kind="succeed", after_ms=100)) for i in range(7)))
#: Five requests of 100 ms (the fifth sleeps 200 ms), the fifth cancelled at once.
CANCELLED_SLEEPER_SCHEDULE = Schedule(ops=tuple(Submit(at_ms=0, job=i, spec=JobSpec(kind="succeed", after_ms=100)) for i in range(5))
                                      + (Cancel(at_ms=0, job=4),))
