"""What makes an error the subject logs legitimate, for ``errors.logged`` (``Target.logs``).

A target that declares ``logs`` promises the subject logs no error but its
jobs' own and those of the types it names. Whether a logged error is a job's
is a fact about the exception object, which the trace does not keep (it
records ``Name: message``), so it is judged when the error is logged, and
kept beside the trace (``Run.logs_allowed``, as ``Run.wrapped``): traces,
and so digests and failure files, stay as they were.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.model.faults import CancellerError, injected_by
from harness.model.target import Target


def log_judge(target: Target) -> Callable[[BaseException | None], str | None] | None:
    """For a target that declares ``logs``: a function of a logged exception (None: a message logged at
    error level, with none) giving what makes logging it legitimate, or None when nothing does; for a
    target that does not, None (nothing is judged, nothing is worked out)."""
    declared = target.logs
    if declared is None:
        return None
    injected = tuple(set(target.error_types.values()))

    def allowed(exc: BaseException | None) -> str | None:
        if exc is None:
            return None
        for error in _carried_chain(target, exc):
            if isinstance(error, CancellerError):
                return "a job's canceller raised it"
            if isinstance(error, injected):
                by = injected_by(error)
                if by is not None:
                    return f"job {by[0]}'s own error (attempt {by[1]})"
        named = [t.__name__ for t in declared if any(isinstance(error, t) for error in _carried_chain(target, exc))]
        return f"declared in logs ({', '.join(named)})" if named else None

    return allowed


def _carried_chain(target: Target, exc: BaseException) -> tuple[BaseException, ...]:
    """``exc``, and the error it carries by the target's ``wraps`` when that is another."""
    carried = target.carried(exc) if target.wraps else exc
    return (exc,) if carried is exc else (exc, carried)
