"""Scrapy's Twisted scheduling code, each target declaring only what Scrapy documents.

Needs Scrapy, in the ``thirdparty`` extra (``pip install -e '.[thirdparty]'``); without it, importing this
module raises an ``ImportError`` that says so (``harness list`` does not import it). Verified
against Scrapy 2.19.0, on a non-asyncio reactor (Scrapy's ``TWISTED_REACTOR`` set to another
reactor than asyncio's: it then schedules through Twisted).

**Scrapy takes no clock.** Its downloader, ``CallLaterOnce`` and ``parallel`` schedule through
the global reactor (``scrapy.utils.asyncio.call_later``, ``create_looping_call``, ``sleep``, a bare
``task.Cooperator()``), read real time (``time.monotonic`` in ``scrapy.core.downloader``) and draw
the delay's jitter from the global ``random``. Every target here declares
``global_reactor="lend"``: in each run the global reactor's ``callLater`` and ``seconds`` act on
the run's clock, so Scrapy's own scheduling runs unchanged. What the option does not lend is the
glue, ``on_clock(clock, seed)``, at each ``build``: the downloader's ``monotonic`` (a run reading
real time sees it stand still) re-pointed at the clock, its ``random`` seeded (the harness would
report the global one as nondeterminism), and Scrapy told it runs on a non-asyncio reactor (the
way one tests Scrapy on a ``task.Clock``: ``test_the_glue_in_plain_twisted``). ``parallel``
creates its ``Cooperator`` inside the call, whose time slices end by the wall clock: the glue
gives it one stepping on the clock, one unit of work a step, for that call only. Everything else
is Scrapy's own code.

``downloader_slots``: the real ``Downloader`` of a crawler made by ``scrapy.utils.test.get_crawler``
(no downloader middlewares, no download handlers: the handler is a stand-in whose
``download_request_async`` runs the job the request carries in its ``meta``), fetching
``http://site{key}.example/{job}``: two domains, ``CONCURRENT_REQUESTS_PER_DOMAIN = 2``,
``DOWNLOAD_DELAY = 0``. Promise (settings docs): "The maximum number of concurrent (i.e.
simultaneous) requests that will be performed to any single domain", requests taken from the slot's
queue in order (``Slot.queue``, ``popleft``). ``keys=2``, ``key_limit=2``, ``order="fifo"``.
``fetch``'s Deferred is not promised cancellable: a cancelled request stays in its slot's queue
and is downloaded anyway (Twisted drops the late result), so no cancels are drawn. ``stop()`` is
the engine's: refuse new requests, close the downloader (``Downloader.close()``: the slot GC loop
stopped, each slot's delay timer cancelled) once no request is in it. Twin
``downloader_slot_per_url``: a ``Downloader`` subclass whose ``get_slot_key`` keys the slot by the
whole URL (a custom key meant to separate pages, a glue mistake): every request its own slot, and
the per-domain limit is gone (``concurrency.key_limit``).

``download_delay``: the same with ``DOWNLOAD_DELAY = 0.1`` and the default jitter (0.5: "a random
interval between 0.5 and 1.5 * DOWNLOAD_DELAY"; ``_default_jitter``: "the magnitude of the random
variation to apply to the delay"), two domains of concurrency 2, and the slot garbage collector run
every 200 ms instead of 60 s (``_SLOT_GC_INTERVAL``, and ``_slot_gc``'s ``age``) so that it runs in a
run: idle slots are dropped and made anew. Promise: "The amount of time (in secs) that the
downloader should wait before downloading consecutive pages from the same website" (the jittered
delay; ``_process_queue``: "prevent burst if inter-request delays were configured"). Target
invariant ``spaced_by_download_delay``: per domain, consecutive downloads start at least
0.5 x 100 ms apart, and a waiting request starts by the latest of: its request, 1.5 x 100 ms after the
previous start in its domain, and a free transfer slot (plus the clock's lateness; a failed download
frees its slot two reactor turns after it fails, ``_process_pending_io``). Twin
``download_delay_burst``: a subclass re-implementing ``_process_queue`` (to add a per-request
delay, a common customisation) without the burst guard: once the delay passed it starts every
request that has a transfer slot (``user.spaced_by_download_delay``).

``call_later_once``: ``CallLaterOnce(flush).schedule(0.1)`` at each call, as Scrapy's engine uses it
to coalesce its ``_next_request`` calls. "Schedule a function to be called in the next reactor
loop, but only if it hasn't been already scheduled since the last time it ran." ``flush`` takes
the callers waiting and runs the job of the first one, handing its outcome to them all (shared,
one key). ``CallLaterOnce`` does not wait for what the function returns, so executions may overlap
(``key_limit=math.inf``). Target invariant ``called_once_per_schedule``: every call is served by
the first invocation after it, which starts 100 ms after the first call since the invocation
before (no sooner, no later than the clock's lateness). ``stop()`` is ``cancel()``, the callers
still waiting failed with ``Stopped``. Twin ``call_later_once_rescheduled``: glue that restarts the
timer at each call (``cancel()`` then ``schedule()``, a debounce), but ``cancel()`` does not clear
the scheduled call, so ``schedule()`` does nothing ever after: calls are never served
(``user.called_once_per_schedule``). ``cancel()`` has no docstring; Scrapy's engine calls it only
on close, where that is right.

``parallel`` and ``parallel_async``: ``scrapy.utils.defer.parallel(iterable, 3, fetch)``: "Execute a
callable over the objects in the given iterable, in parallel, using no more than ``count``
concurrent calls", and ``parallel_async`` ("Like ``parallel`` but for async iterators") over an
async generator. The iterable is endless: each item a ``DeferredQueue.get()`` (the async generator
awaits it), so the jobs submitted feed one queue that three coiterators drain; ``fetch`` returns
the job's Deferred, so a coiterator waits for it. ``limit=3``, ``order="fifo"``, not cancellable;
``stop()`` refuses later jobs. Twin ``parallel_unchained``: a ``fetch`` whose callback starts the
job without returning its Deferred (the classic missing ``return``): what the Cooperator waits for
fires as the item arrives, so the limit is gone (``concurrency.limit``). (A ``fetch`` returning
nothing at all spins: each coiterator takes ``get()`` after ``get()`` in one instant, which the
harness reports as ``harness.livelock``.)

Not targeted: ``defer_result``, ``mustbe_deferred``, ``defer_succeed``/``defer_fail`` (deprecated
since 2.14, fixed to the global reactor: nothing to inject), the download handlers' timeouts (a
``reactor.callLater`` inside the HTTP/1.1 and HTTP/2 handlers, reached only with a connection), and
``AutoThrottle`` (its adaptation is a function of the responses' latencies, not of scheduling).
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import EventKind, InvariantFailed, Run, RunView, Target, format_ms

try:
    import scrapy.core.downloader as downloader_module
    import scrapy.utils.asyncio as scrapy_asyncio
    import scrapy.utils.defer as scrapy_defer
    from scrapy import Request
    from scrapy.core.downloader import Downloader, Slot
    from scrapy.utils.reactor import CallLaterOnce
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the Scrapy targets need Scrapy ({exc}); install it with pip install -e '.[thirdparty]'"
    ) from None

KEYS = 2
#: ``CONCURRENT_REQUESTS_PER_DOMAIN``.
PER_DOMAIN = 2
#: ``DOWNLOAD_DELAY`` of ``download_delay`` (ms), and its default jitter (``DOWNLOAD_DELAY_JITTER``).
DELAY_MS = 100
JITTER = 0.5
#: The slot GC's interval and age in ``download_delay`` (Scrapy's: 60 s).
GC_S = 0.2
#: ``CallLaterOnce.schedule(delay)``.
ONCE_MS = 100
#: ``parallel(..., count)``.
COUNT = 3


class Stopped(Exception):
    """The subject was stopped: the call is refused, or was never served."""


# -- Scrapy on the run's clock ----------------------------------------------------------------------


def on_clock(clock: IReactorTime, seed: int = 0) -> None:
    """What lending the global reactor (``global_reactor="lend"``) leaves to the glue (see the module
    docstring): the downloader's ``time.monotonic`` pointed at ``clock``, its ``random`` (the delay's
    jitter) seeded, and Deferreds, not asyncio futures: Scrapy on a non-asyncio reactor (its
    ``call_later``, ``create_looping_call`` and ``sleep`` then call the global reactor, lent)."""
    downloader_module.monotonic = getattr(clock, "monotonic", clock.seconds)  # type: ignore[attr-defined]
    downloader_module.random = random.Random(seed)  # type: ignore[assignment]
    scrapy_asyncio.is_asyncio_available = lambda: False
    scrapy_defer.is_asyncio_available = lambda: False  # type: ignore[assignment]


@contextlib.contextmanager
def cooperating_on(clock: IReactorTime) -> Iterator[None]:
    """While inside, ``scrapy.utils.defer``'s ``Cooperator()`` steps on ``clock``, one unit of work a
    step (the defaults: the global reactor, and wall-clock time to end a step)."""
    real = scrapy_defer.Cooperator
    scrapy_defer.Cooperator = functools.partial(  # type: ignore[misc]
        task.Cooperator, terminationPredicateFactory=lambda: lambda: True,
        scheduler=lambda step: clock.callLater(0, step))
    try:
        yield
    finally:
        scrapy_defer.Cooperator = real  # type: ignore[misc]


# -- the downloader -------------------------------------------------------------------------------


class JobHandler:
    """The download handler: runs the job the request carries (``request.meta["job"]``), its value
    standing for the response (a job's value is never None, which the middleware manager refuses)."""

    async def download_request_async(self, request: Request) -> Any:
        return await defer.maybeDeferred(request.meta["job"])


_CRAWLERS: dict[tuple[tuple[str, Any], ...], Any] = {}


def _crawler(settings: dict[str, Any]) -> Any:
    """A crawler with ``settings`` (made once: ``get_crawler`` reads the settings and the
    installed reactor, which take a millisecond a build; each run gets its own ``Downloader``)."""
    key = tuple(sorted(settings.items()))
    if key not in _CRAWLERS:
        import twisted.internet.reactor  # noqa: F401 - the crawler wants one installed (a run's guard installs it too)
        from scrapy.utils.test import get_crawler

        _CRAWLERS[key] = get_crawler(settings_dict={
            "DOWNLOADER_MIDDLEWARES_BASE": {}, "DOWNLOAD_HANDLERS_BASE": {}, "TWISTED_REACTOR_ENABLED": True,
            **settings})
    return _CRAWLERS[key]


class Fetching:
    """A ``Downloader`` fetching ``http://site{key}.example/{n}``, each request's download a job.

    ``stop()`` is the engine's: later requests refused; the downloader closed (``close()``) once
    no request is in it, the Deferred it returns firing then."""

    downloader_class: type[Downloader] = Downloader
    settings: dict[str, Any] = {"CONCURRENT_REQUESTS_PER_DOMAIN": PER_DOMAIN, "DOWNLOAD_DELAY": 0}

    def __init__(self, clock: IReactorTime) -> None:
        on_clock(clock, seed=7)
        self.downloader = self.downloader_class(_crawler(self.settings))
        self.downloader.handlers = JobHandler()  # type: ignore[assignment]
        self.count = 0
        self.in_flight = 0
        self.stopped = False
        self.idle: list[defer.Deferred[None]] = []

    def submit(self, job: Callable[[], Any], key: int) -> defer.Deferred[Any]:
        if self.stopped:
            return defer.fail(Stopped("the downloader is closing: the request is refused"))
        self.count += 1
        request = Request(f"http://site{key}.example/{self.count}", meta={"job": job})
        self.in_flight += 1
        return self.downloader.fetch(request).addBoth(self._left)

    def _left(self, result: Any) -> Any:
        self.in_flight -= 1
        if not self.in_flight:
            self._close_if_stopped()
        return result

    def _close_if_stopped(self) -> None:
        if self.stopped and not self.in_flight:
            self.downloader.close()
            idle, self.idle = self.idle, []
            for d in idle:
                d.callback(None)

    def stop(self) -> defer.Deferred[None]:
        self.stopped = True
        d: defer.Deferred[None] = defer.Deferred()
        self.idle.append(d)
        self._close_if_stopped()
        return d


class SlotPerUrl(Downloader):
    """A custom slot key, the whole URL (meant to tell pages apart): every request its own slot."""

    def get_slot_key(self, request: Request) -> str:
        return request.url


class FetchingSlotPerUrl(Fetching):
    downloader_class = SlotPerUrl


class QuickGC(Downloader):
    """The slot GC every ``GC_S`` (Scrapy's: 60 s), dropping slots idle that long, so it runs in a run."""

    _SLOT_GC_INTERVAL = GC_S

    def _slot_gc(self, age: float = GC_S) -> None:
        super()._slot_gc(age)


class Delayed(Fetching):
    downloader_class: type[Downloader] = QuickGC
    settings = {"CONCURRENT_REQUESTS_PER_DOMAIN": PER_DOMAIN, "DOWNLOAD_DELAY": DELAY_MS / 1000}


class Bursting(QuickGC):
    """``_process_queue`` re-implemented (the per-request delay customisation's shape) without
    the burst guard: once the delay passed, every request with a transfer slot starts."""

    def _process_queue(self, slot: Slot) -> None:
        if slot.latercall:
            return
        now = downloader_module.monotonic()  # type: ignore[attr-defined]
        delay = slot.download_delay()
        if delay:
            penalty = delay - now + slot.lastseen
            if penalty > 0:
                slot.latercall = downloader_module.call_later(penalty, self._latercall, slot)
                return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = now
            request, queue_dfd = slot.queue.popleft()
            scrapy_defer._schedule_coro(self._wait_for_download(slot, request, queue_dfd))


class DelayedBursting(Delayed):
    downloader_class = Bursting


def _fetch_target(build: Callable[[IReactorTime], Any], description: str,
                  invariants: tuple[Callable[[Run], None], ...] = ()) -> Target:
    return Target(build=build, keys=KEYS, key_limit=PER_DOMAIN, order="fifo", cancellable=False,
                  rejects=(Stopped,), invariants=invariants, description=description, global_reactor="lend")


def spaced_by_download_delay(run: Run) -> None:
    """``DOWNLOAD_DELAY`` with jitter 0.5: per domain, consecutive downloads start at least 50 ms
    apart, and a request waiting starts no later than the latest of its request, 150 ms after the
    previous start in its domain, and the moment a transfer slot of its domain was free (plus the
    clock's lateness, three times: a failed download frees its slot two reactor turns later)."""
    view = run.view
    low, high = round(DELAY_MS * (1 - JITTER) * 1000), round(DELAY_MS * (1 + JITTER) * 1000)
    slack = 3 * view.late_us
    starts = {(e.job, e.attempt): i for i, e in view.of_kind(EventKind.JOB_START)}
    for key in range(KEYS):
        jobs = sorted((j for j in view.jobs.values() if j.key == key and j.attempts and not j.periodic),
                      key=lambda j: j.attempts[0].start_us)
        firsts = [j.attempts[0] for j in jobs]
        for prev, attempt, job in zip(firsts, firsts[1:], jobs[1:]):
            gap = attempt.start_us - prev.start_us
            if gap < low:
                raise InvariantFailed(
                    f"site{key}: job {attempt.job} started {format_ms(gap)} after job {prev.job} "
                    f"(at {format_ms(attempt.start_us)}), sooner than {format_ms(low)} "
                    f"(DOWNLOAD_DELAY {DELAY_MS}ms, jitter {JITTER})",
                    events=(starts[(attempt.job, attempt.n)],))
            # A transfer slot free: fewer than PER_DOMAIN of the domain's downloads running once prev started.
            others = [a for a in firsts if a is not attempt and a.start_us <= prev.start_us
                      and (a.end_us is None or a.end_us > prev.start_us)]
            if len(others) < PER_DOMAIN:
                free = prev.start_us
            else:
                ends = sorted(a.end_us for a in others if a.end_us is not None)
                if len(ends) < len(others) - PER_DOMAIN + 1:
                    continue  # the downloads holding the slots never end
                free = ends[len(others) - PER_DOMAIN]
            assert job.submitted_us is not None
            ready = max(job.submitted_us, prev.start_us + high, free)
            if attempt.start_us > ready + slack:
                raise InvariantFailed(
                    f"site{key}: job {attempt.job}, requested at {format_ms(job.submitted_us)}, started at "
                    f"{format_ms(attempt.start_us)}, later than {format_ms(ready)} (150ms after job {prev.job}'s "
                    f"start, a transfer slot free, and its request)",
                    events=(starts[(attempt.job, attempt.n)],))


downloader_slots = _fetch_target(
    Fetching, "Scrapy's Downloader, CONCURRENT_REQUESTS_PER_DOMAIN=2, two domains: at most 2 per domain, in order")
downloader_slot_per_url = _fetch_target(
    FetchingSlotPerUrl, "a Downloader subclass keying its slots by URL: the per-domain limit gone")
download_delay = _fetch_target(
    Delayed, "Scrapy's Downloader, DOWNLOAD_DELAY=0.1 with jitter 0.5, two domains of 2: spaced 50-150ms",
    (spaced_by_download_delay,))
download_delay_burst = _fetch_target(
    DelayedBursting, "a Downloader subclass whose _process_queue lost the burst guard", (spaced_by_download_delay,))


# -- CallLaterOnce --------------------------------------------------------------------------------


class Once:
    """Each call waits for the next invocation of ``CallLaterOnce(self.flush)``, scheduled at the call."""

    def __init__(self, clock: IReactorTime) -> None:
        on_clock(clock)
        self.callers: list[tuple[Callable[[], Any], defer.Deferred[Any]]] = []
        self.nextcall: CallLaterOnce[Any] = CallLaterOnce(self.flush)
        self.stopped = False

    def flush(self) -> defer.Deferred[Any] | None:
        batch, self.callers = self.callers, []
        if not batch:
            return None
        job = batch[0][0]

        def deliver(result: Any) -> None:
            for _, caller in batch:
                if isinstance(result, Failure):
                    caller.errback(result)
                else:
                    caller.callback(result)

        return defer.maybeDeferred(job).addBoth(deliver)

    def submit(self, job: Callable[[], Any], key: int = 0) -> defer.Deferred[Any]:
        if self.stopped:
            return defer.fail(Stopped("stopped: the call is refused"))
        caller: defer.Deferred[Any] = defer.Deferred()
        self.callers.append((job, caller))
        self.schedule()
        return caller

    def schedule(self) -> None:
        self.nextcall.schedule(ONCE_MS / 1000)

    def stop(self) -> None:
        self.stopped = True
        self.nextcall.cancel()
        batch, self.callers = self.callers, []
        for _, caller in batch:
            caller.errback(Stopped("stopped before the call was served"))


class OnceRescheduled(Once):
    """Glue restarting the timer at each call (a debounce): ``cancel()`` then ``schedule()``."""

    def schedule(self) -> None:
        self.nextcall.cancel()
        self.nextcall.schedule(ONCE_MS / 1000)


def called_once_per_schedule(run: Run) -> None:
    """``CallLaterOnce.schedule(0.1)``: every call is served by the first invocation after it,
    which starts 100 ms after the first call since the invocation before (no sooner; no later than
    the clock's lateness), unless ``stop()`` came first."""
    view = run.view
    stop = next((i for i, _ in view.of_kind(EventKind.STOP)), None)
    pending: list[tuple[int, int]] = []  # (trace index, job) of the calls since the last invocation
    for index, event in enumerate(view.events):
        if stop is not None and index >= stop:
            break
        if event.kind == EventKind.SUBMIT:
            pending.append((index, event.job))
        elif event.kind == EventKind.JOB_START and pending:
            first = view.jobs[pending[0][1]].submitted_us
            assert first is not None
            due = first + ONCE_MS * 1000
            if not due <= event.t_us <= due + view.late_us:
                raise InvariantFailed(
                    f"an invocation started at {format_ms(event.t_us)}, but the first call since the one before came "
                    f"at {format_ms(first)}: due at {format_ms(due)}", events=(pending[0][0], index))
            pending = []
    end = view.events[stop].t_us if stop is not None else view.events[-1].t_us
    for index, job in pending:
        submitted = view.jobs[job].submitted_us
        assert submitted is not None
        if end > submitted + ONCE_MS * 1000 + view.late_us:
            raise InvariantFailed(
                f"job {job} called at {format_ms(submitted)}, and no invocation came by "
                f"{format_ms(submitted + ONCE_MS * 1000)}" + (f" (stop() at {format_ms(end)})" if stop is not None else ""),
                events=(index,))


def _once(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, keys=1, shared=True, key_limit=math.inf, cancellable=False, rejects=(Stopped,),
                  invariants=(called_once_per_schedule,), description=description, global_reactor="lend")


call_later_once = _once(Once, "Scrapy's CallLaterOnce.schedule(0.1) at each call: one invocation for the calls of 100ms")
call_later_once_rescheduled = _once(OnceRescheduled, "glue calling CallLaterOnce.cancel() then schedule(): never again")


# -- parallel / parallel_async --------------------------------------------------------------------


class Parallel:
    """``parallel(endless iterable of DeferredQueue.get(), 3, fetch)``: the jobs submitted feed the queue."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.queue: defer.DeferredQueue[tuple[Callable[[], Any], defer.Deferred[Any]]] = defer.DeferredQueue()
        self.stopped = False
        with cooperating_on(clock):
            self.done = self.start()

    def start(self) -> defer.Deferred[Any]:
        return scrapy_defer.parallel(iter(self.queue.get, None), COUNT, self.fetch)

    @staticmethod
    def _run(item: tuple[Callable[[], Any], defer.Deferred[Any]]) -> defer.Deferred[Any]:
        job, caller = item
        return defer.maybeDeferred(job).addCallbacks(caller.callback, caller.errback)

    def fetch(self, got: defer.Deferred[Any]) -> defer.Deferred[Any]:
        return got.addCallback(self._run)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self.stopped:
            return defer.fail(Stopped("stopped: the job is refused"))
        caller: defer.Deferred[Any] = defer.Deferred()
        self.queue.put((job, caller))
        return caller

    def stop(self) -> None:
        self.stopped = True


class ParallelAsync(Parallel):
    """``parallel_async`` over an async generator awaiting ``DeferredQueue.get()``; ``fetch`` runs the job."""

    async def items(self) -> AsyncIterator[tuple[Callable[[], Any], defer.Deferred[Any]]]:
        while True:
            yield await self.queue.get()

    def start(self) -> defer.Deferred[Any]:
        return scrapy_defer.parallel_async(self.items(), COUNT, self._run)


class ParallelUnchained(Parallel):
    """A ``fetch`` whose callback starts the job without returning its Deferred (the classic missing
    ``return``): the Deferred handed to the Cooperator fires as the item arrives, not when the job ends."""

    def fetch(self, got: defer.Deferred[Any]) -> defer.Deferred[Any]:
        def run(item: tuple[Callable[[], Any], defer.Deferred[Any]]) -> None:
            self._run(item)

        return got.addCallback(run)


def _parallel(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, limit=COUNT, order="fifo", cancellable=False, rejects=(Stopped,), description=description,
                  global_reactor="lend")


parallel = _parallel(Parallel, "Scrapy's utils.defer.parallel(iterable, 3, f): at most 3 calls at once, in order")
parallel_async = _parallel(ParallelAsync, "Scrapy's utils.defer.parallel_async(aiterable, 3, f): at most 3 at once, in order")
parallel_unchained = _parallel(ParallelUnchained, "parallel() given a callable whose callback does not return the job's Deferred")
