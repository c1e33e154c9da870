"""Targets for the round-6 components, written in phase 2 from the user documentation (docs/) only.

Each component is adapted to ``submit(job) -> Deferred`` as docs/reference/target.md's
"Adapting a component" suggests; what no built-in promise covers is a user invariant reading
the adapter's own records (``run.subject``) or ``run.view``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from twisted.internet import task
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred

from twisted.python.failure import Failure

from harness import NOT_JUDGED, EventKind, InvariantFailed, Operation, Run, Target, format_ms

from . import coalesce, deadline, fair, pool

# ---------------------------------------------------------------------------------------------
# (1) the connection pool
# ---------------------------------------------------------------------------------------------
POOL_SIZE, IDLE_S, LIFETIME_S, CONNECT_S, CHECK_S = 2, 0.3, 0.5, 0.01, 0.005


class FakeConn(pool.Conn):
    def __init__(self, gate: "PoolGate", ident: int, created_at: float) -> None:
        super().__init__(ident, created_at)
        self.gate = gate
        self.broken = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        gate = self.gate
        gate.live -= 1
        if self in gate.lent:
            gate.problems.append(
                ("lent", f"connection {self.ident} was closed at {gate.clock.seconds():.3f}s while lent to job {gate.lent[self]}")
            )


class PoolGate:
    """Runs each job on a connection from the pool, then releases it, failure or not."""

    def __init__(self, clock: Any, cls: type[pool.HealthPool]) -> None:
        self.clock = clock
        self.live = 0
        self.made = 0
        self.lent: dict[FakeConn, int] = {}
        self.problems: list[tuple[str, str]] = []
        self.pool = cls(clock, self._connect, self._check, POOL_SIZE, IDLE_S, LIFETIME_S)

    def _connect(self) -> "Deferred[FakeConn]":
        def made() -> FakeConn:
            self.made += 1
            self.live += 1
            conn = FakeConn(self, self.made, self.clock.seconds())
            if self.live > POOL_SIZE:
                self.problems.append(("size", f"{self.live} connections open at {self.clock.seconds():.3f}s; max_size is {POOL_SIZE}"))
            return conn

        return task.deferLater(self.clock, CONNECT_S, made)

    def _check(self, conn: FakeConn) -> "Deferred[bool]":
        return task.deferLater(self.clock, CHECK_S, lambda: not conn.broken and not conn.closed)

    def blip(self) -> None:
        """A network blip: every open connection is now broken (a health check says so)."""
        for conn in list(self.lent) + [c for c, _, _ in self.pool._idle]:
            conn.broken = True

    def submit(self, job: Any) -> "Deferred[Any]":
        def got(conn: FakeConn) -> "Deferred[Any]":
            now = self.clock.seconds()
            if now - conn.created_at >= LIFETIME_S:
                self.problems.append(("stale", f"job {job.id} got connection {conn.ident} aged {now - conn.created_at:.3f}s at {now:.3f}s; max_lifetime is {LIFETIME_S}s"))
            if conn.broken or conn.closed:
                self.problems.append(("stale", f"job {job.id} got connection {conn.ident}, which is {'closed' if conn.closed else 'broken'}"))
            self.lent[conn] = job.id

            def done(outcome: Any) -> Any:
                self.lent.pop(conn, None)
                self.pool.release(conn)
                return outcome

            return maybeDeferred(job).addBoth(done)

        return self.pool.acquire().addCallback(got)

    def stop(self) -> None:
        self.pool.close()


def _recorded(kind: str, name: str) -> Callable[[Run], object]:
    """A user invariant named ``name``: the adapter (``run.subject``) recorded no problem of
    ``kind`` while the run played."""

    def check(run: Run) -> object:
        found = [m for k, m in run.subject.problems if k == kind]
        assert not found, found[0]
        return None

    check.__name__ = name
    return check


pool_size_bounded = _recorded("size", "pool_size_bounded")
pool_never_closes_lent = _recorded("lent", "pool_never_closes_lent")
pool_hands_out_fresh = _recorded("stale", "pool_hands_out_fresh")


def pool_closes_everything(run: Run) -> object:
    """After close() and the drain, the only connections open are the ones still lent (to jobs that
    never end)."""
    gate = run.subject
    assert gate.live == len(gate.lent), f"{gate.live} connections open after close() and the drain, {len(gate.lent)} of them lent"
    return None


def _pool_target(cls: type[pool.HealthPool], description: str) -> Target:
    return Target(
        build=lambda clock: PoolGate(clock, cls),
        limit=POOL_SIZE,
        cancellable=True,
        operations={"blip": Operation(lambda gate: gate.blip())},
        invariants=(pool_size_bounded, pool_never_closes_lent, pool_hands_out_fresh, pool_closes_everything),
        description=description,
    )


pool_ok = _pool_target(pool.HealthPool, "round 6: health-checked pool (correct)")
pool_evicts_lent = _pool_target(pool.EvictsLentPool, "round 6: pool whose eviction timer closes a lent connection")
pool_double_count = _pool_target(pool.DoubleCountPool, "round 6: pool counting a failed health check out twice")
pool_sliding_lifetime = _pool_target(pool.SlidingLifetimePool, "round 6: pool measuring lifetime from the last release")


# ---------------------------------------------------------------------------------------------
# (2) the deadline-budget client
# ---------------------------------------------------------------------------------------------
DEADLINE_S, BASE_S, CAP_S = 1.0, 0.1, 0.4


def budget_backoff(retry: int) -> tuple[int, int]:
    delay = int(min(BASE_S * 2 ** (retry - 1), CAP_S) * 1000)
    return (delay, delay)


class ClientGate:
    def __init__(self, clock: Any, cls: type[deadline.BudgetClient]) -> None:
        self.client = cls(clock, lambda job: maybeDeferred(job), DEADLINE_S, BASE_S, CAP_S)

    def submit(self, job: Any) -> "Deferred[Any]":
        return self.client.call(job)


def deadline_timer_not_left(run: Run) -> object:
    """A call's deadline timer is cancelled once its caller is answered: it never fires, or stays
    pending, after the answer."""
    submits = [i for i, _ in run.view.of_kind(EventKind.SUBMIT)]
    timers = [t for t in run.view.timers if t.function.endswith("._deadline")]
    if not timers:
        return NOT_JUDGED
    for timer in timers:
        before = [i for i in submits if i < timer.set_index]
        if not before:
            continue
        job = run.trace[before[-1]].job
        got = run.view.jobs[job].received
        if got is None:
            continue
        if timer.end == "pending" or (timer.fired_us is not None and timer.end_index is not None and timer.end_index > got.index):
            raise InvariantFailed(
                f"job {job}'s deadline timer #{timer.id} was still set after its caller was answered at "
                f"{format_ms(got.t_us)} ({timer.end}{' at ' + format_ms(timer.end_us) if timer.end_us is not None else ''})",
                events=(got.index, timer.set_index),
            )
    return None


def _client_target(cls: type[deadline.BudgetClient], description: str) -> Target:
    return Target(
        build=lambda clock: ClientGate(clock, cls),
        retries=3,
        backoff_ms=budget_backoff,
        timeout_ms=int(DEADLINE_S * 1000),
        timeout_from="submit",
        timeout_error=deadline.DeadlineExceeded,
        errors=(deadline.Retryable,),
        cancellable=True,
        invariants=(deadline_timer_not_left,),
        description=description,
    )


client_ok = _client_target(deadline.BudgetClient, "round 6: deadline-budget client (correct)")
client_late_done = _client_target(deadline.LateDoneClient, "round 6: client marking the call done after cancelling the attempt")
client_leaky_timer = _client_target(deadline.LeakyTimerClient, "round 6: client leaving its deadline timer after a success")
client_deaf_to_cancel = _client_target(deadline.DeafToCancelClient, "round 6: client whose cancel does not stop the attempt")


# ---------------------------------------------------------------------------------------------
# (3) the coalescing flusher
# ---------------------------------------------------------------------------------------------
WINDOW_S, MIN_INTERVAL_S, RETRY_S = 0.05, 0.1, 0.05


def _first_failure(results: list[tuple[bool, Any]]) -> Any:
    for ok, outcome in results:
        if not ok:
            return outcome
    return None


class FlushGate:
    """Each job is a write of ``job.key``; the value is the job, and the sink writes a key by
    calling its job (a store with per-key writes: a key already durable at that job or newer is
    skipped). A caller's Deferred fires when its write, or a newer one of its key, is durable."""

    def __init__(self, clock: Any, cls: type[coalesce.CoalescingFlusher]) -> None:
        self.clock = clock
        self.flusher = cls(clock, self._sink, WINDOW_S, MIN_INTERVAL_S, RETRY_S)
        self.durable: dict[int, int] = {}  # key -> id of the job whose value is stored
        self.waiting: dict[int, list[tuple[int, Deferred[Any]]]] = {}
        self.last_write: dict[int, int] = {}
        self.inflight = 0
        self.problems: list[tuple[str, str]] = []
        self.stop_d: Deferred[Any] | None = None

    def submit(self, job: Any, key: int = 0) -> "Deferred[Any]":
        self.flusher.write(key, job)  # raises Stopped after stop()
        self.last_write[key] = job.id
        caller: Deferred[Any] = Deferred()
        self.waiting.setdefault(key, []).append((job.id, caller))
        return caller

    def _sink(self, batch: dict[int, Any]) -> "Deferred[Any]":
        self.inflight += 1
        if self.inflight > 1:
            self.problems.append(("flights", f"{self.inflight} flushes in flight at once at {self.clock.seconds():.3f}s"))
        writes = []
        for key, job in sorted(batch.items()):
            stored = self.durable.get(key, -1)
            if stored == job.id:
                continue
            if stored > job.id:
                self.problems.append(("order", f"the sink was given job {job.id} for key {key} after the newer job {stored} was stored"))
            writes.append(
                maybeDeferred(job).addCallbacks(
                    self._stored, self._write_failed, callbackArgs=(key, job.id), errbackArgs=(key, job.id)
                )
            )
        # a batch ends when every write in it has ended (gatherResults would fail at the first
        # failure while other writes still run, and the retry would write those keys twice at once)
        done = DeferredList(writes, consumeErrors=True).addCallback(_first_failure)

        def landed(outcome: Any) -> Any:
            self.inflight -= 1
            return outcome

        return done.addBoth(landed)

    def _stored(self, value: Any, key: int, job_id: int) -> Any:
        self.durable[key] = job_id
        still = []
        for waiter_id, caller in self.waiting.get(key, []):
            if waiter_id <= job_id:
                if not caller.called:
                    caller.callback(value)
            else:
                still.append((waiter_id, caller))
        self.waiting[key] = still
        return value

    def _write_failed(self, failure: Any, key: int, job_id: int) -> Any:
        # HACK (finding): the flusher retries a failed write until it lands, which no declaration
        # expresses (errors.poison flags a write whose every attempt fails); so a caller is
        # answered with the first failure of its write and the retries go on in the background
        # (retries_after_answer)
        for waiter_id, caller in self.waiting.get(key, []):
            if waiter_id <= job_id and not caller.called:
                caller.errback(failure)
        return failure

    def stop(self) -> "Deferred[Any]":
        d = self.flusher.stop()

        def stopped(outcome: Any) -> Any:
            if isinstance(outcome, Failure):
                return outcome  # gave up (WritesLost): nothing promised
            lost = {k: (j, self.durable.get(k)) for k, j in self.last_write.items() if self.durable.get(k, -1) < j}
            if lost:
                k, (j, got) = sorted(lost.items())[0]
                self.problems.append(("stop", f"stop() fired at {self.clock.seconds():.3f}s but key {k}'s last write (job {j}) is not durable (stored: {got})"))
            return outcome

        return d.addBoth(stopped)


flush_one_at_a_time = _recorded("flights", "flush_one_at_a_time")
flush_never_regresses = _recorded("order", "flush_never_regresses")
flush_stop_is_durable = _recorded("stop", "flush_stop_is_durable")


def flush_throttled_not_debounced(run: Run) -> object:
    """Every write starts being flushed (its job, or a newer job of its key, starts) within
    ``max(window, retry_delay, min_interval)`` of the write, or of the end of the flush in flight
    when it was written, plus the clock's lateness."""
    view = run.view
    bound_us = int(max(WINDOW_S, RETRY_S, MIN_INTERVAL_S) * 1_000_000) + view.late_us
    stop_us = min((e.t_us for _, e in view.of_kind(EventKind.STOP)), default=None)
    end_us = max((e.t_us for e in view.events), default=0)
    judged = False
    for job in view.jobs.values():
        if job.received is not None and job.received.kind == "failure" and not job.attempts:
            continue  # refused (after stop)
        t = job.submitted_us
        if t is None or (stop_us is not None and stop_us <= t):
            continue
        running = view.running_at(t)
        if any(a.end_us is None or a.canceller_raised for a in running):
            continue  # a flush that never ends holds every later write
        base = max([t] + [a.end_us for a in running if a.end_us is not None])
        starts = [
            a.start_us
            for other in view.jobs.values()
            if other.key == job.key and other.id >= job.id
            for a in other.attempts
            if a.start_us >= t
        ]
        first = min(starts, default=None)
        due = base + bound_us
        judged = True
        if first is None:
            assert end_us < due, f"job {job.id} (key {job.key}) written at {format_ms(t)} was never flushed (due by {format_ms(due)})"
        else:
            assert first <= due, (
                f"job {job.id} (key {job.key}) written at {format_ms(t)} first went to the sink at {format_ms(first)}, "
                f"after {format_ms(due)}"
            )
    return None if judged else NOT_JUDGED


def _flush_target(cls: type[coalesce.CoalescingFlusher], description: str) -> Target:
    return Target(
        build=lambda clock: FlushGate(clock, cls),
        keys=2,
        shared=True,
        cancellable="detach_queued",
        # HACK (finding): the flusher retries a failed write until it lands; `retries` wants a
        # count, so "unbounded" is a large one
        retries=10**6,
        retries_after_answer=True,
        # one flush at a time: a write that never ends holds every key's later writes
        limit=2,
        capacity=1,
        rejects=(coalesce.Stopped,),
        invariants=(flush_one_at_a_time, flush_never_regresses, flush_stop_is_durable, flush_throttled_not_debounced),
        description=description,
    )


flush_ok = _flush_target(coalesce.CoalescingFlusher, "round 6: coalescing write-behind flusher (correct)")
flush_clobbering = _flush_target(coalesce.ClobberingFlusher, "round 6: flusher merging a failed batch over newer writes")
flush_hasty_stop = _flush_target(coalesce.HastyStopFlusher, "round 6: flusher whose stop() ignores the batch in flight")
flush_debouncing = _flush_target(coalesce.DebouncingFlusher, "round 6: flusher that debounces instead of throttling")


# ---------------------------------------------------------------------------------------------
# (4) the weighted fair scheduler
# ---------------------------------------------------------------------------------------------
WEIGHTS = {0: 1, 1: 2, 2: 3}
FAIR_LIMIT, JOB_TIMEOUT_S = 2, 0.5


class FairGate:
    def __init__(self, clock: Any, cls: type[fair.FairScheduler]) -> None:
        self.scheduler = cls(clock, FAIR_LIMIT, {f"t{k}": w for k, w in WEIGHTS.items()}, JOB_TIMEOUT_S)

    def submit(self, job: Any, key: int = 0) -> "Deferred[Any]":
        return self.scheduler.submit(f"t{key}", job)


def weighted_fair(run: Run) -> object:
    """Over any stretch in which two tenants are both backlogged, their starts divided by their
    weights differ by at most 1/w_a + 1/w_b."""
    from fractions import Fraction

    queued: dict[int, set[int]] = {k: set() for k in WEIGHTS}
    started: dict[int, int] = {k: 0 for k in WEIGHTS}
    since: dict[tuple[int, int], tuple[int, int, int]] = {}  # pair -> (starts a, starts b, index) when both became backlogged
    seen_start: set[int] = set()
    judged = False
    jobs = run.view.jobs

    def backlogged(k: int) -> bool:
        return bool(queued[k])

    def refresh(index: int) -> None:
        for a in WEIGHTS:
            for b in WEIGHTS:
                if a < b:
                    both = backlogged(a) and backlogged(b)
                    if both and (a, b) not in since:
                        since[(a, b)] = (started[a], started[b], index)
                    elif not both:
                        since.pop((a, b), None)

    for index, event in enumerate(run.trace):
        if event.kind == EventKind.SUBMIT and event.job in jobs:
            queued[jobs[event.job].key].add(event.job)
        elif event.kind == EventKind.JOB_START and event.job not in seen_start:
            seen_start.add(event.job)
            k = jobs[event.job].key
            pairs = [(a, b) for (a, b) in since if k in (a, b)]
            started[k] += 1
            queued[k].discard(event.job)
            for a, b in pairs:
                sa, sb, first = since[(a, b)]
                gap = Fraction(started[a] - sa, WEIGHTS[a]) - Fraction(started[b] - sb, WEIGHTS[b])
                bound = Fraction(1, WEIGHTS[a]) + Fraction(1, WEIGHTS[b])
                judged = True
                if abs(gap) > bound:
                    raise InvariantFailed(
                        f"tenants {a} (weight {WEIGHTS[a]}) and {b} (weight {WEIGHTS[b]}) both backlogged since "
                        f"{format_ms(run.trace[first].t_us)}: {started[a] - sa} and {started[b] - sb} starts since, "
                        f"{float(abs(gap)):.2f} apart per weight, more than {float(bound):.2f}",
                        events=(first, index),
                    )
        elif event.kind == EventKind.CANCEL and event.job in jobs and event.job not in seen_start:
            queued[jobs[event.job].key].discard(event.job)
        elif event.kind == EventKind.STOP:
            break
        refresh(index)
    return None if judged else NOT_JUDGED


def _fair_target(cls: type[fair.FairScheduler], description: str) -> Target:
    return Target(
        build=lambda clock: FairGate(clock, cls),
        keys=len(WEIGHTS),
        limit=FAIR_LIMIT,
        order="fifo",
        timeout_ms=int(JOB_TIMEOUT_S * 1000),
        cancellable=True,
        invariants=(weighted_fair,),
        description=description,
    )


fair_ok = _fair_target(fair.FairScheduler, "round 6: weighted fair scheduler (correct)")
fair_leak_on_fail = _fair_target(fair.LeakOnFailScheduler, "round 6: scheduler releasing slots only on success")
fair_banked_credit = _fair_target(fair.BankedCreditScheduler, "round 6: scheduler letting idle tenants bank credit")
fair_double_release = _fair_target(fair.DoubleReleaseScheduler, "round 6: scheduler freeing a timed-out slot twice")



# ---------------------------------------------------------------------------------------------
# specimens for findings
# ---------------------------------------------------------------------------------------------
class GatherSinkGate(FlushGate):
    """My first FlushGate: the sink's batch fails at its first failed write (``gatherResults``)
    while other writes still run, so the flusher's retry calls a still-running job again. The
    harness caught it (concurrency.key_limit), with a message naming nobody."""

    def _sink(self, batch: dict[int, Any]) -> "Deferred[Any]":
        from twisted.internet.defer import gatherResults

        self.inflight += 1
        writes = [
            maybeDeferred(job).addCallbacks(
                self._stored, self._write_failed, callbackArgs=(key, job.id), errbackArgs=(key, job.id)
            )
            for key, job in sorted(batch.items())
            if self.durable.get(key, -1) != job.id
        ]

        def landed(outcome: Any) -> Any:
            self.inflight -= 1
            return outcome

        return gatherResults(writes, consumeErrors=True).addBoth(landed)


flush_gather_sink = Target(
    build=lambda clock: GatherSinkGate(clock, coalesce.CoalescingFlusher),
    keys=2,
    shared=True,
    cancellable="detach_queued",
    retries=10**6,
    retries_after_answer=True,
    limit=2,
    capacity=1,
    rejects=(coalesce.Stopped,),
    description="round 6: my first flusher glue, whose sink retried a write still running",
)

class PatientGate(FlushGate):
    """The glue as the component means it: a caller waits until its write lands, however many
    failed flushes that takes."""

    def _write_failed(self, failure: Any, key: int, job_id: int) -> Any:
        return failure

    def stop(self) -> "Deferred[Any]":
        def gave_up(outcome: Any) -> Any:
            if isinstance(outcome, Failure):  # WritesLost: tell the callers still waiting
                for waiters in self.waiting.values():
                    for _, caller in waiters:
                        if not caller.called:
                            caller.errback(outcome)
            return outcome

        return super().stop().addBoth(gave_up)


# the flusher without the two hacks: a write retried until it lands (review 6, finding 2: declared with
# retries=math.inf). A failed batch is retried RETRY_S after it ends and no sooner than MIN_INTERVAL_S after
# it started; a batch ends with its slowest write, which the menu draws up to 1000 ms long and whose end a
# strided reactor may see up to 5000 + 50 ms late (the menu's longest stride and jitter) before the retry's
# own timer is late in turn: a failed write waits for its retry at most 1000 + 100 + 5050 ms after it failed,
# besides that timer's lateness (and stop() flushes at once: no least wait).
flush_retry_forever = Target(
    build=lambda clock: PatientGate(clock, coalesce.CoalescingFlusher),
    keys=2,
    shared=True,
    cancellable="detach_queued",
    retries=math.inf,
    backoff_ms=(0, 1000 + int(MIN_INTERVAL_S * 1000) + 5050),
    limit=2,
    capacity=1,
    rejects=(coalesce.Stopped,),
    invariants=(flush_one_at_a_time, flush_never_regresses, flush_stop_is_durable),
    description="round 6: the flusher declared without the retries hack",
)

client_wrong_error = _client_target(deadline.WrongErrorClient, "round 6: client failing the caller with CancelledError at the deadline")
client_per_attempt_deadline = _client_target(
    deadline.PerAttemptDeadlineClient, "round 6: client restarting the deadline at every attempt"
)
pool_drops_on_cancel = _pool_target(pool.DropsOnCancelPool, "round 6: pool dropping a connection made for a cancelled waiter")


class KeepsCancel:
    """A timeout wrapper whose ``onTimeoutCancel`` keeps the ``CancelledError`` instead of turning
    it into ``TimeoutError`` (finding 1's smallest form)."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def submit(self, job: Any) -> "Deferred[Any]":
        return maybeDeferred(job).addTimeout(0.3, self.clock, onTimeoutCancel=lambda result, timeout: result)


keeps_cancel = Target(build=KeepsCancel, timeout_ms=300, description="round 6: timeout that fails the caller with CancelledError")
keeps_cancel_retries0 = Target(build=KeepsCancel, timeout_ms=300, retries=0,
                               description="round 6: the same, declaring retries=0 as the docs advise for a plain pool")


class RenamesTimeout(KeepsCancel):
    """A timeout wrapper that fails the caller with ``RuntimeError("timed out")``."""

    def submit(self, job: Any) -> "Deferred[Any]":
        return maybeDeferred(job).addTimeout(
            0.3, self.clock, onTimeoutCancel=lambda result, timeout: Failure(RuntimeError("timed out"))
        )


renames_timeout_retries0 = Target(build=RenamesTimeout, timeout_ms=300, retries=0,
                                  description="round 6: timeout failing the caller with RuntimeError, retries=0")
