"""Deterministic one-line text for what a run records: values, errors and where they were raised.

A trace must be byte-identical across runs and machines, so every text the
runner records about the target's values and exceptions goes through here:
memory addresses are masked, control characters escaped, lengths bounded,
and a place is a file's base name, never a full path.
"""

from __future__ import annotations

import enum
import functools
import os
import re
from typing import Any

from twisted.internet.defer import AlreadyCalledError, FirstError
from twisted.python.failure import Failure

from harness.model.trace import one_line, safe_repr
from harness.run.rewritten import rewritten_assert

#: Memory addresses (``0x7f3a4b5c6d7e``, any case, any length), and the tail of one that a truncated
#: repr cut in two: right after a ``...`` cut, a run of hex digits (or ``x`` and hex digits) that ends
#: where an address ends in a repr (``>``, a space, ``:``, ``,``, ``)``, ``]``, the end). reprlib and
#: pytest cut long reprs in the middle (``<tests.t...x7f3a4b5c6d7e>``: pytest's assertion explanations
#: keep about 30 characters of each side of a comparison), which would make the trace differ between
#: processes. The head of a cut address (``...at 0x7f3a``) is the first alternative.
ADDRESS = re.compile(r"0x[0-9a-fA-F]+|(?<=\.\.\.)x?[0-9a-fA-F]+(?=[>\s:,;)\]]|$)")

#: The ``...`` of a repr cut in two (``s[:i] + "..." + s[-j:]``, reprlib's and pytest's ``saferepr``).
_MARKER = re.compile(r"\.\.\.")
#: What comes right before and after the ``...`` of an elision (reprlib's ``[1, 2, ...]``, ``{...}``,
#: a recursive ``[...]``), which drops whole items: the text around it does not shift.
_ELIDES_AFTER = ("[", "(", "{", ", ")
_ELIDES_BEFORE = ("]", ")", "}")
_MASK = "0x?"


def mask_addresses(text: str) -> str:
    """``text`` with every memory address (also either half of one a truncated repr cut) replaced by ``0x?``.

    A repr cut in the middle keeps a fixed number of characters of each
    side, counted on the text with its addresses, so when addresses differ
    in length (another platform, a heap address beside an arena's) the cut
    falls elsewhere and the text kept shifts. So around each cut (a ``...``
    with text on both sides that is no elision), on its line, only what
    cannot shift is kept: the head up to the end of its first address, the
    tail from the start of its last one (``[<Foo at 0x?>, <Fo...0x?>]``
    becomes ``[<Foo at 0x?...0x?>]``); text between two cuts on a line that
    holds an address (a tail, then another head, split at a place no text
    shows) leaves only ``0x?``: pytest's ``assert <Foo o...0x?> == <Foo
    o...0x?>`` becomes ``assert <Foo o...0x?...0x?>``. Text without a cut is
    only masked. One case stays beyond reach: a repr whose length is within
    an address's difference of the limit, cut in one process and whole in
    the other.
    """
    masked = ADDRESS.sub(_MASK, text)
    if "..." not in masked or _MASK not in masked:
        return masked
    return "\n".join(_settle_cuts(line) if "..." in line and _MASK in line else line for line in masked.split("\n"))


def _settle_cuts(line: str) -> str:
    """One masked line, every cut in it reduced to what no address length moves (see ``mask_addresses``)."""
    cuts = [m.start() for m in _MARKER.finditer(line) if _is_cut(line, m.start(), m.end())]
    if not cuts:
        return line
    pieces: list[str] = []
    start = 0
    for number, cut in enumerate(cuts + [len(line)]):
        segment = line[start:cut]
        first, last = segment.find(_MASK), segment.rfind(_MASK)
        if first >= 0:
            if number < len(cuts) and number == 0:  # a head: nothing after its first address is fixed
                segment = segment[: first + len(_MASK)]
            elif number == len(cuts) and number > 0:  # a tail: nothing before its last address is fixed
                segment = segment[last:]
            else:  # a tail, then a head, split somewhere unknown: only an address is fixed
                segment = _MASK
        pieces.append(segment)
        start = cut + 3
    return "...".join(pieces)


def _is_cut(line: str, start: int, end: int) -> bool:
    """Whether the ``...`` at ``start:end`` cut text in two (text on both sides, not an elision of items)."""
    if start == 0 or end >= len(line):
        return False
    # (tested in place, not on copies of each side: a long line of many cuts costs its length, not its square)
    return not (line.endswith(_ELIDES_AFTER, 0, start) and line.startswith(_ELIDES_BEFORE, end))


def describe(value: Any, limit: int = 80) -> str:
    """A deterministic one-line description: memory addresses are masked, control characters escaped.

    Bounded: a 50 MB string or a million-item list costs what its first
    characters cost (``safe_repr``), so rendering a result never hangs a run.
    """
    if type(value) is str and len(value) <= _CACHED_LENGTH:
        return _describe_text(value, limit)  # most results are short strings ("job3.0"): made once each
    return _describe(value, limit)


#: Strings up to this length have their description cached (at most ``maxsize`` of them: memory stays flat).
_CACHED_LENGTH = 200


def _describe(value: Any, limit: int) -> str:
    text = one_line(mask_addresses(safe_repr(value, limit)))
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.lru_cache(maxsize=1024)
def _describe_text(value: str, limit: int) -> str:
    """``_describe`` of an exact ``str``: a pure function of the text, so cached."""
    return _describe(value, limit)


#: The types whose ``repr`` is data (the same in every run and process): what ``describe_returned`` shows. A
#: subclass is data only with its base's ``repr`` (``class Token(str)`` writing its ``id()`` is not: audit 14).
_DATA = (bool, int, float, complex, str, bytes, type(None))
#: The ``repr`` of an enum member (``<Color.RED: 1>``, ``<Perm.R|W: 3>``): data when its value is.
_ENUM_REPRS: tuple[object, ...] = (enum.Enum.__repr__, enum.Flag.__repr__)


def describe_returned(value: Any, limit: int = 80) -> str:
    """What the trace records of a plain (non-Deferred) value an operation returned (review 10, finding 5).

    Data is described as ``describe`` does (``True``, ``3``, ``'moved'``, ``(1, 'a')``, ``{'n': 2}``:
    numbers, text, enums, and tuples, lists and dicts of them); any other object by its type only
    (``<a Handle>``): a job's result or a Deferred's answer is the subject's data, but an operation's
    return is often an object of its own (``self``, a handle, a request) whose ``repr`` may hold a
    counter, an ``id()`` or a clock reading, and would make the trace differ between two runs of one
    schedule. Sets are described by their type too: their order depends on string hashing. So is a
    subclass of a data type with a ``repr`` of its own, and an enum member whose value is no data (a
    ``frozenset`` of names, as ``Enum``'s ``repr`` writes it, unsorted: audit 14).
    """
    if _is_data(value, 3):
        return describe(value, limit)
    return f"<a {one_line(type(value).__qualname__.rsplit('<locals>.', 1)[-1])}>"


def describe_result(value: Any, limit: int = 80) -> str:
    """What the trace records of a value the subject hands a caller (a job's result) or reports (a loop's end):
    as ``describe`` does (the subject's own objects by their masked ``repr``: an invariant compares two
    callers' values by it), but a value whose ``repr`` may differ between processes though the value is the
    same by its type, as ``describe_returned`` does: a set or frozenset (its order follows string hashing), a
    subclass of a data type with a ``repr`` of its own (a ``str`` writing its ``id()``), an enum member of
    such a value, or a tuple, list or dict holding one (left alone in audit 14, closed in round 15)."""
    if type(value) is str or not _varies(value, 3):
        return describe(value, limit)
    return describe_returned(value, limit)


def _varies(value: Any, depth: int) -> bool:
    """Whether ``repr(value)`` may differ between processes for the same value (see ``describe_result``)."""
    cls: type[Any] = type(value)
    if cls in _DATA:
        return False
    if isinstance(value, (set, frozenset)):
        return True
    if isinstance(value, enum.Enum):
        return cls.__repr__ in _ENUM_REPRS and _varies(value.value, depth)
    if isinstance(value, _DATA):
        return not _is_data(value, 0)
    if depth <= 0 or cls not in (tuple, list, dict):
        return False
    items = list(value.items()) if isinstance(value, dict) else value
    return any(_varies(item, depth - 1) for item in items[:20])


def _is_data(value: Any, depth: int) -> bool:
    """Whether ``value`` is data (``_DATA``, or a tuple, list or dict of data), nested at most ``depth`` deep."""
    cls: type[Any] = type(value)
    if cls in _DATA:
        return True
    if isinstance(value, enum.Enum):
        return cls.__repr__ in _ENUM_REPRS and _is_data(value.value, depth)
    if isinstance(value, _DATA):
        return any(isinstance(value, base) and cls.__repr__ is base.__repr__ for base in _DATA)
    if depth <= 0 or type(value) not in (tuple, list, dict):
        return False
    items = list(value.items()) if isinstance(value, dict) else value
    if len(items) > 20:
        return False
    return all(_is_data(item, depth - 1) for item in items)


_RECURSION = "maximum recursion depth exceeded"


def describe_error(exc: BaseException, failure: Failure | None = None) -> str:
    """``Name: message``; for an exception without text (a bare ``assert``), where it was raised instead.

    A subclass of Twisted's ``AlreadyCalledError`` named otherwise is ``Name: [AlreadyCalledError] message``:
    a Deferred fired twice is ``completion.once``'s, whatever the class is called (``error_names``).

    The place is the file's base name, line and function of the innermost
    frame outside Twisted (``raised at pool.py:42 in submit``): your code,
    also when Twisted raised the error on its behalf (``AlreadyCalledError``
    from ``callback``); a base name is deterministic across machines, unlike
    a full path. ``failure`` supplies the frames when the exception's own
    traceback was cleaned away. When no frame is known the text stays empty.
    An ``assert`` pytest rewrote is described as the plain statement would be
    (its message, or its place, without pytest's explanation), so that a
    trace is the same under pytest and ``harness replay``.
    """
    try:
        message = str(exc)
    except Exception:
        message = "<str() of the exception raised>"
    line = None
    if isinstance(exc, AssertionError):
        plain = rewritten_assert(exc, failure)  # pytest's explanation is not recorded: see harness.run.rewritten
        if plain is not None:
            message, line = plain.message, plain.line
    if not message.strip():
        message = raised_at(exc, failure, line)
    elif isinstance(exc, RecursionError) and message.startswith(_RECURSION):
        # CPython says where the limit was hit ("... while calling a Python object", "... in comparison"),
        # which depends on how deep the stack already was when the run began: not part of the trace.
        message = _RECURSION
    cls = type(exc)
    name = cls.__name__
    if _double_fire_named_otherwise(exc):
        message = f"[{DOUBLE_FIRE}] {message}"  # a Deferred fired twice, under another name: said so (error_names)
    if type(message) is str and len(message) <= _CACHED_LENGTH:
        return _error_line(name, message)  # a run fails the same few ways many times
    return one_line(f"{name}: {mask_addresses(message)}")


#: The class name of Twisted's error for a Deferred fired twice, which ``completion.once`` looks for in the trace.
DOUBLE_FIRE = AlreadyCalledError.__name__


def double_fire(exc: BaseException) -> type[AlreadyCalledError] | None:
    """The class of the double fire ``exc`` is (a Deferred fired twice: ``AlreadyCalledError`` or a subclass,
    ``completion.once``'s), or carries in a ``FirstError`` (``gatherResults(consumeErrors=True)``,
    ``DeferredList(fireOnOneErrback=True)``), however deep; None for any other error. The one test of the class
    relation: an operation's double fire is never a declared refusal, and ``describe_error`` names it."""
    for _ in range(_FIRST_ERROR_DEPTH):
        if isinstance(exc, AlreadyCalledError):
            return type(exc)
        if not isinstance(exc, FirstError):
            return None
        carried = getattr(exc.subFailure, "value", None)
        if not isinstance(carried, BaseException):
            return None
        exc = carried
    return None


def _double_fire_named_otherwise(exc: BaseException) -> bool:
    """Whether ``exc`` is, or carries, a double fire whose class is named otherwise (``double_fire``): its text
    may not say what it is. Twisted's own class, bare or carried, is named in the text already: its traces
    stay as they were."""
    found = double_fire(exc)
    return found is not None and found.__name__ != DOUBLE_FIRE


#: How many ``FirstError``s deep ``_double_fire_named_otherwise`` looks (each a gather of gathers).
_FIRST_ERROR_DEPTH = 8


def error_names(name: str) -> tuple[str, ...]:
    """How an error of class ``name`` (``AlreadyCalledError``) or of a subclass of it shows in a trace event's
    detail: ``Name: message``, or ``Other: [Name] message`` for a subclass named otherwise (``describe_error``
    says so for ``AlreadyCalledError``, whose subclasses the invariants must know by their class, not their
    name; the detail still begins with the class's own name, which ``Facts.error_name`` reads)."""
    return (f"{name}:", f": [{name}]")


@functools.lru_cache(maxsize=1024)
def _error_line(name: str, message: str) -> str:
    """The text of ``describe_error`` for a class name and a short message: a pure function, so cached."""
    return one_line(f"{name}: {mask_addresses(message)}")


_TWISTED = f"{os.sep}twisted{os.sep}"


def raised_at(exc: BaseException, failure: Failure | None = None, line: int | None = None) -> str:
    """``(no message) raised at file.py:LINE in function``, from the innermost frame outside Twisted; "" if unknown.

    ``line`` replaces the innermost frame's line (where the plain form of a rewritten ``assert`` raises).
    """
    frames: list[tuple[Any, ...]]
    tb = exc.__traceback__
    if tb is None:
        # Never raised (a CancelledError a Deferred made, 2 in 3 of the errors a run describes): the
        # failure's frames, if it has any.
        if failure is None:
            return ""
        try:
            recorded = failure.frames
            if not recorded:  # (a CancelledError made by Deferred.cancel: no frames, nothing to copy)
                return ""
            frames = [tuple(frame[:3]) for frame in recorded]
        except Exception:
            return ""
        if not frames:
            return ""
    else:
        frames = []
        while tb is not None:
            code = tb.tb_frame.f_code
            frames.append((code.co_name, code.co_filename, tb.tb_lineno))
            tb = tb.tb_next
    outside = [frame for frame in frames if _TWISTED not in str(frame[1])]
    function, path, at = (outside or frames)[-1]
    if line is not None and (outside or frames)[-1] is frames[-1]:
        at = line
    return f"(no message) raised at {os.path.basename(path)}:{at} in {function}"
