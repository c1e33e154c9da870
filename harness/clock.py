"""FaultClock: a ``task.Clock`` that behaves like a hostile production reactor.

Differences from ``task.Clock``, each one a fault real reactors have:

* **Ties.** Calls due at the same instant run in a seeded order: ``fifo``
  (insertion, what ``task.Clock`` does), ``lifo`` or ``shuffle``. A real
  reactor keeps a heap and promises no order.
* **Rounds.** As in ``ReactorBase.runUntilCurrent``, a call scheduled while due
  calls run (``callLater(0, ...)`` re-entrantly) runs in a later round of the
  same instant, never ahead of calls that were already due.
* **Wall-clock jumps.** ``seconds()`` reads a wall clock that the schedule can
  jump forward or back. Delayed calls are kept on monotonic virtual time, so
  code that relies on ``callLater`` delays is unaffected, while code that
  computes deadlines from ``seconds()`` readings sees the jump, as it would
  on a reactor whose ``seconds()`` is ``time.time()``.
* **Late firing.** With ``jitter``, each call fires late by a seeded amount
  up to ``jitter`` seconds, never early.
* **Escapes.** An exception raised by a scheduled call is handed to
  ``on_escape`` and the clock goes on, as a reactor logs and continues;
  ``task.Clock.advance`` would let it escape into the test.

It keeps every ``DelayedCall`` it created, for leak checks.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from twisted.internet import task
from twisted.internet.base import DelayedCall
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from .schedule import TIE_BREAKS

#: Rounds of same-instant calls after which the clock declares a livelock.
MAX_ROUNDS_PER_INSTANT = 10_000
#: How far ``seconds()`` moves on for each call the clock runs: far above
#: float rounding error, far below the microsecond resolution of due times.
DRIFT_PER_CALL = 1e-11


class Livelock(Exception):
    """Scheduled calls kept scheduling more calls at the same instant without end."""


class _FaultDelayedCall(DelayedCall):
    """A DelayedCall that carries its tie-break key, how late it fires, and its number (1, 2...)."""

    key: float = 0.0
    late: float = 0.0
    seq: int = 0

    def fires_at(self) -> float:
        return self.getTime() + self.late


def func_name(func: Any) -> str:
    """A deterministic, readable name for a function (no addresses, no ``<locals>``)."""
    name = getattr(func, "__qualname__", None) or type(func).__name__
    return name.rsplit("<locals>.", 1)[-1]


def call_name(call: DelayedCall) -> str:
    """The name of a delayed call's function."""
    return func_name(getattr(call, "func", None))


@implementer(IReactorTime)
class FaultClock(task.Clock):
    """An ``IReactorTime`` with seeded tie-breaks, wall-clock skew and reactor-like error handling.

    Example::

        clock = FaultClock(tie_break="lifo")
        clock.callLater(1, print, "a"); clock.callLater(1, print, "b")
        clock.advance(1)   # prints b, then a
    """

    def __init__(
        self,
        tie_break: str = "fifo",
        seed: int = 0,
        on_escape: Callable[[DelayedCall, BaseException], None] | None = None,
        jitter: float = 0.0,
    ) -> None:
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {', '.join(TIE_BREAKS)}, got {tie_break!r}")
        super().__init__()
        self.rightNow = 0.0
        self.skew = 0.0
        self.tie_break = tie_break
        self.jitter_us = round(jitter * 1_000_000)
        self._rng = random.Random(seed)
        self._seq = 0
        self.on_escape = on_escape
        #: Told ``("set" | "fire" | "cancel", call)`` for every delayed call, when set (the runner's timer events).
        self.on_timer: Callable[[str, _FaultDelayedCall], None] | None = None
        self.created: list[DelayedCall] = []
        self.fired = 0

    # -- IReactorTime -------------------------------------------------------

    def seconds(self) -> float:
        """The wall-clock reading: monotonic virtual time plus any jumps.

        Plus ``DRIFT_PER_CALL`` for every call run so far: a real clock moves
        on while the reactor works, so a call due on a boundary never reads a
        hair before it. Without the drift, float arithmetic on exact virtual
        times (``LoopingCall`` computes ``interval - (now - start) % interval``)
        can come out one ulp short of a boundary and reschedule the call at
        the same instant for ever.
        """
        return self.rightNow + self.skew + self.fired * DRIFT_PER_CALL

    def monotonic(self) -> float:
        """Virtual time that only moves forward; delayed calls are due on it."""
        return self.rightNow

    def callLater(self, delay: float, callable: Callable[..., Any], *args: object, **kw: object) -> IDelayedCall:
        # Due times are kept to the microsecond so that 0.1 + 0.2 is due at 0.3.
        due = round((self.rightNow + max(delay, 0)) * 1_000_000) / 1_000_000
        call = _FaultDelayedCall(due, callable, args, kw, self._cancel, lambda c: None, self.monotonic)
        self._seq += 1
        call.seq = self._seq
        if self.tie_break == "fifo":
            call.key = self._seq
        elif self.tie_break == "lifo":
            call.key = -self._seq
        else:
            call.key = self._rng.random()
        if self.jitter_us:
            call.late = self._rng.randint(0, self.jitter_us) / 1_000_000
        self.calls.append(call)
        self.created.append(call)
        if self.on_timer is not None:
            self.on_timer("set", call)
        return call

    def _cancel(self, call: _FaultDelayedCall) -> None:
        self.calls.remove(call)
        if self.on_timer is not None:
            self.on_timer("cancel", call)

    calls: list[_FaultDelayedCall]  # type: ignore[assignment]

    def getDelayedCalls(self) -> list[DelayedCall]:
        return list(self.calls)

    # -- driving ------------------------------------------------------------

    def jump(self, delta: float) -> None:
        """Move the wall clock by ``delta`` seconds (negative jumps backwards)."""
        self.skew += delta

    def next_due(self) -> float | None:
        """Monotonic time at which the earliest pending call fires, or None."""
        return min((c.fires_at() for c in self.calls), default=None)

    def advance(self, amount: float) -> None:
        """Move monotonic time forward by ``amount`` seconds and run every call now due."""
        self.advance_to(self.rightNow + amount)

    def advance_to(self, when: float) -> None:
        """Move monotonic time to ``when`` (never backwards) and run every call now due."""
        if when > self.rightNow:
            self.rightNow = when
        self.run_due()

    def run_due(self) -> None:
        """Run due calls in rounds until none is due; calls added meanwhile wait a round."""
        now = self.rightNow
        for _ in range(MAX_ROUNDS_PER_INSTANT):
            due = [c for c in self.calls if c.fires_at() <= now]
            if not due:
                return
            due.sort(key=_order)
            for call in due:
                if call.cancelled or call.called or call.fires_at() > now:
                    continue
                self.calls.remove(call)
                call.called = 1
                self.fired += 1
                if self.on_timer is not None:
                    self.on_timer("fire", call)
                try:
                    call.func(*call.args, **call.kw)
                except Exception as exc:  # a reactor logs and goes on
                    if self.on_escape is None:
                        raise
                    self.on_escape(call, exc)
        raise Livelock(f"more than {MAX_ROUNDS_PER_INSTANT} rounds of calls at t={now}s")


def _order(call: _FaultDelayedCall) -> tuple[float, float]:
    return (call.fires_at(), call.key)
