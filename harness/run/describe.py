"""Deterministic one-line text for what a run records: values, errors and where they were raised.

A trace must be byte-identical across runs and machines, so every text the
runner records about the target's values and exceptions goes through here:
memory addresses are masked, control characters escaped, lengths bounded,
and a place is a file's base name, never a full path.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from twisted.python.failure import Failure

from harness.model.trace import one_line, safe_repr

#: Memory addresses, also the tail of one that a truncated repr cut in two ("0x7f3...a1b2c3>", as
#: pytest's assertion messages shorten long reprs), which would make the trace differ between runs.
ADDRESS = re.compile(r"0x[0-9a-fA-F]+|(?<=\.\.\.)[0-9a-fA-F]{6,}(?=>)")


def mask_addresses(text: str) -> str:
    """``text`` with every memory address (also the tail of a truncated one) replaced by ``0x?``."""
    return ADDRESS.sub("0x?", text)


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


_RECURSION = "maximum recursion depth exceeded"


def describe_error(exc: BaseException, failure: Failure | None = None) -> str:
    """``Name: message``; for an exception without text (a bare ``assert``), where it was raised instead.

    The place is the file's base name, line and function of the innermost
    frame outside Twisted (``raised at pool.py:42 in submit``): your code,
    also when Twisted raised the error on its behalf (``AlreadyCalledError``
    from ``callback``); a base name is deterministic across machines, unlike
    a full path. ``failure`` supplies the frames when the exception's own
    traceback was cleaned away. When no frame is known the text stays empty.
    """
    try:
        message = str(exc)
    except Exception:
        message = "<str() of the exception raised>"
    if not message.strip():
        message = raised_at(exc, failure)
    elif isinstance(exc, RecursionError) and message.startswith(_RECURSION):
        # CPython says where the limit was hit ("... while calling a Python object", "... in comparison"),
        # which depends on how deep the stack already was when the run began: not part of the trace.
        message = _RECURSION
    if type(message) is str and len(message) <= _CACHED_LENGTH:
        return _error_line(type(exc).__name__, message)  # a run fails the same few ways many times
    return one_line(f"{type(exc).__name__}: {mask_addresses(message)}")


@functools.lru_cache(maxsize=1024)
def _error_line(name: str, message: str) -> str:
    """The text of ``describe_error`` for a class name and a short message: a pure function, so cached."""
    return one_line(f"{name}: {mask_addresses(message)}")


_TWISTED = f"{os.sep}twisted{os.sep}"


def raised_at(exc: BaseException, failure: Failure | None = None) -> str:
    """``(no message) raised at file.py:LINE in function``, from the innermost frame outside Twisted; "" if unknown."""
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
    function, path, line = (outside or frames)[-1]
    return f"(no message) raised at {os.path.basename(path)}:{line} in {function}"
