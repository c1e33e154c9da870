"""``cancellable="delayed"`` (docs/reviews/outside-user.md F8): a cancel that fails the caller late, never after its turn.

Both ways on real code: Synapse's ``ReadWriteLock`` (a waiting writer's cancel is delayed by
``delay_cancellation`` until it holds the lock) and ``ResponseCache`` (the caller that started the
computation fails only when it ends) stay clean with cancels drawn; two misusing glues are caught,
each by the invariant whose half of the promise it breaks.
"""

from __future__ import annotations

import dataclasses

import pytest

from harness import ClockPolicy, JobSpec, Schedule, Submit, Target, TargetError, check, load_target, run_schedule
from harness.model.schedule import Cancel

from review_campaigns import campaign

SYNAPSE = "scenarios.thirdparty.synapse_prims"
DELAYED = (f"{SYNAPSE}:read_write_lock", f"{SYNAPSE}:response_cache", f"{SYNAPSE}:response_cache_timeout")
BUGGY = {
    f"{SYNAPSE}:read_write_lock_shielded": "cancellation.no_start",
    f"{SYNAPSE}:read_write_lock_waits_for_job": "cancellation.fires",
}


def _id(spec: str) -> str:
    return spec.split(":")[1]


def _events(run, kind: str) -> list[tuple[int, int]]:
    return [(e.job, e.t_us // 1000) for e in run.trace if e.kind == kind]


# --- the field ----------------------------------------------------------------------------------


def test_delayed_is_a_cancellable_mode() -> None:
    target = Target(build=object, cancellable="delayed")
    assert target.delays and not target.detaches and target.default_menu().cancels
    assert not Target(build=object).delays


def test_a_bad_cancellable_value_names_every_mode() -> None:
    with pytest.raises(TargetError, match="'detach', 'abandon', 'delayed' or 'detach_queued', got 'later'"):
        Target(build=object, cancellable="later")


# --- the semantics, one schedule each ------------------------------------------------------------

#: A reader holds the lock 0..100ms; a writer queued behind it is cancelled at 10ms.
WRITER_BEHIND_READER = Schedule(
    (
        Submit(0, 0, JobSpec("succeed", 100), priority=0),
        Submit(0, 1, JobSpec("succeed", 50), priority=1),
        Cancel(10, 1),
        Submit(20, 2, JobSpec("succeed", 10), priority=1),
    ),
    ClockPolicy(),
)


def test_a_waiting_writer_fails_at_its_turn_and_never_starts() -> None:
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    run = run_schedule(load_target(f"{SYNAPSE}:read_write_lock"), WRITER_BEHIND_READER)
    assert check(run) == []
    failures = [(e.job, e.t_us // 1000, e.detail.split(":")[0]) for e in run.trace if e.kind == "failure"]
    assert failures == [(1, 100, "CancelledError")]  # at the reader's end, not the cancel's 10ms
    assert _events(run, "job.start") == [(0, 0), (2, 100)]  # the writer never ran; the next one did


def test_the_same_run_breaks_the_instant_promise() -> None:
    """What ``cancellable=True`` says of the same run: the delayed fire is a violation there."""
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    target = dataclasses.replace(load_target(f"{SYNAPSE}:read_write_lock"), cancellable=True)
    run = run_schedule(target, WRITER_BEHIND_READER)
    assert [v.invariant for v in check(run)] == ["cancellation.fires"]


def test_the_first_caller_of_a_response_cache_fails_when_its_computation_ends() -> None:
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    ops = (Submit(0, 0, JobSpec("succeed", 100)), Submit(10, 1, JobSpec("succeed", 100)), Cancel(20, 0), Cancel(30, 1))
    run = run_schedule(load_target(f"{SYNAPSE}:response_cache"), Schedule(ops, ClockPolicy()))
    assert check(run) == []
    failures = [(e.job, e.t_us // 1000) for e in run.trace if e.kind == "failure"]
    assert failures == [(1, 30), (0, 100)]  # the joiner at once; the first caller at the computation's end


def test_a_delayed_cancel_that_never_comes_is_caught_by_fires() -> None:
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    run = run_schedule(load_target(f"{SYNAPSE}:read_write_lock_waits_for_job"), WRITER_BEHIND_READER)
    violations = check(run)
    assert [v.invariant for v in violations] == ["cancellation.fires"]
    assert "never fired" in violations[0].message and 'cancellable="delayed"' in violations[0].message


def test_a_waiter_behind_work_that_never_ends_may_wait_for_ever() -> None:
    """Its turn never comes: the delayed cancel is excused, as a stranded job would be."""
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    ops = (Submit(0, 0, JobSpec("hang"), priority=0), Submit(0, 1, JobSpec("succeed", 50), priority=1), Cancel(10, 1))
    run = run_schedule(load_target(f"{SYNAPSE}:read_write_lock"), Schedule(ops, ClockPolicy()))
    assert [e for e in run.trace if e.kind == "failure"] == []
    assert check(run) == []


# --- both ways over campaigns --------------------------------------------------------------------


@pytest.mark.parametrize("spec", DELAYED, ids=_id)
def test_real_components_stay_clean_with_cancels(spec: str, tmp_path) -> None:
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    assert load_target(spec).default_menu().cancels
    result = campaign(spec, seed=5, examples=300, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 300


@pytest.mark.parametrize("spec", sorted(BUGGY), ids=_id)
def test_a_broken_delayed_cancel_is_caught(spec: str, tmp_path) -> None:
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    result = campaign(spec, seed=5, examples=2000, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == [BUGGY[spec]]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("spec", DELAYED, ids=_id)
def test_real_components_stay_clean_with_cancels_over_a_long_campaign(spec: str, seed: int, tmp_path) -> None:
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    result = campaign(spec, seed=seed, examples=2000, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 2000
