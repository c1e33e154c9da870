"""The seventh round's direct paths on a run's hot path give exactly what the paths they stand in for give.

Events appended where they happen (not through ``Trace.record``), jobs and
delayed calls made without their class's ``__init__``, the drain horizon
worked out only when a drain reaches past its floor, and the checkpoint's
test made in ``_play`` before calling it. Each is compared with the path it
replaces over many schedules of many targets, and each comparison is shown
to catch a wrong shortcut (a mutant of the shortcut's own source). The
pattern of ``tests/test_run_hot_paths.py``.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from harness import Target, load_target, run_schedule
from harness.errors import HarnessError
from harness.model.schedule import Cancel, JobSpec, Schedule, Submit
from harness.model.trace import EventKind, Trace
from harness.run import jobs as jobs_module
from harness.run import runner, steps
from harness.run.clock import FaultClock, _FaultDelayedCall
from harness.run.jobs import Job, _Pending
from harness.run.session import RunSession
from harness.search.generate import Examples
from scenarios.pools import SemaphorePool

#: Targets whose runs take every path: results, failures (declared subclasses, wrappers), cancels,
#: retries, hostile cancellers, subject timers among the jobs', periodic work.
_TARGETS = (
    "scenarios.pools:semaphore_pool",
    "scenarios.cancel:ticket_pool",
    "scenarios.error_paths:tee_pool",
    "scenarios.heartbeat:heartbeat",
    "scenarios.thirdparty.twisted_prims:gather_results",
    "scenarios.thirdparty.twisted_prims:add_timeout",
    "scenarios.retry:backoff_retry",
    "scenarios.priority:priority_pool",
)


def _lines(per_target: int = 25, seed: int = 11) -> list[str]:
    """Every line of the traces of ``per_target`` generated schedules of each target (or the error a run raised)."""
    out: list[str] = []
    targets = [(name, load_target(name)) for name in _TARGETS]  # imported before the session, as a campaign does
    with RunSession():
        for name, target in targets:
            examples = Examples(target.default_menu(), seed)
            for _ in range(per_target):
                schedule = next(examples)
                try:
                    lines = run_schedule(target, schedule).trace.lines()
                except HarnessError as exc:
                    lines = [type(exc).__name__, str(exc)]
                out += [name, *lines, ""]
    return out


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# -- events appended where they happen, as Trace.record appends them ------------------------------------------

#: ``if not trace.closed: trace.raw.append((trace.stamps.now_us, KIND, JOB, ATTEMPT, DETAIL))``, as written at
#: each site that appends directly (``Trace.record``'s docstring).
_DIRECT = re.compile(
    r"if not (?P<trace>\w+)\.closed:(?P<comment>[^\n]*)\n(?P<indent>\s+)(?P=trace)\.raw\.append\(\((?P=trace)\.stamps\.now_us, "
    r"(?P<kind>[\w.]+), (?P<job>[\w.]+), (?P<attempt>[\w.]+), (?P<detail>[^\n]+?)\)\)$",
    re.MULTILINE,
)

#: Where events are appended directly: (module, owner's name in it or None, function).
_SITES = (
    (steps, None, "submitter"),
    (steps, None, "cancel_job"),
    (jobs_module, "Job", "__call__"),
    (jobs_module, "Job", "_settle"),
    (jobs_module, "_Pending", "cancel"),
)


def _through_record(match: re.Match[str]) -> str:
    """The site's append, written as the ``Trace.record`` call it stands in for (same line count)."""
    return f"if True:{match['comment']}\n{match['indent']}{match['trace']}.record({match['kind']}, {match['job']}, {match['detail']}, {match['attempt']})"


def _recompiled(module: Any, owner: str | None, name: str, rewrite: Any) -> Any:
    """``module.[owner.]name`` compiled again from its source, rewritten by ``rewrite`` (text -> text)."""
    holder = getattr(module, owner) if owner else module
    source = textwrap.dedent(inspect.getsource(getattr(holder, name)))
    namespace = dict(vars(module))
    exec(compile(rewrite(source), module.__file__, "exec"), namespace)
    return namespace[name]


def _patch_sites(monkeypatch: pytest.MonkeyPatch, rewrite: Any) -> int:
    """Every direct site rewritten by ``rewrite``; returns how many appends the sources hold."""
    found = 0
    for module, owner, name in _SITES:
        holder = getattr(module, owner) if owner else module
        found += len(_DIRECT.findall(inspect.getsource(getattr(holder, name))))
        function = _recompiled(module, owner, name, rewrite)
        monkeypatch.setattr(holder, name, function)
        if owner is None:  # the runner holds these by name too
            monkeypatch.setattr(runner, name, function, raising=False)
    return found


def test_events_appended_where_they_happen_are_what_trace_record_appends(monkeypatch) -> None:
    direct = _lines(12)
    found = _patch_sites(monkeypatch, lambda source: _DIRECT.sub(_through_record, source))
    assert found == 11  # every site is rewritten: the comparison is not vacuous
    assert _lines(12) == direct


#: The digest of ``_lines()`` computed with ``main`` at 60dcd27, where every event went through ``Trace.record``.
_MAIN_DIGEST = "273f4414106396d2dcffb202c50e56b401e50568cdd1b2ad8dad289ccef3ebd0"


def test_the_direct_appends_record_the_traces_of_main() -> None:
    """The digest holds each direct append's fields in ``Trace.record``'s order (time, kind, job, attempt,
    detail), which the comparison above cannot (it rewrites a swapped site into a swapped call). A
    deliberate change of what these runs record changes it too: compute it again then, on the code
    before the change."""
    assert _digest(_lines()) == _MAIN_DIGEST


def test_the_digest_catches_a_site_that_swaps_two_fields(monkeypatch) -> None:
    original = "append((trace.stamps.now_us, _JOB_START, self.id, attempt, kind))"
    swapped = "append((trace.stamps.now_us, _JOB_START, self.id, kind, attempt))"
    monkeypatch.setattr(Job, "__call__", _recompiled(jobs_module, "Job", "__call__", lambda s: s.replace(original, swapped)))
    assert _digest(_lines()) != _MAIN_DIGEST


def test_direct_appends_stamp_a_frozen_trace_at_its_time_and_record_nothing_once_it_is_closed() -> None:
    clock = FaultClock()
    trace = Trace.of_clock(clock)
    job = Job(3, (JobSpec("succeed", 5), JobSpec("value")), clock, trace, {})
    first = job()
    clock.run_until(2_000)
    trace.freeze()  # stamped at 2ms from now on, wherever the clock goes
    clock.run_until(10_000)  # the attempt settles at 5ms
    assert first.called
    job()  # a value at once
    assert [(e.t_us, e.kind, e.attempt) for e in trace] == [
        (0, EventKind.JOB_START, 0),
        (2_000, EventKind.JOB_FINISH, 0),
        (2_000, EventKind.JOB_START, 1),
        (2_000, EventKind.JOB_FINISH, 1),
    ]
    trace.close()
    hung = Job(4, JobSpec("hang"), clock, trace, {})
    d = hung()
    d.addErrback(lambda failure: None)
    d.cancel()
    steps.cancel_job({}, trace, 9)  # (a skip goes through record: nothing either)
    assert len(trace) == 4


def _submit_cancel_and_settle_after_close() -> Trace:
    """A run's submit, a caller's Deferred firing (a value, then a failure) and a cancel, all after its
    trace was closed (what a coroutine's ``finally`` does as the teardown lets it go): the sites of
    ``steps`` (``submitter``'s submit and its callback for what a caller received, ``cancel_job``)."""
    clock = FaultClock()
    trace = Trace.of_clock(clock)
    target = Target(build=lambda clock: SemaphorePool(clock, 2))
    run = runner.Run(target=target, schedule=Schedule(()), trace=trace, clock=clock, subject=target.build(clock))
    submit = steps.submitter(run, target.error_types)
    trace.close()
    submit(Submit(0, 0, JobSpec("succeed", 5)))
    submit(Submit(0, 1, JobSpec("fail", 5)))
    submit(Submit(0, 2, JobSpec("hang")))
    clock.run_until(10_000)
    steps.cancel_job(run.handles, trace, 2)
    assert set(run.handles) == {0, 1, 2} and all(d.called for d in run.handles.values())  # (every site was reached)
    return trace


def test_the_submit_result_and_cancel_sites_record_nothing_once_the_trace_is_closed() -> None:
    assert len(_submit_cancel_and_settle_after_close()) == 0


@pytest.mark.parametrize(
    "name, old",
    [
        ("submitter", "        if not trace.closed:\n            trace.raw.append((trace.stamps.now_us, _SUBMIT"),
        ("submitter", "            if not trace.closed:\n                trace.raw.append((trace.stamps.now_us, _RESULT"),
        ("submitter", "            if not trace.closed:\n                trace.raw.append((trace.stamps.now_us, _FAILURE"),
        ("cancel_job", "    if not trace.closed:  # trace.record(_CANCEL, job)"),
    ],
    ids=["submit", "result", "failure", "cancel"],
)
def test_the_closed_check_of_the_steps_sites_catches_one_that_appends_regardless(monkeypatch, name: str, old: str) -> None:
    assert inspect.getsource(getattr(steps, name)).count(old) == 1
    new = old.replace("if not trace.closed:", "if True:")
    monkeypatch.setattr(steps, name, _recompiled(steps, None, name, lambda source: source.replace(old, new)))
    assert len(_submit_cancel_and_settle_after_close()) > 0


def _direct_appends(root: Path) -> dict[str, int]:
    """How many events each module under ``root`` appends directly (``.raw.append(``), but ``Trace.record``'s."""
    counts = {}
    for path in sorted(root.rglob("*.py")):
        count = path.read_text(encoding="utf-8").count(".raw.append(")
        if count and path.name != "trace.py":
            counts[path.relative_to(root).as_posix()] = count
    return counts


def test_every_direct_append_in_the_harness_is_a_site_these_tests_hold() -> None:
    """Events appended anywhere but in ``Trace.record`` and the functions of ``_SITES`` would be held to
    nothing here (a new site with its fields in another order, or no closed check, on a path these
    schedules rarely take): every one is in a site, and every site's appends are in the checked form."""
    held = sum(inspect.getsource(getattr(getattr(m, o) if o else m, n)).count(".raw.append(") for m, o, n in _SITES)
    assert held == 11
    assert _direct_appends(Path(steps.__file__).parent.parent) == {"run/jobs.py": 7, "run/steps.py": 4}


def test_the_scan_catches_a_direct_append_outside_the_sites(tmp_path) -> None:
    package = Path(steps.__file__).parent.parent
    for name in ("run/jobs.py", "run/steps.py", "run/clock.py", "model/trace.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text((package / name).read_text(encoding="utf-8"), encoding="utf-8")
    assert _direct_appends(tmp_path) == {"run/jobs.py": 7, "run/steps.py": 4}
    with (tmp_path / "run/clock.py").open("a", encoding="utf-8") as out:
        out.write("\n\ndef _tick(trace):\n    trace.raw.append((trace.stamps.now_us, 'tick', -1, 0, ''))\n")
    assert _direct_appends(tmp_path) != {"run/jobs.py": 7, "run/steps.py": 4}


@pytest.mark.parametrize("site", ["Job.__call__", "_Pending.cancel"])
def test_the_closed_check_catches_a_site_that_appends_regardless(monkeypatch, site: str) -> None:
    owner, name = site.split(".")
    unchecked = _recompiled(jobs_module, owner, name, lambda s: s.replace("if not trace.closed:", "if True:"))
    monkeypatch.setattr(getattr(jobs_module, owner), name, unchecked)
    clock = FaultClock()
    trace = Trace.of_clock(clock)
    trace.close()
    d = Job(4, JobSpec("hang"), clock, trace, {})()
    d.addErrback(lambda failure: None)
    d.cancel()
    assert len(trace) > 0


# -- jobs made by a run's submit, without Job.__init__ --------------------------------------------------------


def _fields(job: Job) -> dict[str, Any]:
    return {name: getattr(job, name) for name in Job.__slots__}


class _Keeping:
    """A subject whose ``submit`` takes a job and neither calls nor drops it: the job stays as it was made."""

    def submit(self, job: object) -> defer.Deferred[Any]:
        return defer.Deferred()


def _submitted(submitter: Any, ops: list[Submit], errors: dict[str, type[BaseException]]) -> tuple[runner.Run, FaultClock, Trace]:
    """A run whose ``submitter`` (``steps.submitter`` or a mutant of it) applied ``ops`` to a ``_Keeping``."""
    clock = FaultClock()
    trace = Trace.of_clock(clock)
    target = Target(build=lambda clock: _Keeping())
    run = runner.Run(target=target, schedule=Schedule(()), trace=trace, clock=clock, subject=target.build(clock))
    submit = submitter(run, errors)
    for op in ops:
        submit(op)
    return run, clock, trace


def _job_pairs(submitter: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    errors = {"ValueError": ValueError}
    pairs = []
    specs = (JobSpec("succeed", 3), JobSpec("fail", 1, "ValueError"), JobSpec("hang"))
    for job_id, key in ((0, 0), (7, 2), (41, 0)):
        for then in ((), specs[1:], specs[2:]):
            run, clock, trace = _submitted(submitter, [Submit(0, job_id, specs[0], then=then, key=key)], errors)
            made = run.jobs[job_id]
            written = Job(job_id, (specs[0], *then) if then else specs[0], clock, trace, errors, key)
            pairs.append((_fields(made), _fields(written)))
    return pairs


def test_a_submit_makes_the_job_its_class_makes() -> None:
    for made, written in _job_pairs(steps.submitter):
        assert made == written
        assert made["pending"] == {} and made["pending"] is not written["pending"]


@pytest.mark.parametrize(
    "old, new",
    [("job.calls = 0", "job.calls = 1"), ("job.then = op.then", "job.then = ()"), ("job.key = op.key", "job.key = 0"),
     ("job._errors = errors", "job._errors = {}")],
)
def test_the_submitted_job_comparison_catches_a_wrong_field(old: str, new: str) -> None:
    mutant = _recompiled(steps, None, "submitter", lambda s: s.replace(old, new))
    assert any(made != written for made, written in _job_pairs(mutant))


def test_a_submitted_job_keeps_no_pending_dict_of_another() -> None:
    run, _, _ = _submitted(steps.submitter, [Submit(0, 1, JobSpec("hang")), Submit(0, 2, JobSpec("hang"))], {})
    a, b = run.jobs[1], run.jobs[2]
    a()
    assert list(a.pending) == [0] and b.pending == {}
    assert isinstance(a.pending[0], defer.Deferred)


# -- delayed calls made without __init__ ----------------------------------------------------------------------


def _call_fields(call: _FaultDelayedCall) -> dict[str, Any]:
    return {k: v for k, v in vars(call).items() if k not in ("seq", "key", "due_us", "stamp", "late_us", "creator")}


def test_a_call_the_clock_makes_has_what_its_class_makes(monkeypatch) -> None:
    for debug in (False, True):
        monkeypatch.setattr(_FaultDelayedCall, "debug", debug)
        clock = FaultClock()
        call = clock.callLater(1, print, "a", sep="")
        written = _FaultDelayedCall(clock, print, ("a",), {"sep": ""})
        assert _call_fields(call) == _call_fields(written)
        assert call.late_us == 0 and call.getTime() == 1.0 and call.active()
        if debug:  # the stack down to callLater (as __init__ kept it: neither itself nor _new_call)
            assert call.creator[-1].split("\n")[0].endswith("in callLater")
            assert "test_a_call_the_clock_makes_has_what_its_class_makes" in call.creator[-2]
            assert not any(line.split("\n")[0].endswith(("in _new_call", "in __init__")) for line in call.creator)


# -- the drain horizon, worked out only past its floor --------------------------------------------------------


def _eager(self: runner._DrainHorizon, clock: FaultClock, start_us: int, checkpoint: Any) -> None:
    """The drain as it was: to the whole horizon at once."""
    clock.drain(start_us + self.whole_ms() * 1000, checkpoint)


def _long_schedules() -> list[Schedule]:
    """Schedules whose drain reaches past the floor (10 s): serial jobs longer than it, some hanging."""
    out = []
    for count in range(1, 7):
        ops = tuple(Submit(i, i, JobSpec("succeed" if i % 3 else "hang", 4_000 * (1 + i % 4))) for i in range(count * 2))
        out.append(Schedule(ops + (Cancel(count * 2, 0),)))
    return out


def _drain_traces() -> list[Any]:
    pool = Target(build=lambda clock: SemaphorePool(clock, 1), limit=1)
    out = [run_schedule(pool, schedule).trace.lines() for schedule in _long_schedules()]
    return out + _lines(6)


def test_a_drain_past_its_floor_goes_on_to_the_whole_horizon(monkeypatch) -> None:
    lazy = _drain_traces()
    worked_out: list[int] = []
    whole = runner._DrainHorizon.whole_ms
    monkeypatch.setattr(runner._DrainHorizon, "whole_ms", lambda self: worked_out.append(1) or whole(self))
    assert _drain_traces() == lazy
    assert worked_out  # some drains reached past the floor: the comparison is not vacuous
    monkeypatch.setattr(runner._DrainHorizon, "drain", _eager)
    assert _drain_traces() == lazy


def test_the_drain_comparison_catches_a_drain_that_stops_at_the_floor(monkeypatch) -> None:
    lazy = _drain_traces()
    stops = _recompiled(runner, "_DrainHorizon", "drain", lambda s: s.replace("and clock.calls:", "and False:"))
    monkeypatch.setattr(runner._DrainHorizon, "drain", stops)
    assert _drain_traces() != lazy
