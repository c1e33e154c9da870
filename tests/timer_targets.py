"""Targets whose promise is about their own timers, judged by a user invariant on ``run.view.timers``.

``Flusher`` runs the jobs submitted to it in batches, once the submissions
pause: every submission (re)starts a 50 ms quiet timer, and when that timer
fires, the batch runs. ``ForgetfulFlusher`` restarts the quiet period by
setting a new timer without cancelling the old one: the first timer of a
burst still fires 50 ms after the first submission and runs the batch while
submissions are still coming. No built-in invariant holds a subject to a
quiet period; the user invariant of docs/run-api.md ("The subject's
timers"), ``one_quiet_timer``, does, from the timer view alone.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from harness import NOT_JUDGED, Run, Target, format_ms

QUIET_S = 0.05


class Flusher:
    """Runs the jobs submitted in a burst together, ``QUIET_S`` after the last submission."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.queue: list[tuple[Any, defer.Deferred[Any]]] = []
        self.timer: Any = None

    def submit(self, job: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.queue.append((job, d))
        self._restart()
        return d

    def _restart(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = self.clock.callLater(QUIET_S, self._flush)

    def _flush(self) -> None:
        batch, self.queue = self.queue, []
        for job, d in batch:
            defer.maybeDeferred(job).chainDeferred(d)

    def stop(self) -> None:
        """Run what is queued now (a last flush), and set no timer again."""
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self._flush()


class ForgetfulFlusher(Flusher):
    """Restarts the quiet period with a new timer, leaving the old one set: it still fires."""

    def _restart(self) -> None:
        self.timer = self.clock.callLater(QUIET_S, self._flush)


def one_quiet_timer(run: Run) -> object:
    """At most one flush timer is set at a time: a new one replaces (cancels) the one before."""
    flushes = run.view.timers_calling(Flusher._flush)
    if len(flushes) < 2:
        return NOT_JUDGED  # nothing was ever restarted
    for timer in flushes:
        still = [other for other in flushes if other.id != timer.id and other.pending_at(timer.set_index)]
        assert not still, (
            f"flush timer #{timer.id} was set at {format_ms(timer.set_us)} while #{still[0].id} "
            f"(set at {format_ms(still[0].set_us)}, due {format_ms(still[0].due_us)}) was still set"
        )
    return None


flusher = Target(build=Flusher, cancellable=False, invariants=(one_quiet_timer,))
forgetful_flusher = Target(build=ForgetfulFlusher, cancellable=False, invariants=(one_quiet_timer,))
