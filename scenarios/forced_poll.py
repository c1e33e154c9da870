"""A poller that can be told to poll now: ``time.on_demand`` both ways, without third-party code.

``forced_poller`` polls every ``INTERVAL_MS`` on a ``callLater`` chain (a tick
finding a poll still running skips it) and has a ``force()`` operation, declared
``Operation(calls_now=True)``: a force polls at once, restarting the interval
from then; a force while a poll runs is remembered, and the poll it asks for
starts as soon as the running one ends (forces while it waits coalesce into
one). A force after ``stop()`` is ignored. It keeps the promise of buildbot's
``Poller.__call__`` ("Force a call to the decorated method now. If the decorated
method is currently running, another call will begin as soon as it completes"),
which ``scenarios.thirdparty.buildbot_utils:polled_forced`` states on the real
class.

``forced_poller_skipping`` is the natural shortcut: a force while a poll runs is
dropped ("it is polling already"), so the caller's fresh poll waits for the next
tick. Caught by: ``time.on_demand``.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime

from harness import Operation, Target

from . import Scenario
from .silent_loops import RearmingLoop

#: The poller's interval: long enough that a force's poll is told apart from the periodic one.
INTERVAL_MS = 500


class ForcedPoller(RearmingLoop):
    """Polls every ``INTERVAL_MS``; ``force()`` polls now, or right after the poll running then."""

    interval_s = INTERVAL_MS / 1000
    pending = False

    def _arm(self) -> None:
        self.timer = self.clock.callLater(self.interval_s, self._tick)

    def force(self) -> None:
        if not self.running:
            return
        if self.busy:
            self.pending = True
            return
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self._call()
        self._arm()

    def _done(self, _: Any) -> None:
        super()._done(_)
        if self.pending and self.running:
            self.pending = False
            self._call()


class ForcedPollerSkipping(ForcedPoller):
    """BUG: a force while a poll runs is dropped ("it is polling already"): the poll it asked for
    waits for the next tick, up to a whole interval late. Caught by: ``time.on_demand``."""

    def force(self) -> None:
        if self.busy:
            return  # BUG: the poll the caller asked for is owed right after this one
        super().force()


def _forced(build: Callable[[IReactorTime], ForcedPoller], description: str) -> Target:
    return Target(
        build=build,
        kind="periodic",
        interval_ms=INTERVAL_MS,
        operations={"force": Operation(lambda subject: subject.force(), calls_now=True)},
        description=description,
    )


forced_poller = _forced(ForcedPoller, "callLater poller with force(): a poll now, or right after the running one")
forced_poller_skipping = _forced(ForcedPollerSkipping, "force() dropped while a poll runs: the poll waits for the next tick")

SCENARIOS = (
    Scenario(
        "scenarios.forced_poll:forced_poller",
        "pass",
        "polls every 500ms; force() polls now, or as soon as the running poll ends (forces coalesce)",
        "callLater",
    ),
    Scenario(
        "scenarios.forced_poll:forced_poller_skipping",
        "time.on_demand",
        "force() is dropped while a poll runs: the poll asked for waits up to a whole interval for the next tick",
        "callLater",
    ),
)
