"""Checks made before a run: a schedule must use only the errors and operations its target declares.

Failure files and corpora are read from disk, and names in them are never
imported; a schedule naming something its target does not declare is
refused with a one-line ``TargetError`` before anything runs.
"""

from __future__ import annotations

from harness.errors import TargetError
from harness.model.schedule import Call, Cancel, Jump, Schedule, Start, Stop, Submit
from harness.model.target import Target


def check_schedule(target: Target, schedule: Schedule) -> None:
    """Refuse (``TargetError``) a schedule that injects an unknown error or calls an undeclared operation."""
    if not fits(target, schedule):
        _check_error_names(target, schedule)
        _check_operations(target, schedule)


def fits(target: Target, schedule: Schedule) -> bool:
    """Whether the schedule surely names only errors and operations the target declares (one pass, once a run).

    True only when the full checks below would find nothing: every operation
    is of exactly one of the schedule's own types, every job spec's error is
    known and every call declared. False otherwise (also for an operation of
    a subclass), and the full checks then say what is wrong, if anything.
    """
    known, operations = target.error_types, target.operations
    for op in schedule.ops:
        kind = type(op)
        if kind is Submit or kind is Start:
            if op.spec.error not in known:  # type: ignore[union-attr]
                return False
            then = op.then  # type: ignore[union-attr]
            if then and not all(spec.error in known for spec in then):
                return False
        elif kind is Call:
            if op.operation not in operations:  # type: ignore[union-attr]
                return False
        elif kind is not Cancel and kind is not Stop and kind is not Jump:
            return False
    return True


def unknown_error(target: Target, schedule: Schedule) -> tuple[int, str] | None:
    """The first (job, exception name) the schedule injects that the target does not know, if any."""
    known = target.error_types
    for op in schedule.ops:  # (not ``schedule.submits``: no tuple made, once a run)
        if isinstance(op, (Submit, Start)):
            for spec in op.specs:
                if spec.error not in known:
                    return op.job, spec.error
    return None


def _check_error_names(target: Target, schedule: Schedule) -> None:
    """Refuse a schedule that injects an exception the target does not know (names are never imported)."""
    unknown = unknown_error(target, schedule)
    if unknown is not None:
        job, name = unknown
        raise TargetError(
            f"job {job} injects {name!r}, which is neither a built-in error nor one the target "
            f"declares ({', '.join(target.error_types)}); the harness never imports an exception by name: "
            "declare the type in Target(errors=...)"
        )


def _check_operations(target: Target, schedule: Schedule) -> None:
    """Refuse a schedule that calls an operation the target does not declare."""
    for op in schedule.ops:
        if isinstance(op, Call) and op.operation not in target.operations:
            known = ", ".join(target.operations) or "none"
            raise TargetError(
                f"the schedule calls operation {op.operation!r}, which the target does not declare "
                f"(its operations: {known}); declare it in Target(operations=...) or use a schedule made for this target"
            )
