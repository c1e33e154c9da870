"""The fixed, documented set of exception types a schedule may inject.

Schedules and failure files name exceptions by these short names only; a name
is never imported. A target may add its own types (``Target.errors``), which
are then known by their class name.
"""

from __future__ import annotations

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


def error_table(declared: Iterable[type[BaseException]] = ()) -> dict[str, type[BaseException]]:
    """The names a schedule may use: the built-in set plus the target's declared types."""
    table: dict[str, type[BaseException]] = dict(BUILTIN_ERRORS)
    for exc_type in declared:
        table[exc_type.__name__] = exc_type
    return table
