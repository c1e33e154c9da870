"""The cause a failing run's violations leave unsaid: ``submit`` handed one Deferred to several callers.

A subject that returns the same Deferred to two callers is caught by
whichever promise the schedule reaches first (``sharing.joined``: "job 1
received None"; ``cancellation.detaches``; ``cancellation.fires``), each
true and none naming the cause (review 4, finding 11). ``check`` passes a
failing run's violations through ``noted``, which appends the cause to the
message of each violation about one of those jobs. It is a note, not an
invariant: which invariants break, and the events and jobs each names,
are unchanged, and a passing run is not looked at (nothing is replayed, no
cost). The replay that finds the shared Deferreds is
``harness.run.shared_handles``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from harness.invariants.base import Violation
from harness.run.shared_handles import shared_deferreds

if TYPE_CHECKING:
    from harness.run.runner import Run


def noted(run: Run, violations: list[Violation]) -> list[Violation]:
    """``violations`` (of ``run``, a failing run), each about a job whose caller shared its Deferred with
    another job's caller (or about no job) with that cause appended to its message; the others as they are."""
    groups = shared_deferreds(run)
    if not groups:
        return violations
    return [_with_cause(violation, groups) for violation in violations]


def _with_cause(violation: Violation, groups: tuple[tuple[int, ...], ...]) -> Violation:
    involved = [group for group in groups if not violation.jobs or set(group) & set(violation.jobs)]
    if not involved:
        return violation
    which = ", and for ".join(_jobs(group) for group in involved)
    return replace(
        violation,
        message=f"{violation.message}; the cause: submit returned the same Deferred for {which} "
        "(each caller needs its own Deferred: a caller receives what an earlier caller's callbacks returned, "
        "and one caller's cancel reaches them all)",
    )


def _jobs(group: tuple[int, ...]) -> str:
    """``job 0 and job 1``; ``jobs 0, 1 and 2``."""
    if len(group) == 2:
        return f"job {group[0]} and job {group[1]}"
    return f"jobs {', '.join(map(str, group[:-1]))} and {group[-1]}"
