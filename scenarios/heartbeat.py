"""Heartbeats: correct ones on ``task.LoopingCall``, and four whose ``stop()`` leaves something running.

The promise: the beat function (supplied by the harness) is called every
``INTERVAL_MS``, never sooner, never overlapping; a failed beat is reported
(here through the Deferred that ``start`` returns); after ``stop()`` no beat
is sent and nothing of the heartbeat is left scheduled or running.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

INTERVAL_MS = 100
#: How often the watchdog checks that beats are still being sent.
WATCHDOG_MS = 1_000

log = Logger()


class Heartbeat:
    """Beats every interval with ``task.LoopingCall``, the idiomatic way.

    ``start`` hands the loop's Deferred to its caller, which is told when a
    beat fails and the loop ends (here the harness is that caller);
    ``stop()`` stops the loop.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        self.clock = clock
        self.interval = interval_ms / 1000
        self._loop: task.LoopingCall | None = None

    def start(self, beat: Callable[[], Any]) -> defer.Deferred[Any]:
        self._loop = task.LoopingCall(beat)
        self._loop.clock = self.clock
        return self._loop.start(self.interval)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()


class ZombieHeartbeat:
    """A hand-rolled heartbeat that waits for each beat, and outlives ``stop()``.

    BUG: the next beat is scheduled when the current one finishes, so beats
    never overlap, and ``stop()`` cancels the pending DelayedCall. But a beat
    in flight when ``stop()`` is called has no pending call to cancel; when
    it finishes it schedules the next beat anyway (no "still running?"
    check), and the heartbeat goes on for ever. Caught by: ``time.after_stop``.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        self.clock = clock
        self.interval = interval_ms / 1000
        self._beat: Callable[[], Any] | None = None
        self._call: IDelayedCall | None = None
        self.running = False

    def start(self, beat: Callable[[], Any]) -> None:
        self._beat = beat
        self.running = True
        self._send()

    def _send(self) -> None:
        self._call = None
        d = defer.maybeDeferred(self._beat)
        d.addErrback(lambda failure: log.failure("heartbeat failed", failure, level=LogLevel.error))
        d.addCallback(lambda _: self._schedule())

    def _schedule(self) -> None:
        self._call = self.clock.callLater(self.interval, self._send)

    def stop(self) -> None:
        self.running = False
        if self._call is not None and self._call.active():
            self._call.cancel()


class WatchdogHeartbeat(Heartbeat):
    """A ``LoopingCall`` heartbeat with a watchdog that ``stop()`` forgets.

    BUG: beside the beat loop, a watchdog ``callLater`` re-arms itself every
    second and warns when no beat went out since its last look. ``stop()``
    stops the beat loop but never cancels the watchdog, which keeps waking
    the reactor (and warning) for ever. Caught by: ``leaks.calls``.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(clock, interval_ms)
        self.beats = 0
        self._seen = 0
        self._watchdog: IDelayedCall | None = None

    def start(self, beat: Callable[[], Any]) -> defer.Deferred[Any]:
        def counted() -> Any:
            self.beats += 1
            return beat()

        self._watchdog = self.clock.callLater(WATCHDOG_MS / 1000, self._watch)
        return super().start(counted)

    def _watch(self) -> None:
        if self.beats == self._seen:
            log.warn("no heartbeat in {seconds}s", seconds=WATCHDOG_MS / 1000)
        self._seen = self.beats
        self._watchdog = self.clock.callLater(WATCHDOG_MS / 1000, self._watch)


class QueuedHeartbeat:
    """Builds beats on a ticker and sends them from a queue, and leaves the sender running.

    BUG: a ticker ``LoopingCall`` calls the beat function every interval and
    puts what it returns on a ``DeferredQueue``; a sender ``LoopingCall``
    (interval 0: "as fast as beats come") takes them off and sends them.
    ``stop()`` stops the ticker but not the sender, which stays blocked on
    ``queue.get()`` for ever: no DelayedCall is pending, yet the loop still
    runs and holds the queue. Caught by: ``leaks.loops``.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        self.clock = clock
        self.interval = interval_ms / 1000
        self.outbox: defer.DeferredQueue[Any] = defer.DeferredQueue()
        self.sent: list[Any] = []
        self._ticker: task.LoopingCall | None = None
        self._sender: task.LoopingCall | None = None

    def start(self, beat: Callable[[], Any]) -> defer.Deferred[Any]:
        def tick() -> defer.Deferred[Any]:
            return defer.maybeDeferred(beat).addCallback(self.outbox.put)

        self._sender = task.LoopingCall(self._send_next)
        self._sender.clock = self.clock
        self._sender.start(0).addErrback(self._send_failed)
        self._ticker = task.LoopingCall(tick)
        self._ticker.clock = self.clock
        return self._ticker.start(self.interval)

    def _send_next(self) -> defer.Deferred[Any]:
        return self.outbox.get().addCallback(self.sent.append)

    @staticmethod
    def _send_failed(failure: Failure) -> None:
        log.failure("heartbeat sender failed", failure, level=LogLevel.error)

    def stop(self) -> None:
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()


class CancellingHeartbeat(Heartbeat):
    """A ``LoopingCall`` heartbeat whose ``stop()`` also cancels the beat in flight.

    ``LoopingCall.stop()`` lets a call in flight finish; this heartbeat
    promises more (``stop_cancels_work=True``): it keeps the beat's Deferred
    and cancels it in ``stop()``. The loop's Deferred then fails with the
    cancel, which, once stopped, is the end asked for, not an error.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(clock, interval_ms)
        self._in_flight: defer.Deferred[Any] | None = None
        self._stopping = False

    def start(self, beat: Callable[[], Any]) -> defer.Deferred[Any]:
        def tracked() -> defer.Deferred[Any]:
            d = defer.maybeDeferred(beat)
            self._in_flight = d
            d.addBoth(self._landed, d)
            return d

        return super().start(tracked).addErrback(self._ended)

    def _landed(self, result: Any, d: defer.Deferred[Any]) -> Any:
        if self._in_flight is d:
            self._in_flight = None
        return result

    def _ended(self, failure: Failure) -> None:
        if not self._stopping:
            return failure  # type: ignore[return-value]  # a failed beat: the caller is told
        failure.trap(defer.CancelledError)
        return None

    def stop(self) -> None:
        self._stopping = True
        super().stop()
        if self._in_flight is not None:
            self._in_flight.cancel()


class InFlightHeartbeat(Heartbeat):
    """The ``LoopingCall`` heartbeat, declared as cancelling the beat in flight at ``stop()``.

    BUG: its target declares ``stop_cancels_work=True``, taking
    ``LoopingCall.stop()`` to cancel the call in flight; it does not, it lets
    it finish: a beat that hangs is left in flight for ever after ``stop()``.
    Caught by: ``leaks.work``.
    """


def _periodic(build: Callable[[IReactorTime], Any], description: str, **promises: Any) -> Target:
    return Target(build=build, kind="periodic", interval_ms=INTERVAL_MS, description=description, **promises)


heartbeat = _periodic(Heartbeat, "heartbeat on LoopingCall; the start Deferred reports a failed beat")
zombie_heartbeat = _periodic(ZombieHeartbeat, "callLater heartbeat that reschedules a beat in flight at stop()")
watchdog_heartbeat = _periodic(WatchdogHeartbeat, "LoopingCall heartbeat whose watchdog callLater outlives stop()")
queued_heartbeat = _periodic(QueuedHeartbeat, "ticker and sender LoopingCalls; stop() leaves the sender running")
cancelling_heartbeat = _periodic(
    CancellingHeartbeat, "LoopingCall heartbeat whose stop() cancels the beat in flight", stop_cancels_work=True
)
in_flight_heartbeat = _periodic(
    InFlightHeartbeat, "LoopingCall heartbeat declaring stop_cancels_work; LoopingCall.stop() lets the beat run on",
    stop_cancels_work=True,
)

SCENARIOS = (
    Scenario(
        "scenarios.heartbeat:heartbeat",
        "pass",
        "beats every 100ms; a failed beat fails the Deferred start() returns; stop() stops the loop",
        "LoopingCall",
    ),
    Scenario(
        "scenarios.heartbeat:zombie_heartbeat",
        "time.after_stop",
        "a beat in flight at stop() schedules the next one when it finishes: beats go on after stop()",
        "callLater",
    ),
    Scenario(
        "scenarios.heartbeat:watchdog_heartbeat",
        "leaks.calls",
        "stop() stops the beat loop but not the self-re-arming watchdog callLater",
        "callLater",
    ),
    Scenario(
        "scenarios.heartbeat:queued_heartbeat",
        "leaks.loops",
        "stop() stops the ticker LoopingCall; the sender LoopingCall stays blocked on DeferredQueue.get()",
        "LoopingCall",
    ),
    Scenario(
        "scenarios.heartbeat:cancelling_heartbeat",
        "pass",
        "declares stop_cancels_work: stop() stops the loop and cancels the beat in flight",
        "LoopingCall",
    ),
    Scenario(
        "scenarios.heartbeat:in_flight_heartbeat",
        "leaks.work",
        "declares stop_cancels_work, but LoopingCall.stop() lets a beat in flight run on past stop()",
        "LoopingCall",
    ),
)
