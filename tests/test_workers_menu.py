"""``run_workers`` with a menu: its operations' strategies do not pickle, so they cross to the workers by name."""

from __future__ import annotations

import multiprocessing
import pickle

import pytest
from hypothesis import strategies as st

from harness import CampaignConfig, load_target, run_workers
from harness.model.schedule import Call
from harness.search.portable_menu import portable
from tests.test_operation_arguments import BUGGY, CORRECT, DEFAULT

SPEC = "tests.test_operation_arguments:BUGGY"


def test_a_menu_whose_operations_take_strategy_arguments_runs_on_two_workers(tmp_path) -> None:
    # Before the fix the parent died pickling the menu for the spawned workers (PicklingError).
    menu = BUGGY.default_menu().with_(max_ops=10)
    config = CampaignConfig(seed=3, max_examples=400, report_dir=str(tmp_path), menu=menu, max_failures=5)
    result = run_workers(BUGGY, SPEC, config, 2)
    assert len(result.workers) == 2 and not result.crashed
    # The workers drew the operation with the target's strategy: the pool's reset is found, shrunk to resize(3).
    (finding,) = result.findings
    calls = [op for op in finding.record.schedule.ops if isinstance(op, Call)]
    assert finding.violation.invariant == "concurrency.limit" and calls
    assert all(call.operation == "resize" and call.args == (DEFAULT,) for call in calls)


def test_the_menu_crosses_whole_and_is_rebuilt_from_the_target_the_worker_loads() -> None:
    menu = BUGGY.default_menu().with_(max_ops=7, jumps=True)
    sent = pickle.loads(pickle.dumps(portable(menu, BUGGY)))
    assert sent.operations == ("resize",)
    assert sent.rebuilt(load_target(SPEC)) == menu
    assert portable(CORRECT.default_menu().with_(operations=()), CORRECT).rebuilt(CORRECT).operations == ()


@pytest.mark.parametrize(
    ("operation", "problem"),
    [
        (("poke", (st.integers(0, 5),)), "'poke' is not one of the target's operations"),
        (("resize", (st.integers(0, 9),)), "'resize' draws its arguments from other strategies than the target's own"),
    ],
)
def test_a_menu_operation_a_worker_cannot_rebuild_is_refused_in_one_line_before_any_worker_starts(
    tmp_path, operation, problem
) -> None:
    menu = BUGGY.default_menu().with_(operations=(operation,))
    config = CampaignConfig(seed=1, max_examples=200, report_dir=str(tmp_path), menu=menu)
    with pytest.raises(ValueError, match="declare it in the target's operations") as refused:
        run_workers(BUGGY, SPEC, config, 2)
    assert problem in str(refused.value) and "\n" not in str(refused.value)
    assert multiprocessing.active_children() == []


def test_one_worker_runs_in_this_process_where_any_menu_will_do(tmp_path) -> None:
    menu = BUGGY.default_menu().with_(operations=(("resize", (st.integers(1, 2),)),))  # never 3: never the reset
    config = CampaignConfig(seed=1, max_examples=50, report_dir=str(tmp_path), menu=menu)
    result = run_workers(BUGGY, SPEC, config, 1)
    assert result.examples == 50 and not result.findings
