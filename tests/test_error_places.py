"""An exception without text (a bare ``assert`` in the subject) is shown with its type and where it was raised."""

from __future__ import annotations

from bare_asserts import Checky
from harness import JobSpec, Schedule, Submit, Target, check, run_schedule
from harness.run.describe import describe_error


def _line_of(function, text: str) -> int:
    import inspect

    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


def test_bare_asserts_name_their_type_file_and_line() -> None:
    run = run_schedule(Target(build=Checky), Schedule((Submit(0, 0, JobSpec("succeed", 10)),)))
    failure = next(e for e in run.trace if e.kind == "failure")
    escaped = next(e for e in run.trace if e.kind == "reactor.error")
    check_line = _line_of(Checky._check, "assert result")
    tick_line = _line_of(Checky._tick, "assert not")
    assert failure.detail == f"AssertionError: (no message) raised at bare_asserts.py:{check_line} in _check"
    assert escaped.detail.endswith(f"AssertionError: (no message) raised at bare_asserts.py:{tick_line} in _tick")
    messages = {v.invariant: v.message for v in check(run)}
    assert f"bare_asserts.py:{check_line}" in messages["errors.propagate"]
    assert f"bare_asserts.py:{tick_line}" in messages["errors.escaped"]


def test_exceptions_with_text_keep_it_and_the_type_stays_first() -> None:
    assert describe_error(ValueError("bad")) == "ValueError: bad"
    assert describe_error(KeyError()) == "KeyError: "  # nowhere known: as before


def test_an_unhandled_bare_assert_says_where_too() -> None:
    from bare_asserts import Dropper

    run = run_schedule(Target(build=Dropper), Schedule((Submit(0, 0, JobSpec("value")),)))
    line = _line_of(Dropper._check, "assert result")
    (unhandled,) = [e for e in run.trace if e.kind == "unhandled"]
    assert unhandled.detail == f"AssertionError: (no message) raised at bare_asserts.py:{line} in _check"


def test_a_recursion_error_reads_the_same_whatever_the_stack_depth_at_the_start() -> None:
    """CPython's RecursionError text says where the limit hit ("... while calling a Python object"),
    which depends on the stack depth the run began at; the trace must not (seen on Twisted 23.10)."""
    from harness.run.describe import describe_error

    texts = {
        describe_error(RecursionError(f"maximum recursion depth exceeded{where}"))
        for where in ("", " while calling a Python object", " in comparison")
    }
    assert texts == {"RecursionError: maximum recursion depth exceeded"}
    assert describe_error(RecursionError("my own words")) == "RecursionError: my own words"
