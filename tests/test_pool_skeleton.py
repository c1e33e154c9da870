"""The pool skeleton the scenarios share (``scenarios._pool``): correct by itself, and the one copy.

Each buggy pool is the skeleton with an override where its bug lives; the
scenario tests check that each is still caught with its invariant. Here: the
skeleton alone keeps every promise over a campaign, its steps do what its
docstring says, and no scenario grows its own copy of it again.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from twisted.internet import defer, task

from harness import CampaignConfig, Target, run_campaign
from scenarios import _pool
from scenarios._pool import Entry, Pool

SCENARIOS = Path(_pool.__file__).resolve().parent
#: The modules whose pools are built on the skeleton (they once each had their own copy of it).
POOL_MODULES = ("cancel", "cooperator", "handoff", "next_tick", "pools", "priority", "queue_workers", "rate_limit", "semaphore")

skeleton_pool = Target(build=lambda clock: Pool(clock, limit=2), limit=2, order="fifo", description="the bare skeleton")


def test_the_skeleton_alone_keeps_every_promise(tmp_path) -> None:
    config = CampaignConfig(seed=5, max_examples=1500, report_dir=str(tmp_path), regressions=None)
    result = run_campaign(skeleton_pool, "test_pool_skeleton:skeleton_pool", config)
    assert result.findings == [] and result.examples == 1500


def _pool_with_jobs(limit: int = 1) -> tuple[Pool, list[defer.Deferred]]:
    pool = Pool(task.Clock(), limit)
    jobs: list[defer.Deferred] = [defer.Deferred() for _ in range(3)]
    return pool, jobs


def test_at_most_limit_jobs_run_and_the_rest_wait_in_order() -> None:
    pool, jobs = _pool_with_jobs()
    callers = [pool.submit(lambda job=job: job) for job in jobs]
    assert pool.active == 1 and [entry.job() for entry in pool.waiting] == jobs[1:]
    results: list[object] = []
    for caller in callers:
        caller.addCallback(results.append)
    jobs[0].callback("a")
    assert results == ["a"] and pool.active == 1 and len(pool.waiting) == 1
    jobs[1].callback("b")
    jobs[2].callback("c")
    assert results == ["a", "b", "c"] and pool.active == 0


def test_cancelling_a_waiting_job_takes_it_out_and_a_running_one_is_cancelled() -> None:
    pool, jobs = _pool_with_jobs()
    running = pool.submit(lambda: jobs[0])
    waiting = pool.submit(lambda: jobs[1])
    failures: list[type] = []
    waiting.addErrback(lambda f: failures.append(f.type))
    waiting.cancel()
    assert not pool.waiting and failures == [defer.CancelledError]
    running.addErrback(lambda f: failures.append(f.type))
    running.cancel()
    assert jobs[0].called and failures == [defer.CancelledError, defer.CancelledError]
    assert pool.active == 0  # the cancelled job's slot is free again


def test_a_failing_job_fails_its_caller_once_and_frees_its_slot() -> None:
    pool, _ = _pool_with_jobs()
    caller = pool.submit(lambda: 1 / 0)
    errors: list[type] = []
    caller.addErrback(lambda f: errors.append(f.type))
    assert errors == [ZeroDivisionError] and pool.active == 0


def test_an_entry_carries_what_the_pools_need() -> None:
    entry = Entry(lambda: None, priority=3)
    assert entry.priority == 3 and entry.running is None and not entry.cancelled and entry.call is None
    assert isinstance(entry.caller, defer.Deferred)
    with pytest.raises(AttributeError):
        entry.other = 1  # type: ignore[attr-defined]  # __slots__: a typo is an error, not a new field


def _classes(module: str) -> list[ast.ClassDef]:
    tree = ast.parse((SCENARIOS / f"{module}.py").read_text())
    return [node for node in tree.body if isinstance(node, ast.ClassDef)]


@pytest.mark.parametrize("module", POOL_MODULES)
def test_no_scenario_keeps_a_copy_of_the_skeleton(module) -> None:
    names = {node.name for node in _classes(module)}
    assert "_Entry" not in names and "Entry" not in names, f"scenarios/{module}.py: use scenarios._pool.Entry"
    source = (SCENARIOS / f"{module}.py").read_text()
    assert "from ._pool import" in source


@pytest.mark.parametrize("module", POOL_MODULES)
def test_every_buggy_pool_on_the_skeleton_says_where_its_bug_is(module) -> None:
    """A buggy twin's docstring says BUG, names its caught-by invariant and the override the bug is in."""
    imported = __import__(f"scenarios.{module}", fromlist=["SCENARIOS"])
    for node in _classes(module):
        cls = getattr(imported, node.name)
        if not (isinstance(cls, type) and issubclass(cls, Pool)) or cls is Pool:
            continue
        doc = inspect.getdoc(cls) or ""
        if "BUG" not in doc:
            continue
        assert "Caught by" in doc, node.name
        own = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
        assert any(f"``{name}``" in doc for name in own), f"{node.name}: name the override the bug is in"
