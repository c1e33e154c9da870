"""A debounced saver with a max-wait.

``change(value)`` records the latest value. The value is saved (``save(value) -> Deferred``) on the
trailing edge, after ``quiet`` seconds without a change, but never later than ``max_wait`` seconds
after the first unsaved change. ``flush()`` saves now and fires when everything changed so far is
saved. ``stop()`` flushes, refuses further changes, and fires when the last save is done.

At most one save runs at a time; changes made while a save runs are saved after it. A failed save
keeps the value dirty: the next change or flush saves it again (no retry timer of its own);
``flush()`` fails with the save's error.
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
        self._first_change: float | None = None
        self._timer: IDelayedCall | None = None
        self._saving: Deferred[Any] | None = None
        self._stopped = False
        self.saves_started = 0
        self.saved: list[Any] = []  # values saved, in order (for tests)

    def change(self, value: Any) -> None:
        if self._stopped:
            raise SaverStopped("change() after stop()")
        now = self.clock.seconds()
        self._pending = value
        if self._first_change is None:
            self._first_change = now
        self._arm(now)

    def flush(self) -> Deferred[None]:
        """Save now; fires when every change made so far is saved (fails if that save fails)."""
        self._cancel_timer()
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

    def _arm(self, now: float) -> None:
        assert self._first_change is not None
        at = min(now + self.quiet, self._first_change + self.max_wait)
        self._cancel_timer()
        self._timer = self.clock.callLater(max(0.0, at - now), self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._saving is not None:
            return  # the running save's completion re-arms
        self._save_now().addErrback(lambda _f: None)

    def _save_now(self) -> Deferred[None]:
        value, self._pending = self._pending, _NOTHING
        self._first_change = None
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
            if newer and self._timer is None and not self._stopped:
                self._arm(self.clock.seconds())
            return None

        saving.addBoth(done)
        return result

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


# -- buggy twins -----------------------------------------------------------------------------
class SaverNoMaxWait(DebouncedSaver):
    """BUG: every change pushes the trailing edge to now + quiet, ignoring max_wait, so a steady
    stream of changes (each within ``quiet`` of the last) is never saved."""

    def _arm(self, now: float) -> None:
        self._cancel_timer()
        self._timer = self.clock.callLater(self.quiet, self._fire)


class SaverStopLeavesTimer(DebouncedSaver):
    """BUG: stop() saves directly instead of going through flush(), forgetting the trailing timer;
    it stays pending after stop() and later fires a second save (of the empty sentinel) after
    stop() said everything was saved."""

    def stop(self) -> Deferred[None]:
        self._stopped = True
        if self._saving is not None or self._pending is _NOTHING:
            return self.flush()
        return self._save_now()


class SaverOverlappingSaves(DebouncedSaver):
    """BUG: flush() does not wait for a running save; it starts a second save at once, so two
    saves run concurrently and may land out of order (an older value overwriting a newer one)."""

    def flush(self) -> Deferred[None]:
        self._cancel_timer()
        if self._pending is _NOTHING:
            return succeed(None) if self._saving is None else _after(self._saving)
        return self._save_now()


def _after(d: Deferred[Any]) -> Deferred[None]:
    out: Deferred[None] = Deferred()
    d.addBoth(lambda r: (out.callback(None), r)[1])
    return out
