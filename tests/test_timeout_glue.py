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


class Released(Group):
    """Glue that switches the first arrival's deadline off (as a release would) and still names it as the
    group's deadline for the next arrival: a glue mistake, once silent (the next job then went untimed)."""

    def submit(self, job):
        if self.waiting:
            self.waiting[0][1].stop_timeout()
        return super().submit(job)


class InCallback(Group):
    """The same mistake made in a Deferred's callback, where Twisted catches whatever the glue raises."""

    def submit(self, job):
        if not self.waiting:
            job.stop_timeout()
            self.waiting.append((defer.Deferred(), job))
            return self.waiting[-1][0]
        first = self.waiting[0][1]
        return defer.succeed(None).addCallback(lambda _: job.restart_timeout(like=first)).addCallback(lambda _: job())


KEPT: list[object] = []


class KeepsAcrossRuns(Group):
    """Glue that keeps the first job it saw in a module global and names it in later runs."""

    def submit(self, job):
        if not KEPT:
            KEPT.append(job)
        elif KEPT[0] is not job:
            job.restart_timeout(like=KEPT[0])
        return defer.Deferred()


class RaisedFirst(Group):
    """The first submit raises after naming its job the group's first member."""

    def submit(self, job):
        if not self.waiting:
            self.waiting.append((None, job))
            raise ValueError("full")
        job.restart_timeout(like=self.waiting[0][1])
        return defer.Deferred()


class RaisedAfter(Group):
    """Job 1's submit makes job 1 the group's first member for the jobs waiting (their deadline now runs like
    job 1's) and then raises: job 1 has no deadline, so neither has job 0. Its like= check, made while job 1's
    submit was under way, found job 1 submitted (session 14: once silent)."""

    def submit(self, job):
        if not self.waiting:
            return super().submit(job)
        for _d, waiting in self.waiting:
            waiting.restart_timeout(like=job)
        raise ValueError("full")


def refused(build) -> str:
    t = Target(build=build, timeout_ms=T, timeout_from="glue", timeout_error=Expired, cancellable=False)
    with pytest.raises(TargetError) as caught:
        run_schedule(t, Schedule(ops=OPS[:2]))
    return str(caught.value)


@pytest.mark.parametrize("build, where, why", [
    (Released, "in step 2 (submit job 1) at virtual time 200ms", "job 0's deadline is off (its glue called stop_timeout())"),
    (InCallback, "in step 2 (submit job 1) at virtual time 200ms", "job 0's deadline is off (its glue called stop_timeout())"),
    (RaisedFirst, "in step 2 (submit job 1) at virtual time 200ms", "job 0 has no deadline (its submit raised)"),
])
def test_like_a_job_with_no_deadline_is_a_glue_mistake_named_in_one_line(build, where, why):
    """Once silent (job 1 went untimed, judged by nothing); now the run ends with a target error naming both
    jobs and the fix, also when the glue runs in a callback that catches what it raises (not errors.unhandled)."""
    message = refused(build)
    assert message.startswith(f"the target called job 1's restart_timeout(like=job 0) {where}; {why}, "), message
    assert "so job 1's deadline would be off too" in message and "restart_timeout()" in message
    assert "stop_timeout()" in message and "\n" not in message


def test_like_a_job_of_another_run_is_refused():
    KEPT.clear()
    t = Target(build=KeepsAcrossRuns, timeout_ms=T, timeout_from="glue", timeout_error=Expired, cancellable=False)
    run_schedule(t, Schedule(ops=OPS[:1]))
    with pytest.raises(TargetError, match=r"restart_timeout\(like=job 0\) in step 1 .*job 0 is another run's"):
        run_schedule(t, Schedule(ops=(Submit(at_ms=0, job=1, spec=HANG),)))


def test_outside_a_run_the_mistake_is_raised_at_the_call():
    KEPT.clear()
    run_schedule(Target(build=KeepsAcrossRuns, timeout_ms=T, timeout_from="glue", timeout_error=Expired,
                        cancellable=False), Schedule(ops=OPS[:1]))
    (job,) = KEPT
    with pytest.raises(TargetError, match="like= takes a job the harness handed to the subject, got 'first'"):
        job.restart_timeout(like="first")


def test_like_a_job_whose_submit_raises_after_the_call_is_a_glue_mistake_named_in_one_line():
    message = refused(RaisedAfter)
    assert message.startswith("the target called job 0's restart_timeout(like=job 1) in step 2 (submit job 1) at virtual "
                              "time 200ms; job 1 has no deadline (its submit, under way then, raised after the call), "
                              "so job 0's deadline would be off too"), message
    assert "\n" not in message


raised_after = Target(build=RaisedAfter, timeout_ms=T, timeout_from="glue", timeout_error=Expired, cancellable=False)


def test_the_cli_says_so_in_one_line_and_exits_2(tmp_path, capsys):
    from harness.cli.main import main

    code = main(["fuzz", f"{__name__}:raised_after", "--seed", "1", "--max-examples", "50", "--report-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    [line] = [line for line in err.splitlines() if line.startswith("harness: error:")]
    assert "restart_timeout(like=job " in line and "raised after the call" in line and "stop_timeout()" in line
