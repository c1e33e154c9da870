"""Real third-party code as a permanent test bed: Twisted's primitives, matrix-synapse's, buildbot's, Scrapy's, txaio's, treq's, autobahn's and foolscap's utilities.

Each target declares only what its code documents (see the module
docstrings of ``twisted_prims`` and ``synapse_prims``, and the table in
docs/scenarios.md); every one must stay clean under any schedule, so a violation here is
either a real bug in widely used code or a false alarm of the harness.

``SCENARIOS`` lists them as plain strings, so ``harness list`` shows them
without importing anything: the Synapse targets need the ``thirdparty``
extra (``pip install -e '.[thirdparty]'``), and so do the buildbot, Scrapy, txaio, treq, autobahn and foolscap targets; ``requires`` names the
distribution a target needs beyond the harness's own dependencies.
"""

from __future__ import annotations

import importlib.util

from .. import Scenario

TWISTED = "scenarios.thirdparty.twisted_prims"
SYNAPSE = "scenarios.thirdparty.synapse_prims"
#: The second set (outside-user review, round 2: docs/reviews/outside-user-2.md).
TWISTED_MORE = "scenarios.thirdparty.twisted_more"
SYNAPSE_MORE = "scenarios.thirdparty.synapse_more"
#: The third set (primitives not yet covered: TimerService, race, coroutines, withCount, TimeoutMixin,
#: stop_/delay_cancellation, ExpiringCache, WheelTimer), each with a planted twin (tests/test_thirdparty_extra.py).
TWISTED_EXTRA = "scenarios.thirdparty.twisted_extra"
SYNAPSE_EXTRA = "scenarios.thirdparty.synapse_extra"
#: buildbot's Twisted utilities (debounce, poll, AsyncLRUCache), each with a buggy twin (tests/test_thirdparty_buildbot.py).
BUILDBOT = "scenarios.thirdparty.buildbot_utils"
#: Scrapy's downloader, CallLaterOnce and parallel, each with a buggy twin (tests/test_thirdparty_scrapy.py).
SCRAPY = "scenarios.thirdparty.scrapy_utils"
#: txaio's batched timers, sleep and gather (autobahn's), each with a buggy twin (tests/test_thirdparty_txaio.py).
TXAIO = "scenarios.thirdparty.txaio_utils"
#: treq's request timeout over StubTreq, with a buggy twin (tests/test_thirdparty_treq.py).
TREQ = "scenarios.thirdparty.treq_utils"
#: autobahn's Component transport retry and WebSocket auto-ping, each with a buggy twin (tests/test_thirdparty_autobahn.py).
AUTOBAHN = "scenarios.thirdparty.autobahn_utils"
#: foolscap's Reconnector, eventual-send queue and Banana disconnectTimeout, on the lent global reactor, each with a buggy twin (tests/test_thirdparty_foolscap.py).
FOOLSCAP = "scenarios.thirdparty.foolscap_utils"

#: The distribution the Synapse targets need, and whether it is importable here.
SYNAPSE_DISTRIBUTION = "matrix-synapse"


#: The distribution the buildbot targets need.
BUILDBOT_DISTRIBUTION = "buildbot"
#: The distribution the Scrapy targets need.
SCRAPY_DISTRIBUTION = "scrapy"
#: The distribution the txaio targets need.
TXAIO_DISTRIBUTION = "txaio"
#: The distribution the treq targets need.
TREQ_DISTRIBUTION = "treq"
#: The distribution the autobahn targets need.
AUTOBAHN_DISTRIBUTION = "autobahn"
#: The distribution the foolscap targets need.
FOOLSCAP_DISTRIBUTION = "foolscap"


def synapse_installed() -> bool:
    """Whether matrix-synapse can be imported (without importing it)."""
    return importlib.util.find_spec("synapse") is not None


def buildbot_installed() -> bool:
    """Whether buildbot can be imported (without importing it)."""
    return importlib.util.find_spec("buildbot") is not None


def scrapy_installed() -> bool:
    """Whether Scrapy can be imported (without importing it)."""
    return importlib.util.find_spec("scrapy") is not None


def txaio_installed() -> bool:
    """Whether txaio can be imported (without importing it)."""
    return importlib.util.find_spec("txaio") is not None


def treq_installed() -> bool:
    """Whether treq can be imported (without importing it)."""
    return importlib.util.find_spec("treq") is not None


def autobahn_installed() -> bool:
    """Whether autobahn can be imported (without importing it)."""
    return importlib.util.find_spec("autobahn") is not None


def foolscap_installed() -> bool:
    """Whether foolscap can be imported (without importing it)."""
    return importlib.util.find_spec("foolscap") is not None


SCENARIOS = (
    Scenario(f"{TWISTED}:semaphore", "pass", "Twisted's DeferredSemaphore(3).run: limit 3, FIFO, cancel of a waiter", "DeferredSemaphore"),
    Scenario(f"{TWISTED}:lock", "pass", "Twisted's DeferredLock.run: one at a time, FIFO, cancel of a waiter", "DeferredLock"),
    Scenario(f"{TWISTED}:queue_workers", "pass", "Twisted's DeferredQueue drained by three workers: limit 3, FIFO, stop()", "DeferredQueue"),
    Scenario(f"{TWISTED}:cooperator", "pass", "Twisted's task.Cooperator, two tasks coiterating one queue: limit 2, FIFO, stop()", "Cooperator"),
    Scenario(f"{TWISTED}:looping_call", "pass", "Twisted's LoopingCall.start(0.1): periodic, no overlap, failures reported", "LoopingCall"),
    Scenario(f"{TWISTED}:looping_call_now", "pass", "Twisted's LoopingCall.start(0.1, now=True): a call at once, then periodic", "LoopingCall"),
    Scenario(f"{TWISTED}:add_timeout", "pass", "Twisted's Deferred.addTimeout(0.3): TimeoutError and the job cancelled at 300ms", "Deferred.addTimeout"),
    Scenario(f"{TWISTED}:defer_later", "pass", "Twisted's task.deferLater(clock, 0.05, job): runs no sooner than 50ms later", "deferLater"),
    Scenario(f"{TWISTED}:gather_results", "pass", "Twisted's gatherResults([job, deferLater(0.05)], consumeErrors=True): both results, the first error", "gatherResults"),
    Scenario(f"{SYNAPSE}:linearizer", "pass", "Synapse's Linearizer(max_count=2), one key: limit 2, cancellable (no order documented)", "synapse Linearizer"),
    Scenario(f"{SYNAPSE}:linearizer_keys", "pass", "Synapse's Linearizer(max_count=2), two keys: at most two at once per key", "synapse Linearizer"),
    Scenario(f"{SYNAPSE}:observable_deferred", "pass", "Synapse's ObservableDeferred: observers get the result, a cancel detaches", "synapse ObservableDeferred"),
    Scenario(f"{SYNAPSE}:timeout_deferred", "pass", "Synapse's timeout_deferred(0.3): times out even when the job's canceller raises", "synapse timeout_deferred"),
    Scenario(f"{SYNAPSE}:batching_queue", "pass", "Synapse's BatchingQueue, two keys: one batch at a time per key, in order", "synapse BatchingQueue"),
    Scenario(f"{SYNAPSE}:response_cache", "pass", "Synapse's ResponseCache.wrap, two keys: callers of a key in flight share one computation", "synapse ResponseCache"),
    Scenario(f"{SYNAPSE}:response_cache_timeout", "pass", "Synapse's ResponseCache.wrap(timeout=200ms): shared, a result served again for 200ms", "synapse ResponseCache"),
    Scenario(f"{SYNAPSE}:read_write_lock", "pass", "Synapse's ReadWriteLock, one key: a writer alone, readers together, in queue order", "synapse ReadWriteLock"),
    Scenario(f"{SYNAPSE}:awakenable_sleeper", "pass", "Synapse's AwakenableSleeper: a job runs 200ms after submission or at its wake(n), whichever first", "synapse AwakenableSleeper"),
    Scenario(f"{TWISTED_MORE}:client_service", "pass", "Twisted's ClientService with backoffPolicy: reconnects with growing delays, stops cleanly", "ClientService"),
    Scenario(f"{TWISTED_MORE}:lock_wait_timeout", "pass", "Twisted's DeferredLock, acquire().addTimeout(0.3): one holder, FIFO, a waiter times out", "DeferredLock"),
    Scenario(f"{TWISTED_MORE}:bounded_queue", "pass", "Twisted's DeferredQueue(size=2), one worker: FIFO, QueueOverflow only when full", "DeferredQueue"),
    Scenario(f"{TWISTED_MORE}:cooperative_tasks", "pass", "Twisted's Cooperator.cooperate, a task per job, paused by an operation pause_for(ms)", "Cooperator"),
    Scenario(f"{SYNAPSE_MORE}:deferred_cache", "pass", "Synapse's DeferredCache get-or-set, two keys: callers share a computation, a success stays cached", "synapse DeferredCache"),
    Scenario(f"{SYNAPSE_MORE}:deferred_cache_invalidate", "pass", "Synapse's DeferredCache with invalidate(key) in the schedules", "synapse DeferredCache"),
    Scenario(f"{SYNAPSE_MORE}:retry_limiter", "pass", "Synapse's get_retry_limiter: NotRetryingDestination only while backing off", "synapse retryutils"),
    Scenario(f"{TWISTED_EXTRA}:timer_service", "pass", "Twisted's TimerService(0.1): a call at start, then every 100ms, a failure logged", "TimerService"),
    Scenario(f"{TWISTED_EXTRA}:race_timeout", "pass", "Twisted's defer.race([job, deferLater(0.3)]) as a timeout: the loser is cancelled", "defer.race"),
    Scenario(f"{TWISTED_EXTRA}:coroutine_pool", "pass", "Twisted's Deferred.fromCoroutine, async with DeferredSemaphore(2): limit 2, FIFO, cancellable", "Deferred.fromCoroutine"),
    Scenario(f"{TWISTED_EXTRA}:looping_call_count", "pass", "Twisted's LoopingCall.withCount: the counts add up to the intervals passed", "LoopingCall.withCount"),
    Scenario(f"{TWISTED_EXTRA}:idle_connection", "pass", "Twisted's policies.TimeoutMixin(300ms): times out only after 300ms without traffic", "TimeoutMixin"),
    Scenario(f"{SYNAPSE_EXTRA}:shielded_pool", "pass", "Synapse's stop_cancellation on a DeferredSemaphore(2) holder: a cancel detaches, the slot is kept", "synapse stop_cancellation"),
    Scenario(f"{SYNAPSE_EXTRA}:delayed_pool", "pass", "Synapse's delay_cancellation on a DeferredSemaphore(2) holder: a running job's caller fails when it ends", "synapse delay_cancellation"),
    Scenario(f"{SYNAPSE_EXTRA}:expiring_cache", "pass", "Synapse's ExpiringCache(expiry_ms=1000) as a memo: served only while fresh", "synapse ExpiringCache"),
    Scenario(f"{SYNAPSE_EXTRA}:wheel_timeouts", "pass", "Synapse's WheelTimer polled every 100ms: jobs time out 300ms after submission, never sooner", "synapse WheelTimer"),
    Scenario(f"{BUILDBOT}:debounced", "pass", "buildbot's @debounce.method(wait=0.1): calls coalesced, each served within wait, stop() flushes", "buildbot debounce"),
    Scenario(f"{BUILDBOT}:polled", "pass", "buildbot's @poll.method, start(interval=0.1): periodic, no overlap, a failure logged and polled again", "buildbot poll"),
    Scenario(f"{BUILDBOT}:polled_now", "pass", "buildbot's @poll.method, start(interval=0.1, now=True): a call at once, then periodic", "buildbot poll"),
    Scenario(f"{BUILDBOT}:poll_forced", "pass", "buildbot's Poller forced by each call: a poll at once, or right after the running one", "buildbot poll"),
    Scenario(f"{BUILDBOT}:repeated_action", "pass", "buildbot's RepeatedActionHandler(0.1): an action every 100ms, overlapping when one is slow", "buildbot RepeatedActionHandler"),
    Scenario(f"{BUILDBOT}:repeated_action_restarted", "pass", "buildbot's RepeatedActionHandler(0.1), detached and re-attached (stop(), start()) at will", "buildbot RepeatedActionHandler"),
    Scenario(f"{BUILDBOT}:repeated_action_after_completion", "pass", "buildbot's RepeatedActionHandler(0.1, start_timer_after_action_completes=True): 100ms after each action ends", "buildbot RepeatedActionHandler"),
    Scenario(f"{BUILDBOT}:async_lru", "pass", "buildbot's AsyncLRUCache(max_size=1), two keys: concurrent misses share one fetch", "buildbot AsyncLRUCache"),
    Scenario(f"{SCRAPY}:downloader_slots", "pass", "Scrapy's Downloader, CONCURRENT_REQUESTS_PER_DOMAIN=2, two domains: at most 2 per domain, in order", "scrapy Downloader"),
    Scenario(f"{SCRAPY}:download_delay", "pass", "Scrapy's Downloader, DOWNLOAD_DELAY=0.1 with jitter 0.5: a domain's downloads 50-150ms apart, slot GC on", "scrapy Downloader"),
    Scenario(f"{SCRAPY}:call_later_once", "pass", "Scrapy's CallLaterOnce.schedule(0.1) at each call: one invocation for the calls of 100ms", "scrapy CallLaterOnce"),
    Scenario(f"{SCRAPY}:parallel", "pass", "Scrapy's utils.defer.parallel(iterable, 3, f): at most 3 calls at once, in order", "scrapy parallel"),
    Scenario(f"{SCRAPY}:parallel_async", "pass", "Scrapy's utils.defer.parallel_async(aiterable, 3, f): at most 3 calls at once, in order", "scrapy parallel"),
    Scenario(f"{TXAIO}:batched_timer", "pass", "txaio's make_batched_timer(1).call_later(1.5): fires in its 1s bucket, cancellable", "txaio make_batched_timer"),
    Scenario(f"{TXAIO}:batched_timer_chunked", "pass", "txaio's make_batched_timer(1, chunk_size=2): a bucket notified two calls at a time", "txaio make_batched_timer"),
    Scenario(f"{TXAIO}:sleep_then_run", "pass", "txaio.sleep(0.05) then the job, in a coroutine: 50ms at least, cancellable", "txaio sleep"),
    Scenario(f"{TXAIO}:gather_with_sleep", "pass", "txaio.gather([job, sleep(0.05)], consume_exceptions=True): the job's outcome, 50ms at least", "txaio gather"),
    Scenario(f"{TREQ}:request_timeout", "pass", "treq's StubTreq.get(timeout=0.3, reactor=clock): aborted with CancelledError at 300ms", "treq request timeout"),
    Scenario(f"{AUTOBAHN}:component_retry", "pass", "autobahn's Component, max_retries=2: retries 0.1*2**k s apart, capped at 0.3 s (jitter 0)", "autobahn Component"),
    Scenario(f"{AUTOBAHN}:component_retry_forever", "pass", "autobahn's Component, max_retries=-1: retries forever, 0.1*2**k s apart, capped at 0.3 s", "autobahn Component"),
    Scenario(f"{AUTOBAHN}:auto_ping", "pass", "autobahn's WebSocket auto-ping (0.1 s, timeout 0.3 s) over iosim: a peer silent 300ms is dropped", "autobahn auto-ping"),
    Scenario(f"{FOOLSCAP}:reconnector", "pass", "foolscap's Reconnector, initialDelay=0.1, factor=2, maxDelay=0.3: retries until connected (jitter 0)", "foolscap Reconnector"),
    Scenario(f"{FOOLSCAP}:reconnector_loop", "pass", "foolscap's Reconnector kept connected: 0.1 s after a lost connection, 0.2, 0.3 s after failures", "foolscap Reconnector"),
    Scenario(f"{FOOLSCAP}:eventual_fifo", "pass", "foolscap's fireEventually(): each job in a later turn, in the order sent", "foolscap eventual"),
    Scenario(f"{FOOLSCAP}:idle_drop", "pass", "foolscap's Banana(disconnectTimeout=0.3), idle age on the run's monotonic time: an unanswered call dropped at 0.4 s", "foolscap Banana"),
)


#: Targets that campaigns flag today because of a false alarm of the harness (issue 13), with the
#: cause and the branch fixing it. Tests mark these ``xfail``; nothing else may be listed here, and
#: an entry goes when its fix lands.
KNOWN_FALSE_ALARMS: dict[str, str] = {
    # Empty of Twisted and Synapse targets since the clock fixes of issue 13 landed: looping_call_now
    # (the clock loop spun under strides and jitter), linearizer and batching_queue (the collector closed
    # coroutines awaiting hanging jobs) are clean now. buildbot's repeated_action_restarted too, since
    # time.loop_died reads only the loop's own timers (trust8): a restart's timer, set by an operation, is none.
}


def requires(scenario: Scenario) -> str | None:
    """The distribution ``scenario`` needs beyond the harness's dependencies, if any."""
    if scenario.target.startswith(BUILDBOT + ":"):
        return BUILDBOT_DISTRIBUTION
    if scenario.target.startswith(SCRAPY + ":"):
        return SCRAPY_DISTRIBUTION
    if scenario.target.startswith(TXAIO + ":"):
        return TXAIO_DISTRIBUTION
    if scenario.target.startswith(TREQ + ":"):
        return TREQ_DISTRIBUTION
    if scenario.target.startswith(AUTOBAHN + ":"):
        return AUTOBAHN_DISTRIBUTION
    if scenario.target.startswith(FOOLSCAP + ":"):
        return FOOLSCAP_DISTRIBUTION
    synapse = scenario.target.startswith((SYNAPSE + ":", SYNAPSE_MORE + ":", SYNAPSE_EXTRA + ":"))
    return SYNAPSE_DISTRIBUTION if synapse else None


def available(scenario: Scenario) -> bool:
    """Whether ``scenario``'s target can be loaded here."""
    needed = requires(scenario)
    if needed == BUILDBOT_DISTRIBUTION:
        return buildbot_installed()
    if needed == SCRAPY_DISTRIBUTION:
        return scrapy_installed()
    if needed == TXAIO_DISTRIBUTION:
        return txaio_installed()
    if needed == TREQ_DISTRIBUTION:
        return treq_installed()
    if needed == AUTOBAHN_DISTRIBUTION:
        return autobahn_installed()
    if needed == FOOLSCAP_DISTRIBUTION:
        return foolscap_installed()
    return needed is None or synapse_installed()
