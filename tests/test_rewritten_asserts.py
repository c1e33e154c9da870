"""An ``assert`` pytest rewrote is recorded as the plain statement would be (``harness.run.rewritten``).

pytest rewrites the asserts of test modules, conftest files and the modules of a plugin's
distribution (the bundled ``scenarios`` when the harness is installed from a wheel), and a failing
one's ``AssertionError`` then carries pytest's explanation (``3 starts\\nassert 3 <= 2\\n + where
...``). A trace that recorded it differed between ``harness fuzz`` / ``harness replay`` and the
pytest plugin, so a failure file saved by one replayed as "trace diverged" under the other. Here:
the split of pytest's real text (the rewriter itself compiles the code), the runner's two ways of
meeting the error (its traceback, or a Failure whose traceback was cleaned), what is printed, and
that a different message still diverges; ``test_failure_files_cross`` (end to end, in subprocesses)
replays files across the CLI and pytest.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _pytest.assertion.rewrite import rewrite_asserts
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.python.failure import Failure

from harness import JobSpec, Schedule, Submit, Target, check, run_schedule
from harness.run.describe import describe_error
from harness.run.rewritten import REWRITTEN_GLOBAL, rewritten_assert, split_explanation
from scenarios.pools import SemaphorePool

SOURCE = '''
def bare(x):
    assert x == 2


def multi_line(x):
    assert (
        x == 2
    )


def with_message(x, message):
    assert x == 2, message


def raised_by_hand(text):
    raise AssertionError(text)


def in_callback(x):
    d = defer.succeed(x)
    d.addCallback(bare)
    return d
'''


def _load(path: Path, name: str, rewrite: bool) -> ModuleType:
    """The module at ``path`` compiled plainly or as pytest rewrites it, registered in ``sys.modules``
    (the runner finds a module by its file when a Failure kept only file names)."""
    source = path.read_text()
    tree = ast.parse(source)
    if rewrite:
        rewrite_asserts(tree, source.encode(), str(path), None)
    module = ModuleType(name)
    module.__file__ = str(path)
    module.defer = defer  # type: ignore[attr-defined]
    exec(compile(tree, str(path), "exec"), vars(module))
    return module


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, ModuleType]]:
    """The same source as a plain module and as a rewritten one (two files: one module per file)."""
    root = tmp_path_factory.mktemp("checks")
    plain_path, rewritten_path = root / "plain" / "checks.py", root / "rewritten" / "checks.py"
    for path in (plain_path, rewritten_path):
        path.parent.mkdir()
        path.write_text(SOURCE)
    plain, rewritten = _load(plain_path, "checks_plain", False), _load(rewritten_path, "checks_rewritten", True)
    assert REWRITTEN_GLOBAL in vars(rewritten) and REWRITTEN_GLOBAL not in vars(plain)
    sys.modules.update({module.__name__: module for module in (plain, rewritten)})
    yield plain, rewritten
    for module in (plain, rewritten):
        del sys.modules[module.__name__]


def _raised(function: Any, *args: Any) -> AssertionError:
    try:
        function(*args)
    except AssertionError as exc:
        return exc
    raise AssertionError(f"{function.__name__}{args} did not raise")


@pytest.mark.parametrize("name", ["bare", "multi_line"])
def test_a_bare_assert_reads_as_the_plain_one_with_its_line(modules: tuple[ModuleType, ModuleType], name: str) -> None:
    plain, rewritten = (_raised(getattr(module, name), 1) for module in modules)
    assert str(rewritten).startswith("assert 1 == 2") and str(plain) == ""  # pytest's text, the plain one
    assert describe_error(rewritten) == describe_error(plain)
    assert describe_error(plain).startswith(f"AssertionError: (no message) raised at checks.py:{8 if name == 'multi_line' else 3} in {name}")
    found = rewritten_assert(rewritten)
    assert found is not None and found.message == "" and found.explanation == str(rewritten)
    assert rewritten_assert(plain) is None


@given(
    message=st.one_of(
        st.text(),
        st.integers(),
        st.tuples(st.text(max_size=5), st.integers()),
        st.lists(st.text(max_size=8), max_size=4),
    )
)
def test_a_messages_text_comes_back_as_the_plain_statement_gives_it(modules: tuple[ModuleType, ModuleType], message: Any) -> None:
    """pytest's own formatting (newlines, ``%``, a leading or trailing newline, text that looks like
    ``assert``), undone: the message recorded is the plain statement's, byte for byte, also a number's
    or a tuple's (pytest shows their ``repr``, which is their ``str``)."""
    plain, rewritten = (_raised(module.with_message, 1, message) for module in modules)
    assert str(rewritten) != str(plain)
    found = rewritten_assert(rewritten)
    assert found is not None and found.explanation.startswith("assert 1 == 2")
    assert describe_error(rewritten) == describe_error(plain)
    if isinstance(message, str):
        assert found.message == str(plain)


def test_an_assertion_error_raised_by_hand_in_a_rewritten_module_keeps_its_text(modules: tuple[ModuleType, ModuleType]) -> None:
    rewritten = modules[1]
    for text in ("assert 1 == 2", "why\nassert it", ""):
        exc = _raised(rewritten.raised_by_hand, text)
        assert rewritten_assert(exc) is None
        assert describe_error(exc) == describe_error(_raised(modules[0].raised_by_hand, text))


def test_a_failure_whose_traceback_was_cleaned_finds_the_module_by_its_file(modules: tuple[ModuleType, ModuleType]) -> None:
    """A Deferred cleans its Failure (``harness fuzz``; under pytest, pytest-twisted keeps tracebacks): only file,
    line and function names are left, no globals, no position."""
    details = []
    for module in modules:
        failures: list[Failure] = []
        module.in_callback(1).addErrback(failures.append)
        (failure,) = failures
        # What Failure.cleanFailure does (pytest-twisted, loaded here, makes that a no-op): names only.
        assert failure.frames[-1][:3] == ("bare", module.__file__, 3) and failure.frames[-1][4] == ()
        failure.tb = failure.value.__traceback__ = None
        details.append(describe_error(failure.value, failure))
    assert details[0] == details[1] == "AssertionError: (no message) raised at checks.py:3 in bare"


def test_split_explanation_refuses_text_of_another_shape() -> None:
    assert split_explanation("x is 1\n  second\nassert 1 == 2", True) == ("x is 1\nsecond", "assert 1 == 2")
    assert split_explanation("assert 1 == 2\n +  where 1 = f()", False) == ("", "assert 1 == 2\n +  where 1 = f()")
    assert split_explanation("x is 1", True) is None  # no explanation line
    assert split_explanation("x is 1\nsecond\nassert 1 == 2", True) is None  # a line neither indented nor the explanation
    assert split_explanation("1 == 2", False) is None


def _invariant_target(module: ModuleType) -> Target:
    return Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, invariants=(module.at_most_one,))


INVARIANT = '''
def at_most_one(run):
    starts = [e for e in run.trace if e.kind == "job.start"]
    assert len(starts) <= 1, f"{len(starts)} starts"
'''


def test_a_user_invariant_records_the_plain_message_and_shows_pytests_explanation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = []
    for rewrite in (False, True):
        path = tmp_path / f"inv_{rewrite}.py"
        path.write_text(INVARIANT)
        module = _load(path, f"inv_{rewrite}", rewrite)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        runs.append(run_schedule(_invariant_target(module), Schedule(tuple(Submit(0, j, JobSpec()) for j in range(2)))))
    plain, rewritten = runs
    assert plain.trace.lines() == rewritten.trace.lines()
    assert plain.trace.lines()[-2].endswith("user.fail -1.0 at_most_one: 2 starts")
    messages = [next(v.message for v in check(run) if v.invariant == "user.at_most_one") for run in runs]
    assert messages[0] == "2 starts"
    assert messages[1].startswith("2 starts\\nassert 2 <= 1\\n +  where 2 = len(")  # printed, not compared
    assert plain.explained == {} and list(rewritten.explained) == [len(rewritten.trace) - 2]


def test_a_different_message_still_gives_a_different_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The determinism check keeps its teeth: only pytest's addition is left out, never the message."""
    traces = []
    for n, words in enumerate(("starts", "jobs started")):
        path = tmp_path / f"words_{n}.py"
        path.write_text(INVARIANT.replace('} starts"', '} ' + words + '"'))
        module = _load(path, f"words_{n}", True)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        run = run_schedule(_invariant_target(module), Schedule(tuple(Submit(0, j, JobSpec()) for j in range(2))))
        traces.append(run.trace.digest())
    assert traces[0] != traces[1]
