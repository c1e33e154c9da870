"""Audit 14 (docs/reviews/audit-14.md): round 13's changes attacked; the small reproductions of what broke.

- ``describe_returned`` took a subclass of a data type, or an enum member, for data whatever its ``repr``: a
  ``str`` subclass writing its ``id()``, or an enum whose value is a ``frozenset`` (written unsorted by
  ``Enum.__repr__``), made an operation's ``call.result`` differ between runs and processes.
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

from harness import Call, Operation, Schedule, Target, run_schedule
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
