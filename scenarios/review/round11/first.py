"""My 'correct' components as first written, before the harness found their bugs (review page,
'What the harness found in my correct code'): kept so the finds stay reproducible from the CLI and
the tests can show the fixes fail on the old code."""

from __future__ import annotations

from typing import Any

from . import ordered, poller


class ExecutorTimeoutAbortedByCanceller(ordered.OrderedExecutor):
    """The timeout handler cancelled the work before delivering: a job canceller that raised
    stranded the reorder buffer (time.timeout)."""

    def _timed_out(self, item: Any) -> None:
        item.timer = None
        self._done(item, ordered.ItemTimeout(f"item {item.seq} ran over its {item.timeout}s timeout"), True)
        self._free_slot_after_timeout()
        if item.work is not None:
            item.work.cancel()
        self._deliver()
        self._pump()


class PollerIgnoresPollNowWhileRunning(poller.AdaptivePoller):
    """poll_now() during a poll did nothing (time.on_demand)."""

    def poll_now(self) -> None:
        if self._running and self._inflight is None:
            self._cancel_next()
            self.interval = self.base
            self._poll()
