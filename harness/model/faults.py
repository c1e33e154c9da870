"""The fixed, documented set of exception types a schedule may inject.

Schedules and failure files name exceptions by these short names only; a name
is never imported. A target may add its own types (``Target.errors``), which
are then known by their class name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping


class InjectedError(Exception):
    """The harness's own injected failure: no subject can mistake it for its own."""


class CancellerError(InjectedError):
    """Raised by the canceller of a job whose spec says ``canceller_raises``: a hostile job, not a subject bug."""


#: The exception types every schedule may inject, by the name a schedule or failure file uses.
BUILTIN_ERRORS: Mapping[str, type[Exception]] = {
    "InjectedError": InjectedError,
    "ValueError": ValueError,
    "RuntimeError": RuntimeError,
    "KeyError": KeyError,
    "ConnectionError": ConnectionError,
    "TimeoutError": TimeoutError,
}


def injected_message(job: int, attempt: int) -> str:
    """The one argument of the error attempt ``attempt`` of job ``job`` is injected with (what ``injected_by`` reads)."""
    return f"injected by job {job} attempt {attempt}"


_INJECTED = re.compile(r"injected by job (\d+) attempt (\d+)")


def injected_by(exc: BaseException) -> tuple[int, int] | None:
    """``(job, attempt)`` when ``exc`` is the error the harness injected into that attempt (built with
    ``injected_message`` as its one argument), else None: a subject's own error never has those arguments."""
    args = exc.args
    text = args[0] if len(args) == 1 and type(args[0]) is str else None
    if text is None:  # a declared type that keeps its arguments otherwise: its message, then
        try:
            text = str(exc)
        except Exception:
            return None
    found = _INJECTED.fullmatch(text)
    return None if found is None else (int(found[1]), int(found[2]))


def error_table(declared: Iterable[type[BaseException]] = ()) -> dict[str, type[BaseException]]:
    """The names a schedule may use: the built-in set plus the target's declared types."""
    table: dict[str, type[BaseException]] = dict(BUILTIN_ERRORS)
    for exc_type in declared:
        table[exc_type.__name__] = exc_type
    return table
