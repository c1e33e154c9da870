"""Reproducers of the harness findings of the round-2 review (docs/reviews/outside-user-2.md),
pinned in tests/test_review_round2.py."""

from __future__ import annotations

from typing import Any

from harness import Cancel, JobSpec, Jump, Schedule, Start, Stop, Submit

from scenarios.review.round2 import lease, targets

# -- F1: a one-shot timer left pending by stop() fires in the drain: leaks.calls never sees it --

#: Three jobs fill a batch at 0 ms (the size cut forgets the batch's timer, due at 100 ms); the
#: subject is stopped at 10 ms with that timer pending. It fires at 100 ms, after stop().
ONE_SHOT_LEAK_SCHEDULE = Schedule(ops=(
    Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=0)),
    Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed", after_ms=0)),
    Submit(at_ms=0, job=2, spec=JobSpec(kind="succeed", after_ms=0)),
    Stop(at_ms=10),
))
one_shot_leak = targets.batcher_orphan_timer


# -- F2: time.loop_died judges a call that fails after the loop reported its own end ----------

class PatientLeaseRenewer(lease.LeaseRenewer):
    """A correct design: when the lease is lost the loop ends and ``on_lost`` is told, and the
    renewal still in flight is left to finish (its outcome is ignored: ``_renewed`` checks
    ``lost``); ``stop()`` still cancels it."""

    def _expired(self) -> None:
        self._watchdog = None
        self.lost = True
        if self._loop.running:
            self._loop.stop()
        self._on_lost()


patient_lease = targets._lease(PatientLeaseRenewer, "lease renewer that lets the renewal in flight finish once the lease is lost")

#: The first renewal fails 930 ms after it started; the lease is lost at 300 ms (start's Deferred
#: fails with LeaseLost: the end is reported), the loop stops, and the renewal fails later.
STRAGGLER = Start(at_ms=0, job=0, spec=JobSpec(kind="fail", after_ms=930))
#: Without a jump the run drains at 930 ms, the instant the straggler fails: judged clean.
STRAGGLER_AT_THE_END = Schedule(ops=(STRAGGLER,))
#: A wall-clock jump (any: it makes the drain go on 200 ms past the failure) and the same
#: straggler is a time.loop_died.
STRAGGLER_THEN_MORE_RUN = Schedule(ops=(STRAGGLER, Jump(at_ms=730, delta_ms=-990)))


def loop_end_reported(run: Any) -> bool:
    """Whether the start Deferred failed (the loop's end reported) before any call failed late."""
    return any(e.kind == "failure" and e.detail.startswith("LeaseLost") for e in run.trace.events)


# -- F4: the diagnosis blames a no-op cancel (after the job's Deferred fired) for a stranded job --

#: On ``scenarios.thirdparty.twisted_more:cooperative_tasks_cooperator_stop``: Cooperator.stop()
#: fails job 0 and skips job 1 (a Twisted bug), whose caller is never answered; job 0's caller is
#: cancelled afterwards, a no-op. Replayed without job 0, job 1 is the only task and stop() fails
#: it, so the diagnosis says the cancel stranded job 1 (cancellation.releases).
NO_OP_CANCEL_BLAMED_SCHEDULE = Schedule(ops=(
    Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=0)),
    Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed", after_ms=0)),
    Stop(at_ms=0),
    Cancel(at_ms=0, job=0),
))
