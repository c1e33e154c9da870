"""Log capture: what Twisted logs during a run is recorded in the run's trace, and only there.

"Unhandled error in Deferred" and other errors a subject logs are the
target's, judged by the invariants from the trace; the capture also keeps
them out of the process's own output while a run lasts.

A failure logged as unhandled during a run but made before it began is no
part of it: an earlier run's subject that the target kept alive (a class
attribute holding the last instance built) and that this run's ``build``
dropped. It is not recorded in the trace, where it would have failed this
schedule for another's error (``errors.unhandled``, not reproduced by a replay
of it alone); it goes where errors logged between runs go, to the startup
observer when the run took it off (printed to stderr), once the run ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import ILogObserver, LogLevel, globalLogPublisher
from zope.interface import implementer

from harness.guard.private_api import failures_made, startup_log_observer
from harness.model.trace import EventKind, Trace
from harness.run.describe import describe_error, mask_addresses

_DEFER_NAMESPACE = "twisted.internet.defer"


class logging_into:
    """Send what Twisted logs during the run to ``observer`` (the run's trace) alone.

    Until a program begins logging, Twisted prints critical events (every
    "Unhandled error in Deferred") to stderr and buffers all events; the
    run's errors are the target's, recorded in its trace and judged there,
    so that observer is detached for the run. Observers of a program that
    began logging still see everything. A class, named in lower case as
    ``contextlib.suppress`` is: entered once a run, where a generator-based
    context manager cost twice as much.
    """

    __slots__ = ("observer", "detached")

    def __init__(self, observer: LogRecorder) -> None:
        self.observer = observer
        #: Twisted's startup observer, while this took it off the publisher.
        self.detached: ILogObserver | None = None

    def __enter__(self) -> None:
        temporary = startup_log_observer()
        if temporary is not None:
            try:
                globalLogPublisher.removeObserver(temporary)
                self.detached = temporary
            except ValueError:
                pass
        globalLogPublisher.addObserver(self.observer)

    def __exit__(self, *exc_info: object) -> None:
        observer = self.observer
        globalLogPublisher.removeObserver(observer)
        detached, self.detached = self.detached, None
        if detached is not None and startup_log_observer() is detached:
            globalLogPublisher.addObserver(detached)
            # An earlier run's leftovers logged during this one: where they would have gone between runs.
            # (Observers of a program that began logging saw them already: they stay on the publisher.)
            for event in observer.earlier:
                detached(event)
        observer.earlier = []


@implementer(ILogObserver)
class LogRecorder:
    """A Twisted log observer that records errors logged during a run into its trace.

    It also cleans each logged ``Failure`` (its traceback becomes text): Twisted
    keeps logged events in a buffer until logging begins, and a Failure's
    frames would keep the run's other Deferreds alive, to be collected, and
    logged, during some later run.
    """

    def __init__(
        self,
        trace: Trace,
        judge: Callable[[BaseException | None], str | None] | None = None,
        allowed: dict[int, str] | None = None,
    ) -> None:
        self.trace = trace
        self.failures = 0
        #: With the target's ``logs`` declared (``harness.run.logged.log_judge``): what makes each logged
        #: error legitimate, kept in ``allowed`` by the trace index of its ``log.error`` event.
        self.judge = judge
        self.allowed = allowed
        #: Twisted's count of Failures made when the run began (None: unknown): one numbered no higher was
        #: made before it, and logged as unhandled it is an earlier run's leftover, kept in ``earlier``.
        self.born = failures_made()
        self.earlier: list[dict[str, Any]] = []
        #: The last event, when it was Twisted's "Unhandled error in Deferred:" line (logged just before the
        #: failure it heads): kept with an earlier run's failure, so that it is printed with it.
        self._header: dict[str, Any] | None = None

    def logged_failures(self) -> int:
        """How many failures were logged so far (a collection that logs more freed more garbage)."""
        return self.failures

    def __call__(self, event: dict[str, Any]) -> None:
        # ``twisted.python.log.err`` (still what much of Twisted calls: ``TimerService`` logs a failed
        # call with it) publishes a legacy event, its Failure under ``failure`` with ``isError`` set.
        failure = event.get("log_failure") or (event.get("failure") if event.get("isError") else None)
        if failure is not None:
            self.failures += 1
            kind = EventKind.UNHANDLED if event.get("log_namespace") == _DEFER_NAMESPACE else EventKind.LOG_ERROR
            born = self.born
            if kind is EventKind.UNHANDLED and born is not None and getattr(failure, "count", born + 1) <= born:
                # Made before the run: an earlier run's, no part of this trace.
                if self._header is not None:
                    self.earlier.append(self._header)
                self.earlier.append(event)
            else:
                index = self.trace.record(kind, detail=describe_error(failure.value, failure))
                if kind is EventKind.LOG_ERROR:
                    self._judge(index, failure.value)
            try:
                failure.cleanFailure()
            except Exception:
                pass
        elif event.get("log_level") in (LogLevel.error, LogLevel.critical) and not event.get("isError"):
            index = self.trace.record(EventKind.LOG_ERROR, detail=mask_addresses(str(event.get("log_format", ""))))
            self._judge(index, None)
        self._header = event if failure is None and event.get("log_namespace") == _DEFER_NAMESPACE else None

    def _judge(self, index: int, exc: BaseException | None) -> None:
        """Keep what makes the error logged at ``index`` legitimate, when the target declares ``logs``."""
        judge, allowed = self.judge, self.allowed
        if judge is None or allowed is None or index < 0:
            return
        reason = judge(exc)
        if reason is not None:
            allowed[index] = reason
