"""Minimal reproducers of the harness findings of the outside-user review (docs/reviews/outside-user.md).

Each is a target (most of them a review target with one field changed) and, where the finding
is about one schedule, that schedule.  ``tests/test_review_targets.py`` runs them: a finding that
is a harness gap is an ``xfail(strict=True)`` test, so it turns into a failure (to be promoted to
a plain test) the day the harness is fixed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness import Cancel, ClockPolicy, JobSpec, Operation, Schedule, Stop, Submit, Target

from scenarios.review import targets

# -- shared + key_limit > 1: a caller that joined a hanging execution is blamed ----------------

#: The debouncer's own promise (a call during a running execution opens a new window, so
#: executions of one key overlap) with hanging jobs back in the menu.
shared_overlap = dataclasses.replace(targets.debouncer_ok, key_limit=100, menu=None)

#: Job 1 joins job 0's window; job 0 hangs, so job 1 waits for ever, as every caller of a
#: hanging shared execution does.  With ``key_limit=1`` the hang excuses it; with a larger
#: key limit completion.deadline blames the subject.
SHARED_OVERLAP_SCHEDULE = Schedule(ops=(
    Submit(at_ms=0, job=0, spec=JobSpec(kind="hang"), key=0),
    Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed"), key=0),
))

# -- operations never land between two rounds of one instant -----------------------------------

#: Three jobs take the bucket's three tokens, a fourth queues; the refill tick at 100 ms hands
#: the token over in a later round of that instant (callLater(0)).  On a real reactor I/O (here:
#: job 4's submit at 100 ms) is processed between those rounds, and the queue-jumping bucket
#: gives job 4 the token before job 3.  By default the harness runs every round of the instant
#: first; ``after_rounds=1`` on job 4's submit puts it between the tick and the hand-over.
QUEUE_JUMP_SCHEDULE = Schedule(
    ops=tuple(Submit(at_ms=0, job=i) for i in range(4)) + (Submit(at_ms=100, job=4),),
    clock=ClockPolicy(tie_break="fifo"),
)

# -- a job whose canceller raised is recorded as ended, yet never ends --------------------------

#: Job 0 takes a pooled resource; its caller is cancelled and the job's own canceller raises,
#: so the job never ends and keeps the resource, while run.view records its attempt as
#: cancelled (end_us set) and running_at() leaves it out.
HOSTILE_HOLDER_SCHEDULE = Schedule(ops=(
    Submit(at_ms=0, job=0, spec=JobSpec(kind="fail", after_ms=440, canceller_raises=True)),
    Cancel(at_ms=10, job=0),
    Stop(at_ms=10),
))

# -- set-order nondeterminism in Synapse's AwakenableSleeper ------------------------------------


def one_name_sleeper() -> Target:
    """Every job sleeps under one name; ``wake`` resumes that name's sleepers in ``set`` order
    (memory addresses): ``harness fuzz`` stops with "target ... is nondeterministic" within a
    few hundred examples.  Built lazily: it needs the thirdparty extra."""
    from scenarios.thirdparty import synapse_prims

    class OneName(synapse_prims.Sleepy):
        async def _run(self, job: Any) -> Any:
            await self.sleeper.sleep("stream", self.delay_ms)  # type: ignore[arg-type]
            return await synapse_prims._await_job(job)

        def wake_all(self) -> None:
            self.sleeper.wake("stream")

    return Target(build=OneName, operations={"wake": Operation(lambda s: s.wake_all())},
                  description="AwakenableSleeper, every job under one name")

# -- the diagnosis blames a cancel for what a raising job did ------------------------------------

#: Job 0 raises when the debouncer's window closes (the sync-raise bug lets it escape into the
#: reactor, and job 1, which joined the window, is stranded); job 0's caller is cancelled
#: afterwards, in the same instant.  The diagnosis replays without the cancelled job, which also
#: takes its raise away, so job 1 finishes and the run is reported as cancellation.releases
#: ("the cancelled job's slot was not released") instead of errors.escaped.
CANCEL_BLAMED_SCHEDULE = Schedule(ops=(
    Submit(at_ms=0, job=0, spec=JobSpec(kind="raise"), key=0),
    Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed"), key=0),
    Cancel(at_ms=50, job=0),
))
