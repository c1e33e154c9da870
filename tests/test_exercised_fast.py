"""The Tally's per-example passes (``expose``, ``schedule_faults``) give what the plain passes they replaced gave.

``harness fuzz`` counts what every search example exercised (``Tally``, the
campaign's ``on_run``), so both passes run once per example and were made
cheaper: kinds looked up once, counts in locals, each job behaviour read
once. The plain versions are kept below as the model; over many runs of
many catalog subjects (cancels, retries, periodic work, stops, wall-clock
jumps, subject timers) both must agree exactly, and a fast pass with one
kind misfiled is caught.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness import load_target
from harness.model.schedule import Cancel, Jump, Schedule, Start, Submit
from harness.model.trace import Event
from harness.run.session import RunSession
from harness.search import exercised as X
from harness.search.generate import Examples
from harness.search.verdict import judge
from scenarios import CATALOG

Iterable = Any


def reference_expose(events: Iterable[Event]) -> Exposure:
    """One pass over a trace: the facts the exercise tables read."""
    out = X.Exposure()
    waiting: set[int] = set()
    started: set[int] = set()
    fired: set[int] = set()
    cancelled: set[int] = set()
    outstanding: set[int] = set()
    running: dict[tuple[int, int], int] = {}
    stopped = failed = False
    failed_last: set[int] = set()  # jobs whose last attempt failed
    last_us = 0
    just_submitted = None
    for event in events:
        kind, job = event.kind, event.job
        if kind.startswith("timer."):
            continue  # the subject's own timers: not what the tables ask about, and no wait for a slot
        last_us = event.t_us
        # A job is recorded as submitted just before the subject gets it: it waited only if
        # something else happened before it started.
        if not (kind == X._JOB_START and job == just_submitted):
            out.peak_waiting = max(out.peak_waiting, len(waiting))
        just_submitted = job if kind == X._SUBMIT else None
        if kind == X._SUBMIT or kind == X._START:
            out.submits += 1
            outstanding.add(job)
            if kind == X._SUBMIT:
                waiting.add(job)
            out.submit_after_stop |= stopped
            out.submit_after_fail |= failed
            out.peak_outstanding = max(out.peak_outstanding, len(outstanding))
        elif kind == X._JOB_START:
            out.starts += 1
            out.retried |= event.attempt > 0 and job in failed_last  # a periodic call after a success is no retry
            started.add(job)
            waiting.discard(job)
            running[(job, event.attempt)] = event.t_us
        elif kind in X.ENDS:
            began = running.pop((job, event.attempt), None)
            if began is not None:
                out.longest_attempt_us = max(out.longest_attempt_us, event.t_us - began)
            if kind == X._JOB_FAIL:
                out.fails += 1
                failed = True
                failed_last.add(job)
            else:
                failed_last.discard(job)
        elif kind in X.FIRES:
            if job >= 0:
                out.fired += 1
                fired.add(job)
                waiting.discard(job)
                outstanding.discard(job)
        elif kind == X._CANCEL:
            out.cancels += 1
            if job in cancelled:
                out.cancel_twice = True
            elif job in fired:
                out.cancel_late = True
            elif any(key[0] == job for key in running):
                out.cancel_running = True
            elif job not in started:
                out.cancel_waiting = True
            out.cancel_with_queue |= bool(waiting - {job})
            cancelled.add(job)
        elif kind == X._CALL:
            out.calls += 1
        elif kind == X._STOP:
            out.stops += 1
            out.stop_scheduled |= event.detail == "scheduled"
            out.stop_busy |= bool(outstanding)
            stopped = True
    out.peak_waiting = max(out.peak_waiting, len(waiting))
    for began in running.values():
        out.longest_attempt_us = max(out.longest_attempt_us, last_us - began)
    return out



def reference_schedule_faults(schedule: Schedule) -> set[str]:
    """The fault keys a schedule contains (what it throws at the subject)."""
    found: set[str] = set()
    for op in schedule.ops:
        if isinstance(op, (Submit, Start)):
            found.add("submit" if isinstance(op, Submit) else "periodic")
            if op.then:
                found.add("job.then")
            for spec in op.specs:
                found.add("job." + spec.kind)
                if spec.fails:
                    found.add(X.ERROR_PREFIX + spec.error)
                if spec.canceller_raises:
                    found.add("canceller_raises")
        elif isinstance(op, Cancel):
            found.add("cancel")
        elif isinstance(op, Jump):
            found.add("jump.forward" if op.delta_ms >= 0 else "jump.backward")
    policy = schedule.clock
    if policy.tie_break != "fifo":
        found.add("ties." + policy.tie_break)
    if policy.step_ms:
        found.add("stride")
    if policy.jitter_ms:
        found.add("jitter")
    return found



#: Every fifth scenario of the catalog (third-party ones aside): pools, periodic loops, breakers, retries,
#: timeouts, wall-clock subjects, single-flight, queues.
TARGETS = [s.target for s in CATALOG if "thirdparty" not in s.target and "review" not in s.target][::5]


def _runs(per_target: int) -> list[tuple[Schedule, Any]]:
    found = []
    with RunSession():
        for name in TARGETS:
            target = load_target(name)
            examples = Examples(target.default_menu(), 3)
            for _ in range(per_target):
                schedule = next(examples)
                run, _violations = judge(target, schedule)
                examples.feedback(run)
                found.append((schedule, run))
    return found


@pytest.fixture(scope="module")
def runs() -> list[tuple[Schedule, Any]]:
    return _runs(25)


def test_the_fast_passes_agree_with_the_plain_ones(runs: list[tuple[Schedule, Any]]) -> None:
    cancels = retries = stops = timers = 0
    for schedule, run in runs:
        assert X.expose(run.trace.events) == reference_expose(run.trace.events)
        assert X.schedule_faults(schedule) == reference_schedule_faults(schedule)
        exposure = reference_expose(run.trace.events)
        cancels += exposure.cancel_running or exposure.cancel_waiting
        retries += exposure.retried
        stops += exposure.stops > 0
        timers += any(event.kind.startswith("timer.") for event in run.trace.events)
    assert cancels and retries and stops and timers  # the runs exercise every branch that matters


def test_plain_string_kinds_read_alike() -> None:
    """A trace read from a file holds kinds as plain text: the same exposure, unknown kinds included."""
    target = load_target(TARGETS[0])
    run, _ = judge(target, next(Examples(target.default_menu(), 1)))
    plain = [Event(e.t_us, str(e.kind), e.job, e.attempt, e.detail) for e in run.trace.events]
    odd = plain + [Event(plain[-1].t_us, "timer.other", -1), Event(plain[-1].t_us, "something.new", 0)]
    assert X.expose(plain) == reference_expose(plain) == X.expose(run.trace.events)
    assert X.expose(odd) == reference_expose(odd)


def test_a_fast_pass_with_one_kind_misfiled_is_caught(runs: list[tuple[Schedule, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above would catch a wrong shortcut: results filed as no-kind-in-particular."""
    monkeypatch.setitem(X._ROLES, "result", X._OTHER)
    assert any(X.expose(run.trace.events) != reference_expose(run.trace.events) for _, run in runs)


def test_a_fault_key_memo_gone_wrong_is_caught(runs: list[tuple[Schedule, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(X._JOB_KEYS, "fail", "job.failed")
    assert any(X.schedule_faults(schedule) != reference_schedule_faults(schedule) for schedule, _ in runs)


#: Mutants of ``expose``'s fast paths (source text replaced, compiled beside the real one): each must
#: give another exposure than the plain pass on some run, or the comparison above could not see it.
EXPOSE_MUTANTS = {
    "a job start right after its own submit counts as a wait": (
        "if job != just_submitted and len(waiting) > peak_waiting:", "if len(waiting) > peak_waiting:"
    ),
    "a cancel never finds its job running": ("if key[0] == job:", "if key[0] == -job - 100:"),
    "periodic work counts as waiting": ("            else:\n                just_submitted = None\n",
                                        "            else:\n                just_submitted = None\n                waiting.add(job)\n"),
    "a submit does not note the job it hands over": ("                just_submitted = job\n", "                just_submitted = None\n"),
}


@pytest.mark.parametrize("mutant", sorted(EXPOSE_MUTANTS))
def test_a_wrong_fast_path_in_expose_is_caught(runs: list[tuple[Schedule, Any]], mutant: str) -> None:
    import inspect
    import textwrap

    before, after = EXPOSE_MUTANTS[mutant]
    source = textwrap.dedent(inspect.getsource(X.expose))
    assert source.count(before) == 1, f"the mutant's text is gone from expose: {before!r}"
    namespace = dict(vars(X))
    exec(compile(source.replace(before, after), "<mutant expose>", "exec"), namespace)
    wrong = namespace["expose"]
    assert any(wrong(run.trace.events) != reference_expose(run.trace.events) for _, run in runs)
