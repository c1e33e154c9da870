"""async/await subjects stay deterministic: pending job attempts are held until the run ends.

Issue 13, false alarm 3: a ``hang`` job's Deferred that only the awaiting
coroutine referenced was garbage collected mid-run; the coroutine was closed
and its ``finally`` blocks ran (releasing a lock, starting the next job) at
an allocation-dependent moment. The subject here is a FIFO lock written with
async/await, as Synapse's ``Linearizer`` is.
"""

from __future__ import annotations

import gc
import weakref
from collections import deque
from typing import Any

from hypothesis import HealthCheck, given, settings

from twisted.internet import defer

from harness import Menu, Target, check, run_schedule, schedules
from harness.run.clock import FaultClock
from harness.run.jobs import Job
from harness.model.schedule import ClockPolicy, JobSpec, Schedule, Submit
from harness.model.trace import Trace


class AsyncLock:
    """A FIFO lock for coroutines: ``await acquire()``, then ``release()``."""

    def __init__(self) -> None:
        self.locked = False
        self.waiters: deque[defer.Deferred[None]] = deque()

    async def acquire(self) -> None:
        if not self.locked:
            self.locked = True
            return
        waiter: defer.Deferred[None] = defer.Deferred()
        self.waiters.append(waiter)
        await waiter

    def release(self) -> None:
        if self.waiters:
            self.waiters.popleft().callback(None)
        else:
            self.locked = False


class Serial:
    """Runs one job at a time, in submission order, with async/await.

    ``submit`` hands back its own Deferred, chained from the coroutine's (as
    wrappers such as Synapse's ``run_in_background`` do), so nothing but the
    coroutine holds a hanging job's Deferred.
    """

    pressure = False

    def __init__(self, clock: Any) -> None:
        self.lock = AsyncLock()

    async def _run(self, job: Any) -> Any:
        await self.lock.acquire()
        try:
            return await job()
        finally:
            self.lock.release()

    def submit(self, job: Any) -> defer.Deferred[Any]:
        if self.pressure:
            _garbage_pressure()
        caller: defer.Deferred[Any] = defer.Deferred()
        defer.ensureDeferred(self._run(job)).chainDeferred(caller)
        return caller


class PressuredSerial(Serial):
    """The same subject, collecting garbage (and making more) at every submit."""

    pressure = True


def _garbage_pressure() -> None:
    for _ in range(50):
        cycle: list[Any] = []
        cycle.append(cycle)
    gc.collect()


serial = Target(build=Serial, limit=1, order="fifo", description="async/await FIFO lock")
pressured = Target(build=PressuredSerial, limit=1, order="fifo", description="the same, under gc pressure")

#: Job 0 hangs holding the lock; jobs 1 and 2 wait behind it for ever.
HANGING = Schedule((Submit(0, 0, JobSpec("hang")), Submit(10, 1, JobSpec("succeed", 5)), Submit(20, 2, JobSpec("fail", 5))))


def _lines(target: Target, schedule: Schedule) -> list[str]:
    run = run_schedule(target, schedule)
    assert check(run) == [], schedule
    return run.trace.lines()


def test_a_coroutine_awaiting_a_hanging_job_is_not_collected_mid_run() -> None:
    quiet = _lines(serial, HANGING)
    assert _lines(pressured, HANGING) == quiet
    assert _lines(serial, HANGING) == quiet
    # Jobs 1 and 2 wait behind the hanging job 0 for ever: they never start, not even at teardown.
    assert [line.split()[1] for line in quiet if " 1." in line or " 2." in line] == ["submit", "submit"]
    assert quiet[-1].split()[1] == "end"


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(schedules(Menu(cancels=False, job_kinds=("succeed", "fail", "hang", "immediate"), max_ops=8)))
def test_async_subject_traces_do_not_depend_on_garbage_collection(schedule: Schedule) -> None:
    quiet = _lines(serial, schedule)
    assert _lines(pressured, schedule) == quiet


def test_a_job_holds_its_pending_attempts_until_they_settle_or_the_run_ends() -> None:
    clock = FaultClock()
    job = Job(1, (JobSpec("hang"),), clock, Trace(lambda: clock.now_us), {})
    hanging = weakref.ref(job())
    gc.collect()
    assert hanging() is not None
    job.release()
    gc.collect()
    assert hanging() is None

    job = Job(2, (JobSpec("succeed", 5),), clock, Trace(lambda: clock.now_us), {})
    settled = weakref.ref(job())
    assert job.pending
    clock.advance(0.005)
    assert not job.pending  # settled: the subject's to keep or drop (and to be judged for)
    clock.created.clear()  # the fired call still names it
    gc.collect()
    assert settled() is None


def test_a_dropped_failure_is_still_reported_as_unhandled() -> None:
    # Holding pending attempts must not hide a failed Deferred the subject drops.
    class Dropper:
        def __init__(self, clock: Any) -> None:
            pass

        def submit(self, job: Any) -> defer.Deferred[Any]:
            job()  # the attempt's Deferred is dropped; when it fails, nobody handles it
            return defer.succeed(None)

    run = run_schedule(Target(build=Dropper), Schedule((Submit(0, 0, JobSpec("fail", 5)),), ClockPolicy()))
    assert "errors.unhandled" in [v.invariant for v in check(run)]
