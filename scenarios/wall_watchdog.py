"""Heartbeats with a staleness watchdog that reads the wall clock: a jump makes a healthy beat look dead.

The promise is the heartbeat's (``scenarios.heartbeat``): the beat function
is called every ``INTERVAL_MS``, never sooner; after ``stop()`` nothing of
the heartbeat runs. Beats are fire-and-forget sends, so they may overlap
(``overlap=True``). Beside the beat loop, a watchdog looks every
``WATCHDOG_MS`` at how long ago the last beat went out, by ``seconds()``
readings: the wall clock. Normally the last beat is at most an interval old.
Only a forward wall-clock jump of more than ``STALE_MS`` between a beat and
the watchdog's next look (NTP stepping the clock, a suspended VM resuming)
makes it look stale; what the watchdog then does decides whether that is
harmless. Uniform random search needs tens to hundreds of examples to land
a large enough forward jump while the heartbeat runs.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel

from harness import Target

from . import Scenario

INTERVAL_MS = 100
#: How often the watchdog looks, and how stale the last beat may be before it reacts.
WATCHDOG_MS = 1_000
STALE_MS = 2 * WATCHDOG_MS

log = Logger()


class WatchedHeartbeat:
    """A ``LoopingCall`` heartbeat and a watchdog that warns when the last beat is stale.

    The watchdog only warns: a stale-looking beat is late or mis-measured,
    not dead (a dead loop fails the Deferred ``start`` returned). ``stop()``
    stops the loop and the watchdog.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        self.clock = clock
        self.interval = interval_ms / 1000
        self.last_beat = 0.0
        self._beat: Callable[[], Any] | None = None
        self._loops: list[task.LoopingCall] = []
        self._watchdog: IDelayedCall | None = None

    def start(self, beat: Callable[[], Any]) -> defer.Deferred[Any]:
        self._beat = beat
        done = self._start_loop()
        self._watchdog = self.clock.callLater(WATCHDOG_MS / 1000, self._watch)
        return done

    def _start_loop(self) -> defer.Deferred[Any]:
        loop = task.LoopingCall(self._send)
        loop.clock = self.clock
        self._loops.append(loop)
        return loop.start(self.interval)

    def _send(self) -> Any:
        self.last_beat = self.clock.seconds()
        assert self._beat is not None
        return self._beat()

    def _watch(self) -> None:
        if self.clock.seconds() - self.last_beat > STALE_MS / 1000:
            self._stale()
        self._watchdog = self.clock.callLater(WATCHDOG_MS / 1000, self._watch)

    def _stale(self) -> None:
        log.warn("heartbeat is late")

    def stop(self) -> None:
        for loop in self._loops:
            if loop.running:
                loop.stop()
        if self._watchdog is not None and self._watchdog.active():
            self._watchdog.cancel()


class RestartingHeartbeat(WatchedHeartbeat):
    """The watched heartbeat, but the watchdog "revives" a stale loop by starting a new one.

    BUG: a stale beat is taken for a dead loop, and a new ``LoopingCall`` is
    started without stopping the old one, which is only late. Two loops then
    beat, each every interval, so beats come twice as often (``stop()`` does
    stop both). It takes a forward wall-clock jump of more than ``STALE_MS``
    while the heartbeat runs. Caught by: ``time.early``. A beat that hangs
    looks stale too; a revived loop whose call fails then dies with its error
    only logged while the watchdog ticks on, which ``time.loop_died`` calls a
    silent death (also accepted).
    """

    def _stale(self) -> None:
        self._start_loop().addErrback(lambda failure: log.failure("revived heartbeat failed", failure, level=LogLevel.error))


def _periodic(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, kind="periodic", interval_ms=INTERVAL_MS, overlap=True, description=description)


watched_heartbeat = _periodic(WatchedHeartbeat, "LoopingCall heartbeat whose watchdog warns when the last beat is stale")
restarting_heartbeat = _periodic(
    RestartingHeartbeat, "LoopingCall heartbeat whose watchdog starts a second loop when the beat is only late"
)

SCENARIOS = (
    Scenario(
        "scenarios.wall_watchdog:watched_heartbeat",
        "pass",
        "beats every 100ms; a watchdog warns when the last beat looks stale by the wall clock, as after a jump",
        "LoopingCall",
    ),
    Scenario(
        "scenarios.wall_watchdog:restarting_heartbeat",
        "time.early",
        "a forward wall-clock jump makes the last beat look stale; the watchdog starts a second loop: beats twice as often",
        "LoopingCall, seconds()",
        # A beat that hangs also looks stale: each revived loop whose first call fails dies with its error only
        # logged while the watchdog ticks on, which time.loop_died calls a silent death (review 4, finding 3).
        also=("time.loop_died",),
    ),
)
