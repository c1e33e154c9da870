"""A ``stop()`` that raises (review 5, findings 8 and 9).

Finding 8: a subject whose ``stop()`` fires one of its Deferreds twice raises ``AlreadyCalledError``
out of ``stop()``: that is the subject's double firing, judged by ``completion.once`` (a violation,
shrunk and saved), not a target error that ends the campaign. Any other exception from ``stop()``
is still a target error (the target's glue is broken).

Finding 9: when a shrinking candidate hits a target error, the failure found so far is reported
unshrunk, and the message says that is why shrinking stopped (not "the budget or an interrupt").
"""

from __future__ import annotations

import pytest
from twisted.internet import defer, task

from harness import CampaignConfig, JobSpec, Schedule, Stop, Submit, Target, TargetError, check, run_campaign, run_schedule
from harness.cli.printing import print_finding


class DoubleFiringStop:
    """BUG: ``stop()`` fails every pending caller, also those it already failed on cancel."""

    def __init__(self, clock) -> None:
        self.pending: list[defer.Deferred] = []

    def submit(self, job):
        d = defer.Deferred()
        self.pending.append(d)
        return d

    def stop(self) -> None:
        for d in self.pending:
            d.callback(None)
            d.callback(None)  # twice: AlreadyCalledError raised out of stop()


class BrokenStop(DoubleFiringStop):
    def stop(self) -> None:
        raise RuntimeError("the adapter calls a method that is gone")


def test_already_called_in_stop_is_completion_once():
    target = Target(build=DoubleFiringStop, cancellable=False, menu={"cancels": False})
    run = run_schedule(target, Schedule(ops=(Submit(0, 0, JobSpec(kind="hang")), Stop(10))))
    once = [v for v in check(run) if v.invariant == "completion.once"]
    assert once and "stop.raised at 10ms in the subject: AlreadyCalledError" in once[0].message


def test_any_other_exception_from_stop_is_a_target_error():
    target = Target(build=BrokenStop, cancellable=False, menu={"cancels": False})
    with pytest.raises(TargetError, match="the subject's stop\\(\\) raised RuntimeError: the adapter calls"):
        run_schedule(target, Schedule(ops=(Submit(0, 0, JobSpec(kind="hang")), Stop(10))))


class StopOnlyLate:
    """Callers are never answered (``completion.deadline``); a metrics loop keeps the run going to
    the drain's horizon, and ``stop()`` refuses to be called in the first second (a target error)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.loop = task.LoopingCall(lambda: None)
        self.loop.clock = clock
        self.loop.start(1.0, now=False)

    def submit(self, job):
        return defer.Deferred()

    def stop(self) -> None:
        if self.clock.seconds() < 1:
            raise RuntimeError("stopped too early")
        self.loop.stop()


def test_shrinking_stopped_by_a_target_error_says_so(tmp_path, capsys):
    target = Target(build=StopOnlyLate, cancellable=False, menu={"cancels": False, "stops": False})
    config = CampaignConfig(max_examples=50, seed=1, report_dir=str(tmp_path), regressions=None, database=None)
    with pytest.raises(TargetError, match="stopped too early"):
        run_campaign(target, "tests.test_stop_raises:late", config, on_finding=print_finding)
    printed = capsys.readouterr().out
    assert "FAIL completion.deadline" in printed
    assert "shrinking was cut short (a shrinking candidate hit a target error, which stopped the campaign: " in printed
    assert "by the budget or an interrupt" not in printed
