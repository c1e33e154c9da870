"""buildbot's Twisted scheduling utilities, each declaring only what buildbot documents.

Needs buildbot, in the ``thirdparty`` extra (``pip install -e '.[thirdparty]'``); without it, importing this module raises an
``ImportError`` that says so (``harness list`` does not import it). Verified against buildbot
4.3.0. Written with the public API only, as a buildbot developer uses it: the decorators
``debounce.method`` and ``poll.method`` on a class whose ``master.reactor`` (or
``get_reactor``) is the harness's clock, and ``lru.AsyncLRUCache``. The promises quoted are
from buildbot's developer documentation (``docs/developer/utils.rst``).

``debounced``: ``@debounce.method(wait=0.1)`` on a method that takes the callers waiting for it
and runs the job of the first one still waiting, handing its outcome to them all (the method
takes no arguments, so the work it does for its callers is the glue's). "For each call to the
decorated method, the underlying method will be invoked at least once within *wait* seconds
(plus the time the method takes to execute). Calls are debounced during that time, meaning that
multiple calls to the decorated method will result in a single invocation": a shared target
(``shared=True``: the callers of one invocation get its outcome; one invocation at a time,
``concurrency.key_limit``), and target invariant ``invoked_within_wait``: every call is served by
an invocation that starts after it, no later than ``wait`` after it (or after the invocation
running at the call ends), and no sooner than ``wait`` after the first call it serves, unless
``stop()`` flushed it. ``stop()``: "If a call is pending when stop is called, that call will
occur immediately. When the Deferred that stop returns fires, the underlying method is not
executing"; "While the debouncer is stopped, calls to the decorated method will be ignored"
(the glue refuses them: ``rejects=(Stopped,)``). A caller's cancel detaches it
(``cancellable="detach"``: the glue skips it; the invocation runs for the others).
Twin ``debounce_stop_drops_queued``: buildbot's ``Debouncer`` as it was before buildbot PR
#6853 (2023, "Fix missed invocations when stop() is called on debounce component": "Calling
stop() on a debouncer did not invoke any queued runs"): a call made while the method runs,
then ``stop()``, and that call is never served (``user.invoked_within_wait``).

``polled``: ``@poll.method`` started with ``start(interval=0.1, now=False)`` and stopped with
``stop()`` ("The returned Deferred fires when the decorated method is complete"). Periodic,
``interval_ms=100``: "If a previous invocation of the method has not completed when the interval
expires, then the next invocation is skipped" (no overlap); "If the decorated method fails or
raises an exception, the Poller logs the error and re-schedules the call for the next interval"
(not a dead loop). ``polled_now`` starts with ``now=True``. The poller times its next call from one
``seconds()`` reading, as ``LoopingCall`` does, so a wall-clock jump may shorten one interval
(which ``time.early`` allows).

``poll_forced``: the same poller (interval 500 ms), each job a forced poll, ``poller()``:
"Force a call to the decorated method now. If the decorated method is currently running,
another call will begin as soon as it completes." A shared target as ``debounced`` (the poll
runs the job of the first caller still waiting), with target invariant ``forced_poll_at_once``:
every caller is served by a poll that starts at its call, or at the end of the poll running
then (plus the clock's lateness), unless ``stop()`` came first (a pending forced poll is
dropped at ``stop()``; the glue fails the callers left with ``Stopped``). Twin
``poll_forced_skipped_while_running``: a subclass of ``Poller`` that ignores a force while a
poll runs ("it is polling already"), the natural shortcut (``user.forced_poll_at_once``).
``polled_forced`` states the poller's own promise with the built-in ``time.on_demand``: the
periodic poller (500 ms) with a ``force`` operation declared ``Operation(calls_now=True)``; its
twin ``polled_forced_skipped_while_running`` ignores a force while a poll runs. The submit-shaped
``poll_forced`` keeps its own invariant: it also judges which caller each poll serves (the glue).

``async_lru``: ``AsyncLRUCache(miss_fn, max_size=1)`` read by two keys: "Asynchronous locking is
used to ensure that in the common case of multiple concurrent requests for the same key, only
one fetch is performed"; a value fetched stays cached until evicted (``max_size=1`` evicts one
key when the other is fetched). ``miss_fn`` runs the job of the caller that missed; its value
is wrapped in a small object since the cache keeps values in a ``WeakValueDictionary`` ("Weak
references cannot be used for some types", ``str`` among them). Shared, two keys,
``cache_ms`` one virtual hour; a failure is not cached. A caller's cancel fails it at once and
the fetch goes on for the others (``cancellable="detach"``). Twin ``async_lru_no_inflight``: a
subclass whose ``get`` forgets the in-flight fetches (each concurrent miss fetches again: two
executions of one key at once, ``concurrency.key_limit``).

``repeated_action``: ``deferwaiter.RepeatedActionHandler(clock, DeferWaiter(), 0.1, work)``, the
keepalive of buildbot's worker protocols ("handles a repeated action such as submitting
keepalive requests. It integrates with DeferWaiter to correctly control shutdown"):
``start()``; ``stop()`` then ``DeferWaiter.wait()``; the operation ``restart`` is ``stop()`` then
``start()`` (a detach and re-attach; ``start()`` on a stopped handler is allowed) in
``repeated_action_restarted`` only. The timer is armed before each action, so actions come every
100 ms and overlap when one takes longer (``overlap=True``). ``repeated_action_restarted`` was a
false alarm of the harness: a restart re-arms the timer, so restarts after a failed action
postpone the next one, which ``time.loop_died`` took for a dead loop; it reads only the loop's own
timers now, and the failure is logged. It was again (session 12): restarts less than an interval
apart put even the first action off, by design, and ``time.loop_died`` measured the silence from the
first ``start()``; it measures it from the latest restart that re-armed the loop now
(``harness.run.chains.last_rearm``). ``repeated_action_after_completion``: ``start_timer_after_action_completes=True``,
the next action 100 ms after the last one ended (``overlap=False``), no restarts.
``repeated_action_after_completion_restarted``: the same with ``restart``: a BUG in buildbot
4.3.0 (and in its main branch as stored): restarted while the action runs, ``start()`` arms a
timer and the running action, ending, arms another over it, so two timer chains run (calls too
close, ``time.early``; overlapping, ``time.overlap``), and after ``stop()`` the orphaned timer,
which ``stop()`` cannot reach, runs the action once more (``time.after_stop``).
``tests/test_thirdparty_buildbot.py`` shows it in plain Twisted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python import log
from twisted.python.failure import Failure

from harness import EventKind, InvariantFailed, JobRecord, Operation, Run, RunView, Target, format_ms

try:
    from buildbot.util import debounce, deferwaiter, lru, poll
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the buildbot targets need buildbot ({exc}); install it with pip install -e '.[thirdparty]'"
    ) from None

#: ``debounce.method(wait=...)`` of the debounce targets.
WAIT_MS = 100
#: ``Poller.start(interval=...)`` of the periodic poll targets.
INTERVAL_MS = 100
#: The forced-poll target's own interval: periodic polls go on beside the forced ones.
FORCED_INTERVAL_MS = 500
KEYS = 2
#: ``AsyncLRUCache(max_size=...)``: one entry, so fetching one key evicts the other.
LRU_SIZE = 1
#: "Until evicted": nothing expires within a run.
FOREVER_MS = 3_600_000


class Stopped(Exception):
    """The utility was stopped before this caller's call was served (or the call was ignored)."""


class _Master:
    """What ``poll.method`` (and ``debounce.method``'s default ``get_reactor``) read of a service: its master's reactor."""

    def __init__(self, reactor: IReactorTime) -> None:
        self.reactor = reactor


class Waiting:
    """Callers waiting for the next run of a method that takes no arguments (debounced or polled).

    A run takes every caller waiting, runs the job of the first one whose Deferred has not fired
    (a cancelled caller is skipped: it detached), and hands that job's outcome to every caller it
    took that still waits. A run with no caller left runs nothing.
    """

    def __init__(self) -> None:
        self.callers: list[tuple[Callable[[], Any], defer.Deferred[Any]]] = []

    def add(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        caller: defer.Deferred[Any] = defer.Deferred()
        self.callers.append((job, caller))
        return caller

    def run(self) -> defer.Deferred[Any] | None:
        batch, self.callers = self.callers, []
        live = [job for job, caller in batch if not caller.called]
        if not live:
            return None

        def deliver(result: Any) -> Any:
            for _, caller in batch:
                if not caller.called:
                    if isinstance(result, Failure):
                        caller.errback(result)
                    else:
                        caller.callback(result)
            # The method's own outcome: buildbot logs a failure ("from debounced function:").
            return result

        return defer.maybeDeferred(live[0]).addBoth(deliver)

    def fail_all(self, why: str) -> None:
        """Fail every caller still waiting (the utility was stopped before serving them)."""
        batch, self.callers = self.callers, []
        for _, caller in batch:
            if not caller.called:
                caller.errback(Stopped(why))


# -- debounce ------------------------------------------------------------------------------------


class Debounced:
    """A service with a debounced method: every ``submit`` is a call of ``self.flush``."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.waiting = Waiting()
        self.stopped = False

    @debounce.method(wait=WAIT_MS / 1000, get_reactor=lambda self: self.clock)
    def flush(self) -> defer.Deferred[Any] | None:
        return self.waiting.run()

    def debouncer(self) -> Any:
        return self.flush

    def submit(self, job: Callable[[], Any], key: int = 0) -> defer.Deferred[Any]:
        if self.stopped:  # "While the debouncer is stopped, calls to the decorated method will be ignored"
            return defer.fail(Stopped("the debouncer is stopped: the call is ignored"))
        caller = self.waiting.add(job)
        self.debouncer()()
        return caller

    def stop(self) -> defer.Deferred[Any]:
        self.stopped = True
        done: defer.Deferred[Any] = self.debouncer().stop()
        # Callers still waiting once the method is done will never be served: tell them.
        return done.addCallback(lambda _: self.waiting.fail_all("the debouncer was stopped"))


class DebouncerBeforePR6853(debounce.Debouncer):
    """buildbot's ``Debouncer.invoke`` before PR #6853: when the run ends with a call queued
    behind it and the debouncer stopped meanwhile, the queued call is dropped (``self()`` is
    ignored once stopped), though ``stop()`` promises a pending call "will occur immediately"."""

    def invoke(self) -> None:
        self.phase = debounce.PH_RUNNING
        d = defer.maybeDeferred(self.function)
        d.addErrback(log.err, 'from debounced function:')

        @d.addCallback
        def retry(_: Any) -> None:
            queued = self.phase == debounce.PH_RUNNING_QUEUED
            self.phase = debounce.PH_IDLE
            while self.completeDeferreds:
                self.completeDeferreds.pop(0).callback(None)
            if queued:
                self()


class DebouncedBeforePR6853(Debounced):
    """The same service with the pre-#6853 ``Debouncer`` (the class ``debounce.method`` makes)."""

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__(clock)
        self._old = DebouncerBeforePR6853(
            WAIT_MS / 1000, self.waiting.run, lambda: self.clock, False  # wait, function, get_reactor, until_idle
        )

    def debouncer(self) -> Any:
        return self._old


def _stop_index(view: RunView) -> int | None:
    return next((index for index, _ in view.of_kind(EventKind.STOP)), None)


def _runs_at_calls(view: RunView) -> tuple[dict[int, list[tuple[int, int]]], dict[int, tuple[int, int] | None]]:
    """For each submitted job, the attempts ``(job, n)`` running when it was submitted, and the
    first attempt started after its submission (in trace order): the run that served it, since
    runs never overlap and a run takes every caller waiting (None: none started after it)."""
    running: set[tuple[int, int]] = set()
    busy: dict[int, list[tuple[int, int]]] = {}
    waiting: list[int] = []
    first: dict[int, tuple[int, int] | None] = {}
    for event in view.events:
        if event.kind == EventKind.JOB_START:
            running.add((event.job, event.attempt))
            for job in waiting:
                first[job] = (event.job, event.attempt)
            waiting = []
        elif event.kind in (EventKind.JOB_FINISH, EventKind.JOB_FAIL, EventKind.JOB_CANCEL):
            running.discard((event.job, event.attempt))
        elif event.kind == EventKind.SUBMIT:
            busy[event.job] = sorted(running)
            first[event.job] = None
            waiting.append(event.job)
    return busy, first


def _running_at_index(view: RunView, index: int) -> bool:
    """Whether an attempt was running at trace index ``index``."""
    running: set[tuple[int, int]] = set()
    for event in view.events[:index]:
        if event.kind == EventKind.JOB_START:
            running.add((event.job, event.attempt))
        elif event.kind in (EventKind.JOB_FINISH, EventKind.JOB_FAIL, EventKind.JOB_CANCEL):
            running.discard((event.job, event.attempt))
    return bool(running)


def _end_of(view: RunView, runs: list[tuple[int, int]]) -> int | None:
    """When the invocation running at a call ended (monotonic us); None if it never ends."""
    ends = []
    for job, n in runs:
        attempt = view.jobs[job].attempts[n]
        if attempt.end_us is None or attempt.canceller_raised:
            return None
        ends.append(attempt.end_us)
    return max(ends)


def _judged_callers(view: RunView) -> list[JobRecord]:
    """The callers to judge: submitted before the first ``stop()``, never cancelled, not refused."""
    stop = _stop_index(view)
    submits = {event.job: index for index, event in view.of_kind(EventKind.SUBMIT)}
    return [
        job for job in view.jobs.values()
        if not job.periodic and not job.cancelled_us and (stop is None or submits[job.id] < stop)
    ]


def invoked_within_wait(run: Run) -> None:
    """``debounce.method(wait)``: every call is served by an invocation that starts after it, no
    later than ``wait`` after it (or after the end of the invocation running at the call, "plus
    the time the method takes to execute"), and no sooner than ``wait`` after the first call it
    serves, unless ``stop()`` flushed it ("that call will occur immediately")."""
    view = run.view
    wait, late = WAIT_MS * 1000, view.late_us
    busy, served = _runs_at_calls(view)
    stop = _stop_index(view)
    stop_us = view.events[stop].t_us if stop is not None else None
    submits = {event.job: index for index, event in view.of_kind(EventKind.SUBMIT)}
    for job in _judged_callers(view):
        running = busy[job.id]
        after = job.submitted_us if not running else _end_of(view, running)
        if after is None:
            continue  # the invocation running at the call never ends: nothing can follow it
        run_of = served[job.id]
        attempt = None if run_of is None else view.jobs[run_of[0]].attempts[run_of[1]]
        if attempt is None:
            raise InvariantFailed(
                f"job {job.id} called the debounced method at {format_ms(job.submitted_us)}, but no invocation "
                f"served it (it was due by {format_ms(after + wait)})"
                + (f"; stop() came at {format_ms(stop_us)}" if stop_us is not None else ""),
                events=(submits[job.id],))
        flushed = stop_us is not None and stop_us <= attempt.start_us
        if not flushed and attempt.start_us > after + wait + late:
            raise InvariantFailed(
                f"job {job.id}, called at {format_ms(job.submitted_us)}, was served by an invocation at "
                f"{format_ms(attempt.start_us)}, later than {WAIT_MS}ms after "
                + ("it" if not running else f"the invocation running then ended at {format_ms(after)}"),
                events=(submits[job.id],))
        first = min(view.jobs[other].submitted_us for other, by in served.items() if by == run_of)
        if not flushed and attempt.start_us < first + wait:
            raise InvariantFailed(
                f"an invocation started at {format_ms(attempt.start_us)}, sooner than {WAIT_MS}ms after the first "
                f"call it served (at {format_ms(first)}): calls are not debounced", events=(submits[job.id],))


def _debounce(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(
        build=build,
        keys=1,  # one method: shared needs keys
        shared=True,
        cancellable="detach",
        rejects=(Stopped,),
        invariants=(invoked_within_wait,),
        description=description,
    )


debounced = _debounce(Debounced, "buildbot's @debounce.method(wait=0.1): calls coalesced, each served within wait")
debounce_stop_drops_queued = _debounce(
    DebouncedBeforePR6853, "buildbot's Debouncer before PR #6853: stop() drops a call queued behind the running one"
)

# -- poll ------------------------------------------------------------------------------------------


class Polled:
    """A service with a ``@poll.method`` calling the harness's work."""

    now = False

    def __init__(self, clock: IReactorTime) -> None:
        self.master = _Master(clock)
        self.work: Callable[[], Any] | None = None

    @poll.method
    def poll(self) -> Any:
        assert self.work is not None
        return self.work()

    def start(self, work: Callable[[], Any]) -> None:
        self.work = work
        self.poll.start(interval=INTERVAL_MS / 1000, now=self.now)

    def stop(self) -> defer.Deferred[Any]:
        return self.poll.stop()  # type: ignore[no-any-return]


class PolledNow(Polled):
    now = True


def _poll(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, kind="periodic", interval_ms=INTERVAL_MS, description=description)


polled = _poll(Polled, "buildbot's @poll.method, start(interval=0.1): periodic, no overlap, errors logged")
polled_now = _poll(PolledNow, "buildbot's @poll.method, start(interval=0.1, now=True): a call at once, then periodic")


class ForcedPolls:
    """A service polling every 500 ms; each ``submit`` forces a poll (``self.poll()``)."""

    def __init__(self, clock: IReactorTime) -> None:
        self.master = _Master(clock)
        self.waiting = Waiting()
        self.stopped = False
        self.poll.start(interval=FORCED_INTERVAL_MS / 1000, now=False)

    @poll.method
    def poll(self) -> defer.Deferred[Any] | None:
        return self.waiting.run()

    def submit(self, job: Callable[[], Any], key: int = 0) -> defer.Deferred[Any]:
        if self.stopped:  # a stopped poller ignores a force
            return defer.fail(Stopped("the poller is stopped: the forced poll is ignored"))
        caller = self.waiting.add(job)
        self.force()
        return caller

    def force(self) -> None:
        self.poll()

    def stop(self) -> defer.Deferred[Any]:
        self.stopped = True
        done: defer.Deferred[Any] = self.poll.stop()
        return done.addCallback(lambda _: self.waiting.fail_all("the poller was stopped"))


class ForcedPollsSkipping(ForcedPolls):
    """Glue that does not force a poll while one runs ("it is polling already"): the callers
    that came during a poll wait for the next periodic one."""

    def __init__(self, clock: IReactorTime) -> None:
        self.polling = False
        super().__init__(clock)

    @poll.method
    def poll(self) -> defer.Deferred[Any] | None:
        self.polling = True
        ran = self.waiting.run()
        if ran is None:
            self.polling = False
            return None

        def done(result: Any) -> Any:
            self.polling = False
            return result

        return ran.addBoth(done)

    def force(self) -> None:
        if not self.polling:
            self.poll()


def forced_poll_at_once(run: Run) -> None:
    """``Poller.__call__``: "Force a call to the decorated method now. If the decorated method is
    currently running, another call will begin as soon as it completes": every caller is served
    by a poll that starts no later than the clock's lateness after the last moment the poller
    was told to poll now (its call, a later force, or the end of the poll running at its call:
    each reschedules the poll to "now", and a rescheduled call may be late anew), unless
    ``stop()`` came first."""
    view = run.view
    late = view.late_us
    busy, served = _runs_at_calls(view)
    stop = _stop_index(view)
    submits = {event.job: index for index, event in view.of_kind(EventKind.SUBMIT)}
    starts = {(e.job, e.attempt): i for i, e in view.of_kind(EventKind.JOB_START)}
    # The moments the poller was told to poll now: a force (a submit), or a poll's end (a force
    # pending during it is then served).
    nows = [(i, e.t_us) for i, e in enumerate(view.events)
            if e.kind in (EventKind.SUBMIT, EventKind.JOB_FINISH, EventKind.JOB_FAIL, EventKind.JOB_CANCEL)]
    for job in _judged_callers(view):
        if busy[job.id] and _end_of(view, busy[job.id]) is None:
            continue  # the poll running at its call never ends
        run_of = served[job.id]
        start = None if run_of is None else starts[run_of]
        if start is None and stop is not None and _running_at_index(view, stop):
            continue  # stop() came while a poll ran: it drops a force pending behind that poll
        until = start if start is not None else (stop if stop is not None else len(view.events) - 1)
        last = max(t for i, t in nows if submits[job.id] <= i < until)
        t_until = view.events[until].t_us
        if t_until <= last + late:
            continue
        if start is None and stop is not None:
            what = f"stop() came at {format_ms(t_until)} and it was never served"
        elif start is None:
            what = "it was never served"
        else:
            what = f"the poll serving it started at {format_ms(t_until)}"
        raise InvariantFailed(
            f"job {job.id} forced a poll at {format_ms(job.submitted_us)}; {what}, though the poller was last told "
            f"to poll now at {format_ms(last)} (allowing {format_ms(late)} of lateness)",
            events=(submits[job.id],) + ((start,) if start is not None else ()))


def _forced(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(
        build=build,
        keys=1,  # one method: shared needs keys
        shared=True,
        cancellable="detach",
        rejects=(Stopped,),
        invariants=(forced_poll_at_once,),
        description=description,
    )


poll_forced = _forced(ForcedPolls, "buildbot's Poller forced by each call: a poll at once, or right after the running one")
poll_forced_skipped_while_running = _forced(
    ForcedPollsSkipping, "a Poller subclass ignoring a force while a poll runs"
)

class ForcedPolled(Polled):
    """The periodic poller (interval 500 ms) whose ``force()`` calls ``Poller.__call__``: a poll now."""

    def start(self, work: Callable[[], Any]) -> None:
        self.work = work
        self.poll.start(interval=FORCED_INTERVAL_MS / 1000, now=False)

    def force(self) -> None:
        self.poll()


class ForcedPolledSkipping(ForcedPolled):
    """Ignores a force while a poll runs ("it is polling already"): the next poll is the periodic one."""

    polling = False

    @poll.method
    def poll(self) -> Any:
        assert self.work is not None
        self.polling = True
        d = defer.maybeDeferred(self.work)

        def done(result: Any) -> Any:
            self.polling = False
            return result

        return d.addBoth(done)

    def force(self) -> None:
        if not self.polling:
            self.poll()


def _forced_periodic(build: Callable[[IReactorTime], Any], description: str) -> Target:
    # The built-in time.on_demand states Poller.__call__'s promise of a periodic target's own calls.
    return Target(
        build=build,
        kind="periodic",
        interval_ms=FORCED_INTERVAL_MS,
        operations={"force": Operation(lambda subject: subject.force(), calls_now=True)},
        description=description,
    )


polled_forced = _forced_periodic(ForcedPolled, "buildbot's Poller, periodic, forced by an operation (calls_now)")
polled_forced_skipped_while_running = _forced_periodic(
    ForcedPolledSkipping, "a Poller subclass ignoring a force while a poll runs (periodic, calls_now)"
)


# -- AsyncLRUCache --------------------------------------------------------------------------------


class Row:
    """A fetched value in a form the cache's ``WeakValueDictionary`` can hold (a ``str`` cannot)."""

    __slots__ = ("value", "__weakref__")

    def __init__(self, value: Any) -> None:
        self.value = value


class Cached:
    """``AsyncLRUCache.get(key, job=job)``; ``miss_fn`` runs the job of the caller that missed."""

    cache_class: type[lru.AsyncLRUCache] = lru.AsyncLRUCache

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.cache = self.cache_class(self._fetch, max_size=LRU_SIZE)

    @staticmethod
    def _fetch(key: int, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return defer.maybeDeferred(job).addCallback(Row)

    def submit(self, job: Callable[[], Any], key: int) -> defer.Deferred[Any]:
        return self.cache.get(key, job=job).addCallback(lambda row: row.value)  # type: ignore[no-any-return]


class ForgetfulLRUCache(lru.AsyncLRUCache):
    """``get`` without the in-flight map: a miss while the key is being fetched fetches again."""

    def get(self, key: Any, **miss_fn_kwargs: Any) -> defer.Deferred[Any]:
        try:
            return defer.succeed(self._get_hit(key))
        except KeyError:
            pass
        self.misses += 1

        def store(result: Any) -> Any:
            if result is not None:
                self.cache[key] = result
                self.weakrefs[key] = result
                self._ref_key(key)
                self._purge()
            return result

        return self.miss_fn(key, **miss_fn_kwargs).addCallback(store)  # type: ignore[no-any-return]


class CachedForgetful(Cached):
    cache_class = ForgetfulLRUCache


def _lru(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, keys=KEYS, shared=True, cache_ms=FOREVER_MS, cancellable="detach",
                  description=description)


async_lru = _lru(Cached, "buildbot's AsyncLRUCache(max_size=1), two keys: concurrent misses share one fetch")
async_lru_no_inflight = _lru(CachedForgetful, "an AsyncLRUCache subclass forgetting in-flight fetches")



# -- deferwaiter.RepeatedActionHandler ---------------------------------------------------------------


class Repeated:
    """A keepalive: ``RepeatedActionHandler(clock, DeferWaiter(), 0.1, work)``, started with
    ``start()``; ``stop()`` stops it and waits for the actions in flight (``DeferWaiter.wait``),
    as buildbot's worker protocols do; the operation ``restart`` is a detach and re-attach
    (``stop()`` then ``start()``, as ``detached`` and ``attached`` call them)."""

    after_completion = False

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.waiter = deferwaiter.DeferWaiter()
        self.handler: deferwaiter.RepeatedActionHandler | None = None
        self.stopped = False

    def start(self, work: Callable[[], Any]) -> None:
        self.handler = deferwaiter.RepeatedActionHandler(
            self.clock, self.waiter, INTERVAL_MS / 1000, work, start_timer_after_action_completes=self.after_completion
        )
        self.handler.start()

    def restart(self) -> None:
        # The harness's stop() is final (time.after_stop): no re-attach after it.
        if self.handler is not None and not self.stopped:
            self.handler.stop()
            self.handler.start()

    def stop(self) -> defer.Deferred[Any]:
        self.stopped = True
        if self.handler is not None:
            self.handler.stop()
        return self.waiter.wait()  # type: ignore[no-any-return]


class RepeatedAfterCompletion(Repeated):
    after_completion = True


def _repeated(build: Callable[[IReactorTime], Any], description: str, restarts: bool, overlap: bool) -> Target:
    return Target(
        build=build,
        kind="periodic",
        interval_ms=INTERVAL_MS,
        overlap=overlap,
        operations={"restart": Operation(lambda subject: subject.restart())} if restarts else {},
        description=description,
    )


#: The timer is armed before each action: actions every 100 ms, overlapping when one takes longer.
repeated_action = _repeated(
    Repeated, "buildbot's RepeatedActionHandler(0.1): an action every 100ms, overlapping when one is slow",
    restarts=False, overlap=True)
#: The same, detached and re-attached (stop() then start()) at will: each restart puts the next action off
#: an interval (time.loop_died judges the wait from the latest restart).
repeated_action_restarted = _repeated(
    Repeated, "buildbot's RepeatedActionHandler(0.1): an action every 100ms, stop() and start() again at will",
    restarts=True, overlap=True)
#: The timer is armed once the action completes: never overlapping.
repeated_action_after_completion = _repeated(
    RepeatedAfterCompletion, "buildbot's RepeatedActionHandler(0.1, start_timer_after_action_completes=True)",
    restarts=False, overlap=False)
#: The same, detached and re-attached (stop() then start()) while it runs: a bug in buildbot 4.3.0.
repeated_action_after_completion_restarted = _repeated(
    RepeatedAfterCompletion,
    "buildbot's RepeatedActionHandler(0.1, start_timer_after_action_completes=True), stop() and start() again at will",
    restarts=True, overlap=False)
