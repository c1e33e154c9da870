"""The docstring convention of the zoos: a subject says what it promises, and a buggy one what is wrong and what catches it."""

from __future__ import annotations

import pytest

from harness import load_target
from scenarios import HARD_MODULES, TIME_MODULES, Scenario, zoo

ZOOS = zoo(*TIME_MODULES, *HARD_MODULES)


@pytest.mark.parametrize("scenario", ZOOS, ids=[s.target.removeprefix("scenarios.") for s in ZOOS])
def test_each_subject_says_what_it_promises_and_what_is_wrong(scenario: Scenario) -> None:
    target = load_target(scenario.target)
    doc = target.build.__doc__ or ""
    assert scenario.primitive and scenario.description and target.description
    if scenario.expect == "pass":
        assert "BUG" not in doc
    else:
        assert "BUG:" in doc and f"Caught by: ``{scenario.expect}``" in doc


def test_both_zoos_are_covered() -> None:
    assert {s.target.partition(":")[0] for s in ZOOS} == {*TIME_MODULES, *HARD_MODULES}
