"""A circuit breaker: after repeated failures it rejects calls, then lets one trial call through.

Closed, calls run; after ``THRESHOLD`` failures in a row the breaker opens
and rejects every call at once with ``CircuitOpen``; ``COOLDOWN_MS`` later it
is half-open and admits a single trial call: its success closes the breaker,
its failure opens it again. ``trip`` and ``reset`` are target operations
(an operator forcing it open or closed). No built-in invariant knows what
"half-open" means, so the promise is a target invariant, written on the
documented run API (``harness.RunView``) in a few lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import Operation, Run, Target

from . import Scenario

THRESHOLD = 2
COOLDOWN_MS = 100


class CircuitOpen(Exception):
    """The breaker rejected the call without running it."""


def one_trial_at_a_time(run: Run) -> None:
    """After THRESHOLD failures in a row, trial calls start COOLDOWN_MS after the last failure, one at a time."""
    streak, last_failure, trials = 0, 0, set()
    for step in run.view.steps():
        a = step.attempt
        if step.kind == "call" and step.call.operation == "reset" and step.call.raised is None:
            streak = 0
        elif step.kind == "start" and streak >= THRESHOLD:
            assert a.start_us >= last_failure + COOLDOWN_MS * 1000, f"job {a.job} ran while the breaker was open"
            assert not trials, f"job {a.job} started as a trial call beside job {min(trials)}"
            trials.add(a.job)
        elif step.kind == "end":
            trials.discard(a.job)
            if a.outcome in ("failed", "finished"):
                streak, last_failure = (streak + 1, a.end_us) if a.outcome == "failed" else (0, last_failure)


class CircuitBreaker:
    """Closed, open, half-open; the cooldown is a ``callLater``, so wall-clock jumps cannot shorten it."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.state = "closed"
        self.failures = 0
        self.trial = False
        self._timer: IDelayedCall | None = None

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self.state == "open" or (self.state == "half-open" and self._trial_running()):
            return defer.fail(CircuitOpen(f"circuit {self.state}"))
        trial = self.state == "half-open"
        self._admit(trial)
        return defer.maybeDeferred(job).addBoth(self._record, trial)

    def _trial_running(self) -> bool:
        return self.trial

    def _admit(self, trial: bool) -> None:
        if trial:
            self.trial = True

    def _record(self, outcome: Any, trial: bool) -> Any:
        if trial:
            self.trial = False
        if isinstance(outcome, Failure):
            if outcome.check(defer.CancelledError):
                return outcome  # the caller gave up: no verdict on the service
            self.failures += 1
            if self.state == "half-open" or self.failures >= THRESHOLD:
                self.trip()
        else:
            self.failures = 0
            if self.state == "half-open":
                self.reset()
        return outcome

    def trip(self) -> None:
        """Open the breaker now (again): reject calls for the next COOLDOWN_MS."""
        self.state = "open"
        self._cancel_timer()
        self._timer = self.clock.callLater(COOLDOWN_MS / 1000, self._half_open)

    def _half_open(self) -> None:
        self._timer = None
        self.state = "half-open"

    def reset(self) -> None:
        """Close the breaker now."""
        self._cancel_timer()
        self.state = "closed"
        self.failures = 0

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def stop(self) -> None:
        self._cancel_timer()


class OpenGateBreaker(CircuitBreaker):
    """Bug: half-open lets every call through, not one trial: a recovering service gets the whole load."""

    def _admit(self, trial: bool) -> None:
        pass  # "the next success closes it anyway"


class SwallowingTrialBreaker(CircuitBreaker):
    """Bug: when the trial call fails, the breaker re-opens but forgets to pass the failure on.

    The trial's caller gets ``None`` as if the call had succeeded.
    """

    def _record(self, outcome: Any, trial: bool) -> Any:
        result = super()._record(outcome, trial)
        if trial and isinstance(outcome, Failure) and not outcome.check(defer.CancelledError) and self.state == "open":
            return None  # "handled: the breaker is open again"
        return result


def _breaker(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(
        build=build,
        rejects=(CircuitOpen,),
        operations={"trip": Operation(lambda b: b.trip()), "reset": Operation(lambda b: b.reset())},
        invariants=(one_trial_at_a_time,),
        description=description,
    )


circuit_breaker = _breaker(CircuitBreaker, f"opens after {THRESHOLD} failures, one trial call after {COOLDOWN_MS}ms")
open_gate_breaker = _breaker(OpenGateBreaker, "half-open admits every call, not one trial")
swallowing_trial_breaker = _breaker(SwallowingTrialBreaker, "a failed trial call re-opens the breaker and swallows the error")

SCENARIOS = (
    Scenario("scenarios.breaker:circuit_breaker", "pass", "a circuit breaker: closed, open, one trial call when half-open", "callLater"),
    Scenario("scenarios.breaker:open_gate_breaker", "user.one_trial_at_a_time", "half-open admits every call instead of one trial", "callLater"),
    Scenario(
        "scenarios.breaker:swallowing_trial_breaker",
        "errors.propagate",
        "a failed trial call re-opens the breaker but its caller gets None",
        "callLater",
    ),
)
