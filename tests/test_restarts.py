"""``Operation(restarts=True)``: an operation that starts a stopped subject again (session 13, audit 12's
first strict xfail). After a call of it the run counts as running: the schedule may stop the subject again
(and generated schedules do), the teardown stops it if the schedule does not, and ``completion.stop`` /
``completion.operation`` judge what its last ``stop()`` left unanswered. The buggy twins of
``tests/answer_subjects.py`` show the declaration excuses nothing else."""

from __future__ import annotations

import random
from typing import Any

import pytest

from harness import Call, Menu, Operation, Schedule, Stop, Target, check, run_schedule
from harness.errors import TargetError
from harness.model.trace import EventKind
from harness.search.strategies import codec
from tests import answer_subjects
from tests.review_campaigns import campaign

STOP_RESUME_WAIT = (Stop(at_ms=0), Call(at_ms=0, operation="resume"), Call(at_ms=0, operation="when_stopped"))


def _violations(target: Target, *ops: Any) -> list[tuple[str, str]]:
    return [(v.invariant, v.message) for v in check(run_schedule(target, Schedule(ops=ops)))]


def test_a_restarted_subject_is_stopped_again_by_the_schedule_or_the_teardown() -> None:
    run = run_schedule(answer_subjects.restart, Schedule(ops=STOP_RESUME_WAIT + (Stop(at_ms=20),)))
    stops = [(e.t_us, e.detail) for e in run.trace if e.kind == EventKind.STOP]
    assert stops == [(0, "scheduled"), (20_000, "scheduled")]  # the second Stop is no stop.skip any more
    assert [c.answer.value for c in run.view.calls if c.operation == "when_stopped"] == ["'stopped'"]
    run = run_schedule(answer_subjects.restart, Schedule(ops=STOP_RESUME_WAIT))
    assert [e.detail for e in run.trace if e.kind == EventKind.STOP] == ["scheduled", "teardown"]


def test_a_restart_declared_on_another_operation_excuses_no_undeclared_one() -> None:
    ops = (Stop(at_ms=0), Call(at_ms=0, operation="wake"), Call(at_ms=0, operation="when_stopped"))
    [(name, message)] = _violations(answer_subjects.undeclared_wake, *ops)
    assert name == "completion.operation" and "when_stopped(), called at 0ms" in message
    assert message.endswith("; if wake() started the stopped subject again, declare Operation(restarts=True)")
    assert _violations(answer_subjects.undeclared_wake, *STOP_RESUME_WAIT) == []
    # A restart while the subject runs changes nothing: the Stop after it is its first.
    assert _violations(answer_subjects.restart, Call(at_ms=0, operation="resume"), Stop(at_ms=5)) == []


def test_a_waiter_the_final_stop_of_a_restarted_subject_forgets_is_caught() -> None:
    ops = STOP_RESUME_WAIT + (Stop(at_ms=30),)
    [(name, message)] = _violations(answer_subjects.restart_forgets, *ops)
    assert name == "completion.operation"
    assert "when_stopped(), called at 0ms" in message and "stopped at 30ms" in message  # the last stop, named
    [(name, _)] = _violations(answer_subjects.restart_forgets, *STOP_RESUME_WAIT)  # the teardown's stop forgets it too
    assert name == "completion.operation"
    assert _violations(answer_subjects.restart, *ops) == []


def test_a_subject_ignoring_its_stop_is_caught_though_it_declares_a_restart() -> None:
    [(name, message)] = _violations(answer_subjects.ignores_stop, Stop(at_ms=0), Call(at_ms=10, operation="when_stopped"))
    assert name == "completion.operation"
    assert "restarts" not in message  # no other operation called between: no hint of a restart
    assert _violations(answer_subjects.restart, Stop(at_ms=0), Call(at_ms=10, operation="when_stopped")) == []


def test_the_deferred_of_a_stop_before_a_restart_is_judged_too() -> None:
    [(name, message)] = _violations(answer_subjects.first_stop_hangs, *STOP_RESUME_WAIT, Stop(at_ms=40))
    assert name == "completion.stop"
    assert "stop() (called at 0ms, scheduled) returned a Deferred that never fired" in message
    assert _violations(answer_subjects.restart, *STOP_RESUME_WAIT, Stop(at_ms=40)) == []


def _stops_of(menu: Menu, count: int = 3000) -> list[int]:
    """How many ``Stop`` each of ``count`` schedules decoded from seeded random bytes holds, checking that a
    ``Stop`` after the first comes only after a call of a restarting operation since the one before."""
    rng, made = random.Random(13), []
    blob = codec(menu).blob_size(12)
    for _ in range(count):
        stopped, stops = False, 0
        for op in codec(menu).decode_blob(rng.randbytes(blob)).ops:
            if isinstance(op, Stop):
                assert not stopped
                stopped, stops = True, stops + 1
            elif isinstance(op, Call) and op.operation in menu.restarts:
                stopped = False
        made.append(stops)
    return made


def test_generated_schedules_stop_again_only_after_a_restart() -> None:
    menu = answer_subjects.restart.default_menu()
    assert menu.restarts == ("resume",) and Menu.derived(answer_subjects.undeclared_wake).restarts == ("resume",)
    assert sum(n > 1 for n in _stops_of(menu)) > 50  # a restarting menu draws stops after restarts
    assert max(_stops_of(menu.with_(restarts=()))) == 1  # a plain one never two


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Operation(lambda s: s.resume(), restarts=1), "Operation restarts must be True or False, got 1"),
        (
            lambda: Target(build=answer_subjects.Restart, kind="periodic", interval_ms=10,
                           operations={"resume": Operation(lambda s: s.resume(), restarts=True)}),
            "Target operation 'resume' declares restarts=True, which a periodic Target cannot take",
        ),
        (lambda: Menu(restarts="resume"), "Menu restarts must be a tuple of operation names, got 'resume' (a str)"),
    ],
)
def test_bad_restart_declarations_are_refused_in_one_line(build: Any, message: str) -> None:
    with pytest.raises((TargetError, ValueError)) as caught:
        build()
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["restart_forgets", "ignores_stop", "first_stop_hangs"])
def test_the_buggy_restart_twins_are_caught_by_a_campaign(name: str, tmp_path: Any) -> None:
    result = campaign(f"tests.answer_subjects:{name}", seed=13, examples=300, tmp_path=tmp_path)
    assert result.error is None and [f.violation.invariant for f in result.findings] == [
        "completion.stop" if name == "first_stop_hangs" else "completion.operation"
    ]
