"""Coverage feedback for the guided strategy: did an example take an arc of the target's code not seen before?

The guided search (``harness.search.generate``) keeps, as seeds for
mutation, the byte strings whose run reached something new. Trace features
say what the run did as the harness sees it; the target's own line and
branch coverage says which of its code paths the run took (an ``if``
branch of a retry loop, an error handler), which a trace feature may not
tell apart. ``CoverageFeedback`` watches runs with an
``harness.run.lines.ArcTracer`` over the target's package and says whether
the last one took an arc (so also a line) never taken before in this round.

A traced run costs about twice an untraced one on Python 3.11, and the
target's arcs are few, so they are all reached early: the feedback watches
every example until ``QUIET`` watched examples in a row brought nothing new,
then one example in ``EVERY``. Both are counts of examples, so the search
stays a pure function of the seed (and of the target's code paths).
Under another tracer (pytest-cov, a debugger, the HTML report's coverage)
nothing is recorded: the search then learns from trace features alone.

Off by default (``CampaignConfig.coverage_feedback``): on the hard zoo it
found some bugs sooner and others later, no better than a different seed,
and costs throughput (docs/benchmarks.md, "Coverage feedback for the guided
search"); the zoo's targets are small, and their few arcs are all reached
along with new trace features. It is there for targets with more code paths.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from harness.run.lines import Arc, ArcTracer

#: Watched examples in a row without a new arc after which the feedback watches only one in ``EVERY``.
QUIET = 50
#: Once quiet, one example in this many is watched.
EVERY = 32
#: Arcs remembered; past this the feedback stops learning (the set stays bounded however long the campaign).
MAX_ARCS = 100_000


class CoverageFeedback:
    """Whether each watched run reached an arc of the target's code that no earlier run of the round did."""

    def __init__(self, tracer: ArcTracer) -> None:
        self.tracer = tracer
        self.seen: set[Arc] = set()
        self.examples = 0
        self.quiet = 0
        self.watched = False

    def watching(self) -> AbstractContextManager[object]:
        """A context to run the next example in: traced while the search is still finding arcs."""
        self.examples += 1
        self.watched = self.quiet < QUIET or self.examples % EVERY == 0
        return self.tracer.watching() if self.watched else nullcontext()

    def reached_new(self) -> bool:
        """Whether the example just watched took an arc not taken before (and remember its arcs)."""
        if not self.watched or not self.tracer.active:
            return False
        self.watched = False
        arcs = self.tracer.arcs
        if arcs <= self.seen or len(self.seen) >= MAX_ARCS:
            self.quiet += 1
            return False
        self.quiet = 0
        self.seen |= arcs
        return True


def tracer_for(target_spec: str, strategy: str) -> ArcTracer | None:
    """The tracer a campaign's guided search watches the target with, or None (another strategy, no source)."""
    if strategy not in ("guided", "mixed"):
        return None
    return ArcTracer.of(target_spec)
