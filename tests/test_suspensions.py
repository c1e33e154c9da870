"""An operation that suspends progress (docs/reviews/outside-user-2.md F8): ``Operation(suspends="resume")``.

A job held back by a ``pause()`` still in force when the run drains is not
stranded; a suspension that was lifted excuses nothing, and neither does one
in force beside a real bug. Shown both ways on the review's ``Cooperator``
component: the correct glue with ``pause``/``resume`` stays clean, a resume
that forgets a task and ``Cooperator.stop()``'s own bug are still caught by
``completion.deadline``.
"""

from __future__ import annotations

import dataclasses

import pytest

from harness import Call, JobSpec, Operation, Schedule, Stop, Submit, Target, TargetError, check, run_schedule
from harness.run.diagnosis import Cause, diagnose
from harness.run.suspensions import in_force, lifted
from scenarios.review.round2 import repros
from scenarios.thirdparty import twisted_more
from scenarios.thirdparty.twisted_more import (
    CooperativeJobs,
    CooperatorStopOnly,
    cooperative_tasks_paused,
    cooperative_tasks_resume_forgets_one,
)

from review_campaigns import campaign

PAUSE, RESUME = Call(at_ms=0, operation="pause"), Call(at_ms=50, operation="resume")
JOB = Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=0))
#: A pause that nothing lifts: job 0's task never runs again.
PAUSED_AT_THE_END = Schedule(ops=(JOB, PAUSE))
#: The same pause lifted at 50ms: job 0 must then finish.
PAUSED_THEN_RESUMED = Schedule(ops=(JOB, PAUSE, RESUME))

#: The same operations declared without saying that pause suspends (the review's F8 false alarm).
undeclared = dataclasses.replace(
    cooperative_tasks_paused, operations={"pause": Operation(lambda s: s.pause()), "resume": Operation(lambda s: s.resume())}
)


def _names(target: Target, schedule: Schedule) -> list[str]:
    return [violation.invariant for violation in check(run_schedule(target, schedule))]


def test_a_pause_in_force_at_the_drain_is_not_a_deadlock() -> None:
    assert _names(undeclared, PAUSED_AT_THE_END) == ["completion.deadline"]  # before: nothing said "paused"
    run = run_schedule(cooperative_tasks_paused, PAUSED_AT_THE_END)
    assert check(run) == []
    assert [(s.job, s.cause) for s in diagnose(run).stranded] == [(0, Cause.SUSPENDED)]


def test_a_lifted_pause_excuses_nothing() -> None:
    assert _names(cooperative_tasks_paused, PAUSED_THEN_RESUMED) == []
    assert _names(cooperative_tasks_resume_forgets_one, PAUSED_THEN_RESUMED) == ["completion.deadline"]


def test_a_pause_in_force_beside_a_real_bug_still_lets_it_be_caught() -> None:
    """Cooperator.stop() skips every other task (T1): lifting the pause does not free job 1."""
    stop_only = dataclasses.replace(cooperative_tasks_paused, build=CooperatorStopOnly)
    submits, stop = repros.NO_OP_CANCEL_BLAMED_SCHEDULE.ops[:2], repros.NO_OP_CANCEL_BLAMED_SCHEDULE.ops[2]
    schedule = Schedule(ops=(*submits, Call(at_ms=0, operation="pause"), stop))  # paused, then stopped
    assert in_force(stop_only, schedule) == (2,)
    assert _names(stop_only, schedule) == ["completion.deadline"]
    assert _names(cooperative_tasks_paused, schedule) == []  # the glue that stops each task first
    # Job 0 finishes once the pause is taken out (excused); job 1 does not (Cooperator.stop() skipped it).
    causes = [(s.job, s.cause) for s in diagnose(run_schedule(stop_only, schedule)).stranded]
    assert causes == [(0, Cause.SUSPENDED), (1, Cause.NONE)]


def test_which_suspensions_are_in_force() -> None:
    pause, resume = (lambda name: Call(at_ms=0, operation=name))("pause"), Call(at_ms=0, operation="resume")
    target = cooperative_tasks_paused
    assert in_force(target, Schedule(ops=(JOB, pause, pause, resume))) == (1,)  # the latest pause is resumed
    assert in_force(target, Schedule(ops=(JOB, resume, pause))) == (2,)  # a resume before any pause ends nothing
    assert in_force(target, Schedule(ops=(JOB, pause, resume, Stop(at_ms=0)))) == ()
    assert lifted(target, Schedule(ops=(JOB, pause, pause, resume))) == Schedule(ops=(JOB, pause, resume))
    assert lifted(target, PAUSED_THEN_RESUMED) is None
    assert in_force(twisted_more.cooperative_tasks, PAUSED_AT_THE_END) == ()  # declares no suspension
    forever = dataclasses.replace(target, operations={"pause": Operation(lambda s: s.pause(), suspends=True),
                                                      "resume": Operation(lambda s: s.resume())})
    assert in_force(forever, Schedule(ops=(JOB, pause, resume))) == (1,)  # True: nothing but the end lifts it


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ({"pause": Operation(lambda s: s.pause(), suspends="unpause")},
         "Target operation 'pause' suspends until 'unpause', which is not another of its operations (declared: none)"),
        ({"pause": Operation(lambda s: s.pause(), suspends="pause")}, "suspends until 'pause', which is not another"),
    ],
)
def test_a_suspension_must_name_another_operation(operations, message) -> None:
    with pytest.raises(TargetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Target(build=CooperativeJobs, operations=operations)


def test_suspends_is_a_name_or_a_bool() -> None:
    with pytest.raises(TargetError, match=r"Operation suspends must be the name of the operation that resumes it .* got 3"):
        Operation(lambda s: s.pause(), suspends=3)  # type: ignore[arg-type]


def test_both_ways_over_a_campaign(tmp_path) -> None:
    assert [f.violation.invariant for f in campaign("undeclared", 1, 2000, tmp_path, undeclared).findings] == ["completion.deadline"]
    clean = campaign("cooperative_tasks_paused", 1, 2000, tmp_path, cooperative_tasks_paused)
    assert clean.findings == [] and clean.examples == 2000
    caught = campaign("resume_forgets_one", 1, 2000, tmp_path, cooperative_tasks_resume_forgets_one)
    assert [f.violation.invariant for f in caught.findings] == ["completion.deadline"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_correct_glue_stays_clean_over_a_long_campaign(seed, tmp_path) -> None:
    result = campaign("cooperative_tasks_paused", seed, 3_000, tmp_path, cooperative_tasks_paused)
    assert result.findings == [] and result.examples == 3_000


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_buggy_twins_are_caught_in_every_seed(seed, tmp_path) -> None:
    found = campaign("resume forgets one", seed, 5000, tmp_path, cooperative_tasks_resume_forgets_one).findings
    assert [f.violation.invariant for f in found] == ["completion.deadline"]
    # Cooperator.stop()'s bug (T1) with pause/resume drawn: the tasks it skips are still stranded; pausing one of
    # them afterwards raises ValueError (errors.operation, Twisted's too), so two failures are collected.
    stop_only = dataclasses.replace(cooperative_tasks_paused, build=CooperatorStopOnly)
    found = campaign("stop only", seed, 5000, tmp_path, stop_only, max_failures=2).findings
    assert "completion.deadline" in [f.violation.invariant for f in found]
