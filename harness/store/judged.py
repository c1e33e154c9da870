"""Whether a failure file's invariant is one its target is still checked for.

A replay says "no longer fails" when the recorded invariant holds. That is
only true if the invariant was checked at all: a file naming an invariant
this harness does not have (written by another version, or edited), or one
the target no longer switches on (its promise, such as ``limit``, or its own
invariant function was removed), would otherwise pass as fixed, and a
regression corpus would let the bug back in silently. Such a file is
refused instead, in one line naming the invariant and what the target is
checked for.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.errors import FailureFileError
from harness.invariants import invariants_for
from harness.invariants.user import UserInvariants
from harness.model.target import Target
from harness.store.failure_file import FailureRecord, short


def checked_names(target: Target, also: Iterable[str] = ()) -> list[str]:
    """Every invariant name a run of ``target`` can report: the applicable built-ins, ``user.<fn>``, and ``also``."""
    names = [inv.name for inv in invariants_for(target) if not isinstance(inv, UserInvariants)]
    names += [f"user.{getattr(fn, '__name__', type(fn).__name__)}" for fn in target.invariants]
    return names + list(also)


def check_judged(record: FailureRecord, target: Target, source: str, also: Iterable[str] = ()) -> None:
    """Raise ``FailureFileError`` unless ``record.invariant`` is one a run of ``target`` can report.

    ``also`` names the pseudo-invariants the caller reports itself (a hang, a livelock).
    """
    names = checked_names(target, also)
    if record.invariant in names:
        return
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    raise FailureFileError(
        f"{source} records invariant {short(record.invariant)}, which {record.target} is not checked for "
        f"(it is checked for {shown}), so a replay cannot say whether it is fixed: the file was written by "
        "another harness version or edited, or the target no longer declares that promise; "
        "restore the promise, or delete the file"
    )
