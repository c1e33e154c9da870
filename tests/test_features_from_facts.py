"""The guided search's trace features, counted by the facts pass, are exactly those of the walk over the trace.

The campaign checks every run (which builds its facts) before the guided
strategy learns from it, so the facts pass also counts each event's kind with
the jobs running and waiting then, each as an integer code
(``Facts.feature_codes``), and ``features_of`` takes them instead of walking
the events again (``features``, kept as the reference and for runs never
checked). Compared here over many runs of many
targets and a hand-made trace; a mutant of the pass is caught, and a search
learns the same pool either way.
"""

from __future__ import annotations

import pytest

from harness import load_target, run_schedule
from harness.model.trace import EventKind, Trace
from harness.run import facts as facts_module
from harness.run.facts import FEATURE_CAP, FEATURES, facts_of, feature_code
from harness.run.session import RunSession
from harness.search import generate
from harness.search.generate import Examples, feature_codes_of, features, features_of
from harness.search.verdict import judge
from test_run_hot_paths import _mutated

#: Catalog targets whose traces differ in kind: pools, retries, keyed work, a heartbeat, periodic starts.
_TARGETS = (
    "scenarios.pools:semaphore_pool",
    "scenarios.error_paths:tee_pool",
    "scenarios.cancel:ticket_pool",
    "scenarios.heartbeat:heartbeat",
    "scenarios.single_flight:single_flight",
    "scenarios.thirdparty.twisted_prims:add_timeout",
    "scenarios.handoff:lost_handoff_pool",
)


def _checked_runs(spec: str, count: int, seed: int = 5) -> list:
    target = load_target(spec)
    examples = Examples(target.default_menu(), seed)
    with RunSession():
        return [judge(target, next(examples))[0] for _ in range(count)]


@pytest.mark.parametrize("spec", _TARGETS)
def test_the_facts_pass_counts_the_walk_s_features(spec: str) -> None:
    runs = _checked_runs(spec, 60)
    for run in runs:
        assert facts_of(run).feature_codes is not None
        assert features_of(run) == features(run), spec


def test_a_run_never_checked_and_a_grown_trace_are_walked() -> None:
    target = load_target("scenarios.pools:semaphore_pool")
    schedule = next(Examples(target.default_menu(), 2))
    run = run_schedule(target, schedule)
    assert "_facts" not in run.__dict__
    assert features_of(run) == features(run)
    counted = features_of(run)
    run.trace.raw.append((0, EventKind.SUBMIT, 99, 0, ""))  # the trace grew after its facts were made
    assert features_of(run) == features(run) != counted


class _Run:
    """A run of a hand-made trace, as ``features`` and ``features_of`` read one."""

    def __init__(self, trace: Trace, schedule: object) -> None:
        self.trace = trace
        self.schedule = schedule


def _hand_made_run(odd: str) -> _Run:
    """A run of a trace whose kinds are plain strings, ending with ``odd`` (a kind no ``EventKind``) if given."""
    trace = Trace(lambda: 0)
    kinds = ("submit", "submit", "job.start", "job.finish", "result", "job.start", "job.cancel", "submit", "failure")
    for job, kind in enumerate(kinds + ((odd,) if odd else ())):
        trace.raw.append((0, kind, job % 2, 1, ""))
    return _Run(trace, _checked_runs("scenarios.pools:semaphore_pool", 1)[0].schedule)


@pytest.mark.parametrize("odd", ["", "no.such.kind"])
def test_a_hand_made_trace_with_plain_string_kinds(odd: str) -> None:
    run = _hand_made_run(odd)
    codes = facts_of(run).feature_codes  # type: ignore[arg-type]
    assert codes is not None and (min(codes) < 0) == bool(odd)  # a kind no EventKind: a negative code, walked
    assert features_of(run) == features(run)  # type: ignore[arg-type]


def test_every_code_stands_for_its_feature() -> None:
    for kind in EventKind:
        for running in range(FEATURE_CAP + 1):
            for waiting in range(FEATURE_CAP + 1):
                assert FEATURES[feature_code(kind, running, waiting)] == (kind, running, waiting)


@pytest.mark.parametrize(
    "old, new",
    [
        ("f_running -= 1", "f_running -= 0"),  # an attempt's end forgotten
        ("if f_waiting <= FEATURE_CAP:", "if f_waiting < FEATURE_CAP:"),  # the cap reached one submit early
        ("add(_RESULT_BASE + shown)", "add(_FAILURE_BASE + shown)"),  # a result counted as a failure
    ],
)
def test_a_wrong_pass_is_caught(monkeypatch, old: str, new: str) -> None:
    mutant = _mutated(facts_module, "_pass", old, new)
    monkeypatch.setattr(facts_module, "_pass", mutant)
    runs = _checked_runs("scenarios.pools:semaphore_pool", 30)
    assert any(features_of(run) != features(run) for run in runs)


def test_a_search_keeps_the_same_pool_either_way(monkeypatch) -> None:
    target = load_target("scenarios.cancel:ticket_pool")

    def pool() -> tuple[list[bytes], set]:
        examples = Examples(target.default_menu(), 11, "guided")
        with RunSession():
            for _ in range(120):
                examples.feedback(judge(target, next(examples))[0])
        return examples.pool, examples.features

    counted = pool()
    monkeypatch.setattr(generate, "features_of", features)
    walked = pool()
    assert counted == walked
    assert counted[0]  # the search kept something


# -- the guided search keeps the features it has seen as codes ------------------------------------------------


def _as_tuples(codes: object, odd: object) -> set:
    return {FEATURES[code] for code in codes} | set(odd)  # type: ignore[attr-defined]


@pytest.mark.parametrize("spec", _TARGETS[:4])
def test_the_codes_of_a_run_are_its_features(spec: str) -> None:
    runs = _checked_runs(spec, 40)
    target = load_target(spec)
    runs.append(run_schedule(target, next(Examples(target.default_menu(), 3))))  # never checked: walked
    for run in runs:
        codes, odd = feature_codes_of(run)
        assert _as_tuples(codes, odd) == features(run)
        assert len(codes) + len(odd) == len(features(run))  # one code, one feature
        assert not odd and all(code >= 0 for code in codes)


@pytest.mark.parametrize("odd_kind", ["", "no.such.kind"])
def test_a_hand_made_trace_s_codes_and_odd_features(odd_kind: str) -> None:
    run = _hand_made_run(odd_kind)
    facts_of(run)  # type: ignore[arg-type]
    codes, odd = feature_codes_of(run)  # type: ignore[arg-type]
    assert _as_tuples(codes, odd) == features(run)  # type: ignore[arg-type]
    assert len(codes) + len(odd) == len(features(run))  # type: ignore[arg-type]
    assert {kind for kind, _, _ in odd} == ({odd_kind} if odd_kind else set())
    # Learnt once: a second feedback of the same run finds nothing new and keeps nothing more.
    examples = Examples(load_target("scenarios.pools:semaphore_pool").default_menu(), 1, "guided")
    examples.last = (b"first", True)
    examples.feedback(run)  # type: ignore[arg-type]
    assert examples.features == features(run) and examples.pool == [b"first"]  # type: ignore[arg-type]
    examples.last = (b"again", True)
    examples.feedback(run)  # type: ignore[arg-type]
    assert examples.pool == [b"first"]


class _TupleExamples(Examples):
    """The guided search as it kept its features before they were codes: a set of tuples (the reference)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.tuples: set = set()

    def feedback(self, run) -> None:  # type: ignore[no-untyped-def]
        if self.strategy not in ("guided", "mixed") or self.last is None:
            return
        new = features(run) - self.tuples
        arcs = self.coverage is not None and self.coverage.reached_new()
        if not new and not arcs:
            return
        if new and len(self.tuples) < generate.MAX_FEATURES:
            self.tuples |= new
        blob, full_menu = self.last
        if not full_menu:
            return
        if len(self.pool) < generate.POOL_SIZE:
            self.pool.append(blob)
        else:
            self.pool[self.random.randrange(generate.POOL_SIZE)] = blob


def _searched(examples: Examples, target, count: int) -> tuple[list[bytes], list[str], object]:  # type: ignore[no-untyped-def]
    drawn = []
    with RunSession():
        for _ in range(count):
            schedule = next(examples)
            drawn.append(repr(schedule.ops[:3]))
            examples.feedback(judge(target, schedule)[0])
    return examples.pool, drawn, examples.random.getstate()


@pytest.mark.parametrize("spec, strategy", [("scenarios.cancel:ticket_pool", "guided"), ("scenarios.pools:semaphore_pool", "mixed")])
def test_a_search_keeping_codes_draws_what_one_keeping_tuples_draws(spec: str, strategy: str) -> None:
    target = load_target(spec)
    coded = Examples(target.default_menu(), 11, strategy)
    reference = _TupleExamples(target.default_menu(), 11, strategy)
    assert _searched(coded, target, 150) == _searched(reference, target, 150)
    assert coded.features == reference.tuples and len(coded.seen) == len(reference.tuples)
    assert coded.pool  # the search kept something


@pytest.mark.parametrize(
    "old, new",
    [
        ("coded.add(base + 8 * running + waiting)", "coded.add(base + running + 8 * waiting)"),  # a walk's code wrong
        ("new = codes - self.seen", "new = set(codes)"),  # what was seen forgotten: every run is news
    ],
)
def test_a_wrong_keeping_of_codes_is_caught(monkeypatch, old: str, new: str) -> None:
    owner, name = (generate, "feature_codes_of") if "coded" in old else (Examples, "feedback")
    mutant = _mutated(owner, name, old, new)
    monkeypatch.setattr(owner, name, mutant)
    target = load_target("scenarios.pools:semaphore_pool")
    run = run_schedule(target, next(Examples(target.default_menu(), 3)))  # never checked: walked
    walked_right = _as_tuples(*generate.feature_codes_of(run)) == features(run)
    coded = Examples(target.default_menu(), 11, "guided")
    reference = _TupleExamples(target.default_menu(), 11, "guided")
    assert not walked_right or _searched(coded, target, 100) != _searched(reference, target, 100)
