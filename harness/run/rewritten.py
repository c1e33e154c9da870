"""pytest's rewritten ``assert`` statements: what the plain statement would have said, and pytest's explanation.

pytest rewrites the ``assert`` statements of test modules, ``conftest.py``
files and every module of a pytest plugin's distribution (this harness's
own ``scenarios`` among them), so that a failing one explains itself: where
the plain statement ``assert len(starts) <= 2, f"{n} starts"`` raises
``AssertionError("3 starts")``, the rewritten one raises
``AssertionError("3 starts\\nassert 3 <= 2\\n +  where 3 = len([...])")``.
A trace that recorded that text would differ between ``harness fuzz`` /
``harness replay`` (modules imported plainly) and the pytest plugin, and a
failure file saved by one would replay as "trace diverged" under the other.
So the runner records what the plain statement says (``rewritten_assert``
gives it, and pytest's explanation apart, for printing).

Recognised, never guessed from the text: the exception was raised in a
module pytest rewrote (its globals hold ``@pytest_ar``, the name rewritten
code calls pytest's helpers by, which no plain module can define), by an
``assert`` statement of its source (the raising instruction is located at
the statement, which pytest gives the ``raise`` it makes of it; an explicit
``raise AssertionError(...)`` or a call inside the statement is located
elsewhere). The text is then split as pytest builds it
(``_pytest/assertion/rewrite.py``, ``visit_Assert``): without a message,
``assert <explanation>``; with one, the message (each further line
indented by two spaces), then ``assert <explanation>`` on a line of its own.
A string message comes back exactly; another object pytest shows by its
``repr`` (cut at 240 characters), where the plain statement says ``str`` of
it: for the usual ones (numbers, tuples, lists, dicts) the two agree.
"""

from __future__ import annotations

import ast
import dis
import functools
import itertools
import linecache
import sys
from dataclasses import dataclass
from types import CodeType, ModuleType, TracebackType
from typing import Any

from twisted.python.failure import Failure

#: The global through which rewritten code reaches pytest's helpers (``import _pytest.assertion.rewrite as
#: @pytest_ar``): a module holds it if and only if pytest rewrote it ("@" is in no Python identifier).
REWRITTEN_GLOBAL = "@pytest_ar"

#: The module rewritten code imports as ``@pytest_ar``: loaded in any process holding a rewritten module.
_REWRITE_MODULE = "_pytest.assertion.rewrite"

#: How pytest's explanation of a failed assert begins (after the message and its indented lines, if any).
_EXPLANATION_START = "assert "


@dataclass(frozen=True)
class PlainAssert:
    """A rewritten assert's failure as the plain statement gives it.

    ``message``: the text of the plain statement's ``AssertionError`` ("" when it has no message);
    ``explanation``: what pytest added (``assert 3 <= 2\\n +  where ...``); ``line``: the line the plain
    statement raises at (CPython places it at the tested expression, pytest at the ``assert`` keyword).
    """

    message: str
    explanation: str
    line: int


def rewritten_assert(exc: BaseException, failure: Failure | None = None) -> PlainAssert | None:
    """The plain statement's view of ``exc`` when a rewritten ``assert`` raised it; else None.

    ``failure`` supplies the raising frame when the exception's own
    traceback was cleaned away (a Failure a Deferred held keeps only file,
    line and function names: the module is then found by its file).
    """
    if not isinstance(exc, AssertionError) or _REWRITE_MODULE not in sys.modules:
        return None  # (no module is rewritten before pytest's rewriting imports this)
    found = _raising_place(exc, failure)
    if found is None:
        return None
    module_globals, filename, line, position = found
    statement = _assert_at(filename, module_globals, line, position)
    if statement is None:
        return None
    has_message, plain_line = statement
    try:
        text = str(exc)
    except Exception:
        return None
    split = split_explanation(text, has_message)
    if split is None:
        return None
    return PlainAssert(split[0], split[1], plain_line)


def split_explanation(text: str, has_message: bool) -> tuple[str, str] | None:
    """``(message, explanation)`` of the text of a rewritten assert's ``AssertionError``; None when the
    text is not the shape pytest builds (then it is kept whole).

    pytest formats ``_format_assertmsg(msg) + "\\n>assert " + explanation``
    (``"assert " + explanation`` without a message): every newline of the
    message becomes ``"\\n~"``, which ``format_explanation`` prints as a
    line indented by two spaces, and the ``>`` line at no indent. So the
    message is the first line and the indented ones after it, and the
    explanation starts at the first line that is not indented.
    """
    if not has_message:
        return ("", text) if text.startswith(_EXPLANATION_START) else None
    lines = text.split("\n")
    end = 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    if end == len(lines) or not lines[end].startswith(_EXPLANATION_START):
        return None
    message = "\n".join([lines[0], *(line[2:] for line in lines[1:end])])
    return message, "\n".join(lines[end:])


def _raising_place(
    exc: BaseException, failure: Failure | None
) -> tuple[dict[str, Any], str, int, tuple[int | None, ...] | None] | None:
    """The innermost frame's module globals, file, line and (when known) the raising instruction's
    position, when that module is one pytest rewrote; else None."""
    tb = exc.__traceback__
    if tb is None and failure is not None:
        held = getattr(failure, "tb", None)  # (None once the Failure was cleaned)
        tb = held if isinstance(held, TracebackType) else None
    if tb is not None:
        while tb.tb_next is not None:
            tb = tb.tb_next
        module_globals = tb.tb_frame.f_globals
        if REWRITTEN_GLOBAL not in module_globals:
            return None
        code = tb.tb_frame.f_code
        return module_globals, code.co_filename, tb.tb_lineno, _position(code, tb.tb_lasti)
    if failure is None:
        return None
    try:
        frames = failure.frames
        if not frames:
            return None
        filename, line = frames[-1][1], frames[-1][2]
    except Exception:
        return None
    if not isinstance(filename, str) or not isinstance(line, int):
        return None
    found = _globals_of_file(filename)
    if found is None or REWRITTEN_GLOBAL not in found:
        return None
    return found, filename, line, None


def _position(code: CodeType, lasti: int) -> tuple[int | None, ...] | None:
    """``(lineno, end_lineno, col, end_col)`` of the instruction at byte offset ``lasti``."""
    if lasti < 0:
        return None
    return next(itertools.islice(code.co_positions(), lasti // 2, None), None)


def _globals_of_file(filename: str) -> dict[str, Any] | None:
    """The globals of the loaded module whose file is ``filename`` (None if none is)."""
    module = _BY_FILE.get(filename)
    if module is not None and sys.modules.get(module.__name__) is module and getattr(module, "__file__", None) == filename:
        return vars(module)
    for module in list(sys.modules.values()):
        if isinstance(module, ModuleType) and getattr(module, "__file__", None) == filename:
            _BY_FILE[filename] = module
            return vars(module)
    return None


#: The module last found for a file (``_globals_of_file``), checked again at each use.
_BY_FILE: dict[str, ModuleType] = {}


def _assert_at(
    filename: str, module_globals: dict[str, Any], line: int, position: tuple[int | None, ...] | None
) -> tuple[bool, int] | None:
    """``(has a message, the line the plain statement raises at)`` of the ``assert`` statement that raised.

    With the raising instruction's position, the statement is the one that
    spans exactly that (pytest locates its ``raise`` there); without it, the
    only ``assert`` that starts on ``line``, when no ``raise`` starts there too.
    """
    linecache.checkcache(filename)
    source = "".join(linecache.getlines(filename, module_globals))
    if not source:
        return None
    statements = _statements(filename, source)
    if statements is None:
        return None
    asserts, raises = statements
    candidates = [a for a in asserts.get(line, ()) if position is None or a[0] == position]
    if len(candidates) != 1 or (position is None and line in raises):
        return None
    _span, has_message, plain_line = candidates[0]
    return has_message, plain_line


_Span = tuple[int | None, int | None, int | None, int | None]


@functools.lru_cache(maxsize=64)
def _statements(filename: str, source: str) -> tuple[dict[int, list[tuple[_Span, bool, int]]], frozenset[int]] | None:
    """The ``assert`` statements of a module's source by their first line (each: its span, whether it
    has a message, the line its plain form raises at), and the lines a ``raise`` statement starts on."""
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return None
    asserts: dict[int, list[tuple[_Span, bool, int]]] = {}
    raises = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            span = (node.lineno, node.end_lineno, node.col_offset, node.end_col_offset)
            asserts.setdefault(node.lineno, []).append((span, node.msg is not None, _plain_line(node, filename)))
        elif isinstance(node, ast.Raise):
            raises.add(node.lineno)
    return asserts, frozenset(raises)


def _plain_line(node: ast.Assert, filename: str) -> int:
    """The line the plain (unrewritten) statement raises at: where this Python's compiler places its
    ``raise`` (3.11: the tested expression's first line, which may follow the ``assert`` keyword's)."""
    try:
        code = compile(ast.Module(body=[node], type_ignores=[]), filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):  # an ``await`` or ``yield`` in it, outside its function
        return node.test.lineno
    for instruction in dis.get_instructions(code):
        if instruction.opname == "RAISE_VARARGS" and instruction.positions is not None:
            if instruction.positions.lineno is not None:
                return instruction.positions.lineno
    return node.test.lineno
