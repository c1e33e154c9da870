"""``run_workers``' budget counts each worker's search, not its start-up (a fresh interpreter loading the target)."""

from __future__ import annotations

import uuid

from harness import CampaignConfig, load_target, run_workers
from harness.search.stop_reasons import StopReason

#: Seconds the target module sleeps when imported: every worker pays it before its search begins.
SLOW_LOAD_S = 0.3
BUDGET_S = 1.0


def test_the_budget_counts_each_workers_search_not_its_start_up(tmp_path, monkeypatch) -> None:
    name = f"slow_load_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        f"import time\ntime.sleep({SLOW_LOAD_S})\nfrom scenarios.pools import semaphore_pool  # noqa: E402\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers start with this process's path
    spec = f"{name}:semaphore_pool"
    config = CampaignConfig(seed=1, budget_s=BUDGET_S, report_dir=str(tmp_path))
    result = run_workers(load_target(spec), spec, config, 2)
    assert result.stopped_by == StopReason.BUDGET and not result.findings and not result.crashed
    # Each worker searched for the budget (less the parent's few milliseconds before it started them). Before, each
    # got the budget less its start-up (spawn, imports, the slow load): a few milliseconds of search at most.
    assert all(report.stopped_by == StopReason.BUDGET and report.elapsed_s >= 0.9 * BUDGET_S for report in result.workers)
    assert all(report.examples > 0 for report in result.workers)
    assert result.elapsed_s >= BUDGET_S + SLOW_LOAD_S  # the campaign's wall-clock time: start-up on top of the budget
