"""An operation's answer is watched, not consumed (session 13, audit 12's second strict xfail): the harness's
caller records what the Deferred delivered and passes it on, so two calls handed one shared Deferred record
the same answer, and the subject's own callbacks after the harness's see what they would without it. The
harness handles a failure it passed on that is still unhandled when the run ends (no ``errors.unhandled`` of
its making), and nothing else: a new error the subject's own callbacks make is still reported."""

from __future__ import annotations

from typing import Any

import pytest

from harness import Call, Operation, Schedule, Target, check, run_schedule
from tests import answer_subjects


class Ready(answer_subjects.Shared):
    """``answer_subjects.Shared``: ``when()`` hands every caller the one ``ready`` Deferred, failed with
    ``LookupError`` at 10 ms. At 5 ms the subject adds a callback of its own to it, after the harness's: one
    that notes what it received (``seen``), or, with ``breaks``, one that raises a new error."""

    def __init__(self, clock: Any, breaks: bool = False) -> None:
        super().__init__(clock)
        self.seen: list[str] = []
        clock.callLater(0.005, self.ready.addBoth, self._broken if breaks else self._note)

    def _note(self, result: Any) -> Any:
        self.seen.append(type(getattr(result, "value", result)).__name__)
        return result

    def _broken(self, result: Any) -> None:
        raise ZeroDivisionError("the subject's own bug")


def _run(*at_ms: int, raises: tuple[type[BaseException], ...] = (LookupError,), breaks: bool = False) -> tuple[Any, list[str]]:
    """The run, and what the subject's own callback saw (the subject itself is not kept: its garbage, with any
    unhandled error in it, is collected at the run's end)."""
    seen: list[str] = []

    def build(clock: Any) -> Ready:
        subject = Ready(clock, breaks)
        subject.seen = seen
        return subject

    target = Target(build=build, operations={"when": Operation(lambda s: s.when(), raises=raises)})
    return run_schedule(target, Schedule(ops=tuple(Call(at_ms=t, operation="when") for t in at_ms))), seen


@pytest.mark.parametrize("at_ms", [(0, 0), (0, 20), (20, 30)])
def test_every_call_handed_one_deferred_records_its_failure_before_or_after_it_fired(at_ms: tuple[int, int]) -> None:
    run, seen = _run(*at_ms)
    assert [e.kind.value for e in run.trace if e.kind.value.startswith("call.")] == ["call.refused"] * 2
    assert [c.answer.error for c in run.view.calls] == ["LookupError"] * 2
    assert seen == ["LookupError"]  # the subject's own callback saw the failure, not the harness's None
    assert check(run) == []  # declared, and not logged as unhandled


def test_an_undeclared_failure_of_a_shared_deferred_is_judged_for_each_call() -> None:
    run, _ = _run(0, 20, raises=())
    assert [e.kind.value for e in run.trace if e.kind.value.startswith("call.")] == ["call.failure"] * 2
    assert [c.answer.error for c in run.view.calls] == ["LookupError"] * 2
    assert [v.invariant for v in check(run)] == ["errors.operation"]


def test_a_failed_answer_is_not_left_unhandled_by_the_harness_but_the_subjects_own_error_is() -> None:
    run, _ = _run(0)
    assert check(run) == [] and not [e for e in run.trace if e.kind.value == "log.error"]
    run, _ = _run(0, breaks=True)  # the subject's callback turns the failure into a new error nobody handles
    [violation] = check(run)
    assert violation.invariant == "errors.unhandled" and "ZeroDivisionError: the subject's own bug" in violation.message
    # A later call handed that Deferred receives the new error, as a real caller would (errors.operation).
    run, _ = _run(0, 20, breaks=True)
    assert [c.answer.error for c in run.view.calls] == ["LookupError", "ZeroDivisionError"]
    assert [v.invariant for v in check(run)] == ["errors.operation"]
