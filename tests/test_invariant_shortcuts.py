"""The invariants' shortcuts are sound: each check answers as its full walk does, violation for violation.

Several checks prove from what the facts pass gathered that a run cannot break
them and skip their walk (docs/benchmarks.md, "Third round"): ``concurrency.limit``
and ``key_limit`` (the most attempts ever running at once is within the limit),
``errors.own_result`` (no firing names another job's attempt), ``completion.once``
(no AlreadyCalledError among the kinds it reads), the cancellation checks (only
cancelled jobs are looked at), ``errors.propagate`` (jobs that pass one of
``_judge``'s verdicts without more work), the FIFO sweep (queues instead of heaps)
and the stranded jobs (stuck attempts counted, not listed). The references below
are those checks as they were before the shortcuts, a walk over every job or
event; the test runs both over schedules of every scenario of the catalog, buggy
and correct, and requires the same answer (invariant, message, events, jobs,
time) every time, and that the comparison saw each shortcut's invariant fire.

The fourth round (docs/benchmarks.md) added: the facts pass with a branch per
common kind and the attempts it saw running at the end (compared with the plain
pass below, field by field, and with a walk over every attempt); the FIFO check
in one pass in submission order (``_out_of_turn``, compared with the full walk and
the queue sweep it replaced); the cancel that fired as promised settled without
the walk (``cancellation._fired_as_promised``); the foreign firings tested before
the regular expressions (compared with the expressions alone). Each mutant test
at the end plants a wrong shortcut and requires the comparison to catch it.

The fifth round added: the firings no own attempt vouches for, kept by the facts
pass for ``errors.propagate`` (compared with ``_doubtful_walk``, the walk over the
firings after the pass, on the catalog and hand-made traces); the records the pass
makes without their constructors (the plain pass below uses them); the cancellation
checks reading a target-wide promise once. Four more mutants.

The eighth round: the foreign firings read from a memo of the job each detail names
(compared with the expressions alone as before; three mutants of the memo).
"""

from __future__ import annotations

from collections import Counter

import pytest

from harness import load_target, run_schedule
from harness.invariants import INVARIANTS, cancellation, completion, concurrency, delivery, errors
from harness.invariants.base import Invariant, Violation
from harness.invariants.concurrency import _overfull
from harness.model.known import known
from harness.model.trace import Event, EventKind, as_event, format_ms
from harness.model.schedule import Start, Submit
from harness.run import outcomes
from harness.run.facts import (
    ATTEMPT_ENDS,
    CANCELLABLE_KINDS,
    CANCELLER_RAISED,
    Attempt,
    Facts,
    JobFacts,
    _build,
    _doubtful_walk,
    _filled,
    _hangs,
    _stuck_attempts,
    abandoned_at,
    facts_of,
    retrying_jobs,
    stranded_jobs,
)
from harness.search.generate import Examples
from scenarios import CATALOG

# -- the checks as they were: every job, every event ------------------------------------------------


def _limit(inv: concurrency._Overfill, run) -> Violation | None:
    limit = known(inv.limit(run.target))
    group_of = inv.group_of(run)
    for event, held in _overfull(run.trace, limit, group_of, inv.dropped(run)):
        return inv.violation(run, inv.describe(run, event, held, limit), list(held.values()))
    return None


def _once(inv: Invariant, run) -> Violation | None:
    facts = facts_of(run)
    for index in facts.of_kind(*completion._DOUBLE_FIRE_KINDS):
        event = facts.event(index)
        if "AlreadyCalledError" in event.detail:
            return inv.violation(run, completion.double_fire_message(facts, index), [index])  # its wording, shared
    return None


def _fires(inv: Invariant, run) -> Violation | None:
    facts = facts_of(run)
    cancel_error = run.target.cancel_error
    expected = cancel_error.__name__
    raised = (facts.event(i) for i in facts.of_kind(EventKind.CANCEL_RAISED))
    hostile = {e.job for e in raised if e.detail.startswith(cancellation.CANCELLER_ERROR)}
    for job in facts.jobs.values():
        if job.canceller_raised or job.id in hostile:
            continue
        delays = run.target.cancel_mode(job.key, job.priority) == "delayed"  # the job's own promise
        for cancel in job.cancels:
            if facts.fired_before(job, cancel):
                break
            at = format_ms(facts.time(cancel))
            if delays:  # cancellable="delayed": judged by its own bound (no shortcut there)
                late = cancellation._late_delayed_cancel(facts, run.target, job, cancel)
                if late is not None:
                    return inv.violation(run, f"job {job.id} was cancelled at {at} {late[0]}", late[1])
                if job.fired is None:
                    break
            elif job.fired is None:
                return inv.violation(run, f"job {job.id} was cancelled at {at} but its Deferred never fired", [cancel])
            fired = facts.event(job.fired)
            if fired.kind == EventKind.RESULT:
                return inv.violation(
                    run,
                    f"job {job.id} was cancelled at {at} but its Deferred then delivered a result "
                    f"({fired.detail}) instead of failing with {expected}",
                    [cancel, job.fired],
                )
            if fired.t_us > facts.time(cancel) and not delays:
                return inv.violation(
                    run,
                    f"job {job.id} was cancelled at {at} but its Deferred fired only at {format_ms(fired.t_us)}; "
                    "it must fire by the end of the instant of the cancel",
                    [cancel, job.fired],
                )
            if not facts.is_error(job.fired, cancel_error):
                return inv.violation(
                    run,
                    f"job {job.id} was cancelled at {at} but its Deferred failed with {fired.detail}, "
                    f"not {expected} (or a subclass)",
                    [cancel, job.fired],
                )
            break
    return None


def _no_start(inv: Invariant, run) -> Violation | None:
    facts = facts_of(run)
    for job in facts.jobs.values():
        if not job.cancels or facts.fired_before(job, job.cancels[0]):
            continue
        if run.target.cancel_mode(job.key, job.priority) == "detach_queued":
            continue  # its work goes on after the cancel
        cancel = job.cancels[0]
        for attempt in job.attempts:
            if attempt.start > cancel:
                what = "started" if attempt.n == 0 else f"was retried (attempt {attempt.n})"
                return inv.violation(
                    run,
                    f"job {job.id} {what} at {format_ms(facts.time(attempt.start))}, after it was cancelled "
                    f"at {format_ms(facts.time(cancel))}",
                    [cancel, attempt.start],
                )
    return None


def _propagates(inv: Invariant, run) -> Violation | None:
    facts = facts_of(run)
    for job in facts.jobs.values():
        if run.target.cancel_mode(job.key, job.priority) is not True:
            continue  # a per-job promise that lets this job's work run on
        for cancel in job.cancels:
            if facts.fired_before(job, cancel):
                break
            now = facts.time(cancel)
            for attempt in job.attempts:
                if not attempt.running_at(cancel) or attempt.kind not in CANCELLABLE_KINDS:
                    continue
                ended = attempt.end is not None and facts.time(attempt.end) == now
                if not ended:
                    still = "and kept running" if attempt.end is None else (
                        f"and it ran on until {format_ms(facts.time(attempt.end))}"
                    )
                    if len(job.attempts) == 1:
                        text = (
                            f"job {job.id} was running when its Deferred was cancelled at {format_ms(now)}, "
                            f"but the job's own Deferred was not cancelled {still}"
                        )
                    else:
                        shown = f" ({job.id}#{attempt.n} in the trace)" if attempt.n else ""
                        text = (
                            f"job {job.id} attempt {attempt.n}{shown} was running when the job's Deferred was "
                            f"cancelled at {format_ms(now)}, but that attempt's own Deferred was not cancelled {still}"
                        )
                    return inv.violation(run, text, [cancel, attempt.start])
            break
    return None


def _detaches(inv: Invariant, run) -> Violation | None:
    facts = facts_of(run)
    for job in facts.jobs.values():
        mode = run.target.cancel_mode(job.key, job.priority)
        if mode not in ("detach", "abandon", "detach_queued"):
            continue  # a per-job promise under which this job's work is cancelled, or may be
        if mode == "detach_queued" and job.cancels:
            dropped = cancellation._dropped_on_cancel(facts, run.target, job)
            if dropped is not None:
                return inv.violation(run, *dropped)
        abandons = mode == "abandon"
        for cancel in job.cancels:
            now = facts.time(cancel)
            for attempt in job.attempts:
                if attempt.running_at(cancel) and attempt.end_kind == EventKind.JOB_CANCEL and facts.time(known(attempt.end)) == now:
                    abandoned = abandoned_at(facts, run.target, attempt) if abandons else None
                    if abandoned is not None and abandoned < known(attempt.end):
                        continue
                    promise = (
                        'cancellable="abandon": running work may be cancelled only once every caller of it has cancelled'
                        if abandons
                        else f'cancellable="{mode}": running work must run on'
                    )
                    return inv.violation(
                        run,
                        f"job {job.id}'s caller was cancelled at {format_ms(now)} and the job's own work was "
                        f"cancelled too; the target declares {promise}",
                        [cancel, known(attempt.end)],
                    )
    return None


def _own_result(inv: Invariant, run) -> Violation | None:
    facts = facts_of(run)
    for job in facts.jobs.values():
        outcome = delivery._delivered(facts, job)
        if outcome is None or outcome.source is None or outcome.source[0] == job.id:
            continue
        other = outcome.source[0]
        return inv.violation(
            run,
            f"job {job.id}'s Deferred {delivery._what(outcome)} at {format_ms(outcome.t_us)}, which is job {other}'s "
            "outcome: results were handed to the wrong caller",
            [outcome.index, *(a.end for a in facts.jobs[other].attempts if a.end is not None)][:2],
        )
    return None


def _propagate(inv: errors.Propagate, run) -> Violation | None:
    facts = facts_of(run)
    target = run.target
    for job in facts.jobs.values():
        if job.periodic:
            continue
        if job.submit_raised is not None:
            rejected = any(facts.is_error(job.submit_raised, t) for t in target.rejects)
            if not inv._stopped_before(facts, job.submit_raised) and not rejected:
                detail = facts.event(job.submit_raised).detail
                return inv.violation(
                    run, f"submitting job {job.id} raised {detail} instead of returning a Deferred that fails", [job.submit_raised]
                )
            continue
        if job.fired is None:
            continue
        message = inv._judge(facts, job, target)
        if message:
            return inv.violation(run, message, [job.fired, *(a.end for a in job.attempts if a.end is not None)])
    return None


def _stranded(facts: Facts, target) -> list[int]:
    end = facts.drained if facts.drained is not None else len(facts.events)
    stuck_other = _stuck_attempts(facts, target, end)
    # retries=math.inf: a job the subject was still retrying at the end is excused as one whose attempt hangs,
    # and holds a slot as such an attempt does (invariants.md; autobahn's Component with max_retries=-1).
    retrying = retrying_jobs(facts, target, end) if target.retries_unbounded else set()
    out: list[int] = []
    for job in facts.jobs.values():
        if job.periodic or job.submit is None or job.submit_raised is not None:
            continue
        if facts.fired_before(job, end) or job.cancels:
            continue
        if any(a.running_at(end) and _hangs(a, target) for a in job.attempts) or job.canceller_raised:
            continue
        if job.id in retrying:
            continue
        blockers = [a for a in stuck_other if a.job != job.id]
        held = len(blockers) + len({other for other in retrying if other != job.id} - {a.job for a in blockers})
        if (target.keys is None or target.limit is not None) and _filled(held, target.limit):
            continue
        if target.keys is not None and _filled(sum(facts.jobs[a.job].key == job.key for a in blockers), target.keyed_limit):
            continue
        # With shared, one execution of its own key that never ends is enough, whatever key_limit
        # says: the job may have joined it (invariants.md; a catalog target with key_limit > 1).
        if target.shared and any(facts.jobs[a.job].key == job.key for a in blockers):
            continue
        out.append(job.id)
    return out


def _start_order(inv: concurrency._StartOrder, run) -> Violation | None:
    """The walk over every (started, waiting) pair (tests/test_speed_paths.py's reference)."""
    facts = facts_of(run)
    starters = sorted((j for j in facts.jobs.values() if j.first_start is not None), key=lambda j: known(j.first_start))
    for started in starters:
        index = known(started.first_start)
        for other in facts.jobs.values():
            if run.target.keys is not None and other.key != started.key:
                continue
            if other.id != started.id and concurrency._waiting(facts, other, index) and inv.skipped(other, started):
                return inv.violation(run, inv.describe(other, started, facts), [known(other.submit), index])
    return None


def _plain_facts(trace, schedule) -> Facts:
    """The facts pass as it was before the fourth round: one branch for the attempt ends, no held attempts."""
    jobs: dict[int, JobFacts] = {}
    for op in schedule.ops:
        if isinstance(op, (Submit, Start)):
            jobs[op.job] = JobFacts(op.job, not isinstance(op, Submit), None, getattr(op, "priority", 0), getattr(op, "key", 0))
    stops: list[int] = []
    jumps: list[int] = []
    drained = None
    declared: dict[int, frozenset[str]] = {}
    running: dict[tuple[int, int], Attempt] = {}
    peak = 0
    by_kind: dict[str, list[int]] = {}
    for index, (_, kind, job_id, n, detail) in enumerate(trace.events):
        by_kind.setdefault(kind, []).append(index)
        if kind == EventKind.SUBMIT or kind == EventKind.START:
            jobs[job_id].submit = index
        elif kind == EventKind.JOB_START:
            attempt = Attempt(job_id, n, detail, index)
            job = jobs[job_id]
            if not job.attempts:
                job.first_start = index
            job.attempts += (attempt,)
            running[(job_id, n)] = attempt
            peak = max(peak, len(running))
        elif kind in (EventKind.FAILURE, EventKind.RESULT):
            fired = jobs.get(job_id)
            if fired is not None and fired.fired is None:
                fired.fired = index
        elif kind == EventKind.CANCEL:
            jobs[job_id].cancels += (index,)
        elif kind in ATTEMPT_ENDS:
            ended = running.pop((job_id, n), None)
            if ended is not None:
                ended.end = index
                ended.end_kind = EventKind(kind)
                if kind == EventKind.JOB_FINISH and jobs[job_id].finished is None:
                    jobs[job_id].finished = index
            if detail == CANCELLER_RAISED:
                jobs[job_id].canceller_raised = True
                if ended is not None:
                    ended.canceller_raised = True
        elif kind == EventKind.SUBMIT_RAISED:
            jobs[job_id].submit_raised = index
        elif kind == EventKind.STOP:
            stops.append(index)
        elif kind == EventKind.CLOCK_JUMP:
            jumps.append(index)
        elif kind == EventKind.DRAINED:
            drained = index
        elif kind == EventKind.ERROR_IS:
            declared[index - 1] = frozenset(detail.split(",")) - {""}
    late_us = (schedule.clock.step_ms + schedule.clock.jitter_ms) * 1000
    cancelled = [job for job in jobs.values() if job.cancels]
    return Facts(trace.raw, jobs, stops, jumps, drained, late_us, declared, by_kind, {}, peak, len(trace.raw), cancelled)


def _same_facts(facts: Facts, trace, schedule) -> str | None:
    """What differs between ``facts`` and the plain pass over the same record (None: nothing)."""
    plain = _plain_facts(trace, schedule)
    try:
        if facts != plain:
            return "the facts differ from the plain pass"
    except AttributeError as exc:  # a record the pass made without its constructor, a field left unset
        return f"a record of the facts has a field not set: {exc}"
    if facts.cancelled != plain.cancelled:
        return "the cancelled jobs differ"
    if facts.held is not None:
        end = facts.drained if facts.drained is not None else len(facts.events)
        attempts = [a for job in facts.jobs.values() for a in job.attempts]
        running = sorted((a for a in attempts if a.running_at(end)), key=lambda a: a.start)
        if [id(a) for a in facts.held] != [id(a) for a in running]:
            return "the attempts held at the end differ from those running there"
        if sorted(id(a) for a in facts.raised) != sorted(id(a) for a in attempts if a.canceller_raised):
            return "the attempts whose canceller raised differ"
    return None


def _plain_foreign(facts: Facts) -> list[int]:
    """The firings that name another job's attempt, by the regular expressions alone."""
    found = []
    for index in facts.of_kind(EventKind.RESULT, EventKind.FAILURE):
        event = as_event(facts.events[index])
        if event.kind == EventKind.RESULT:
            match = outcomes._VALUE.fullmatch(event.detail)
            other = int(match[1]) if match else None
        else:
            match = outcomes._INJECTED.fullmatch(event.detail)
            other = int(match[3]) if match else None
        if other is not None and other != event.job:
            found.append(index)
    return found


REFERENCES = {
    "completion.once": _once,
    "concurrency.limit": _limit,
    "concurrency.key_limit": _limit,
    "concurrency.fifo": _start_order,
    "concurrency.priority": _start_order,
    "cancellation.fires": _fires,
    "cancellation.no_start": _no_start,
    "cancellation.propagates": _propagates,
    "cancellation.detaches": _detaches,
    "errors.own_result": _own_result,
    "errors.propagate": _propagate,
}

#: The registry's invariants that have a shortcut, by name.
_BY_NAME: dict[str, Invariant] = {inv.name: inv for inv in INVARIANTS if inv.name in REFERENCES}

#: Invariants the comparison must see fire (each has buggy scenarios in the catalog caught within the
#: schedules drawn below), so that it compares violations, not only clean runs.
MUST_FIRE = {
    "completion.once",
    "concurrency.limit",
    "concurrency.fifo",
    "cancellation.fires",
    "cancellation.no_start",
    "cancellation.propagates",
    "errors.own_result",
    "errors.propagate",
}

SCHEDULES = 20


def _runs():
    for scenario in CATALOG:
        try:
            target = load_target(scenario.target)
        except Exception:  # an optional third-party dependency (matrix-synapse) is not installed
            continue
        examples = Examples(target.default_menu(), 3)
        for _ in range(SCHEDULES):
            schedule = next(examples)
            try:
                run = run_schedule(target, schedule)
            except Exception:  # a target error: nothing to judge
                continue
            yield scenario.target, run


@pytest.fixture
def catalog_runs() -> list:
    """``_runs()``, made afresh for each test and dropped after it (no run outlives its test)."""
    return list(_runs())


def _differences(runs) -> tuple[list[str], Counter[str], Counter[str], int]:
    """Every shortcut against its reference over ``runs``: the differences, how often each invariant was
    compared and seen to fire, and how many runs had stranded jobs."""
    by_name = _BY_NAME
    fired: Counter[str] = Counter()
    compared: Counter[str] = Counter()
    stranded = 0
    differences: list[str] = []
    for spec, run in runs:
        run.__dict__.pop("_facts", None)  # a mutant test may have replaced a shortcut: work it all out again
        facts = facts_of(run)
        differs = _same_facts(facts, run.trace, run.schedule)
        if differs:
            differences.append(f"{spec}: {differs}")
        expected = _stranded(facts, run.target)
        if stranded_jobs(facts, run.target) != expected:
            differences.append(f"{spec}: stranded jobs differ")
        stranded += bool(expected)
        if outcomes.foreign_firings(facts) != _plain_foreign(facts):
            differences.append(f"{spec}: foreign firings differ")
        if facts.doubtful != _doubtful_walk(facts):
            differences.append(f"{spec}: the doubtful firings differ from the walk over the firings")
        for name, inv in by_name.items():
            if not inv.applies(run.target):
                continue
            want = REFERENCES[name](inv, run)
            got = inv.check(run)
            if got != want:
                differences.append(f"{spec}: {name} answered {got} where the full walk answers {want}")
            if isinstance(inv, concurrency.Fifo) and inv._queue_sweep(run, facts, run.target.keys is not None) != want:
                differences.append(f"{spec}: the queue sweep answered otherwise than the full walk")
            compared[name] += 1
            fired[name] += want is not None
    return differences, compared, fired, stranded


def test_every_shortcut_answers_as_the_full_walk_over_the_catalog(catalog_runs: list) -> None:
    differences, compared, fired, stranded = _differences(catalog_runs)
    assert not differences, "\n".join(differences[:20])
    assert set(compared) == set(_BY_NAME), f"never applicable: {set(_BY_NAME) - set(compared)}"
    missing = {name for name in MUST_FIRE if not fired[name]}
    assert not missing, f"the comparison never saw these fire, so it checked only clean runs: {missing} ({dict(fired)})"
    assert stranded, "no run with stranded jobs: the stranded-job counts were never compared on one"


def _run_with(spec: str, predicate, limit: int = 400):
    """The first run of ``spec``'s default search (seed 3) for which ``predicate(run)`` holds."""
    target = load_target(spec)
    examples = Examples(target.default_menu(), 3)
    for _ in range(limit):
        run = run_schedule(target, next(examples))
        if predicate(run):
            return run
    raise AssertionError(f"{spec}: no such run in {limit} schedules")


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("scenarios.pools:double_release_pool", "concurrency.limit"),
        ("scenarios.abort:half_abort_pool", "cancellation.fires"),
    ],
)
def test_a_buggy_run_still_gets_past_the_shortcut(spec: str, name: str) -> None:
    # The shortcut's own precondition is false on the run that breaks the invariant: the peak of running
    # attempts is above the limit; a job was cancelled.
    from harness.invariants import invariants_for

    run = _run_with(spec, lambda r: any(v.invariant == name for inv in invariants_for(r.target) for v in _safe(inv, r)))
    facts = facts_of(run)
    if name == "concurrency.limit":
        assert facts.peak_running > known(run.target.limit)
    else:
        assert facts.cancelled


def _safe(inv: Invariant, run) -> list[Violation]:
    if inv.needs_diagnosis:
        return []
    return inv.violations(run)


def test_the_facts_count_what_the_shortcuts_read() -> None:
    # peak_running is the largest number of attempts started and not yet ended at any point; finished the
    # first finish among the job's attempts; cancelled the jobs with a cancel, in job order.
    run = _run_with("scenarios.pools:semaphore_pool", lambda r: len(facts_of(r).cancelled) >= 2)
    facts = facts_of(run)
    running: set[tuple[int, int]] = set()
    peak = 0
    for event in run.trace:
        if event.kind == EventKind.JOB_START:
            running.add((event.job, event.attempt))
            peak = max(peak, len(running))
        elif event.kind in (EventKind.JOB_FINISH, EventKind.JOB_FAIL, EventKind.JOB_CANCEL):
            running.discard((event.job, event.attempt))
    assert facts.peak_running == peak
    assert facts.cancelled == [job for job in facts.jobs.values() if job.cancels]
    for job in facts.jobs.values():
        ends = [a.end for a in job.attempts if a.end_kind == EventKind.JOB_FINISH]
        assert job.finished == (min(ends) if ends else None)


# -- hand-made traces: the cases the catalog's schedules rarely reach -----------------------------


def _traced(events: list[tuple[int, str, int, int, str]], jobs: int = 2):
    """A recorded run with exactly ``events`` ((t_us, kind, job, attempt, detail)), ``jobs`` jobs submitted at 0."""
    from types import SimpleNamespace

    from harness import JobSpec, Schedule, Submit, Target
    from harness.model.trace import Event, Trace

    trace = Trace(lambda: 0)
    trace.events.extend(Event(*event) for event in events)
    schedule = Schedule(ops=tuple(Submit(at_ms=0, job=j, spec=JobSpec("fail")) for j in range(jobs)))
    return SimpleNamespace(target=Target(build=object, limit=2, cancellable=True), schedule=schedule, trace=trace, diagnosis=None)


SUBMITTED = [(0, "submit", 0, 0, "p0"), (0, "submit", 1, 0, "p0")]


@pytest.mark.parametrize(
    ("name", "events"),
    [
        # A result before the job's attempt finished (it finished after): the error was swallowed.
        (
            "errors.propagate",
            [*SUBMITTED, (0, "job.start", 0, 0, "fail"), (1000, "job.fail", 0, 0, "ValueError"),
             (1000, "result", 0, 0, "'job0.0'"), (2000, "job.start", 0, 1, "succeed"), (3000, "job.finish", 0, 1, "")],
        ),
        # A failure with the cancel error's type though the job was never cancelled: not the job's own error.
        (
            "errors.propagate",
            [*SUBMITTED, (0, "job.start", 0, 0, "fail"), (1000, "job.fail", 0, 0, "ValueError"),
             (1000, "failure", 0, 0, "CancelledError: gone")],
        ),
        # A failure with another type than the one the job's last attempt failed with.
        (
            "errors.propagate",
            [*SUBMITTED, (0, "job.start", 0, 0, "fail"), (1000, "job.fail", 0, 0, "ValueError"),
             (1000, "failure", 0, 0, "KeyError: 'x'")],
        ),
        # AlreadyCalledError in a caller's failure only (no escaped or logged error).
        (
            "completion.once",
            [*SUBMITTED, (0, "job.start", 0, 0, "fail"), (1000, "job.fail", 0, 0, "ValueError"),
             (1000, "failure", 0, 0, "AlreadyCalledError: ")],
        ),
        # Job 1's value handed to job 0's caller.
        (
            "errors.own_result",
            [*SUBMITTED, (0, "job.start", 1, 0, "succeed"), (1000, "job.finish", 1, 0, ""), (1000, "result", 0, 0, "'job1.0'")],
        ),
        # Three attempts running at once under a limit of 2.
        (
            "concurrency.limit",
            [*SUBMITTED, (0, "job.start", 0, 0, "hang"), (0, "job.start", 1, 0, "hang"), (0, "job.start", 0, 1, "hang")],
        ),
        # A cancelled job whose Deferred never fired.
        ("cancellation.fires", [*SUBMITTED, (0, "job.start", 0, 0, "hang"), (5000, "cancel", 0, 0, "")]),
    ],
)
def test_a_hand_made_violation_gets_past_every_shortcut(name: str, events) -> None:
    invariant = _BY_NAME[name]
    run = _traced(events)
    found = invariant.check(run)
    assert found is not None and found.invariant == name
    assert found == REFERENCES[name](invariant, run)


# -- the fourth round: hand-made traces for the FIFO pass and the held attempts, and mutants -----------


def _fifo_run(events, jobs=(0, 1, 2), keys: dict[int, int] | None = None, **declared):
    """A recorded run of a FIFO target (keyed when ``keys`` maps jobs to keys) with exactly ``events``."""
    from types import SimpleNamespace

    from harness import JobSpec, Schedule, Target
    from harness.model.trace import Event, Trace

    trace = Trace(lambda: 0)
    trace.events.extend(Event(*event) for event in events)
    ops = tuple(Submit(at_ms=0, job=j, spec=JobSpec("hang"), key=(keys or {}).get(j, 0)) for j in jobs)
    target = Target(build=object, limit=1, order="fifo", keys=2 if keys else None, **declared)
    return SimpleNamespace(target=target, schedule=Schedule(ops=ops), trace=trace, diagnosis=None)


def _sub(job: int, t: int = 0):
    return (t, "submit", job, 0, "p0")


def _start(job: int, t: int = 0, n: int = 0, kind: str = "hang"):
    return (t, "job.start", job, n, kind)


FIFO_TRACES = [
        # Submitted in another order than job order: job 0 starts while job 1, submitted first, waits.
        ([_sub(1), _sub(0), _start(0)], (0, 1), None, True),
        ([_sub(1), _sub(0), _start(1), (1000, "job.finish", 1, 0, ""), _start(0, 1000)], (0, 1), None, False),
        # The job passed over was cancelled, or had fired, before the start: not waiting any more.
        ([_sub(0), _sub(1), (0, "cancel", 0, 0, ""), _start(1, 1000)], (0, 1), None, False),
        ([_sub(0), _sub(1), (0, "failure", 0, 0, "CancelledError: "), _start(1, 1000)], (0, 1), None, False),
        # ... but cancelled only after it: still waiting at the start.
        ([_sub(0), _sub(1), _start(1, 1000), (2000, "cancel", 0, 0, "")], (0, 1), None, True),
        # Keys: order within a key only.
        ([_sub(0), _sub(1), _start(1)], (0, 1), {0: 0, 1: 1}, False),
        ([_sub(0), _sub(1), _sub(2), _start(1), _start(2)], (0, 1, 2), {0: 0, 1: 1, 2: 0}, True),
        # A start before its job's submit (a hand-made trace): the queue sweep judges it.
        ([_sub(0), _start(1), _sub(1)], (0, 1), None, True),
        ([_start(1), _sub(0), _sub(1)], (0, 1), None, False),
        ([_sub(0), _sub(2), _start(2), _start(1), _sub(1)], (0, 1, 2), None, True),
]


@pytest.mark.parametrize(("events", "jobs", "keys", "fires"), FIFO_TRACES)
def test_the_fifo_pass_answers_as_the_walk_on_hand_made_traces(events, jobs, keys, fires) -> None:
    run = _fifo_run(events, jobs, keys)
    inv = _BY_NAME["concurrency.fifo"]
    want = _start_order(inv, run)
    assert (want is not None) == fires
    assert inv.check(run) == want
    assert inv._queue_sweep(run, facts_of(run), keys is not None) == want


HELD_TRACES = [
        # Two starts of one attempt: the first is never ended, and not in the pass's running attempts.
        [_sub(0), _sub(1), _sub(2), _start(0), _start(0), (1000, "drained", -1, 0, "")],
        # A canceller that raised after the drain mark, and one before it.
        [_sub(0), _sub(1), _start(0), (1000, "drained", -1, 0, ""), (2000, "job.cancel", 0, 0, CANCELLER_RAISED)],
        [_sub(0), _sub(1), _start(0, kind="succeed"), (500, "job.fail", 0, 0, CANCELLER_RAISED), (1000, "drained", -1, 0, "")],
        # No drain mark: the end of the trace is the end.
        [_sub(0), _sub(1), _sub(2), _start(0), _start(1, kind="succeed")],
]


@pytest.mark.parametrize("events", HELD_TRACES)
def test_the_held_attempts_count_as_the_walk_on_hand_made_traces(events) -> None:
    for declared in ({}, {"timeout_ms": 100}, {"timeout_ms": 100, "timeout_from": "wait"}):
        run = _fifo_run(events, **declared)
        facts = facts_of(run)
        assert _same_facts(facts, run.trace, run.schedule) is None
        assert stranded_jobs(facts, run.target) == _stranded(facts, run.target)
    assert (facts.held is None) == (events[3] == events[4])


DOUBTFUL_TRACES = [
        # The later-started attempt ended first with the error: it, the last in start order to end, vouches.
        [_sub(0), _sub(1), _start(0, kind="fail"), _start(0, n=1, kind="fail"), (500, "job.fail", 0, 1, "ValueError"),
         (600, "job.finish", 0, 0, ""), (700, "failure", 0, 0, "ValueError: x")],
        # ... and with another error than the firing's, or finished: doubtful.
        [_sub(0), _sub(1), _start(0, kind="fail"), _start(0, n=1, kind="fail"), (500, "job.fail", 0, 1, "KeyError"),
         (600, "job.fail", 0, 0, "ValueError"), (700, "failure", 0, 0, "ValueError: x")],
        # The last started still runs at the firing: the one before it vouches.
        [_sub(0), _sub(1), _start(0, kind="fail"), (500, "job.fail", 0, 0, "ValueError"), _start(0, 600, n=1),
         (700, "failure", 0, 0, "ValueError: x")],
        # An error name holding a colon, an error with no message, a second firing, a firing of a job not scheduled.
        [_sub(0), _sub(1), _start(0, kind="fail"), (500, "job.fail", 0, 0, "A:B"), (700, "failure", 0, 0, "A:B: x"),
         (800, "failure", 0, 0, "KeyError: y"), (900, "result", 5, 0, "'job5.0'")],
        [_sub(0), _sub(1), _start(0, kind="fail"), (500, "job.fail", 0, 0, "ValueError"), (700, "failure", 0, 0, "ValueError"),
         (800, "result", 1, 0, "'job1.0'")],
        # A result after its attempt finished, one before, one of a job that never ran.
        [_sub(0), _sub(1), _sub(2), _start(0, kind="succeed"), (500, "job.finish", 0, 0, ""), (500, "result", 0, 0, "'job0.0'"),
         (600, "result", 1, 0, "'job0.0'"), _start(1, 700, kind="succeed"), (800, "job.finish", 1, 0, ""),
         (900, "failure", 2, 0, "ValueError: z")],
]


@pytest.mark.parametrize("events", DOUBTFUL_TRACES)
def test_the_doubtful_firings_are_those_of_the_walk_on_hand_made_traces(events) -> None:
    run = _fifo_run(events)
    facts = facts_of(run)
    assert facts.doubtful == _doubtful_walk(facts)
    assert _same_facts(facts, run.trace, run.schedule) is None
    inv = _BY_NAME["errors.propagate"]
    assert inv.check(run) == REFERENCES["errors.propagate"](inv, run)


def test_foreign_firings_answer_as_the_expressions_on_hand_made_details() -> None:
    from types import SimpleNamespace

    details = {
        "result": ["'job0.0'", "'job1.0'", "'job01.0'", "'job10.2'", "'job0.'", "'job0.0", "'job0.0' and more", "0", "'job-1.0'"],
        "failure": [
            "CancelledError: ",
            "ValueError: injected by job 0 attempt 1",
            "ValueError: injected by job 1 attempt 0",
            "KeyError: 'injected by job 1 attempt 0'",
            "KeyError: 'injected by job 0 attempt 0'",
            "KeyError: 'injected by job 1 attempt 0\"",
            "ValueError: injected by job 10 attempt 0",
            "ValueError: injected by job 01 attempt 0",
            "ValueError: injected by job 1 attempt 0 injected by job 0 attempt 0",
            "ValueError: injected by job 0 attempt 0 injected by job 1 attempt 0",
            "ValueError: injected by job 0 attempt x",
            "Bad Name: injected by job 1 attempt 0",
        ],
    }
    events = []
    for kind, texts in details.items():
        for text in texts:
            for job in (0, 1, 10, 1500, -1):
                events.append(Event(0, EventKind(kind), job, 0, text))
    by_kind: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        by_kind.setdefault(event.kind, []).append(index)
    facts = SimpleNamespace(events=events, by_kind=by_kind, foreign=None, of_kind=lambda *kinds: Facts.of_kind(facts, *kinds))
    found = outcomes.foreign_firings(facts)
    assert found == _plain_foreign(facts)
    assert found, "no foreign firing among the details: the comparison would not catch a test that skips them all"
    facts.foreign = None  # again, every detail's job now remembered
    assert outcomes.foreign_firings(facts) == found


def test_the_names_of_firings_details_stay_bounded_and_right(monkeypatch: pytest.MonkeyPatch) -> None:
    # The memo of the job each detail names is emptied when full: later answers are still the expressions'.
    from types import SimpleNamespace

    monkeypatch.setattr(outcomes, "MAX_NAMES", 5)
    events = [Event(0, EventKind.RESULT, job % 3, 0, f"'job{job}.0'") for job in range(40)]
    events += [Event(0, EventKind.FAILURE, job % 3, 0, f"ValueError: injected by job {job} attempt 0") for job in range(40)]
    by_kind: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        by_kind.setdefault(event.kind, []).append(index)
    for _ in range(2):
        facts = SimpleNamespace(events=events, by_kind=by_kind, foreign=None, of_kind=lambda *kinds: Facts.of_kind(facts, *kinds))
        assert outcomes.foreign_firings(facts) == _plain_foreign(facts)
        assert len(outcomes._VALUE_NAMES) <= 5 and len(outcomes._ERROR_NAMES) <= 5


# -- the seventh round: kinds told apart by identity ------------------------------------------------


def _with_kinds(run, plain_from: int):
    """``run`` with its trace's kinds held as plain strings from event ``plain_from`` on (as a trace read from a
    file or made by hand may hold them), the rest its ``EventKind`` members."""
    from types import SimpleNamespace

    from harness.model.trace import Trace

    trace = Trace(lambda: 0)
    trace.raw[:] = [
        (t, kind if i < plain_from else str(kind.value), job, n, detail)
        for i, (t, kind, job, n, detail) in enumerate(run.trace.raw)
    ]
    return SimpleNamespace(target=run.target, schedule=run.schedule, trace=trace, diagnosis=None)


def test_the_facts_of_plain_string_kinds_are_those_of_members(catalog_runs: list) -> None:
    # The pass tells the recorded kinds (members) apart by identity; at the first kind held as a plain string it
    # passes again with members. Over the catalog: every kind plain, the last ones plain, and none plain give the
    # same facts (and each the plain pass's), and the facts keep the trace's own events.
    restarted = 0
    for spec, run in catalog_runs[::7]:
        member_facts = _build(run.trace, run.schedule)
        assert all(type(event[1]) is EventKind for event in run.trace.raw), spec
        for plain_from in (0, len(run.trace.raw) // 2, len(run.trace.raw) - 1):
            mixed = _with_kinds(run, plain_from)
            facts = _build(mixed.trace, mixed.schedule)
            assert facts.events is mixed.trace.raw
            assert facts == member_facts, f"{spec}: the facts of plain kinds from event {plain_from} differ"
            assert facts.doubtful == member_facts.doubtful and facts.cancelled == member_facts.cancelled
            assert facts.held == member_facts.held and facts.raised == member_facts.raised, spec
            assert _same_facts(facts, mixed.trace, mixed.schedule) is None, spec
            assert all(type(a.end_kind) is EventKind for j in facts.jobs.values() for a in j.attempts if a.end_kind)
            restarted += 1
    assert restarted


def test_a_kind_the_vocabulary_does_not_hold_is_kept_as_it_is() -> None:
    # A kind no member stands for (a user's own, in a hand-made trace) is indexed under itself, never restarts the
    # pass, and changes nothing else.
    events = [_sub(0), _start(0, kind="succeed"), (1, "my.kind", 0, 0, "x"), (2, "job.finish", 0, 0, ""), (2, "result", 0, 0, "'job0.0'")]
    run = _fifo_run(events, jobs=(0,))
    facts = facts_of(run)
    assert facts.by_kind["my.kind"] == [2]
    assert _same_facts(facts, run.trace, run.schedule) is None
    assert facts.jobs[0].finished == 3 and facts.jobs[0].fired == 4 and facts.doubtful == []


def _mutants():
    """Wrong shortcuts, each to be caught by the comparison over the catalog: (name, attribute, replacement)."""
    from harness.run import facts as facts_module

    def drop_held(trace, schedule):
        facts = real_build(trace, schedule)
        if facts.held:
            facts.held = facts.held[:-1]
        return facts

    def drop_doubtful(trace, schedule):
        facts = real_build(trace, schedule)
        if facts.doubtful:
            facts.doubtful = facts.doubtful[:-1]
        return facts

    def unset_field(trace, schedule):
        facts = real_build(trace, schedule)
        for job in facts.jobs.values():
            if not job.canceller_raised:
                job.canceller_raised = None  # a field of a record made without its constructor set to another default
                break
        return facts

    def start_field(trace, schedule):
        facts = real_build(trace, schedule)
        for job in facts.jobs.values():
            for attempt in job.attempts:
                attempt.n += 1  # a field of an attempt made without its constructor set wrong
                return facts
        return facts

    real_build = facts_module._build
    return [
        ("a kind held as a plain string taken for another kind", facts_module, "_MEMBER_OF", {}),
        ("every job that never started passed over", facts_module, "_passes_unstarted", lambda by_limit, stuck, need: True),
        ("a doubtful firing forgotten", facts_module, "_build", drop_doubtful),
        ("a job's record with a field at another default", facts_module, "_build", unset_field),
        ("an attempt's record with a field set wrong", facts_module, "_build", start_field),
        ("every job's cancellation promise taken as the target's", cancellation, "_per_job", lambda target: None),
        ("the last held attempt forgotten", facts_module, "_build", drop_held),
        ("no start out of turn", concurrency, "_passed_over", lambda jobs: []),
        ("a never-started job never waits", concurrency, "_NEVER", -1),
        ("every cancel fired as promised", cancellation, "_fired_as_promised", lambda facts, job, expected: True),
        ("every value names no attempt", outcomes, "_FIRINGS", (({}, lambda detail: None, EventKind.RESULT), outcomes._FIRINGS[1])),
        ("every error names no attempt", outcomes, "_FIRINGS", (outcomes._FIRINGS[0], ({}, lambda detail: None, EventKind.FAILURE))),
        ("a detail's job kept for every other detail", outcomes, "_FIRINGS", tuple((_FirstName(), work, kind) for _, work, kind in outcomes._FIRINGS)),
    ]


class _FirstName(dict):
    """A wrong memo of the jobs firings' details name: every lookup answers the first name it learned."""

    def get(self, detail, default=None):
        return next(iter(self.values())) if self else default


def _hand_made_differences() -> list[str]:
    """The hand-made traces above, each shortcut against its reference: the differences."""
    differences = []
    inv = _BY_NAME["concurrency.fifo"]
    for events, jobs, keys, _ in FIFO_TRACES:
        run = _fifo_run(events, jobs, keys)
        if inv.check(run) != _start_order(inv, run):
            differences.append(f"fifo on {events}")
    for events in HELD_TRACES:
        for declared in ({}, {"timeout_ms": 100}):
            run = _fifo_run(events, **declared)
            facts = facts_of(run)
            if _same_facts(facts, run.trace, run.schedule) or stranded_jobs(facts, run.target) != _stranded(facts, run.target):
                differences.append(f"held attempts on {events}")
            if facts.doubtful != _doubtful_walk(facts):
                differences.append(f"doubtful firings on {events}")
    for events in DOUBTFUL_TRACES:
        run = _fifo_run(events)
        facts = facts_of(run)
        if facts.doubtful != _doubtful_walk(facts) or _same_facts(facts, run.trace, run.schedule):
            differences.append(f"doubtful firings on {events}")
    return differences


@pytest.mark.parametrize("mutant", range(13))
def test_a_wrong_shortcut_is_caught_by_the_comparison(mutant: int, monkeypatch: pytest.MonkeyPatch, catalog_runs: list) -> None:
    # Each wrong shortcut makes the comparison over the hand-made traces, or over the catalog, differ (the
    # right ones make neither differ: the tests above).
    name, module, attribute, replacement = _mutants()[mutant]
    monkeypatch.setattr(module, attribute, replacement)
    try:
        caught = _hand_made_differences() or _differences(catalog_runs)[0]
    finally:
        monkeypatch.undo()
        for _, run in catalog_runs:
            run.__dict__.pop("_facts", None)  # facts a mutant built
    assert caught, f"the comparison did not catch a wrong shortcut: {name}"
