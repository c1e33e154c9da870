"""Cooldown gates: a gate that refuses work for a while after a failure, and one that stays shut.

The promise both declare: every job submitted while the gate is open runs at
once (no limit) and its caller gets the job's outcome; a job that fails (or
is cancelled) shuts the gate for ``COOLDOWN_MS``, during which jobs are
refused with :class:`GateShut` without running (``rejects``). Refusals are
legitimate only then: ``rejects_only_while=within_cooldown`` (a refusal
within ``COOLDOWN_MS``, plus the clock's lateness, after an attempt failed or
was cancelled), so a gate that never opens again is caught by
``errors.rejects``; ``rejects`` alone would excuse it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import JobRecord, RunView, Target

from . import Scenario

COOLDOWN_MS = 100


class GateShut(Exception):
    """The gate refused the job without running it: it is cooling down after a failure."""


class CooldownGate:
    """Runs each job at once while open; a failure shuts it for ``COOLDOWN_MS`` (a ``callLater``).

    A failure while shut (a job admitted before) restarts the cooldown.
    ``stop()`` cancels the timer.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.shut = False
        self._reopen: IDelayedCall | None = None

    def submit(self, job: Any) -> defer.Deferred[Any]:
        if self.shut:
            return defer.fail(GateShut("cooling down"))
        return defer.maybeDeferred(job).addCallbacks(self._succeeded, self._failed)

    def _succeeded(self, result: Any) -> Any:
        return result

    def _failed(self, failure: Failure) -> Failure:
        self._shut()
        return failure

    def _shut(self) -> None:
        self.shut = True
        if self._reopen is not None and self._reopen.active():
            self._reopen.cancel()
        self._reopen = self.clock.callLater(COOLDOWN_MS / 1000, self._open)

    def _open(self) -> None:
        self._reopen = None
        self.shut = False

    def stop(self) -> None:
        if self._reopen is not None and self._reopen.active():
            self._reopen.cancel()
        self._reopen = None


class StickyGate(CooldownGate):
    """Shuts for good after two failures in a row.

    BUG: the second failure in a row (no success between) was meant to
    lengthen the cooldown; it sets ``shut`` without arming the timer that
    opens the gate again, so every later job is refused. Caught by:
    ``errors.rejects``.
    """

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__(clock)
        self.in_a_row = 0

    def _succeeded(self, result: Any) -> Any:
        self.in_a_row = 0
        return result

    def _failed(self, failure: Failure) -> Failure:
        self.in_a_row += 1
        if self.in_a_row >= 2:
            if self._reopen is not None and self._reopen.active():
                self._reopen.cancel()
            self.shut = True  # BUG: no timer opens the gate again
            return failure
        return super()._failed(failure)


def within_cooldown(view: RunView, job: JobRecord, t_us: int) -> bool:
    """A refusal is legitimate within the cooldown (plus the clock's lateness) after an attempt failed or was
    cancelled: the gate may be shut then, and only then."""
    cooldown_us = COOLDOWN_MS * 1000 + view.late_us
    return any(
        a.outcome in ("failed", "cancelled") and a.end_us is not None and a.end_us <= t_us <= a.end_us + cooldown_us
        for a in view.attempts()
    )


def _gate(build: Any, description: str) -> Target:
    return Target(build=build, rejects=(GateShut,), rejects_only_while=within_cooldown, description=description)


cooldown_gate = _gate(CooldownGate, "refuses jobs for 100ms after a failure (rejects_only_while says when)")
sticky_gate = _gate(StickyGate, "a second failure in a row shuts the gate without the timer that opens it")

SCENARIOS = (
    Scenario(
        "scenarios.cooldown_gate:cooldown_gate",
        "pass",
        "runs jobs at once; a failure shuts it for 100ms (GateShut), declared with rejects_only_while",
        "callLater",
    ),
    Scenario(
        "scenarios.cooldown_gate:sticky_gate",
        "errors.rejects",
        "a second failure in a row shuts the gate without re-arming the timer: every later job refused",
        "callLater",
    ),
)
