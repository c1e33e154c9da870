"""What the invariant-semantics tests share (tests/test_loop_housekeeping.py, test_cancelled_executions.py,
test_hedge_deadline.py): a reproducible campaign on a target, with every clock fault switched on if asked
(as ``benchmarks/soak.py`` does), searching on after a finding so that every distinct alarm is counted."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness import INVARIANTS, CampaignConfig, CampaignResult, Menu, load_target, run_campaign

#: Every search strategy a long campaign is run with.
STRATEGIES = ("mixed", "random", "swarm", "guided", "pct")


def campaign(spec: str, tmp_path: Any, examples: int, seed: int, strategy: str = "mixed",
             all_faults: bool = False, max_failures: int | None = None) -> CampaignResult:
    """A campaign that is a pure function of its arguments: no database, no regressions; with ``all_faults``,
    the target's menu with wall-clock jumps, every tie-break, stride and jitter on. It searches on until
    ``max_failures`` findings (by default one per invariant: every distinct alarm)."""
    target = load_target(spec)
    menu = target.default_menu()
    if all_faults:
        full = Menu()
        menu = replace(menu, jumps=True, tie_breaks=full.tie_breaks, steps_ms=full.steps_ms, jitters_ms=full.jitters_ms)
    config = CampaignConfig(max_examples=examples, seed=seed, strategy=strategy, report_dir=str(tmp_path),
                            regressions=None, database=None, menu=menu,
                            max_failures=len(INVARIANTS) if max_failures is None else max_failures)
    return run_campaign(target, spec, config)
