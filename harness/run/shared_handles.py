"""Which jobs' callers were handed one and the same Deferred by ``submit``, found by running the target again.

A subject that returns the same Deferred to two callers (``return
self._in_flight[key]``, the "obvious" single flight) breaks promises in
ways that each read as something else: the harness's own callback on the
first caller's Deferred returns None, so the second caller "received None";
one caller's cancel cancels the work for every caller. The run cannot tell:
the Deferreds ``submit`` returned (``Run.handles``) are dropped before the
invariants run, and keeping a record of them would cost every run. So this
step, like the diagnosis (``harness.run.diagnosis``), replays the run's
schedule, with ``submit`` watched, and only for a run that already broke
an invariant and in which some caller received None: what every such run
shows (review 4, finding 11). The verdict never depends on it: only the
violation's message says it (``harness.invariants.shared_note``).
"""

from __future__ import annotations

from copy import copy
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from harness.errors import HarnessError
from harness.model.trace import EventKind
from harness.run.describe import describe

if TYPE_CHECKING:
    from harness.run.runner import Run

#: How the harness describes a None result: what the second caller of a shared Deferred receives, the
#: harness's callback for the first caller having returned None.
NONE = describe(None)


#: How many replays of ``shared_deferreds`` are going on (0 or 1): none is made inside one.
_REPLAYING = [0]


def received_none(run: Run) -> bool:
    """Whether some caller's Deferred delivered None in ``run`` (a pure function of its trace)."""
    result = EventKind.RESULT
    return any(kind == result and detail == NONE for _, kind, _, _, detail in run.trace.raw)


def shared_deferreds(run: Run) -> tuple[tuple[int, ...], ...]:
    """The groups of jobs (each two or more, in job order; groups by first job) whose ``submit`` returned
    one and the same Deferred in ``run``; none when no caller received None (nothing replayed then).

    Found by replaying ``run.schedule`` with the target's ``submit`` watched, keeping only each returned
    Deferred's ``id``: every one stays alive in the replay's ``Run.handles`` until the run ends, so equal
    ids are one object, and holding nothing keeps the replay's garbage, hence its trace, the run's. A
    replay whose trace differs from the run's (a nondeterministic target), or that raises a harness
    error, says nothing: no groups. A periodic target's runs call no ``submit``: nothing is replayed.
    Nor is anything inside such a replay: the replay runs the target's own invariants, and one that
    checks its run (``harness.check``) would replay it again from inside, and again, without end.
    """
    target = run.target
    if target.kind != "submit" or _REPLAYING[0] or not received_none(run):
        return ()
    from harness.run.runner import run_schedule  # the runner's Run is judged here: imported when needed

    returned: dict[int, list[int]] = {}  # id(Deferred) -> the jobs it was returned for, in submission order

    def watched(subject: Any, job: Any, priority: int) -> Any:
        # The target's own submit path, made per call: a closure kept over the subject would outlive the run.
        d = target.job_submitter(subject)(job, priority)
        if isinstance(d, Deferred):
            returned.setdefault(id(d), []).append(job.id)
        return d

    try:
        # The target with its submit watched, made without calling its class (``dataclasses.replace`` would:
        # a subclass of the user's own making may take other arguments), nor validating it again.
        watching = copy(target)
        object.__setattr__(watching, "submit", watched)
    except Exception:  # a target that cannot be copied: no note
        return ()
    _REPLAYING[0] += 1
    try:
        replay = run_schedule(watching, run.schedule)
    except HarnessError:
        return ()
    finally:
        _REPLAYING[0] -= 1
    if replay.trace.events != run.trace.events:
        return ()
    groups = (tuple(sorted(set(jobs))) for jobs in returned.values())
    return tuple(sorted(group for group in groups if len(group) > 1))
