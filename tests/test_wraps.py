"""``Target(wraps=...)`` (docs/reviews/outside-user.md F7): a subject that fails with its own error carrying the job's.

The caller's failure is recorded as the error the declared wrapper carries, so every invariant
that compares a received error (``errors.propagate``, ``errors.own_result``, ``time.timeout``)
judges the job's error. Both ways: the review's retrying client (``GaveUp(last)``, an early
``DeadlineExceeded(last=...)``) and Twisted's ``gatherResults`` (``FirstError.subFailure``) are
clean without an unwrapping adapter, and a client whose ``GaveUp`` carries another call's error
is caught by ``errors.own_result``.
"""

from __future__ import annotations

import dataclasses

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

from harness import ClockPolicy, JobSpec, Schedule, Submit, Target, TargetError, check, load_target, run_schedule
from scenarios.review import retrying

from review_campaigns import campaign

REVIEW = "scenarios.review.targets"
CLEAN = (f"{REVIEW}:retrying_ok", "scenarios.thirdparty.twisted_prims:gather_results")


def _id(spec: str) -> str:
    return spec.split(":")[1]


# --- the field ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wraps", [{"GaveUp": lambda e: e.last}, {retrying.GaveUp: "last"}, [retrying.GaveUp]], ids=["name", "not-callable", "list"]
)
def test_bad_wraps_are_refused_in_one_line(wraps) -> None:
    with pytest.raises(TargetError, match=r"^Target wraps must map exception classes to functions") as info:
        Target(build=object, wraps=wraps)
    assert "\n" not in str(info.value)


def test_carried_unwraps_failures_nested_wrappers_and_nothing_carried() -> None:
    inner = ValueError("job's")
    target = Target(
        build=object, wraps={retrying.GaveUp: lambda e: e.last, defer.FirstError: lambda e: e.subFailure}
    )
    gave_up = retrying.GaveUp(3, Failure(inner))
    assert target.carried(gave_up) is inner
    assert target.carried(defer.FirstError(Failure(gave_up), 0)) is inner  # unwrapped again
    assert target.carried(retrying.DeadlineExceeded("late")).args == ("late",)  # not declared: itself
    judged = Target(build=object, wraps={retrying.DeadlineExceeded: lambda e: e.last})
    exceeded = retrying.DeadlineExceeded("at the deadline")
    assert judged.carried(exceeded) is exceeded  # carries None: judged as itself
    raising = Target(build=object, wraps={retrying.GaveUp: lambda e: e.missing})
    assert raising.carried(gave_up) is gave_up  # a getter that raises carries nothing


# --- the semantics --------------------------------------------------------------------------------

#: A job that fails every attempt: the client gives up with GaveUp(last) after three.
ALWAYS_FAILS = Schedule((Submit(0, 0, JobSpec("fail", 10)),), ClockPolicy())


def test_the_caller_is_judged_by_the_error_the_wrapper_carries() -> None:
    run = run_schedule(load_target(f"{REVIEW}:retrying_ok"), ALWAYS_FAILS)
    assert check(run) == []
    failures = [e.detail for e in run.trace if e.kind == "failure"]
    assert failures == ["InjectedError: injected by job 0 attempt 2"]  # GaveUp's last, recorded as received


def test_without_wraps_the_wrapper_breaks_propagate() -> None:
    target = dataclasses.replace(load_target(f"{REVIEW}:retrying_ok"), wraps={})
    violations = check(run_schedule(target, ALWAYS_FAILS))
    assert [v.invariant for v in violations] == ["errors.propagate"]
    assert "failed with GaveUp" in violations[0].message


# --- both ways over campaigns --------------------------------------------------------------------


@pytest.mark.parametrize("spec", CLEAN, ids=_id)
def test_wrapping_components_stay_clean_without_an_adapter(spec: str, tmp_path) -> None:
    assert load_target(spec).submit is None or "gather" in spec  # retrying: the default submit
    result = campaign(spec, seed=7, examples=300, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []


def test_a_wrapper_carrying_another_calls_error_is_caught(tmp_path) -> None:
    result = campaign(f"{REVIEW}:retrying_stale_error", seed=7, examples=2000, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == ["errors.own_result"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("spec", CLEAN, ids=_id)
def test_wrapping_components_stay_clean_over_a_long_campaign(spec: str, seed: int, tmp_path) -> None:
    result = campaign(spec, seed=seed, examples=2500, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
