"""Audit 14 (docs/reviews/audit-14.md): round 13's changes attacked; the small reproductions of what broke.

- ``describe_returned`` took a subclass of a data type, or an enum member, for data whatever its ``repr``: a
  ``str`` subclass writing its ``id()``, or an enum whose value is a ``frozenset`` (written unsorted by
  ``Enum.__repr__``), made an operation's ``call.result`` differ between runs and processes.
- The drain stopped 10 s after the last operation's work, whatever the target declared: a correct pool whose
  declared ``timeout_cleanup_ms`` (or ``timeout_ms``) reaches past that was called a deadlock
  (``completion.deadline``).
"""

from __future__ import annotations

import enum
import http
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

from harness import JobSpec, Operation, Schedule, Call, Submit, Target, check, run_schedule
from harness.run.describe import describe_returned


class Token(str):
    """A str whose repr is its identity (a counter or an ``id()``, as handles often write)."""

    def __repr__(self) -> str:
        return f"Token#{id(self)}"


class Kinds(enum.Enum):
    BOTH = frozenset({"alpha", "beta", "gamma", "delta", "epsilon"})


class Colour(enum.Enum):
    RED = 1
    PAIR = (1, "x")


class Perm(enum.Flag):
    R = 1
    W = 2


class UserId(int):
    pass


def test_a_data_subclass_with_its_own_repr_and_an_enum_of_no_data_are_shown_by_type():
    assert describe_returned(Token("t")) == "<a Token>"
    assert describe_returned(Kinds.BOTH) == "<a Kinds>"
    assert describe_returned((1, Kinds.BOTH)) == "<a tuple>"


def test_data_subclasses_keeping_their_repr_and_enums_of_data_are_still_data():
    assert describe_returned(UserId(4)) == "4"
    assert describe_returned(Colour.RED) == "<Colour.RED: 1>"
    assert describe_returned(Colour.PAIR) == "<Colour.PAIR: (1, 'x')>"
    assert describe_returned(Perm.R | Perm.W) == "<Perm.R|W: 3>"
    assert describe_returned(http.HTTPStatus.OK) == "<HTTPStatus.OK: 200>"
    assert describe_returned([True, None, 1.5, b"x"]) == "[True, None, 1.5, b'x']"


class Returns:
    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def submit(self, job: Any) -> Any:
        return defer.maybeDeferred(job)

    def stop(self) -> None:
        pass


returns = Target(build=Returns, operations={
    "kinds": Operation(lambda s: Kinds.BOTH),
    "token": Operation(lambda s: Token("t")),
})

_TRACE = """
import sys
sys.path.insert(0, sys.argv[1])
from test_audit14 import traced
print(traced())
"""


def traced() -> str:
    """The trace of a run calling both operations: its digest and details."""
    run = run_schedule(returns, Schedule(ops=(Call(at_ms=0, operation="kinds"), Call(at_ms=1, operation="token"))))
    return f"{run.trace.digest()} {[event[4] for event in run.trace.raw]}"


@pytest.mark.slow
def test_a_plain_return_is_recorded_the_same_in_another_process():
    """Before: ``<Kinds.BOTH: frozenset({...})>`` in each process's set order (another ``PYTHONHASHSEED``),
    ``Token#<id>`` in each run's. A subprocess (about 10 s on a loaded machine), so in the slow tier."""
    seed = "2" if os.environ.get("PYTHONHASHSEED") != "2" else "3"
    done = subprocess.run([sys.executable, "-c", _TRACE, str(Path(__file__).parent)],
                          env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, timeout=120,
                          check=True)
    here = traced()
    assert done.stdout.strip() == here and "kinds: <a Kinds>" in here and "token: <a Token>" in here


# -- a declared wait past the drain's 10 s of slack -----------------------------------------------------------

class Expired(Exception):
    pass


class SlowCleanupPool:
    """Cancels a job's work at ``timeout_ms`` (its own timer) and answers the caller with ``Expired`` after
    ``hops`` cleanup timers of ``hop_ms`` each (a compensation with a long backoff); ``forever``: the cleanup
    re-arms itself for ever and never answers (the bug)."""

    def __init__(self, clock: Any, timeout_ms: int, hop_ms: int, hops: int, forever: bool = False) -> None:
        self.clock, self.timeout_ms, self.hop_ms, self.hops, self.forever = clock, timeout_ms, hop_ms, hops, forever

    def submit(self, job: Any) -> defer.Deferred[Any]:
        work = defer.maybeDeferred(job)
        caller: defer.Deferred[Any] = defer.Deferred(lambda _d: work.cancel())
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            work.cancel()

        timer = self.clock.callLater(self.timeout_ms / 1000, expire)

        def cleanup(left: int) -> None:
            if left or self.forever:
                self.clock.callLater(self.hop_ms / 1000, cleanup, left - 1)
            elif not caller.called:
                caller.errback(Expired("timed out"))

        def ended(result: Any) -> None:
            if timer.active():
                timer.cancel()
            if expired:
                cleanup(self.hops)
            elif not caller.called:
                caller.errback(result) if isinstance(result, Failure) else caller.callback(result)

        work.addBoth(ended)
        return caller


def _slow(timeout_ms: int, hop_ms: int, hops: int, cleanup_ms: int | None, forever: bool = False) -> Target:
    return Target(build=lambda clock: SlowCleanupPool(clock, timeout_ms, hop_ms, hops, forever),
                  timeout_ms=timeout_ms, timeout_error=Expired, timeout_cleanup_ms=cleanup_ms)


HANG = Submit(at_ms=0, job=0, spec=JobSpec(kind="hang"))
QUICK = Submit(at_ms=5, job=1, spec=JobSpec(kind="succeed", after_ms=100))


def _verdicts(target: Target, *ops: Any) -> list[tuple[str, str]]:
    return [(v.invariant, v.message) for v in check(run_schedule(target, Schedule(ops=ops)))]


@pytest.mark.parametrize("timeout_ms, hop_ms, hops", [
    (300, 6_000, 2),    # a 12 s compensation after the timeout (before: a deadlock at the drain, 6.3 s)
    (300, 30_000, 2),   # a minute of it (before: a deadlock at 300 ms, the next timer past the drain)
    (20_000, 10, 0),    # a 20 s timeout answered at once (before: a deadlock at 0 ms)
])
def test_a_declared_wait_past_the_drain_slack_is_no_deadlock(timeout_ms, hop_ms, hops):
    target = _slow(timeout_ms, hop_ms, hops, cleanup_ms=hop_ms * hops or None)
    assert _verdicts(target, HANG, QUICK) == []


def test_a_cleanup_that_never_answers_is_still_caught_past_the_slack():
    target = _slow(300, 6_000, 2, cleanup_ms=12_000, forever=True)
    found = dict(_verdicts(target, HANG))
    assert "could finish but its Deferred had not fired when the run drained at 12300ms" in found["completion.deadline"]
    # Answered at 12.3 s, 1 s after the bound and past the drain (which stops at 6.3 s, its next timer beyond
    # the horizon): caught as a caller never answered, as before.
    late = _slow(300, 6_000, 2, cleanup_ms=11_000)
    assert [name for name, _ in _verdicts(late, HANG)] == ["completion.deadline"]
    within = _slow(300, 3_000, 3, cleanup_ms=8_000)  # answered at 9.3 s, 1 s after the bound, within the drain
    [(name, message)] = _verdicts(within, HANG)
    assert name == "time.timeout" and "fired only at 9300ms, 9000ms later; timeout_cleanup_ms=8000" in message


def test_the_declared_wait_is_a_submit_targets_own():
    assert _slow(300, 10, 1, cleanup_ms=12_000).declared_wait_ms == 12_300
    assert Target(build=Returns).declared_wait_ms == 0
    periodic = Target(build=lambda clock, work: None, kind="periodic", interval_ms=100, timeout_ms=60_000)
    assert periodic.declared_wait_ms == 0
