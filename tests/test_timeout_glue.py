"""``timeout_from="glue"``: a deadline the glue names (review 9, finding 3): shared by a group of jobs (a
barrier generation's, from its first arrival) or restarted by activity (an idle session's timer). The glue
calls ``job.restart_timeout(like=None)`` and ``job.stop_timeout()``; ``time.timeout`` times each caller from
there. A correct group deadline passes; one firing early or late relative to what the glue said is caught."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from harness import Call, JobSpec, Operation, Schedule, Submit, Target, TargetError, check, run_schedule
from harness.model.trace import EventKind

T = 300


class Expired(Exception):
    pass


class Group:
    """Every waiting caller fails ``T + skew`` ms after the group's first arrival (or after the last
    ``touch()``, the glue restarting each waiting job's deadline then); jobs never run."""

    def __init__(self, clock, skew=0, glue_restarts=True):
        self.clock, self.skew, self.glue_restarts = clock, skew, glue_restarts
        self.waiting: list[tuple[defer.Deferred[object], object]] = []
        self.timer = None

    def submit(self, job):
        d: defer.Deferred[object] = defer.Deferred()
        if self.waiting:
            job.restart_timeout(like=self.waiting[0][1])
        else:
            self.timer = self.clock.callLater((T + self.skew) / 1000, self.expire)
        self.waiting.append((d, job))
        return d

    def touch(self):
        if self.timer is not None and self.timer.active():
            self.timer.reset((T + self.skew) / 1000)
            for _d, job in self.waiting if self.glue_restarts else ():
                job.restart_timeout()

    def expire(self):
        waiting, self.waiting = self.waiting, []
        for d, _job in waiting:
            d.errback(Expired())


def target(**group) -> Target:
    return Target(build=lambda clock: Group(clock, **group), timeout_ms=T, timeout_from="glue", timeout_error=Expired,
                  cancellable=False, operations={"touch": Operation(lambda g: g.touch())})


HANG = JobSpec(kind="hang")
OPS = (Submit(at_ms=0, job=0, spec=HANG), Submit(at_ms=200, job=1, spec=HANG), Call(at_ms=250, operation="touch"))


def found(t: Target, *ops) -> list[str]:
    return [v.message for v in check(run_schedule(t, Schedule(ops=ops))) if v.invariant == "time.timeout"]


def test_a_group_deadline_from_the_first_arrival_passes():
    """Job 1 fails 100 ms after its submission: its deadline is job 0's, as its glue said."""
    assert found(target(), *OPS[:2]) == []


def test_a_deadline_restarted_by_activity_passes():
    assert found(target(), *OPS) == []


def test_the_glue_records_where_each_deadline_runs_from():
    run = run_schedule(target(), Schedule(ops=OPS))
    assert [(e.job, e.detail) for e in run.trace if e.kind == EventKind.TIMEOUT_RESTART] == [(1, "job 0"), (0, ""), (1, "")]


def test_without_the_glue_a_group_deadline_is_an_early_timeout():
    assert any("only 100ms after it was submitted" in m for m in found(
        Target(build=Group, timeout_ms=T, timeout_from="submit", timeout_error=Expired, cancellable=False), *OPS[:2]))


@pytest.mark.parametrize("group, ops, message", [
    ({"skew": -50}, OPS[:2], "only 250ms after its deadline last ran from 0ms"),  # early
    ({"skew": 200}, OPS[:2], "was still waiting at 300ms, 300ms after its deadline ran from 0ms"),  # late
    ({"glue_restarts": False}, OPS, "was still waiting at 300ms"),  # the subject reset, the glue did not say so
])
def test_a_group_deadline_off_what_the_glue_said_is_caught(group, ops, message):
    messages = found(target(**group), *ops)
    assert any(message in m for m in messages), messages


def test_stop_timeout_switches_the_deadline_off():
    class Off(Group):
        def submit(self, job):
            job.stop_timeout()
            return super().submit(job)
    t = Target(build=Off, timeout_ms=T, timeout_from="glue", timeout_error=Expired, cancellable=False)
    assert any("switched its deadline off" in m for m in found(t, *OPS[:1]))


def test_bad_declarations_are_refused_in_one_line():
    with pytest.raises(TargetError) as refused:
        Target(build=Group, timeout_ms=T, timeout_from="glue", keys=2, shared=True)
    assert 'timeout_from="glue"' in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(TargetError, match="timeout_from must be one of start, submit, wait, glue"):
        Target(build=Group, timeout_ms=T, timeout_from="group")
