"""The work of a periodic target: a job that can also say its loop ended on purpose.

A periodic subject calls its work again and again; a loop may end on purpose
(a lease renewer that lost its lease, a poller whose quota is spent) and tell
its owner through a callback of its own, which the harness cannot see. The
work the harness supplies carries ``report_end(reason)`` for that callback to
call: the report is recorded in the trace (``loop.end``), and the time
invariants read it (``time.loop_died`` accepts it as the loop's report of its
end; ``time.after_end`` holds the loop to it: no call of the work after it).
"""

from __future__ import annotations

from harness.model.trace import EventKind
from harness.run.describe import describe
from harness.run.jobs import Job

#: How much of a reason the ``loop.end`` event keeps (described: one line, addresses masked).
REASON_LIMIT = 120


class PeriodicWork(Job):
    """The job a periodic subject is started with: a ``Job`` (calling it starts an attempt) that can
    also report that the loop calling it has ended on purpose (``report_end``)."""

    __slots__ = ()

    def report_end(self, reason: object = "") -> None:
        """Say that the loop calling this work has ended on purpose, and why (``reason``: any value,
        recorded as its one-line description: ``'lease lost'``).

        Call it from the subject's own end-of-loop callback (``on_lost=lambda: work.report_end("lease
        lost")``) once the loop has stopped calling the work. ``time.loop_died`` then accepts the end of
        the loop as reported, and ``time.after_end`` holds the loop to it: the work is never called
        again afterwards (a call in flight may still end, and its failure is not judged). Reporting
        again is harmless (the first report counts); a report after ``stop()`` is recorded and judged
        by nothing.
        """
        self._trace.record(EventKind.LOOP_END, self.id, describe(reason, REASON_LIMIT))
