"""Targets for round 12, written from the user documentation alone (not the harness source).

* limiter: each job is a call through the sliding-window limiter (``rate``, FIFO, a wait timeout).
* channel: the bounded channel used as a semaphore, two ways: a ``put`` takes a slot (the buffer
  holds the tokens of the running jobs) or a ``get`` takes one (the buffer holds the free tokens).
* watchdog: each job is a watched task that never kicks: a silent attempt is cancelled at the period
  and started again (``retries``, ``timeout_ms``); an operation kicks every retired incarnation.
* coalescer: each job is one caller of its key; the upstream call runs the job of the batch's first
  caller still waiting (``shared``, ``cancellable="abandon"``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import InvariantFailed, Operation, Run, Target
from scenarios.review.round12 import channel, coalescer, limiter, watchdog

# -- limiter -------------------------------------------------------------------------------------
N, WINDOW_MS, MAX_WAIT_MS = 2, 100, 300


class LimiterGate:
    def __init__(self, clock: IReactorTime, cls: type = limiter.SlidingWindowLimiter,
                 max_wait_ms: int = MAX_WAIT_MS) -> None:
        self.limiter = cls(clock, N, WINDOW_MS / 1000, max_wait_ms / 1000)

    def submit(self, job: Callable[[], Any]) -> "defer.Deferred[Any]":
        return self.limiter.call(job)

    def stop(self) -> None:
        self.limiter.close()


def _limiter(cls: type, description: str, max_wait_ms: int = MAX_WAIT_MS) -> Target:
    return Target(build=lambda clock: LimiterGate(clock, cls, max_wait_ms), rate=(N, WINDOW_MS), order="fifo",
                  timeout_ms=max_wait_ms, timeout_from="wait", timeout_error=limiter.WaitTimeout,
                  rejects=(limiter.LimiterClosed,), description=description)


limiter_ok = _limiter(limiter.SlidingWindowLimiter, "sliding-window limiter (round 12)")
limiter_off_by_one = _limiter(limiter.OffByOneLimiter, "limiter letting n + 1 calls into a window")
limiter_leaky_timer = _limiter(limiter.LeakyTimerLimiter, "limiter keeping a woken waiter's timer")
limiter_lifo = _limiter(limiter.LifoLimiter, "limiter waking the newest waiter first")

# -- channel -------------------------------------------------------------------------------------
CAPACITY, CHAN_WAIT_MS = 2, 300


class PutGate:
    """A put takes a slot, a get gives it back: the buffer holds the running jobs' tokens."""

    def __init__(self, clock: IReactorTime, cls: type = channel.BoundedChannel) -> None:
        self.chan = cls(clock, CAPACITY)

    def submit(self, job: Callable[[], Any]) -> "defer.Deferred[Any]":
        d = self.chan.put("token", timeout=CHAN_WAIT_MS / 1000)
        d.addCallback(lambda _: defer.maybeDeferred(job).addBoth(self._release))
        return d

    def _release(self, outcome: Any) -> Any:
        self.chan.get()
        return outcome

    def stop(self) -> None:
        self.chan.close()


class GetGate:
    """A get takes a slot, a put gives it back: the buffer starts with CAPACITY free tokens."""

    def __init__(self, clock: IReactorTime, cls: type = channel.BoundedChannel) -> None:
        self.chan = cls(clock, CAPACITY)
        for _ in range(CAPACITY):
            self.chan.put("token")

    def submit(self, job: Callable[[], Any]) -> "defer.Deferred[Any]":
        d = self.chan.get(timeout=CHAN_WAIT_MS / 1000)
        d.addCallback(lambda token: defer.maybeDeferred(job).addBoth(self._release, token))
        return d

    def _release(self, outcome: Any, token: Any) -> Any:
        # a put after close() fails: nobody waits for the token then (found by the harness:
        # errors.unhandled when a job ended after stop())
        self.chan.put(token).addErrback(lambda f: f.trap(channel.ChannelClosed))
        return outcome

    def stop(self) -> None:
        self.chan.close()


def _channel(gate: type, cls: type, description: str) -> Target:
    return Target(build=lambda clock: gate(clock, cls), limit=CAPACITY, order="fifo",
                  timeout_ms=CHAN_WAIT_MS, timeout_from="wait", timeout_error=channel.ChannelTimeout,
                  rejects=(channel.ChannelClosed,), description=description)


channel_put_ok = _channel(PutGate, channel.BoundedChannel, "bounded channel, puts as the slots")
channel_get_ok = _channel(GetGate, channel.BoundedChannel, "bounded channel, gets as the slots")
channel_overfull = _channel(PutGate, channel.OverfullChannel, "channel holding capacity + 1 items")
channel_stale_getter = _channel(GetGate, channel.StaleGetterChannel, "channel keeping cancelled gets queued")
channel_drop_on_close = _channel(PutGate, channel.DropOnCloseChannel, "channel dropping its buffer on close")

# -- watchdog ------------------------------------------------------------------------------------
PERIOD_MS, RESTARTS = 300, 2


class WatchGate:
    def __init__(self, clock: IReactorTime, cls: type = watchdog.Watchdog) -> None:
        self.dog = cls(clock, PERIOD_MS / 1000, RESTARTS)
        self.retired: List[Callable[[], None]] = []

    def submit(self, job: Callable[[], Any]) -> "defer.Deferred[Any]":
        return self.dog.watch(lambda kick: self._incarnation(job, kick))

    def _incarnation(self, job: Callable[[], Any], kick: Callable[[], None]) -> "defer.Deferred[Any]":
        d = defer.maybeDeferred(job)

        def retire(outcome: Any) -> Any:
            self.retired.append(kick)
            return outcome

        return d.addBoth(retire)

    def kick_retired(self) -> None:
        """A task whose heartbeat outlives its cancellation: every retired incarnation kicks."""
        for kick in list(self.retired):
            kick()

    def stop(self) -> None:
        self.dog.stop()


def _watchdog(cls: type, description: str) -> Target:
    return Target(build=lambda clock: WatchGate(clock, cls), retries=RESTARTS, backoff_ms=(0, 0),
                  timeout_ms=PERIOD_MS, timeout_error=watchdog.TaskFailed,
                  rejects=(watchdog.WatchdogStopped,), stop_cancels_timers=True,
                  operations={"kick_retired": Operation(lambda s: s.kick_retired())},
                  description=description)


watchdog_ok = _watchdog(watchdog.Watchdog, "watchdog restarting silent tasks (round 12)")
watchdog_extra_restart = _watchdog(watchdog.ExtraRestartWatchdog, "watchdog restarting once too often")
watchdog_stale_kick = _watchdog(watchdog.StaleKickWatchdog, "watchdog fed by retired incarnations")
watchdog_lingering_timer = _watchdog(watchdog.LingeringTimerWatchdog, "watchdog leaving a finished task's timer")

# -- coalescer -----------------------------------------------------------------------------------
KEYS, MAX_WAIT_Q_MS, MAX_SIZE, CALL_TIMEOUT_MS = 3, 100, 3, 500


class CoalescerGate:
    def __init__(self, clock: IReactorTime, cls: type = coalescer.RequestCoalescer) -> None:
        self.coalescer = cls(clock, self._upstream, MAX_WAIT_Q_MS / 1000, MAX_SIZE, CALL_TIMEOUT_MS / 1000)
        self.pending: Dict[Any, List[List[Any]]] = {}
        self.batches: List[List[int]] = []  # the job ids waiting on each upstream call
        self.empty_calls: List[Any] = []  # keys of upstream calls made with no caller waiting

    def submit(self, job: Any, key: Any) -> "defer.Deferred[Any]":
        entry: List[Any] = [job, None]
        self.pending.setdefault(key, []).append(entry)
        d = self.coalescer.request(key)
        entry[1] = d
        return d

    def _upstream(self, key: Any) -> "defer.Deferred[Any]":
        entries, self.pending[key] = self.pending.get(key, []), []
        live = [job for job, d in entries if d is None or not d.called]
        if not live:
            self.empty_calls.append(key)
            return defer.succeed(None)
        self.batches.append([job.id for job in live])
        return defer.maybeDeferred(live[0])


def batch_within_max_size(run: Run) -> None:
    for batch in run.subject.batches:
        assert len(batch) <= MAX_SIZE, f"one upstream call served {len(batch)} callers (jobs {batch}); max_size is {MAX_SIZE}"


def no_upstream_call_without_caller(run: Run) -> None:
    assert not run.subject.empty_calls, f"upstream called for key(s) {run.subject.empty_calls} with no caller waiting"


def _coalescer(cls: type, description: str, menu: Optional[Dict[str, Any]] = None) -> Target:
    return Target(menu=menu, build=lambda clock: CoalescerGate(clock, cls), keys=KEYS, shared=True, key_limit=math.inf,
                  cancellable="abandon",
                  timeout_ms=CALL_TIMEOUT_MS, timeout_error=coalescer.UpstreamTimeout,
                  submit=lambda s, job, priority: s.submit(job, job.key),
                  invariants=(batch_within_max_size, no_upstream_call_without_caller), description=description)


coalescer_ok = _coalescer(coalescer.RequestCoalescer, "request coalescer (round 12)")
coalescer_oversize = _coalescer(coalescer.OversizeCoalescer, "coalescer taking max_size + 1 callers")
coalescer_cancel_all = _coalescer(coalescer.CancelAllCoalescer, "coalescer cancelling everyone on one cancel")
coalescer_double_send = _coalescer(coalescer.DoubleSendCoalescer, "coalescer sending a full batch twice")
# Finding 1's workaround for a long campaign: no caller cancels (the call timeout still cancels work).
coalescer_ok_uncancelled = _coalescer(coalescer.RequestCoalescer, "request coalescer, no caller cancels",
                                      menu={"cancels": False})


# -- what I wanted to declare for a watchdog whose tasks kick (review 12, finding 2) ----------------
class KickedWatchGate(WatchGate):
    """A watch whose live incarnations kick through an operation: each kick restarts its deadline."""

    def __init__(self, clock: IReactorTime, cls: type = watchdog.Watchdog) -> None:
        super().__init__(clock, cls)
        self.live: List[List[Any]] = []

    def _incarnation(self, job: Any, kick: Callable[[], None]) -> "defer.Deferred[Any]":
        entry = [job, kick]
        self.live.append(entry)

        def retire(outcome: Any) -> Any:
            self.live.remove(entry)
            return outcome

        return defer.maybeDeferred(job).addBoth(retire)

    def kick_live(self) -> None:
        """Every running task reports progress: the watchdog's silence deadline starts again."""
        for job, kick in list(self.live):
            job.restart_timeout()
            kick()


def watchdog_kicked() -> Target:
    """The declaration a kicking watchdog needs: each attempt's deadline restarted by its kicks, and
    at most RESTARTS restarts. Refused today (timeout_from="glue" excludes retries): finding 2."""
    return Target(build=KickedWatchGate, retries=RESTARTS, backoff_ms=(0, 0), timeout_ms=PERIOD_MS,
                  timeout_from="glue", timeout_error=watchdog.TaskFailed, rejects=(watchdog.WatchdogStopped,),
                  operations={"kick_live": Operation(lambda s: s.kick_live())},
                  description="watchdog whose tasks kick")

# -- probing: a limiter that never wakes its waiters (review 12, finding 3) -------------------------
limiter_lazy_wake = _limiter(limiter.LazyWakeLimiter, "limiter whose freed places wake no waiter")
# Finding 3: a max wait shorter than the window (fail fast when the window is full).
limiter_short_wait = _limiter(limiter.SlidingWindowLimiter, "limiter, max wait 50ms < window 100ms", max_wait_ms=50)
