"""Rate limiters: a correct token bucket refilled on the clock, and a fixed window that bursts.

The promise: at most ``JOBS`` jobs start in any ``PER_MS`` window (a sliding
window: no ``JOBS + 1`` starts within ``PER_MS`` of each other). Jobs over
the rate wait in FIFO order; cancelling a waiting job removes it, cancelling
a running one cancels it; ``stop()`` fails the waiting jobs and leaves
nothing scheduled.
"""

from __future__ import annotations


from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from harness import Menu, Target

from . import Scenario
from ._pool import Entry, Pool

JOBS = 2
PER_MS = 100
#: Submissions at most 50ms apart (the default is 500ms), so that schedules often
#: submit faster than the rate, which is where a rate limiter has work to do.
MENU = Menu(stops=True, max_gap_ms=50)


class Stopped(Exception):
    """The limiter was stopped before the job could start."""


class TokenBucket(Pool):
    """A bucket of ``jobs`` tokens; each token comes back ``per_ms`` after it was taken.

    Every start takes a token, and takes it out for ``per_ms``: a
    ``callLater(per_ms, ...)`` on the clock puts it back and starts the next
    waiting job. Among any ``jobs + 1`` starts one token was used twice, at
    least ``per_ms`` apart, so no window of ``per_ms`` holds more than
    ``jobs`` starts. Refill is driven by delayed calls, never by arithmetic
    on ``seconds()``, so wall-clock jumps cannot mint tokens. The queue,
    submit and cancel are the shared pool skeleton's (``scenarios._pool``);
    tokens take the place of slots in ``_pump``.
    """

    def __init__(self, clock: IReactorTime, jobs: int = JOBS, per_ms: int = PER_MS) -> None:
        super().__init__(clock, limit=jobs)
        self.jobs = jobs
        self.per = per_ms / 1000
        self.tokens = jobs
        self._refills: list[IDelayedCall] = []
        self._stopped = False

    def _refusal(self) -> Exception | None:
        return Stopped("the rate limiter is stopped") if self._stopped else None

    def _pump(self) -> None:
        """Start waiting jobs while a token is left (a job's end frees no token: only time does)."""
        while self.tokens and self.waiting:
            entry = self.waiting.popleft()
            self.tokens -= 1
            self._took_token()
            self._start(entry)

    def _start(self, entry: Entry) -> None:
        """Run the job; its outcome goes to the caller (a job's end frees no slot here)."""
        entry.running = defer.maybeDeferred(entry.job)
        entry.running.chainDeferred(entry.caller)

    def _took_token(self) -> None:
        self._refills = [call for call in self._refills if call.active()]
        self._refills.append(self.clock.callLater(self.per, self._refill))

    def _refill(self) -> None:
        self.tokens += 1
        self._pump()

    def stop(self) -> None:
        self._stopped = True
        for call in self._refills:
            if call.active():
                call.cancel()
        self._refills = []
        while self.waiting:
            self.waiting.popleft().caller.errback(Stopped("the rate limiter stopped before the job started"))


class FixedWindowLimiter(TokenBucket):
    """A fixed-window counter: the bucket is refilled to full at every window boundary.

    BUG: a ``LoopingCall`` every ``per_ms`` (``_new_window``) resets the bucket to ``jobs``
    tokens. That bounds starts per *calendar* window, not per any window:
    ``jobs`` starts just before a boundary and ``jobs`` more just after it
    make ``2 * jobs`` starts within a few milliseconds. ``stop()`` stops the
    loop. Caught by: ``time.early``.
    """

    def __init__(self, clock: IReactorTime, jobs: int = JOBS, per_ms: int = PER_MS) -> None:
        super().__init__(clock, jobs, per_ms)
        self._window = task.LoopingCall(self._new_window)
        self._window.clock = clock
        self._window.start(self.per, now=False)

    def _took_token(self) -> None:
        pass  # tokens come back at the next window boundary

    def _new_window(self) -> None:
        self.tokens = self.jobs
        self._pump()

    def stop(self) -> None:
        if self._window.running:
            self._window.stop()
        super().stop()


token_bucket = Target(
    build=TokenBucket,
    rate=(JOBS, PER_MS),
    order="fifo",
    menu=MENU,
    description="token bucket, 2 per 100ms; each token refilled by callLater 100ms after use",
)

fixed_window_limiter = Target(
    build=FixedWindowLimiter,
    rate=(JOBS, PER_MS),
    order="fifo",
    menu=MENU,
    description="fixed-window limiter refilled to full by a LoopingCall every 100ms",
)

SCENARIOS = (
    Scenario(
        "scenarios.rate_limit:token_bucket",
        "pass",
        "at most 2 job starts in any 100ms; each token comes back by callLater 100ms after it was taken",
        "callLater",
    ),
    Scenario(
        "scenarios.rate_limit:fixed_window_limiter",
        "time.early",
        "bucket refilled to full at each 100ms boundary: 4 starts around a boundary, 2 per 100ms declared",
        "LoopingCall",
    ),
)
