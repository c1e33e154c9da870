"""A cancellation promise that varies per job: ``cancellable=lambda key, priority: mode``.

Real components promise cancellation differently for different jobs
(docs/reviews/outside-user.md, F8): Synapse's ``ReadWriteLock`` fails a
reader's caller at once but a waiting writer's only at its turn. Both ways:
a correct lock with its per-job promise stays clean over a long campaign,
and bugs that only a per-job promise can see (a constant ``"delayed"``
lets them pass) are caught by the invariant of the broken half.
"""

from __future__ import annotations

import dataclasses

import pytest

from harness import JobSpec, Menu, Schedule, Submit, Target, TargetError, check, load_target, run_schedule
from harness.invariants import invariants_for
from harness.model.schedule import Cancel
from scenarios import per_job_cancel
from scenarios.cancel import DetachingPool
from scenarios.per_job_cancel import READER, WRITER, writers_delayed_readers_at_once
from scenarios.pools import SemaphorePool

from review_campaigns import campaign

SPEC = "scenarios.per_job_cancel"
BUGGY = {
    "per_job_rw_lock_delays_readers": "cancellation.fires",
    "per_job_rw_lock_leaves_readers_running": "cancellation.propagates",
}


def _names(target: Target) -> set[str]:
    return {inv.name for inv in invariants_for(target)}


# --- the field ------------------------------------------------------------------------------------


def test_a_per_job_promise_is_asked_once_per_key_and_priority_and_draws_cancels() -> None:
    asked: list[tuple[int, int]] = []

    def promise(key: int, priority: int) -> bool | str:
        asked.append((key, priority))
        return "delayed" if priority else True

    target = Target(build=SemaphorePool, keys=2, menu={"priorities": 2}, cancellable=promise)
    assert sorted(asked) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # every key and priority the menu draws, at Target(...)
    assert target.cancel_modes == {True, "delayed"}
    assert target.cancel_mode(1, 1) == "delayed" and target.cancel_mode(0, 0) is True
    assert target.cancel_mode(5, 0) is True and len(asked) == 5  # a key outside the menu: asked when met, once
    target.cancel_mode(5, 0)
    assert len(asked) == 5
    assert target.default_menu().cancels and target.default_menu().canceller_raises
    assert not (target.delays or target.detaches or target.abandons)  # "for every job": not so


@pytest.mark.parametrize(
    ("modes", "on", "off"),
    [
        ((True, "delayed"), {"cancellation.propagates", "cancellation.fires"}, {"cancellation.detaches"}),
        ((True, "detach"), {"cancellation.propagates", "cancellation.detaches"}, set()),
        (("abandon", "delayed"), {"cancellation.detaches", "cancellation.no_start"}, {"cancellation.propagates"}),
        (("detach", "detach"), {"cancellation.detaches"}, {"cancellation.propagates"}),
    ],
)
def test_each_invariant_applies_when_some_job_promises_what_it_checks(modes, on, off) -> None:
    target = Target(build=SemaphorePool, menu={"priorities": 2}, cancellable=lambda key, priority: modes[priority])
    names = _names(target)
    assert on <= names and not off & names, names
    if modes[0] == modes[1]:  # one mode for every job: the same invariants as the constant
        assert names == _names(Target(build=SemaphorePool, menu={"priorities": 2}, cancellable=modes[0]))


@pytest.mark.parametrize(
    ("promise", "said"),
    [
        (lambda key, priority: False, "returned False for key 0, priority 0; it must return True, 'detach', 'abandon', "
         "'delayed' or 'detach_queued' (a job that cannot be cancelled at all: declare cancellable=False for the whole target)"),
        (lambda key, priority: "later" if priority else True, "returned 'later' for key 0, priority 1; it must return"),
        (lambda key, priority: 1, "returned 1 for key 0, priority 0"),
        (lambda key, priority: {0: True}[priority], "raised KeyError: 1 for key 0, priority 1; it must return a "
         "cancellation mode for every key and priority the menu draws"),
        (lambda key: True, "Target cancellable is called as cancellable(key, priority), but the function given cannot"),
    ],
)
def test_a_bad_per_job_promise_is_one_line_at_target(promise, said) -> None:
    with pytest.raises(TargetError) as caught:
        Target(build=SemaphorePool, menu={"priorities": 2}, cancellable=promise)
    assert said in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_a_bad_answer_for_a_key_met_only_in_a_run_is_a_target_error() -> None:
    target = Target(build=SemaphorePool, cancellable=lambda key, priority: True if key < 2 else "sometimes")
    with pytest.raises(TargetError, match="returned 'sometimes' for key 3, priority 0"):
        target.cancel_mode(3, 0)


# --- the semantics, one schedule each -------------------------------------------------------------

#: A reader holds the lock 0..100ms; a writer and a reader queue behind a writer; both cancelled at 10ms.
QUEUED = Schedule(
    (
        Submit(0, 0, JobSpec("succeed", 100), priority=READER),
        Submit(0, 1, JobSpec("succeed", 50), priority=WRITER),
        Submit(0, 2, JobSpec("succeed", 10), priority=READER),
        Cancel(10, 1),
        Cancel(10, 2),
    )
)


def _failures(run) -> list[tuple[int, int]]:
    return [(e.job, e.t_us // 1000) for e in run.trace if e.kind == "failure"]


def test_the_writer_fails_at_its_turn_and_the_reader_at_once() -> None:
    run = run_schedule(per_job_cancel.per_job_rw_lock, QUEUED)
    assert check(run) == []
    assert _failures(run) == [(2, 10), (1, 100)]
    assert [e.job for e in run.trace if e.kind == "job.start"] == [0]  # neither cancelled job ever ran


def test_no_single_mode_says_it() -> None:
    """``True`` for all refuses the writer's late fail; ``"delayed"`` for all lets the buggy readers pass."""
    run = run_schedule(dataclasses.replace(per_job_cancel.per_job_rw_lock, cancellable=True), QUEUED)
    assert [v.invariant for v in check(run)] == ["cancellation.fires"]
    for name in BUGGY:
        buggy = dataclasses.replace(getattr(per_job_cancel, name), cancellable="delayed")
        for schedule in (QUEUED, Schedule((Submit(0, 0, JobSpec("succeed", 50)), Cancel(10, 0)))):
            assert check(run_schedule(buggy, schedule)) == []


def test_a_per_job_detach_promise_judges_each_job_by_its_own() -> None:
    # A pool whose cancel leaves running work alone: right for jobs promising "detach", wrong for those promising True.
    def target(promise):
        return Target(build=lambda clock: DetachingPool(clock, limit=2), limit=2, menu=Menu(priorities=2), cancellable=promise)

    def cancel_running(priority: int) -> Schedule:
        return Schedule((Submit(0, 0, JobSpec("succeed", 10), priority=priority), Cancel(5, 0)))

    by_priority = target(lambda key, priority: "detach" if priority else True)
    assert check(run_schedule(by_priority, cancel_running(1))) == []
    assert [v.invariant for v in check(run_schedule(by_priority, cancel_running(0)))] == ["cancellation.propagates"]


# --- both ways, by campaign ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUGGY))
def test_each_bug_is_caught_by_the_invariant_of_its_half_of_the_promise(name, tmp_path) -> None:
    result = campaign(f"{SPEC}:{name}", 1, 500, tmp_path)
    assert [f.record.invariant for f in result.findings] == [BUGGY[name]]


def test_the_correct_lock_is_clean_in_a_short_campaign(tmp_path) -> None:
    result = campaign(f"{SPEC}:per_job_rw_lock", 2, 300, tmp_path)
    assert [f.record.message for f in result.findings] == [] and result.examples == 300


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_the_correct_lock_is_clean_over_a_long_campaign(seed, tmp_path) -> None:
    result = campaign(f"{SPEC}:per_job_rw_lock", seed, 4_000, tmp_path)
    assert [f.record.message for f in result.findings] == [] and result.examples == 4_000


SYNAPSE = "scenarios.thirdparty.synapse_prims"


@pytest.mark.slow
def test_synapse_read_write_lock_keeps_its_per_job_promise_and_its_buggy_glues_are_caught(tmp_path) -> None:
    """Real code: readers at once, writers at their turn, as Synapse documents; its two misusing glues caught."""
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    for name, expected in (
        ("read_write_lock", []),
        ("read_write_lock_waits_for_job", ["cancellation.fires"]),
        ("read_write_lock_shielded", ["cancellation.no_start"]),
    ):
        target = dataclasses.replace(load_target(f"{SYNAPSE}:{name}"), cancellable=writers_delayed_readers_at_once)
        result = campaign(f"{SYNAPSE}:{name}", 1, 3_000, tmp_path / name, target)
        assert [f.record.invariant for f in result.findings] == expected, name
