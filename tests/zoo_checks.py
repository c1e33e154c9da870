"""The shapes every zoo test file shares, written once.

A zoo is a set of buggy scenarios (twins) beside the correct subjects they are
twins of (``scenarios/*.py``, each module's ``SCENARIOS``). Every zoo is tested
both ways, in the same three shapes:

* **clean**: each correct subject runs a campaign and nothing is found (a
  short one in the fast suite, long ones, often with every strategy, under
  ``@pytest.mark.slow``);
* **caught**: each twin's campaign finds its bug, named by its invariant
  (``Scenario.expect``, or any of ``Scenario.also`` where the zoo allows it);
* **whatever the seed**: the same on more seeds, under ``slow``.

:class:`Zoo` makes those tests from the catalog's records, so a zoo's file
says only what differs: which subjects, seeds, example counts and how strict
a catch must be. A generated test is a plain module-level test
(``test_x = ZOO.clean(...)``), parametrized by subject (and seed or strategy),
with the same names and ids a hand-written one had.

Two more shapes, for the zoos with a hand-written minimal schedule per twin:
:meth:`Zoo.breaks_first` and :meth:`Zoo.passes`.

Also here: :func:`campaign` (the reproducible campaign those tests run, from
``review_campaigns``),
:func:`assert_clean` and :func:`assert_caught` (their two verdicts, for the
tests that loop or check more), :func:`first_invariant` and
:func:`assert_refused` (a hand-made schedule's verdict; a ``Target``
declaration refused with a one-line error).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import Call, CampaignResult, Schedule, Target, TargetError, check, load_target, run_schedule
from harness.search.generate import DEFAULT_STRATEGY

from review_campaigns import campaign
from scenarios import Scenario

#: A correct subject: its target spec, or its catalog record.
Subject = str | Scenario


def spec_of(subject: Subject) -> str:
    """The target spec of ``subject`` (``module:name``)."""
    return subject.target if isinstance(subject, Scenario) else subject


def assert_clean(result: CampaignResult, examples: int | None = None) -> None:
    """No error and no alarm (the messages are shown if any); with ``examples``, the campaign ran that many.
    (A campaign stopped by an error finds nothing: without the first check it would pass as clean.)"""
    assert result.error is None, result.error
    assert [f.record.message for f in result.findings] == []
    if examples is not None:
        assert result.examples == examples


def assert_caught(scenario: Scenario, result: CampaignResult, *, also: bool = True, only: bool = False,
                  shrunk: bool = False, max_ops: int | None = None, replayed: bool = False,
                  no_error: bool = False) -> None:
    """The campaign found ``scenario``'s bug, named by its invariant.

    ``also``: any invariant of ``Scenario.caught_by`` names it (else only ``expect``); ``only``: it is
    the one finding; ``shrunk``: the schedule was shrunk to the end; ``max_ops``: to at most that many
    operations; ``replayed``: the saved schedule, run again, still breaks ``expect``; ``no_error``: the
    campaign ended without an error (none while shrinking or saving what it found)."""
    if no_error:
        assert result.error is None, result.error
    assert result.findings, f"{scenario.target}: not caught in {result.examples} examples with seed {result.seed}"
    if only:
        assert len(result.findings) == 1, [f.record.message for f in result.findings]
    finding = result.findings[0]
    invariant = finding.record.invariant
    named = scenario.caught_by(invariant) if also else invariant == scenario.expect
    assert named, f"{scenario.target}: expected {scenario.expect}, got {invariant}: {finding.record.message}"
    if shrunk:
        assert finding.shrunk, f"{scenario.target}: the schedule was not shrunk to the end"
    if max_ops is not None:
        assert len(finding.record.schedule.ops) <= max_ops, finding.record.schedule
    if replayed:
        again = check(run_schedule(load_target(scenario.target), finding.record.schedule))
        assert scenario.expect in [v.invariant for v in again], again


def first_invariant(spec: str | Target, schedule: Schedule) -> str | None:
    """The invariant the first violation of ``schedule`` on ``spec`` names; None when it keeps every promise."""
    target = load_target(spec) if isinstance(spec, str) else spec
    violations = check(run_schedule(target, schedule))
    return violations[0].invariant if violations else None


def _no_subject(clock: Any) -> None:
    return None


def assert_refused(fields: dict[str, Any], fragment: str) -> None:
    """``Target(**fields)`` is refused with a one-line ``TargetError`` containing ``fragment``."""
    with pytest.raises(TargetError) as raised:
        Target(build=_no_subject, **fields)
    message = str(raised.value)
    assert fragment in message and "\n" not in message, message


def short_id(subject: Subject) -> str:
    """A subject's test id: its spec without the ``scenarios.`` prefix (``hedge:hedged_call``)."""
    return spec_of(subject).removeprefix("scenarios.")


def name_id(subject: Subject) -> str:
    """A subject's test id: its target's name only (``hedged_call``)."""
    return spec_of(subject).split(":")[1]


def _test(body: Callable[..., None], params: Sequence[tuple[str, Sequence[Any], list[str] | None]],
          slow: bool, tmp_path: bool = True) -> Callable[..., None]:
    """A test function taking ``params``' names (and ``tmp_path`` if asked), parametrized by them (the
    first named innermost, as stacked decorators put it) and marked slow if asked."""

    def test(**arguments: Any) -> None:
        body(**arguments)

    names = [name for name, _, _ in params] + (["tmp_path"] if tmp_path else [])
    test.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names])
    for name, values, ids in params:
        test = pytest.mark.parametrize(name, values, ids=ids)(test)
    return pytest.mark.slow(test) if slow else test


@dataclass(frozen=True)
class Zoo:
    """A zoo's correct subjects and twins, and how its campaigns run; :meth:`clean` and :meth:`caught`
    make its tests.

    ``ids`` names a subject in a test id (:func:`short_id` or :func:`name_id`; a spec given as a plain
    string is its own id). ``all_faults`` is :func:`campaign`'s, for every campaign of this zoo;
    ``search_on``: they keep searching after a finding, so that every distinct alarm is counted
    (``max_failures=None``), else they stop at the first, as ``harness run`` does."""

    correct: tuple[Subject, ...]
    buggy: tuple[Scenario, ...]
    ids: Callable[[Subject], str] = short_id
    all_faults: bool = False
    search_on: bool = False

    @classmethod
    def of(cls, scenarios: Sequence[Scenario], **options: Any) -> Zoo:
        """The zoo of catalog records ``scenarios``: those expecting ``pass`` are its correct subjects."""
        return cls(tuple(s for s in scenarios if s.expect == "pass"), tuple(s for s in scenarios if s.expect != "pass"),
                   **options)

    def _subjects(self, subjects: Sequence[Subject]) -> tuple[str, Sequence[Subject], list[str]]:
        return "subject", subjects, [self.ids(s) if isinstance(s, Scenario) else s for s in subjects]

    def _run(self, spec: str, seed: int, examples: int, tmp_path: Any, strategy: str = DEFAULT_STRATEGY,
             all_faults: bool | None = None) -> CampaignResult:
        return campaign(spec, seed, examples, tmp_path, max_failures=None if self.search_on else 1, strategy=strategy,
                        all_faults=self.all_faults if all_faults is None else all_faults)

    def clean(self, *, seed: int, examples: int, strategies: Sequence[str] = (), slow: bool = False,
              subjects: Sequence[Subject] | None = None, counted: bool = True,
              all_faults: bool | None = None, given: Callable[[Target], None] | None = None) -> Callable[..., None]:
        """A test: each correct subject (or each of ``subjects``) runs ``examples`` examples from ``seed``,
        with each of ``strategies`` (else the default strategy), and raises no alarm; ``counted``: it ran
        all ``examples`` (a subject whose schedules are few may exhaust them sooner). ``given`` checks
        the loaded target first (what the campaign relies on it declaring)."""

        def body(subject: Subject, tmp_path: Path, strategy: str = DEFAULT_STRATEGY) -> None:
            if given is not None:
                given(load_target(spec_of(subject)))
            result = self._run(spec_of(subject), seed, examples, tmp_path, strategy, all_faults)
            assert_clean(result, examples if counted else None)

        params = [self._subjects(self.correct if subjects is None else subjects)]
        if strategies:
            params.append(("strategy", strategies, None))
        return _test(body, params, slow)

    def breaks_first(self, minimal: Mapping[str, Schedule]) -> Callable[..., None]:
        """A test: each twin's hand-written minimal schedule (``minimal[target]``) breaks its ``expect``
        first."""

        def body(subject: Scenario) -> None:
            assert first_invariant(subject.target, minimal[subject.target]) == subject.expect

        return _test(body, [self._subjects(self.buggy)], slow=False, tmp_path=False)

    def passes(self, minimal: Mapping[str, Schedule], *, same_module: bool = False) -> Callable[..., None]:
        """A test: each correct subject keeps every promise on every twin's minimal schedule (with
        ``same_module``, on those of the twins of its own module only)."""

        def body(subject: Subject) -> None:
            target = load_target(spec_of(subject))
            module = spec_of(subject).split(":")[0]
            for bug, schedule in minimal.items():
                # a schedule calling an operation the subject does not have is not for it
                calls = {op.operation for op in schedule.ops if isinstance(op, Call)}
                if (not same_module or bug.split(":")[0] == module) and calls <= set(target.operations):
                    assert check(run_schedule(target, schedule)) == [], f"the schedule that shows {bug}"

        return _test(body, [self._subjects(self.correct)], slow=False, tmp_path=False)

    def caught(self, *, seeds: int | Sequence[int], examples: int, slow: bool = False,
               **verdict: bool | int | None) -> Callable[..., None]:
        """A test: each twin's campaign of ``examples`` examples finds its bug, by :func:`assert_caught`
        with the options ``verdict``; on the one seed ``seeds``, or parametrized by each of them."""

        def body(subject: Scenario, tmp_path: Path, seed: int = seeds if isinstance(seeds, int) else 0) -> None:
            assert_caught(subject, self._run(subject.target, seed, examples, tmp_path), **verdict)  # type: ignore[arg-type]

        params = [self._subjects(self.buggy)]
        if not isinstance(seeds, int):
            params.append(("seed", seeds, None))
        return _test(body, params, slow)
