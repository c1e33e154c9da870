"""The registry of invariants and the one function that checks a run against them.

Registry order is report order: when one run breaks several invariants, the
more specific one comes first (a double fire before the errors it causes, a
leaked slot before the deadlock it causes).

This layer owns the invariants (one module per family, ``families`` for
their names) and judges a run from its record. Each invariant is a pure
function of that record (``base``); the one step that runs the target again,
to find why jobs were stranded, is ``harness.run.diagnosis``, and ``check``
runs it first when an applicable invariant reads its result. A failing
run's messages may then name a cause no invariant judges (``shared_note``:
one Deferred returned to several callers), which replays the run once more.

May import: ``harness.errors``, ``harness.model``, ``harness.guard``,
``harness.run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from harness.model.target import Target
from harness.run.diagnosis import diagnose
from harness.invariants import cancellation, completion, concurrency, delivery, errors, fanout, gave_up, hedging, leaks, on_demand, operations, time, user
from harness.invariants.shared_note import noted
from harness.invariants.base import Invariant, Violation

if TYPE_CHECKING:
    from harness.run.runner import Run

#: Every built-in invariant, in report order.
INVARIANTS: tuple[Invariant, ...] = (
    completion.Once(),
    concurrency.Limit(),
    concurrency.KeyLimit(),
    concurrency.Fifo(),
    concurrency.Priority(),
    cancellation.Fires(),
    cancellation.NoStart(),
    cancellation.Propagates(),
    cancellation.Detaches(),
    cancellation.Harmless(),
    delivery.Isolated(),
    delivery.Joined(),
    delivery.OwnResult(),
    cancellation.Releases(),
    time.Timeout(),
    time.Retries(),
    gave_up.GaveUpEarly(),
    hedging.HedgeCount(),
    hedging.HedgeEarly(),
    hedging.HedgeLate(),
    hedging.HedgeLosers(),
    fanout.FanoutCount(),
    fanout.FanoutTogether(),
    fanout.QuorumEarly(),
    fanout.QuorumLate(),
    fanout.FanoutLosers(),
    time.Backoff(),
    time.Early(),
    time.Overlap(),
    time.AfterStop(),
    time.AfterEnd(),
    time.LoopDied(),
    on_demand.OnDemand(),
    errors.Propagate(),
    errors.Rejects(),
    errors.Escaped(),
    errors.Logged(),
    operations.Raised(),
    errors.Poison(),
    errors.Unhandled(),
    completion.Deadline(),
    completion.Stopped(),
    completion.Answered(),
    leaks.Work(),
    leaks.Calls(),
    leaks.Loops(),
    user.UserInvariants(),
)


#: What ``check`` works out once per target, by target identity: ``(target, registry, applicable, plan)``.
#: A campaign asks for every run; a target is frozen, and the answer is recomputed whenever the registry
#: is another tuple (tests replace ``INVARIANTS``). Bounded: emptied once it holds ``_APPLICABLE_MAX`` targets.
_APPLICABLE: dict[int, tuple[Target, tuple[Invariant, ...], tuple[Invariant, ...], _Plan]] = {}
_APPLICABLE_MAX = 64


class _Plan(NamedTuple):
    """How ``check`` runs a target's applicable invariants, decided once per target."""

    #: Whether one of them reads ``run.diagnosis``.
    needs_diagnosis: bool
    #: Per invariant, whether its class keeps ``Invariant.violations``: ``check``'s answer (a violation or
    #: None, or an iterable of them) is then read here, without that wrapper; else ``violations`` is called.
    calls: tuple[tuple[Invariant, bool], ...]


def _known(target: Target) -> tuple[tuple[Invariant, ...], _Plan]:
    registry = INVARIANTS
    known = _APPLICABLE.get(id(target))
    if known is not None and known[0] is target and known[1] is registry:
        return known[2], known[3]
    applicable = tuple(inv for inv in registry if inv.applies(target))
    plan = _Plan(
        any(inv.needs_diagnosis for inv in applicable),
        tuple((inv, type(inv).violations is Invariant.violations) for inv in applicable),
    )
    if len(_APPLICABLE) >= _APPLICABLE_MAX:
        _APPLICABLE.clear()
    _APPLICABLE[id(target)] = (target, registry, applicable, plan)
    return applicable, plan


def invariants_for(target: Target) -> tuple[Invariant, ...]:
    """The invariants whose promise the target declared."""
    return _known(target)[0]


def check(run: Run, notes: bool = True) -> list[Violation]:
    """All violations in ``run``, in registry order (at most one per invariant).

    Two steps: the diagnosis (``harness.run.diagnosis.diagnose``, which may
    replay counterfactual schedules), run once and stored as
    ``run.diagnosis`` if an applicable invariant reads it and the run has
    none yet; then every applicable invariant, each a pure function of the
    run's record (what ``Invariant.violations`` collects from it). A failing
    run's messages then say when ``submit`` returned one Deferred to several
    callers (``harness.invariants.shared_note``: the verdict is unchanged;
    ``notes=False`` leaves that out, for a verdict only its invariants are
    read from, such as a shrinking candidate's).
    """
    plan = _known(run.target)[1]
    if plan.needs_diagnosis and run.diagnosis is None:
        run.diagnosis = diagnose(run)
    found: list[Violation] = []
    for invariant, direct in plan.calls:
        if not direct:
            found.extend(invariant.violations(run))
            continue
        answer = invariant.check(run)
        if answer is None:
            continue
        if isinstance(answer, Violation):
            found.append(answer)
        else:
            found.extend(answer)  # the older shape: an iterable of violations
    if found and notes:  # a failing run: the cause its messages leave unsaid, if a Deferred was shared (a passing run pays nothing)
        return noted(run, found)
    return found


__all__ = ["INVARIANTS", "Invariant", "Violation", "check", "invariants_for"]
