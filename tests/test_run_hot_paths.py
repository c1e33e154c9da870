"""The fifth round's shortcuts on a run's hot path give exactly what the paths they stand in for give.

Each is compared with the path it replaces over many schedules of many
targets (traces must be equal event for event), and each comparison is
shown to catch a wrong shortcut: a mutant of the shortcut's own source
(``_mutated``), or a wrong stand-in, must make the comparison differ.
The pattern of ``tests/test_run_fast_paths.py``.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from harness import Target, load_target, run_schedule
from harness.errors import TargetError
from harness.model.schedule import Cancel, JobSpec, Schedule, Submit
from harness.model.trace import EventKind
from harness.run import clock as clock_module
from harness.run import runner, steps
from harness.run.clock import FaultClock
from harness.search.generate import Examples
from scenarios.pools import SemaphorePool
from test_run_fast_paths import traces


def _mutated(owner: Any, name: str, old: str, new: str) -> Any:
    """``owner.name`` (a function of a module or class) compiled again from its source with ``old``
    replaced by ``new``: a mutant of the shortcut alone, in a copy of its module's namespace (so only
    what the test patches changes)."""
    source = textwrap.dedent(inspect.getsource(getattr(owner, name)))
    assert source.count(old) == 1, f"the mutation's text is not (once) in {name}: {old!r}"
    module = inspect.getmodule(owner)
    namespace = dict(vars(module))
    exec(compile(source.replace(old, new), module.__file__, "exec"), namespace)
    return namespace[name]


# -- a job's settle timer: the clock's quiet call, not callLater told to the recorder --------------------------

#: Targets whose subjects set timers of their own among the jobs' (their labels number every call).
_TIMED = (
    "scenarios.thirdparty.twisted_prims:add_timeout",
    "scenarios.heartbeat:heartbeat",
    "scenarios.pools:semaphore_pool",
    "scenarios.error_paths:tee_pool",
    "scenarios.cancel:ticket_pool",
    "scenarios.single_flight:single_flight",
)


def _told(self: FaultClock, delay: float, callable: Callable[..., Any], *args: object) -> Any:
    """The path a job's timer took before: ``callLater``, told to ``on_timer`` (whose recorder ignores it)."""
    return self.callLater(delay, callable, *args)


def test_a_quiet_call_is_numbered_ordered_and_fired_as_calllater_makes_it_but_never_told() -> None:
    told: list[tuple[str, int]] = []
    loud, quiet = FaultClock("lifo", jitter=0.003), FaultClock("lifo", jitter=0.003)
    fired: dict[str, list[int]] = {"loud": [], "quiet": []}
    for clock, name in ((loud, "loud"), (quiet, "quiet")):
        clock.on_timer = lambda what, call, name=name: told.append((name, call.seq))
        for n, delay in enumerate((0.002, 0.001, 0.002, 0.0, 0.0015)):
            make = clock.callLater if name == "loud" or n % 2 else clock.call_quietly
            make(delay, fired[name].append, n)
        cancelled = clock.callLater(0.001, fired[name].append, 99) if name == "loud" else clock.call_quietly(0.001, fired[name].append, 99)
        cancelled.cancel()
    assert [(c.seq, c.key, c.due_us, c.late_us) for c in loud.created] == [
        (c.seq, c.key, c.due_us, c.late_us) for c in quiet.created
    ]
    loud.run_until(10_000)
    quiet.run_until(10_000)
    assert fired["loud"] == fired["quiet"] == [3, 1, 4, 2, 0]
    # The quiet clock told its hook only of its loud calls (numbers 2 and 4), set and fired.
    assert sorted({seq for name, seq in told if name == "quiet"}) == [2, 4]
    assert sorted({seq for name, seq in told if name == "loud"}) == [1, 2, 3, 4, 5, 6]


def test_jobs_quiet_timers_record_what_timers_told_to_the_recorder_did(monkeypatch) -> None:
    targets = [load_target(name) for name in _TIMED]
    quiet = traces(targets, 20)
    monkeypatch.setattr(FaultClock, "call_quietly", _told)
    assert traces(targets, 20) == quiet
    timers = sum(1 for kind, events in quiet if kind == "trace" for event in events if event.kind == EventKind.TIMER_SET)
    assert timers > 50  # subjects' own timers are numbered among the jobs': the comparison is not vacuous


def test_the_quiet_timer_comparison_catches_a_call_left_unnumbered(monkeypatch) -> None:
    targets = [load_target(name) for name in _TIMED[:2]]
    with monkeypatch.context() as patched:
        patched.setattr(FaultClock, "call_quietly", _told)
        told = traces(targets, 8)
    # A mutant: the job's call takes the number the next call will take again (seq not counted).
    unnumbered = _mutated(clock_module.FaultClock, "_new_call", "self._seq = seq = self._seq + 1", "seq = self._seq + 1")

    def mutant(self: FaultClock, delay: float, callable: Callable[..., Any], *args: object) -> Any:
        call = unnumbered(self, delay, callable, args, {})
        call.quiet = True
        return call

    monkeypatch.setattr(FaultClock, "call_quietly", mutant)
    assert traces(targets, 8) != told


# -- what a caller received: one callback with _on_failure inlined, against addCallbacks(on_result, on_failure) --


class _Subclassed(Deferred):  # type: ignore[type-arg]
    """A Deferred subclass: the runner watches it through ``addCallbacks`` with ``on_result`` and
    ``on_failure`` (``_on_failure`` in full), the path ``received`` inlines for a plain Deferred."""


class Rejected(Exception):
    pass


class SubRejected(Rejected):
    """Injected by jobs: a subclass of a declared type, so each of its failures is followed by ``error.is``."""


def _handing_back(target: Target, outer: type[Deferred]) -> Target:  # type: ignore[type-arg]
    """``target`` whose callers get a fresh ``outer`` chained to the Deferred its subject returned:
    the same outcomes at the same moments, watched through a plain Deferred or a subclass."""
    submits = target.job_submitter

    def adapter(subject: Any, job: Any, priority: int) -> Any:
        d = submits(subject)(job, priority)
        if not isinstance(d, Deferred):
            return d
        handed = outer()
        d.chainDeferred(handed)
        return handed

    return dataclasses.replace(target, submit=adapter)


def _watched_targets() -> list[Target]:
    build = lambda clock: SemaphorePool(clock, 2)  # noqa: E731
    return [
        Target(build=build, limit=2, rejects=(Rejected,), errors=(SubRejected,)),
        load_target("scenarios.thirdparty.twisted_prims:gather_results"),  # wraps FirstError
        load_target("scenarios.error_paths:tee_pool"),
        load_target("scenarios.cancel:ticket_pool"),
        load_target("scenarios.priority:priority_pool"),
    ]


def _watched(per_target: int = 15) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    targets = _watched_targets()
    plain = traces([_handing_back(t, Deferred) for t in targets], per_target)
    subclassed = traces([_handing_back(t, _Subclassed) for t in targets], per_target)
    return plain, subclassed


def test_received_records_what_on_result_and_on_failure_record() -> None:
    plain, subclassed = _watched()
    assert plain == subclassed
    events = [event for kind, events in plain if kind == "trace" for event in events]
    kinds = {event.kind for event in events}
    assert {EventKind.RESULT, EventKind.FAILURE, EventKind.ERROR_IS} <= kinds  # every branch is taken
    carried = [e for e in events if e.kind == EventKind.FAILURE and "FirstError" not in e.detail]
    assert carried and not any("FirstError" in e.detail for e in events if e.kind == EventKind.FAILURE)


@pytest.mark.parametrize(
    "old, new",
    [
        ("detail))\n            _note_declared(trace, job_id, exc, declared)\n", "detail))\n"),  # error.is forgotten
        ("            if target.wraps:", "            if False:"),  # a wrapper recorded as itself
        ("detail = describe_result(result)", "detail = str(result)"),  # not bounded, not quoted
        ("describe_error(exc, result)", "str(exc)"),  # the message alone
    ],
)
def test_the_received_comparison_catches_a_wrong_inlining(monkeypatch, old: str, new: str) -> None:
    monkeypatch.setattr(runner, "submitter", _mutated(steps, "submitter", old, new))
    plain, subclassed = _watched()
    assert plain != subclassed


# -- a cancel straight to cancel_job, anything else through apply ----------------------------------------------


class _Cancel(Cancel):
    """A subclass of ``Cancel``: ``apply`` takes it (the runner's direct call is for the exact type)."""

    __slots__ = ()


def _cancel_schedules() -> list[Schedule]:
    examples = Examples(load_target("scenarios.cancel:ticket_pool").default_menu(), 3)
    out = []
    while len(out) < 40:
        schedule = next(examples)
        if not schedule.ops:
            continue
        # Also a cancel of a job never submitted (cancel.skip), by each path.
        ops = (*schedule.ops, Cancel(schedule.ops[-1].at_ms, 999))
        out.append(dataclasses.replace(schedule, ops=ops))
    return out


def _as_subclass(schedule: Schedule) -> Schedule:
    ops = tuple(_Cancel(op.at_ms, op.job, op.after_rounds) if type(op) is Cancel else op for op in schedule.ops)
    return dataclasses.replace(schedule, ops=ops)


def _canceltraces(schedules: list[Schedule]) -> list[Any]:
    target = load_target("scenarios.cancel:ticket_pool")
    return [list(run_schedule(target, schedule).trace) for schedule in schedules]


def test_a_cancel_applied_directly_records_what_apply_records() -> None:
    schedules = _cancel_schedules()
    direct = _canceltraces(schedules)
    assert direct == _canceltraces([_as_subclass(s) for s in schedules])
    kinds = {event.kind for events in direct for event in events}
    assert {EventKind.CANCEL, EventKind.CANCEL_SKIP} <= kinds


def test_the_cancel_comparison_catches_a_wrong_direct_call(monkeypatch) -> None:
    schedules = _cancel_schedules()[:10]
    honest = _canceltraces([_as_subclass(s) for s in schedules])
    monkeypatch.setattr(runner, "_play", _mutated(runner, "_play", "cancel_job(handles, trace, op.job)", "None"))
    assert _canceltraces(schedules) != honest


# -- a job settling: as its spec says ------------------------------------------------------------------------


def test_a_settling_attempt_behaves_as_its_spec_says() -> None:
    from harness.model.trace import Trace
    from harness.run.jobs import Job

    specs = (JobSpec("succeed", 1), JobSpec("fail", 1), JobSpec("succeed", 1), JobSpec("fail", 2))
    for count in range(1, len(specs) + 1):
        clock = FaultClock()
        trace = Trace.of_clock(clock)
        job = Job(7, specs[:count], clock, trace, {})
        outcomes: list[str] = []
        for _ in range(6):
            job().addBoth(lambda r: outcomes.append("f" if isinstance(r, Failure) else r))
            clock.run_until(clock.now_us + 5_000)
        expected = [job.spec(attempt).kind for attempt in range(6)]
        assert [e.kind for e in trace if e.kind in (EventKind.JOB_FINISH, EventKind.JOB_FAIL)] == [
            EventKind.JOB_FINISH if kind == "succeed" else EventKind.JOB_FAIL for kind in expected
        ]
        assert outcomes == [job.result(a) if kind == "succeed" else "f" for a, kind in enumerate(expected)]


# -- the plain-Deferred test first in submit ---------------------------------------------------------------------


def test_a_submit_that_returns_no_deferred_is_still_refused() -> None:
    class Returns:
        def __init__(self, clock: Any) -> None:
            pass

        def submit(self, job: Any) -> Any:
            return "not a Deferred"

    with pytest.raises(TargetError, match="returned 'not a Deferred' for job 0, not a Deferred"):
        run_schedule(Target(build=Returns), Schedule((Submit(0, 0),)))
