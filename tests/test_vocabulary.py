"""Closed vocabularies are enums: event kinds, stop reasons, outcomes.

Each is a ``StrEnum`` equal to the bare string it replaced, so traces,
digests, failure files and summaries are byte-identical; a misspelt member
is an ``AttributeError``; every kind the harness records is a member (the
runs below record through a ``Trace.record`` that insists); and no module
compares a ``kind`` with a bare string, which a typo would silently turn
into a check that never matches.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import harness
import harness.run.view
from harness import CampaignConfig, Cancel, JobSpec, Schedule, Stop, Submit, check, load_target, run_campaign, run_schedule
from harness.model.trace import Event, EventKind, Trace
from harness.run.outcomes import AttemptOutcome, OutcomeKind
from harness.run.runner import Run
from harness.run.view import StepKind
from harness.output.summary import EXIT_CODES, CampaignOutcome
from harness.search.campaign import STOP_REASONS
from harness.search.stop_reasons import StopReason

PACKAGE = Path(harness.__file__).parent

#: Targets whose campaigns record nearly every kind between them: pools with cancels, stops, failures
#: and hangs, a periodic subject, operations, timeouts and retries, keys, sharing, the subject's timers.
TARGETS = (
    "scenarios.pools:semaphore_pool",
    "scenarios.pools:double_release_pool",
    "scenarios.semaphore:cancel_leak_pool",
    "scenarios.poller:looping_poller",
    "scenarios.poller:silent_poller",
    "scenarios.breaker:circuit_breaker",
    "scenarios.timeout:timeout_pool",
    "scenarios.retry:backoff_retry",
    "scenarios.keyed_lock:keyed_lock",
    "scenarios.single_flight:single_flight",
    "scenarios.next_tick:next_tick_delivery_pool",
    "scenarios.ticker:counting_ticker",
)


@pytest.fixture
def strict_record(monkeypatch: pytest.MonkeyPatch) -> set[EventKind]:
    """Make ``Trace.record`` refuse anything but an ``EventKind`` member; collect the kinds recorded."""
    seen: set[EventKind] = set()
    record = Trace.record

    def checked(self: Trace, kind: EventKind, *args: object, **kwargs: object) -> int:
        assert type(kind) is EventKind, f"recorded {kind!r}, not an EventKind member"
        seen.add(kind)
        return record(self, kind, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Trace, "record", checked)
    return seen


def test_every_kind_recorded_over_many_runs_is_an_event_kind_member(strict_record: set[EventKind], tmp_path: Path) -> None:
    def appended(schedule: object, run: Run) -> None:
        # The run's most frequent events are appended where they happen, not through ``Trace.record``
        # (its docstring): their kinds are read from the recorded tuples.
        for event in run.trace.raw:
            assert type(event[1]) is EventKind, f"recorded {event[1]!r}, not an EventKind member"
            strict_record.add(event[1])

    for spec in TARGETS:
        config = CampaignConfig(max_examples=150, seed=3, report_dir=str(tmp_path / "r"), max_failures=1)
        run_campaign(load_target(spec), spec, config, on_run=appended)
    # The campaigns reached most of the vocabulary (so the check above saw it recorded).
    assert len(strict_record) >= 20, sorted(strict_record)
    assert {EventKind.JOB_START, EventKind.CANCEL, EventKind.STOP, EventKind.CALL, EventKind.TIMER_SET} <= strict_record


def test_a_kind_that_is_not_a_member_is_caught(strict_record: set[EventKind]) -> None:
    trace = Trace(lambda: 0)
    with pytest.raises(AssertionError, match="not an EventKind member"):
        trace.record("job.finsh")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        EventKind.JOB_FINSH  # type: ignore[attr-defined]  # noqa: B018


def test_members_are_the_strings_they_replaced() -> None:
    assert EventKind.JOB_FINISH == "job.finish" and hash(EventKind.JOB_FINISH) == hash("job.finish")
    assert f"{EventKind.STOP_FAILURE}" == "stop.failure" and f"{EventKind.CALL:<6}|" == "call  |"
    assert json.dumps([EventKind.RESULT, StopReason.MAX_FAILURES, OutcomeKind.FAILURE]) == '["result", "max-failures", "failure"]'
    assert Event(1000, EventKind.JOB_START, 2, 0, "succeed").line() == Event(1000, "job.start", 2, 0, "succeed").line()
    assert [r.value for r in StopReason] == ["max-examples", "budget", "max-failures", "exhausted", "interrupt", "error", "crash"]
    assert STOP_REASONS == tuple(StopReason)
    assert [o.value for o in AttemptOutcome] == ["finished", "failed", "cancelled"]
    assert [k.value for k in OutcomeKind] == ["result", "failure"] and [k.value for k in StepKind] == ["start", "end", "call"]
    assert EXIT_CODES == {"clean": 0, "failed": 1, "error": 2, "interrupted": 130} and set(EXIT_CODES) == set(CampaignOutcome)


def test_event_kind_is_one_enum_recorded_by_the_trace_layer_and_re_exported() -> None:
    assert harness.EventKind is harness.run.view.EventKind is EventKind
    assert EventKind.__module__ == "harness.model.trace"


def test_a_run_records_members_and_its_views_and_outcomes_are_enums() -> None:
    target = load_target("scenarios.pools:semaphore_pool")
    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(0, 1, JobSpec("fail", 10)), Cancel(5, 1), Stop(20)))
    run = run_schedule(target, schedule)
    assert all(type(event.kind) is EventKind for event in run.trace)
    view = run.view
    assert view.jobs[0].received is not None and view.jobs[0].received.kind is OutcomeKind.RESULT
    assert view.jobs[1].received is not None and view.jobs[1].received.kind is OutcomeKind.FAILURE
    assert [a.outcome for a in view.attempts()] == [AttemptOutcome.FINISHED, AttemptOutcome.CANCELLED]
    assert {step.kind for step in view.steps()} == {StepKind.START, StepKind.END}
    assert [i for i, _ in view.of_kind("job.fail")] == [i for i, _ in view.of_kind(EventKind.JOB_FAIL)]
    with pytest.raises(ValueError, match="'job.finsh' is not a valid EventKind"):
        view.of_kind("job.finsh")
    assert check(run) == []


def test_a_campaign_stops_for_a_stop_reason(tmp_path: Path) -> None:
    spec = "scenarios.pools:double_release_pool"
    result = run_campaign(load_target(spec), spec, CampaignConfig(max_examples=300, seed=1, report_dir=str(tmp_path)))
    assert result.stopped_by is StopReason.MAX_FAILURES and result.stopped_by == "max-failures"
    clean = run_campaign(load_target("scenarios.pools:semaphore_pool"), "x:y", CampaignConfig(max_examples=20, seed=1, report_dir=str(tmp_path)))
    assert clean.stopped_by is StopReason.MAX_EXAMPLES


# -- no bare string where a vocabulary member belongs ------------------------------------------------

#: Attributes that hold a closed vocabulary: comparing one with a string literal is what a typo hides in.
_VOCABULARY_ATTRIBUTES = {"kind", "end_kind", "stopped_by", "stop_reason", "outcome"}
#: ``kind`` attributes that are not event kinds: a target's kind (``"submit"``/``"periodic"``), a
#: job behaviour (``spec.kind``), and the few other vocabularies still plain strings.
_NOT_VOCABULARY = {"target.kind", "self.kind", "spec.kind", "self.spec(attempt).kind", "op.kind", "t.kind", "hung.kind", "attempt.kind"}


def _literals(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for item in node.elts for s in _literals(item)]
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("frozenset", "set", "tuple") and node.args:
        return _literals(node.args[0])
    return []


def _vocabulary_comparisons(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        for side in sides:
            if isinstance(side, ast.Attribute) and side.attr in _VOCABULARY_ATTRIBUTES and ast.unparse(side) not in _NOT_VOCABULARY:
                literals = [s for other in sides if other is not side for s in _literals(other)]
                if literals:
                    found.append((node.lineno, f"{ast.unparse(side)} compared with {literals}"))
    return found


def test_no_module_compares_a_kind_or_reason_with_a_bare_string() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        wrong += [f"{path.relative_to(PACKAGE.parent)}:{line}: {what}" for line, what in _vocabulary_comparisons(path.read_text())]
    assert not wrong, "use the enum member (EventKind, StopReason, OutcomeKind, ...):\n" + "\n".join(wrong)


def test_the_bare_string_check_catches_a_misspelt_kind() -> None:
    assert _vocabulary_comparisons("if event.kind == 'job.finsh': pass") == [(1, "event.kind compared with ['job.finsh']")]
    assert _vocabulary_comparisons("x = e.kind in ('result', 'failure')") == [(1, "e.kind compared with ['result', 'failure']")]
    assert _vocabulary_comparisons("if result.stopped_by == 'interupt': pass")
    assert _vocabulary_comparisons("if event.kind == EventKind.JOB_FINISH: pass") == []


def test_the_summary_schema_allows_exactly_the_vocabularies() -> None:
    schema = json.loads((PACKAGE / "output" / "summary.schema.json").read_text())
    properties = schema["properties"]
    merged = properties["merged"]["items"]["properties"]
    for where in (properties, merged):
        assert where["stopped_by"]["enum"] == [reason.value for reason in StopReason]
        assert where["outcome"]["enum"] == [outcome.value for outcome in CampaignOutcome]
    # A worker's reason: any but "crash" (a crashed worker has none: null).
    worker = properties["workers"]["items"]["properties"]["stopped_by"]["enum"]
    assert worker == [reason.value for reason in StopReason if reason is not StopReason.CRASH] + [None]


# -- stop.failure and stop.raised ----------------------------------------------------------------


class _DoubleFiringStop:
    """A correct pool whose stop() fires its own Deferred twice: the Deferred it returns fails with AlreadyCalledError."""

    def __init__(self, clock: object) -> None:
        from scenarios.pools import SemaphorePool

        self.pool = SemaphorePool(clock, 2)

    def submit(self, job: object) -> object:
        return self.pool.submit(job)

    def stop(self) -> object:
        from twisted.internet import defer

        done: defer.Deferred[None] = defer.Deferred()
        done.callback(None)
        try:
            done.callback(None)
        except defer.AlreadyCalledError as exc:
            return defer.fail(exc)
        return done


def test_completion_once_reads_a_double_fire_in_the_deferred_stop_returned() -> None:
    from harness import Target

    target = Target(build=_DoubleFiringStop, limit=2)
    run = run_schedule(target, Schedule((Submit(0, 0, JobSpec("succeed", 10)), Stop(20))))
    failed = [i for i, e in enumerate(run.trace) if e.kind is EventKind.STOP_FAILURE]
    assert failed and "AlreadyCalledError" in run.trace[failed[0]].detail
    [violation] = check(run)
    assert violation.invariant == "completion.once" and violation.events == (failed[0],)
    assert "a Deferred was fired twice (stop.failure at 20ms in the subject" in violation.message


def test_stop_raised_is_drawn_as_an_error_on_the_timeline() -> None:
    from harness.output.report.svg import marker_class

    assert marker_class(Event(0, EventKind.STOP_RAISED, -1, 0, "CancellerError: the job's canceller raised")) == "error"
    assert marker_class(Event(0, EventKind.STOP_FAILURE, -1, 0, "ValueError: x")) == "error"
