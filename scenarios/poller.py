"""Pollers: a correct one on ``task.LoopingCall``, and four that get periodic work wrong.

The promise every subject here declares: the poll function (supplied by the
harness) is called every ``INTERVAL_MS``, never sooner and never while the
previous poll still runs; a failed poll is reported (logged), and polling
goes on; after ``stop()`` the poll is never called again and nothing of the
poller is left scheduled.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from harness import Menu, Target

from . import Scenario

INTERVAL_MS = 100
#: How soon the eager poller polls again after a failure.
RETRY_MS = 20

log = Logger()


class LoopingPoller:
    """Polls every interval with ``task.LoopingCall``, the idiomatic way.

    ``LoopingCall`` waits for the poll's Deferred before scheduling the next
    call, so polls never overlap. It stops, and errbacks the Deferred that
    ``start`` returned, when a poll fails: the poller logs the failure with
    ``twisted.logger`` and starts a fresh loop, whose first poll comes one
    interval later. ``stop()`` stops the current loop.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        self.clock = clock
        self.interval = interval_ms / 1000
        self._poll: Callable[[], Any] | None = None
        self._loop: task.LoopingCall | None = None
        self._stopped = False

    def start(self, poll: Callable[[], Any]) -> None:
        self._poll = poll
        self._stopped = False
        self._run(now=True)

    def _run(self, now: bool) -> None:
        self._loop = task.LoopingCall(self._poll)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=now).addErrback(self._failed)

    def _failed(self, failure: Failure) -> None:
        log.failure("poll failed; polling again in {interval}s", failure, level=LogLevel.error, interval=self.interval)
        if not self._stopped:
            self._run(now=False)

    def stop(self) -> None:
        self._stopped = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()


class SilentPoller:
    """A ``LoopingCall`` whose errors are swallowed.

    BUG: ``loop.start(interval).addErrback(lambda f: None)``, written to keep
    "Unhandled error in Deferred" out of the logs. But ``LoopingCall`` stops
    for good when its function fails, and the only news of it, the failed
    Deferred, is thrown away: polling silently ends at the first error.
    Caught by: ``time.loop_died``.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        self.clock = clock
        self.interval = interval_ms / 1000
        self._loop: task.LoopingCall | None = None

    def start(self, poll: Callable[[], Any]) -> None:
        self._loop = task.LoopingCall(poll)
        self._loop.clock = self.clock
        self._loop.start(self.interval).addErrback(lambda failure: None)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()


class OverlappingPoller:
    """A hand-rolled ``callLater`` loop that does not wait for the poll.

    BUG: each tick schedules the next one with ``callLater(interval, ...)``
    and then starts the poll, never looking at the poll's Deferred. When a
    poll takes longer than the interval, the next one starts while it still
    runs, and slow polls pile up. (``LoopingCall`` waits for the Deferred.)
    Errors are logged; ``stop()`` cancels the pending tick.
    Caught by: ``time.overlap``.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        self.clock = clock
        self.interval = interval_ms / 1000
        self._poll: Callable[[], Any] | None = None
        self._call: IDelayedCall | None = None

    def start(self, poll: Callable[[], Any]) -> None:
        self._poll = poll
        self._tick()

    def _tick(self) -> None:
        self._call = self.clock.callLater(self.interval, self._tick)
        d = defer.maybeDeferred(self._poll)
        d.addErrback(lambda failure: log.failure("poll failed", failure, level=LogLevel.error))

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()


class EagerRetryPoller:
    """A hand-rolled poller that retries a failed poll right away.

    BUG: after a failed poll it polls again after ``RETRY_MS`` (20 ms) "to
    recover quickly", ignoring the promised interval: the backend it polls
    gets hit five times as often exactly when it is failing. Otherwise it is
    careful: it waits for each poll, logs errors, and ``stop()`` cancels the
    pending call. Caught by: ``time.early``.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        self.clock = clock
        self.interval = interval_ms / 1000
        self._poll: Callable[[], Any] | None = None
        self._call: IDelayedCall | None = None
        self._running = False

    def start(self, poll: Callable[[], Any]) -> None:
        self._poll = poll
        self._running = True
        self._tick()

    def _tick(self) -> None:
        self._call = None
        defer.maybeDeferred(self._poll).addCallbacks(self._polled, self._failed)

    def _polled(self, result: Any) -> None:
        self._schedule(self.interval)

    def _failed(self, failure: Failure) -> None:
        log.failure("poll failed; retrying in {retry}s", failure, level=LogLevel.error, retry=RETRY_MS / 1000)
        self._schedule(RETRY_MS / 1000)

    def _schedule(self, delay: float) -> None:
        if self._running:
            self._call = self.clock.callLater(delay, self._tick)

    def stop(self) -> None:
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()


class LostLoopPoller(LoopingPoller):
    """Restarts its ``LoopingCall`` after an error, but forgets the new one.

    BUG: like ``LoopingPoller`` it logs a failed poll and starts a fresh
    loop, but the restart is written as ``self._new_loop(now=False)`` and the
    new loop is never stored in ``self._loop``: ``stop()`` stops the first
    loop, already dead, and the restarted one polls on for ever.
    Caught by: ``time.after_stop`` (it also leaks the loop, reported later).
    """

    def start(self, poll: Callable[[], Any]) -> None:
        self._poll = poll
        self._stopped = False
        self._loop = self._new_loop(now=True)

    def _new_loop(self, now: bool) -> task.LoopingCall:
        loop = task.LoopingCall(self._poll)
        loop.clock = self.clock
        loop.start(self.interval, now=now).addErrback(self._failed)
        return loop

    def _failed(self, failure: Failure) -> None:
        log.failure("poll failed; polling again in {interval}s", failure, level=LogLevel.error, interval=self.interval)
        if not self._stopped:
            self._new_loop(now=False)


def _periodic(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, kind="periodic", interval_ms=INTERVAL_MS, description=description)


looping_poller = _periodic(LoopingPoller, "poller on LoopingCall that logs a failed poll and restarts")
silent_poller = _periodic(SilentPoller, "LoopingCall whose start Deferred's errors are swallowed")
overlapping_poller = _periodic(OverlappingPoller, "callLater poller that does not wait for the poll")
eager_retry_poller = _periodic(EagerRetryPoller, "poller that retries a failed poll after 20ms, not the interval")
lost_loop_poller = Target(
    build=LostLoopPoller,
    kind="periodic",
    interval_ms=INTERVAL_MS,
    # Polls that always finish: a restarted loop blocked on a poll that hangs for ever calls
    # nothing after stop(), and the same bug then shows only as a leaked loop (leaks.loops).
    menu=Menu(periodic=True, stops=True, max_then=3, job_kinds=("succeed", "immediate", "value", "fail", "raise")),
    description="poller that restarts after an error but stops only the first loop",
)

SCENARIOS = (
    Scenario(
        "scenarios.poller:looping_poller",
        "pass",
        "polls every 100ms; a failed poll is logged and polling restarts; stop() leaves nothing behind",
        "LoopingCall",
    ),
    Scenario(
        "scenarios.poller:silent_poller",
        "time.loop_died",
        "lc.start(...).addErrback(lambda f: None): the loop dies silently at the first failed poll",
        "LoopingCall",
    ),
    Scenario(
        "scenarios.poller:overlapping_poller",
        "time.overlap",
        "callLater(interval) before each poll, never waiting for it: slow polls overlap",
        "callLater",
    ),
    Scenario(
        "scenarios.poller:eager_retry_poller",
        "time.early",
        "a failed poll is retried after 20ms, sooner than the promised 100ms interval",
        "callLater",
    ),
    Scenario(
        "scenarios.poller:lost_loop_poller",
        "time.after_stop",
        "restart after an error makes a new LoopingCall that stop() does not know about",
        "LoopingCall",
    ),
)
