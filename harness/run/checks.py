"""Checks made before a run: a schedule must use only the errors and operations its target declares.

Failure files and corpora are read from disk, and names in them are never
imported; a schedule naming something its target does not declare is
refused with a one-line ``TargetError`` before anything runs.
"""

from __future__ import annotations

from harness.errors import TargetError
from harness.model.schedule import Call, Schedule, Start, Submit
from harness.model.target import Target


def check_schedule(target: Target, schedule: Schedule) -> None:
    """Refuse (``TargetError``) a schedule that injects an unknown error or calls an undeclared operation."""
    _check_error_names(target, schedule)
    _check_operations(target, schedule)


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
