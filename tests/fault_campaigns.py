"""What the invariant-semantics tests share (tests/test_loop_housekeeping.py, test_cancelled_executions.py,
test_hedge_deadline.py): the search strategies a long campaign is run with. The campaign they run is
``review_campaigns.campaign`` (with ``all_faults``, every clock fault on, as ``benchmarks/soak.py`` does;
with ``max_failures=None``, searching on after a finding so that every distinct alarm is counted)."""

from __future__ import annotations

#: Every search strategy a long campaign is run with.
STRATEGIES = ("mixed", "random", "swarm", "guided", "pct")
