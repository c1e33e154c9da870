"""A debounced saver with a max-wait.

``change(value)`` records the latest value. The value is saved (``save(value) -> Deferred``) on the
trailing edge, after ``quiet`` seconds without a change, but never later than ``max_wait`` seconds
after the first unsaved change. ``flush()`` saves now and fires when everything changed so far is
saved. ``stop()`` flushes, refuses further changes, and fires when the last save is done.

At most one save runs at a time; changes made while a save runs are saved after it (at once, if
their quiet or max-wait ran out while it ran). A failed save keeps the value dirty: the next change
or flush saves it again (no retry timer of its own); ``flush()`` fails with the save's error.

Time is kept by two timers (the quiet one, reset by every change, and the max-wait one, armed by
the first unsaved change and never moved), never by subtracting ``clock.seconds()`` readings.
(Phase 2: the first version computed the max-wait from ``seconds()`` readings and re-armed one
timer; a wall-clock jump moves such a deadline.)
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

_NOTHING = object()


class SaverStopped(Exception):
    """change() after stop()."""


class DebouncedSaver:
    """Debounces ``change()`` calls into ``save()`` calls."""

    def __init__(self, clock: IReactorTime, save: Callable[[Any], Deferred[Any]],
                 quiet: float, max_wait: float) -> None:
        if not 0 < quiet <= max_wait:
            raise ValueError("need 0 < quiet <= max_wait")
        self.clock = clock
        self._save = save
        self.quiet = quiet
        self.max_wait = max_wait
        self._pending: Any = _NOTHING  # latest unsaved value
        self._quiet_timer: IDelayedCall | None = None
        self._max_timer: IDelayedCall | None = None
        self._due = False  # a timer fired while a save ran: save again as soon as it ends
        self._saving: Deferred[Any] | None = None
        self._stopped = False
        self.saves_started = 0
        self.saved: list[Any] = []  # values saved, in order (for tests)

    def change(self, value: Any) -> None:
        if self._stopped:
            raise SaverStopped("change() after stop()")
        self._pending = value
        self._arm()

    def flush(self) -> Deferred[None]:
        """Save now; fires when every change made so far is saved (fails if that save fails)."""
        self._cancel_timers()
        if self._saving is not None:
            # wait for the running save, then save whatever changed meanwhile
            d: Deferred[None] = Deferred()
            self._saving.addBoth(lambda r: (self._after_running(d), r)[1])
            return d
        if self._pending is _NOTHING:
            return succeed(None)
        return self._save_now()

    def stop(self) -> Deferred[None]:
        self._stopped = True
        return self.flush()

    # -- internals --------------------------------------------------------------------------
    def _after_running(self, d: Deferred[None]) -> None:
        self.flush().chainDeferred(d)

    def _arm(self) -> None:
        if self._quiet_timer is not None and self._quiet_timer.active():
            self._quiet_timer.cancel()
        self._quiet_timer = self.clock.callLater(self.quiet, self._fire)
        if self._max_timer is None:
            self._max_timer = self.clock.callLater(self.max_wait, self._fire)

    def _fire(self) -> None:
        self._cancel_timers()
        if self._saving is not None:
            self._due = True  # the running save's end saves at once
            return
        if self._pending is not _NOTHING:
            self._save_now().addErrback(lambda _f: None)

    def _save_now(self) -> Deferred[None]:
        value, self._pending = self._pending, _NOTHING
        self._due = False
        self.saves_started += 1
        saving = self._save(value)
        self._saving = saving
        result: Deferred[None] = Deferred()

        def done(r: Any) -> Any:
            self._saving = None
            newer = self._pending is not _NOTHING  # changed while this save ran
            if isinstance(r, Failure):
                if not newer:  # keep the failed value dirty (saved by the next change or flush)
                    self._pending = value
                result.errback(r)
            else:
                self.saved.append(value)
                result.callback(None)
            if newer and self._due and self._saving is None and not self._stopped:
                self._fire()
            return None

        saving.addBoth(done)
        return result

    def _cancel_timers(self) -> None:
        for timer in (self._quiet_timer, self._max_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self._quiet_timer = self._max_timer = None


# -- buggy twins -----------------------------------------------------------------------------
class SaverNoMaxWait(DebouncedSaver):
    """BUG: the max-wait timer is never armed: every change pushes the trailing edge to
    now + quiet, so a steady stream of changes (each within ``quiet`` of the last) is never saved."""

    def _arm(self) -> None:
        if self._quiet_timer is not None and self._quiet_timer.active():
            self._quiet_timer.cancel()
        self._quiet_timer = self.clock.callLater(self.quiet, self._fire)


class SaverStopLeavesTimer(DebouncedSaver):
    """BUG: stop() saves directly instead of going through flush(), forgetting the timers; they
    stay pending after stop() and later fire a second save after stop() said all was saved."""

    def stop(self) -> Deferred[None]:
        self._stopped = True
        if self._saving is not None or self._pending is _NOTHING:
            return self.flush()
        return self._save_now()

    def _fire(self) -> None:
        self._cancel_timers()
        if self._saving is not None:
            self._due = True
            return
        self._save_now().addErrback(lambda _f: None)  # no check that anything is pending


class SaverOverlappingSaves(DebouncedSaver):
    """BUG: flush() does not wait for a running save; it starts a second save at once, so two
    saves run concurrently and may land out of order (an older value overwriting a newer one)."""

    def flush(self) -> Deferred[None]:
        self._cancel_timers()
        if self._pending is _NOTHING:
            return succeed(None) if self._saving is None else _after(self._saving)
        return self._save_now()


def _after(d: Deferred[Any]) -> Deferred[None]:
    out: Deferred[None] = Deferred()
    d.addBoth(lambda r: (out.callback(None), r)[1])
    return out
