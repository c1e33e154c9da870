"""After shrinking, clock faults the failure does not need are dropped, and the ones it needs are named."""

from __future__ import annotations

from harness import CampaignConfig, ClockPolicy, JobSpec, Schedule, Submit, check, load_target, run_campaign, run_schedule
from harness.search.clock_causes import needs_note, tame_clock

FIFO = "scenarios.next_tick:next_tick_fifo"


def _fails(target, invariant):
    return lambda schedule: any(v.invariant == invariant for v in check(run_schedule(target, schedule)))


def test_faults_the_failure_does_not_need_are_dropped_and_the_rest_named() -> None:
    target = load_target(FIFO)
    ops = (Submit(0, 0, JobSpec("succeed", 10)), Submit(0, 1, JobSpec("succeed", 10)), Submit(0, 2, JobSpec("succeed", 10)))
    noisy = Schedule(ops, ClockPolicy("lifo", seed=3, step_ms=4, jitter_ms=6))
    still_fails = _fails(target, "concurrency.fifo")
    assert still_fails(noisy)
    tamed, needs = tame_clock(noisy, still_fails)
    assert tamed.clock.tie_break == "lifo" and still_fails(tamed)
    assert needs[-1] == "calls due at the same instant run in lifo order"
    assert not still_fails(Schedule(ops, ClockPolicy("fifo", step_ms=tamed.clock.step_ms, jitter_ms=tamed.clock.jitter_ms)))
    assert needs_note(("calls due at the same instant run in lifo order",)) == (
        "; it fails only with calls due at the same instant run in lifo order: without this clock fault the schedule passes"
    )


def test_a_failure_that_needs_no_clock_fault_loses_them_all() -> None:
    target = load_target("scenarios.pools:double_release_pool")
    from scenarios.pools import double_release_pool

    ops = (Submit(0, 0, JobSpec("succeed", 20)), Submit(0, 1, JobSpec("fail", 10)), Submit(0, 2, JobSpec("succeed", 10)), Submit(0, 3, JobSpec("succeed", 10)))
    noisy = Schedule(ops, ClockPolicy("lifo", seed=2, step_ms=3, jitter_ms=2))
    invariant = check(run_schedule(double_release_pool, noisy))[0].invariant
    tamed, needs = tame_clock(noisy, _fails(target, invariant))
    assert (tamed.clock, needs) == (ClockPolicy(), ())


def test_a_shrunk_finding_that_needs_a_tie_break_says_so(tmp_path) -> None:
    result = run_campaign(load_target(FIFO), FIFO, CampaignConfig(seed=1, max_examples=300, report_dir=str(tmp_path), database=None, regressions=None))
    (finding,) = result.findings[:1]
    assert finding.record.invariant == "concurrency.fifo"
    assert finding.run.schedule.clock.tie_break != "fifo"
    assert f"calls due at the same instant run in {finding.run.schedule.clock.tie_break} order" in finding.record.message
    assert "canceller" not in finding.record.message  # no job's canceller raised: none is named (cancel15)


def test_the_note_says_the_schedule_passes_only_when_it_does() -> None:
    """Taking the fault away may leave another invariant broken: the note then names the one that holds
    (party 8: a buildbot loop's late call was "early" with jitter and "overlapping" without it, and the
    note said the schedule passed)."""
    from harness.search.clock_causes import clock_note, each_removed

    ops = (Submit(0, 0, JobSpec("succeed", 10)), Submit(0, 1, JobSpec("succeed", 10), after_rounds=0))
    noisy = Schedule(ops, ClockPolicy("lifo", seed=3, jitter_ms=6))
    removed = each_removed(noisy)
    assert [c.clock for c in removed[:2]] == [ClockPolicy("lifo", seed=3), ClockPolicy("fifo", seed=3, jitter_ms=6)]
    assert removed[2].ops[1].after_rounds is None and len(removed) == 3
    needs = ("calls firing up to 6ms late",)
    assert clock_note(noisy, needs, "time.early", lambda s: True).endswith("without this clock fault the schedule passes")
    assert clock_note(noisy, needs, "time.early", lambda s: s.clock.jitter_ms == 0).endswith(
        "without this clock fault time.early holds (another invariant still breaks)"
    )
    two = needs + ("the reactor waking only every 4ms",)
    assert clock_note(noisy, two, "time.early", lambda s: False).endswith(
        "without any one of these clock faults time.early holds (another invariant may still break)"
    )
    assert clock_note(noisy, (), "time.early", lambda s: False) == ""


def test_the_note_names_the_hostile_job_behaviours_too() -> None:
    """Review 11, finding 7: a raising canceller the failure needs is named beside the clock faults, and
    the wording of "without ..." covers both kinds."""
    from harness.search.clock_causes import clock_note
    from harness.search.job_causes import Behaviour

    lifo = ("calls due at the same instant run in lifo order",)
    canceller = ("job 0's canceller raising at 300ms",)
    assert needs_note(lifo, None, canceller) == (
        "; it fails only with calls due at the same instant run in lifo order and with job 0's canceller raising at"
        " 300ms: without any one of these the schedule passes"
    )
    assert needs_note((), None, canceller) == (
        "; it fails only with job 0's canceller raising at 300ms: without this job behaviour the schedule passes"
    )
    assert needs_note((), "time.timeout", canceller + ("job 2's canceller raising at 5ms",)).endswith(
        "without any one of these job behaviours time.timeout holds (another invariant may still break)"
    )
    quiet = Schedule((Submit(0, 0, JobSpec("succeed", 340)),))
    loud = Schedule((Submit(0, 0, JobSpec("succeed", 340, canceller_raises=True)),))
    assert clock_note(loud, (), "time.timeout", lambda s: s == quiet, (Behaviour(canceller[0], quiet),)).endswith(
        "without this job behaviour the schedule passes"
    )
    assert clock_note(loud, (), "time.timeout", lambda s: s == quiet, ()) == ""


def test_raising_cancellers_are_read_from_the_trace() -> None:
    """Only a job whose canceller raised in the run is a candidate (a spec that says so but is never
    cancelled is not), and the schedule without it keeps every other spec, retries included."""
    from harness.model.schedule import Cancel
    from harness.search.job_causes import raising_cancellers
    from scenarios.pools import semaphore_pool

    raising = JobSpec("succeed", 50, canceller_raises=True)
    ops = (Submit(0, 0, raising, then=(raising,)), Submit(0, 1, raising), Cancel(10, 0))
    schedule = Schedule(ops)
    run = run_schedule(semaphore_pool, schedule)
    [behaviour] = raising_cancellers(schedule, run.trace)
    assert behaviour.said == "job 0's canceller raising at 10ms"
    first = behaviour.without.ops[0]
    assert isinstance(first, Submit) and not first.spec.canceller_raises and not first.then[0].canceller_raises
    assert behaviour.without.ops[1:] == ops[1:]
