"""Targets for the round-10 components, written from the user documentation alone (docs/).

Each component is adapted to ``submit(job) -> Deferred`` by a small gate class (the glue), as
"Adapting a component" in docs/reference/target.md shows; what no built-in invariant knows (the
credit window, the compensation order, a delay queue's due times, one leader at a time) is a user
invariant over the run.
"""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import strategies as st
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import deferLater

from harness import NOT_JUDGED, InvariantFailed, Operation, Run, Target, format_ms

from . import credit, delayqueue, lease, saga

# ---------------------------------------------------------------------------------------------
# 1. credit-based stream: a job is one transmission; grant(n) is an operation; close() is stop()
# ---------------------------------------------------------------------------------------------
INITIAL_CREDIT = 2
STALL_MS = 300


class CreditGate:
    """Hands each job to the stream as an item; the transmission is the job itself.

    The stall deadline is the queue's: it runs from the moment the queue became non-empty or
    the last grant, whichever is later, so the glue names it (``timeout_from="glue"``)."""

    def __init__(self, clock: Any, cls: type[credit.CreditStream] = credit.CreditStream) -> None:
        self.stream = cls(clock, self._transmit, credit=INITIAL_CREDIT, stall=STALL_MS / 1000)
        self._queued: list[Any] = []  # jobs handed over and not transmitting yet, in order

    def _transmit(self, job: Any) -> Any:
        if job in self._queued:
            self._queued.remove(job)
        job.stop_timeout()  # transmitting: the stall deadline was the wait's
        return job()

    def submit(self, job: Any) -> "Deferred[object]":
        self._queued = [j for j in self._queued if j in self._live()]
        if self._queued:
            job.restart_timeout(like=self._queued[0])  # the queue's deadline
        self._queued.append(job)
        d = self.stream.send(job)

        def gone(r: object) -> object:
            if job in self._queued:
                self._queued.remove(job)
            return r

        return d.addBoth(gone)

    def _live(self) -> list[Any]:
        return [s.item for s in self.stream._queue]

    def grant(self, n: int) -> None:
        before = len(self.stream._queue)
        self.stream.grant(n)
        if n > 0 and not self.stream.closed and before:
            for job in self._queued:
                job.restart_timeout()

    def stop(self) -> None:
        self.stream.close()


def credits_respected(run: Run) -> object:
    """Never more transmissions started than credits granted (initial + grants + credits a cancelled
    transmission gave back), and no send left waiting at the end of an instant while credit is free."""
    view = run.view
    grants = [(c.index, int(c.args[0])) for c in view.calls if c.operation == "grant" and c.raised is None]
    stop_index = next((i for i, _ in view.of_kind("stop")), None)
    attempts = view.attempts()
    if not attempts and not grants:
        return NOT_JUDGED
    # each job's first cancel (JobRecord.cancel_indices: review 10, finding 5)
    cancels = {j.id: j.cancel_indices[0] for j in view.jobs.values() if j.cancel_indices}
    # credit given back: an attempt cancelled by its caller's cancel while it ran (a canceller that
    # raised stops the stream's cancel half-way: that credit is not given back)
    returned = [a.end_index for a in attempts if a.outcome == "cancelled" and a.end_index is not None
                and a.job in cancels and cancels[a.job] <= a.end_index and not a.canceller_raised]
    starts = [a.start_index for a in attempts if a.start_index is not None]

    def free_at(idx: int) -> tuple[int, int, int, int]:
        granted = INITIAL_CREDIT + sum(n for i, n in grants if i <= idx and n > 0 and (stop_index is None or i < stop_index))
        back = sum(1 for i in returned if i <= idx)
        started = sum(1 for i in starts if i <= idx)
        return granted + back - started, granted, back, started

    for idx in sorted(starts):
        free, granted, back, started = free_at(idx)
        if free < 0:
            raise InvariantFailed(
                f"{started} transmissions started by event {idx} but only {granted} credits granted "
                f"and {back} given back", events=[idx])
    # liveness: at the end of each instant before stop(), no send waits while a credit is free
    last_of_instant: dict[int, int] = {}
    for i, e in enumerate(view.events):
        last_of_instant[e.t_us] = i
    for t, idx in sorted(last_of_instant.items()):
        if stop_index is not None and idx >= stop_index:
            break
        free, *_ = free_at(idx)
        if free <= 0:
            continue
        for job in view.jobs.values():
            if job.submit_index is None or job.submit_index > idx:
                continue
            if job.attempts and job.attempts[0].start_index <= idx:
                continue
            if (job.received is not None and job.received.index <= idx) or cancels.get(job.id, idx + 1) <= idx:
                continue
            raise InvariantFailed(f"job {job.id} still waited at the end of {format_ms(t)} with {free} credit(s) free",
                                  events=[i for i in (job.submit_index,) if i is not None])
    return None


def _credit_target(cls: type[credit.CreditStream], description: str) -> Target:
    return Target(
        build=lambda clock: CreditGate(clock, cls),
        order="fifo",
        timeout_ms=STALL_MS,
        timeout_from="glue",
        timeout_error=credit.WindowStalled,
        invariants=(credits_respected,),
        operations={"grant": Operation(lambda s, n: s.grant(n), args=(st.integers(0, 3),))},
        description=description,
    )


credit_ok = _credit_target(credit.CreditStream, "credit-based stream (correct)")
credit_cancel_keeps_credit = _credit_target(credit.LeakyCancelStream, "a cancelled transmission keeps its credit")
credit_stall_timer_sticks = _credit_target(credit.StickyStallStream, "the stall timer survives the queue draining")
credit_overdraw = _credit_target(credit.OverdrawStream, "sends one beyond the window")


# ---------------------------------------------------------------------------------------------
# 2. saga: every job is the last step of a three-step saga; the first two steps are the gate's
# ---------------------------------------------------------------------------------------------
STEP_TIMEOUT_MS = 400
STEP1_MS = 100
COMP_BACKOFF_MS = 50


class SagaGate:
    """Each submitted job runs as step 2 of a saga whose steps 0 and 1 succeed at once. When the
    job fails, times out or is cancelled, steps 1 and 0 are compensated (in that order); step 1's
    compensation fails on its first try, so a retry with backoff is always on the way."""

    def __init__(self, clock: Any, cls: type[saga.Saga] = saga.Saga) -> None:
        self.clock = clock
        self.cls = cls
        self.compensations: dict[int, list[str]] = {}  # job id -> compensations, in order run

    def submit(self, job: Any) -> "Deferred[object]":
        log = self.compensations.setdefault(job.id, [])
        tries = {"n": 0}

        def comp0() -> Any:
            log.append("c0")
            return succeed(None)

        def comp1() -> Any:
            tries["n"] += 1
            if tries["n"] == 1:
                raise ConnectionError("compensation 1 failed once")
            log.append("c1")
            return succeed(None)

        def a1() -> Any:
            return deferLater(self.clock, STEP1_MS / 1000, lambda: "a1")

        steps = [(lambda: "a0", comp0), (a1, comp1), (job, lambda: None)]
        s = self.cls(self.clock, steps, step_timeout=STEP_TIMEOUT_MS / 1000, attempts=3,
                     backoff=COMP_BACKOFF_MS / 1000)
        return s.run().addCallback(lambda results: results[2])


def compensated_in_reverse(run: Run) -> object:
    """A failed saga compensates its completed steps in reverse order: c1 before c0."""
    gate = run.subject
    if gate is None or not gate.compensations:
        return NOT_JUDGED
    for jid, log in gate.compensations.items():
        if log not in ([], ["c1"], ["c0"], ["c1", "c0"]):  # c1 may be given up (abort in its backoff)
            raise InvariantFailed(f"job {jid}'s saga compensated {log}, not in reverse order ['c1', 'c0']")
    return None


def _saga_target(cls: type[saga.Saga], description: str) -> Target:
    return Target(
        build=lambda clock: SagaGate(clock, cls),
        timeout_ms=STEP_TIMEOUT_MS,
        timeout_error=saga.StepTimedOut,
        wraps={saga.SagaFailed: lambda e: e.cause},
        timeout_cleanup_ms=COMP_BACKOFF_MS,  # the timeout is answered once compensated: one 50 ms backoff
        invariants=(compensated_in_reverse,),
        description=description,
    )


saga_ok = _saga_target(saga.Saga, "saga coordinator (correct)")
saga_compensates_forward = _saga_target(saga.ForwardCompensationSaga, "compensates in run order")
saga_timeout_lingers = _saga_target(saga.LingeringTimeoutSaga, "a finished step's timeout stays armed")
saga_abort_fires_twice = _saga_target(saga.DoubleFireSaga, "an abort during compensation fails the run twice")


# ---------------------------------------------------------------------------------------------
# 3. delay queue: a job is scheduled 100 ms * key from its submission; reschedule is an operation
# ---------------------------------------------------------------------------------------------
CONCURRENCY = 2
DELAY_STEP_MS = 100


class DelayGate:
    def __init__(self, clock: Any, cls: type[delayqueue.DelayQueue] = delayqueue.DelayQueue) -> None:
        self.clock = clock
        self.queue = cls(clock, CONCURRENCY)
        self.ids: dict[int, int] = {}  # harness job id -> queue id
        self.due_ms: dict[int, list[tuple[int, float]]] = {}  # harness job id -> (trace-free) due times set

    def submit(self, job: Any) -> "Deferred[object]":
        when = self.clock.seconds() + job.key * DELAY_STEP_MS / 1000
        jid = self.queue.schedule(when, job)
        self.ids[job.id] = jid
        return self.queue.result(jid)

    def reschedule(self, job_id: int, delay_ms: int) -> bool:
        jid = self.ids.get(job_id)
        if jid is None:
            return False
        return self.queue.reschedule(jid, self.clock.seconds() + delay_ms / 1000)

    def stop(self) -> "Deferred[None]":
        return self.queue.stop()


def _due_times(run: Run) -> dict[int, int]:
    """Each job's due time (monotonic, microseconds) as the glue set it: its submission plus
    100 ms per key, moved by every reschedule that reached it while it was still pending."""
    view = run.view
    cancels = {j.id: j.cancel_indices[0] for j in view.jobs.values() if j.cancel_indices}
    due: dict[int, int] = {}
    for job in view.jobs.values():
        if job.submitted_us is None:
            continue
        due[job.id] = job.submitted_us + job.key * DELAY_STEP_MS * 1000
    for call in view.calls:
        if call.operation != "reschedule" or call.raised is not None:
            continue
        j, ms = call.args
        moved = view.jobs.get(j)
        if moved is None or moved.submit_index is None or moved.submit_index > call.index:
            continue
        job = moved
        started = job.attempts and job.attempts[0].start_index < call.index
        answered = job.received is not None and job.received.index < call.index
        cancelled = j in cancels and cancels[j] < call.index
        if not (started or answered or cancelled):
            due[j] = call.t_us + ms * 1000
    return due


def due_order_respected(run: Run) -> object:
    """No job starts before its due time; when one starts, no job due earlier still waits; a job due while a slot is free starts by its due time plus the
    clock's lateness."""
    view = run.view
    due = _due_times(run)
    if not due:
        return NOT_JUDGED
    stop_index = next((i for i, _ in view.of_kind("stop")), None)
    cancels = {j.id: j.cancel_indices[0] for j in view.jobs.values() if j.cancel_indices}

    def waiting(job: Any, index: int) -> bool:
        if job.submit_index is None or job.submit_index > index:
            return False
        if job.attempts and job.attempts[0].start_index <= index:
            return False
        if job.received is not None and job.received.index <= index:
            return False
        return not (job.id in cancels and cancels[job.id] <= index)

    for a in view.attempts():
        if a.n != 0:
            continue
        d = due[a.job]
        if a.start_us < d:
            raise InvariantFailed(f"job {a.job} started at {format_ms(a.start_us)}, before its due time "
                                  f"{format_ms(d)}", events=[a.start_index])
        for other in view.jobs.values():
            if other.id == a.job or other.id not in due or not waiting(other, a.start_index - 1):
                continue
            od = due[other.id]
            # strictly earlier: jobs due in the same microsecond may start in either order (the queue
            # orders them by float due times, whose last bits depend on the readings' drift)
            if od <= a.start_us and od < d:
                raise InvariantFailed(
                    f"job {a.job} (due {format_ms(d)}) started at {format_ms(a.start_us)} while job {other.id}, "
                    f"due earlier at {format_ms(od)}, still waited", events=[i for i in (a.start_index, other.submit_index) if i is not None])
    # an operation landing while the reactor is late may re-arm the queue's timer (a reschedule, a
    # submission, a cancel): the new timer may be as late again, from the operation on
    op_times = sorted(e.t_us for e in view.events if e.kind in ("submit", "call", "cancel"))
    for job in view.jobs.values():
        if job.id not in due:
            continue
        t = due[job.id] + view.late_us
        for op_t in op_times:
            if due[job.id] <= op_t <= t:
                t = max(t, op_t + view.late_us)
        index = max((i for i, e in enumerate(view.events) if e.t_us <= t), default=0)
        if stop_index is not None and stop_index <= index:
            continue
        if index >= len(view.events) - 1 or view.events[index].kind == "end":
            continue  # the run ended first
        if waiting(job, index) and len(view.running_at(t)) < CONCURRENCY:
            raise InvariantFailed(f"job {job.id} was due at {format_ms(due[job.id])} with a slot free, and still "
                                  f"waited at {format_ms(t)}", events=[i for i in (job.submit_index,) if i is not None])
    return None


def _delay_target(cls: type[delayqueue.DelayQueue], description: str) -> Target:
    return Target(
        build=lambda clock: DelayGate(clock, cls),
        keys=4,
        submit=lambda s, job, priority: s.submit(job),
        limit=CONCURRENCY,
        retries=0,
        operations={"reschedule": Operation(lambda s, j, ms: s.reschedule(j, ms),
                                            args=(st.integers(0, 8), st.integers(0, 5).map(lambda n: n * 100)))},
        invariants=(due_order_respected,),
        menu={"jumps": False},  # jobs run at wall-clock times: see the review page
        description=description,
    )


delay_ok = _delay_target(delayqueue.DelayQueue, "delay queue (correct)")
delay_reschedule_keeps_timer = _delay_target(delayqueue.StaleTimerQueue, "reschedule keeps the old timer")
delay_late_in_fifo = _delay_target(delayqueue.FifoLateQueue, "late jobs in scheduling order")
delay_cancel_keeps_slot = _delay_target(delayqueue.LeakySlotQueue, "a cancelled running job keeps its slot")


# ---------------------------------------------------------------------------------------------
# 4. leader lease: two holders; a job runs under whichever leads (else NotLeader)
# ---------------------------------------------------------------------------------------------
class LeaseGate:
    def __init__(self, clock: Any, holder_cls: type[lease.LeaseHolder] = lease.LeaseHolder,
                 store_cls: type[lease.LeaseStore] = lease.LeaseStore) -> None:
        self.clock = clock
        self.store = store_cls(clock, ttl=1.0, latency=0.05)
        self.holders = {n: holder_cls(clock, self.store, n, renew_every=0.3, ttl=1.0, retry_every=0.1)
                        for n in ("a", "b")}
        self.acquiring: dict[str, Deferred[int]] = {}
        self.ran_as: list[tuple[float, str, str | None]] = []  # (time, runner, store's holder then)
        self.stopped = False

    def acquire(self, name: str) -> None:
        h = self.holders[name]
        if self.stopped or name in self.acquiring or h.token is not None:
            return
        d = h.acquire()
        self.acquiring[name] = d
        d.addBoth(lambda r: (self.acquiring.pop(name, None), None)[1])

    def release(self, name: str) -> "Deferred[None]":
        d = self.acquiring.pop(name, None)
        if d is not None:
            d.cancel()
        return self.holders[name].release().addErrback(lambda _f: None)

    def partition(self, name: str) -> None:
        self.store.cut.add(name)

    def heal(self, name: str) -> None:
        self.store.cut.discard(name)

    def submit(self, job: Any) -> "Deferred[object]":
        for name, h in self.holders.items():
            if h.is_leader():
                self.ran_as.append((self.clock.seconds(), name, self.store.holder()))
                return h.run(lambda token: job())
        return h.run(lambda token: job())  # not a leader: fails with NotLeader

    def stop(self) -> None:
        self.stopped = True
        for name in list(self.holders):
            self.release(name)


def one_leader(run: Run) -> object:
    """A job runs only under the holder the store says holds the lease then."""
    gate = run.subject
    if gate is None or not gate.ran_as:
        return NOT_JUDGED
    for t, name, holder in gate.ran_as:
        assert holder == name, f"{name} ran a job at {t:.3f}s as leader, but the store's holder was {holder}"
    return None


def _lease_target(holder_cls: type[lease.LeaseHolder], store_cls: type[lease.LeaseStore], description: str) -> Target:
    names = st.sampled_from(["a", "b"])
    return Target(
        build=lambda clock: LeaseGate(clock, holder_cls, store_cls),
        rejects=(lease.NotLeader,),
        invariants=(one_leader,),
        operations={
            "acquire": Operation(lambda s, n: s.acquire(n), args=(names,)),
            "release": Operation(lambda s, n: s.release(n), args=(names,)),
            "partition": Operation(lambda s, n: s.partition(n), args=(names,)),
            "heal": Operation(lambda s, n: s.heal(n), args=(names,)),
        },
        description=description,
    )


lease_ok = _lease_target(lease.LeaseHolder, lease.LeaseStore, "leader lease (correct)")
lease_reply_time = _lease_target(lease.ReplyTimeHolder, lease.LeaseStore, "lease counted from the renewal's reply")
lease_release_keeps_renewing = _lease_target(lease.LeakyReleaseHolder, lease.LeaseStore, "release keeps the renewal loop")
lease_fences_by_written = _lease_target(lease.LeaseHolder, lease.HighestWrittenStore, "fences by the highest token written")

_ = (CancelledError, format_ms, Callable)
