"""What a campaign exercised: the per-run exposure, the fault keys, the tally and the campaign hook."""

from __future__ import annotations

from harness import CampaignConfig, Target, run_campaign, run_schedule
from harness.invariants import invariants_for
from harness.search.exercised import (
    FAULTS,
    INVARIANT_EXERCISE,
    Tally,
    describe_fault,
    exercise_of,
    expose,
    menu_faults,
    schedule_faults,
)
from harness.model.schedule import Cancel, ClockPolicy, JobSpec, Jump, Schedule, Stop, Submit
from harness.model.menu import Menu
from scenarios.pools import SemaphorePool, semaphore_pool

HANG = JobSpec("hang")


def _cancels() -> Schedule:
    """Four hanging jobs on a pool of two: jobs 2 and 3 wait; cancel 3, then 0 while it runs, then 0 again."""
    return Schedule(
        (
            Submit(0, 0, HANG),
            Submit(0, 1, HANG),
            Submit(0, 2, HANG),
            Submit(0, 3, HANG),
            Cancel(10, 3),
            Cancel(20, 0),
            Cancel(30, 0),
        )
    )


def test_exposure_tells_where_each_cancel_landed() -> None:
    exposure = expose(run_schedule(semaphore_pool, _cancels()).trace)
    assert exposure.submits == 4 and exposure.peak_outstanding == 4 and exposure.peak_waiting == 2
    assert exposure.cancels == 3
    assert exposure.cancel_waiting and exposure.cancel_running and exposure.cancel_twice
    assert exposure.cancel_with_queue  # job 2 still waited when job 3 and then job 0 were cancelled
    assert not exposure.cancel_late and exposure.fails == 0 and exposure.starts == 3


def test_a_job_that_starts_at_once_never_counts_as_waiting() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(20, 1, JobSpec("succeed", 10))))
    exposure = expose(run_schedule(semaphore_pool, schedule).trace)
    assert exposure.peak_waiting == 0 and exposure.peak_outstanding == 1 and exposure.fired == 2
    assert exposure.longest_attempt_us == 10_000


def test_failures_retries_and_stops_are_exposed() -> None:
    stoppable = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, stop=lambda subject: None)
    schedule = Schedule((Submit(0, 0, JobSpec("fail", 5)), Submit(10, 1, HANG), Stop(20), Submit(30, 2)))
    exposure = expose(run_schedule(stoppable, schedule).trace)
    assert exposure.fails == 1 and exposure.submit_after_fail
    assert exposure.stop_scheduled and exposure.stop_busy and exposure.submit_after_stop


def test_schedule_faults_name_behaviours_errors_and_clock_policy() -> None:
    schedule = Schedule(
        (
            Submit(0, 0, JobSpec("raise", error="KeyError"), then=(JobSpec("succeed", 5),)),
            Jump(5, -300),
            Jump(6, 300),
            Cancel(10, 0),
        ),
        ClockPolicy(tie_break="lifo", step_ms=10, jitter_ms=5),
    )
    assert schedule_faults(schedule) == {
        "submit",
        "job.raise",
        "job.succeed",
        "job.then",
        "error.KeyError",
        "jump.backward",
        "jump.forward",
        "cancel",
        "ties.lifo",
        "stride",
        "jitter",
    }
    assert schedule_faults(Schedule()) == set()


def test_menu_faults_list_what_can_happen_and_nothing_else() -> None:
    keys = menu_faults(Menu(job_kinds=("succeed", "fail"), errors=("ValueError",), jumps=False, tie_breaks=("fifo",)))
    assert "job.fail" in keys and "error.ValueError" in keys and "cancel.running" in keys
    assert "job.hang" not in keys and "jump.forward" not in keys and "ties.lifo" not in keys
    assert "stop" not in keys and "stop.busy" in keys  # the harness stops the subject at teardown anyway
    periodic = menu_faults(Menu(periodic=True))
    assert "periodic" in periodic and "submit" not in periodic and "cancel" not in periodic


def test_every_fault_and_tabled_invariant_is_described() -> None:
    assert all(describe_fault(key) for key in FAULTS)
    assert describe_fault("error.ConnectionError") == "a job fails with ConnectionError"
    registered = {inv.name for inv in __import__("harness").INVARIANTS}
    assert set(INVARIANT_EXERCISE) <= registered
    assert exercise_of("user").when == "every example"


def test_tally_counts_per_example_with_zeros_for_what_never_happened() -> None:
    tally = Tally.for_target(semaphore_pool)
    assert list(tally.invariants) == [inv.name for inv in invariants_for(semaphore_pool)]
    assert set(tally.faults) == set(menu_faults(semaphore_pool.default_menu()))
    quiet = Schedule((Submit(0, 0, JobSpec("succeed", 10)),))
    for schedule in (_cancels(), quiet):
        tally(schedule, run_schedule(semaphore_pool, schedule))
    data = tally.to_json()
    assert data["examples"] == 2
    assert data["invariants"]["concurrency.limit"] == 1  # only the first had more jobs than slots
    assert data["invariants"]["cancellation.no_start"] == 1
    assert data["invariants"]["errors.escaped"] == 2  # not in the table: every example
    assert data["invariants"]["completion.deadline"] == 2
    assert data["faults"]["job.hang"] == 1 and data["faults"]["job.succeed"] == 1 and data["faults"]["submit"] == 2
    assert data["faults"]["cancel.twice"] == 1 and data["faults"]["job.fail"] == 0


def test_the_campaign_hook_sees_every_search_example_and_no_shrink_run(tmp_path) -> None:
    # Promises one job at a time but runs two: fails within a few dozen examples, then shrinks.
    liar = Target(build=lambda clock: SemaphorePool(clock, 2), limit=1)
    seen = []
    result = run_campaign(
        liar, "tests:liar", CampaignConfig(seed=3, report_dir=str(tmp_path)), on_run=lambda s, run: seen.append(s)
    )
    assert result.findings and result.shrink_runs > 0
    assert len(seen) == result.examples


def test_the_html_report_page_tables_match_the_code() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "html-report.md").read_text()
    section = text[text.index("## What a campaign exercised") : text.index("## Coverage of the target's code")]
    for name, exercise in INVARIANT_EXERCISE.items():
        assert f"| `{name}` | {exercise.when} |" in section, name
    for key, description in FAULTS.items():
        assert f"| `{key}` | {description} |" in section, key
