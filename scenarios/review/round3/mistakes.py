"""Targets with the mistakes a first-time user makes, to see what the harness says about each
(docs/reviews/outside-user-3.md, \"Error paths\").  None of them is meant to pass."""
from __future__ import annotations

from typing import Any

from harness import Target

from scenarios.review.round3.bulkhead import Bulkhead
from scenarios.review.round3.deadline import DeadlineClient


class BulkheadSpins(Bulkhead):
    """A hang: the pump waits for room by spinning instead of returning."""

    def _pump(self) -> None:
        while self.waiting:
            request = self.waiting[0]
            if not self._has_room(request.tenant):
                continue                      # never changes: spins for ever
            self.waiting.popleft()
            self._start(request)


# The component's method is ``request``, not ``submit``: no submit adapter given.
deadline_no_adapter = Target(build=lambda clock: DeadlineClient(clock), timeout_ms=300, timeout_from="submit")

# The bulkhead's submit takes ``tenant``, the default submit passes ``key=``.
bulkhead_default_submit = Target(build=lambda clock: Bulkhead(clock), keys=3, key_limit=2, limit=3)

# A hang in the subject's own code.
bulkhead_spins = Target(build=lambda clock: BulkheadSpins(clock),
                        submit=lambda subject, job, priority: subject.submit(job, job.key),
                        keys=3, key_limit=2, limit=3)


def misdeclared(**fields: Any) -> Target:
    return Target(build=lambda clock: DeadlineClient(clock),
                  submit=lambda subject, job, priority: subject.request(job), **fields)


class RunsTwice:
    """A pool that, by a bug, runs every job a second time once it ended, and answers with the
    second outcome (a retry-on-everything written for one call site, applied to all)."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def submit(self, job: Any) -> Any:
        from twisted.internet import defer

        return defer.maybeDeferred(job).addBoth(lambda _: job())


# Duplicate execution: no built-in invariant flags it unless retries=0 is declared.
runs_twice = Target(build=RunsTwice, cancellable=False)
runs_twice_declared = Target(build=RunsTwice, cancellable=False, retries=0)


def _hedged_as_retries() -> Target:
    from scenarios.review.round3.hedge import HedgedCaller

    return Target(build=lambda clock: HedgedCaller(clock, hedge_after=0.1),
                  submit=lambda subject, job, priority: subject.call(job), retries=1)


# The correct hedger declared with the nearest promise the docs offer: time.retries refuses the
# overlap that hedging is made of.
hedged_as_retries = _hedged_as_retries()
