"""Targets for the round-8 components, written from the user documentation alone, as a user would.

reconnect_*: the reconnecting service as a backoff loop (``kind="periodic"``): each call of the
harness's work is one connection attempt; a success is a connection, which the glue drops at once
(as the docs' ClientService stand-in does), so the service reconnects. ``wait`` is an operation:
``whenConnected(timeout)``.

drain_*: the drain coordinator, jobs submitted through ``run``; ``drain(deadline)`` an operation;
``Draining`` a declared reject, legitimate only after a drain call.

fanout_*: the pub/sub broker with one subscriber whose handler runs the harness's job; each
submission is one ``publish``; the caller's Deferred says what became of its message: delivered
(the job's result), handler failed (its error), timed out (``DeliveryTimeout``), dropped from the
full buffer (``Dropped``) or the subscriber went away (``Unsubscribed``). ``unsubscribe`` is an
operation (the glue subscribes a fresh subscriber after it).

stealing_*: the work-stealing pool, two lanes, 300 ms per job.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

from hypothesis import strategies as st
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import EventKind, InvariantFailed, JobRecord, NOT_JUDGED, Operation, Run, RunView, Target, format_ms

from . import drain, fanout, reconnect, stealing

# ---------------------------------------------------------------------------------------------
# reconnect: a backoff loop
# ---------------------------------------------------------------------------------------------

INITIAL_MS, FACTOR, CAP_MS = 100, 2, 800


class ReconnectGate:
    """The service on the harness's clock; its connect runs the harness's work. A connection is
    dropped at once, right after the service has taken it (so the service reconnects); with
    ``hop=True`` the drop comes from a ``callLater(0)`` instead (finding 2)."""

    def __init__(self, clock: IReactorTime, work: Callable[[], Any],
                 cls: type[reconnect.ReconnectingService] = reconnect.ReconnectingService, hop: bool = False) -> None:
        self.clock = clock
        self.work = work
        self.hop = hop
        self.service = cls(clock, self._connect, initial=INITIAL_MS / 1000, factor=FACTOR, cap=CAP_MS / 1000)
        self.waiters: list[Deferred[object]] = []

    def _connect(self, on_lost: Callable[[], None]) -> Deferred[object]:
        attempt: Deferred[object] = Deferred(lambda _: work.cancel())

        def settle(result: object) -> None:
            attempt.callback(result)  # a Failure errbacks; the service's own callbacks run here
            if not isinstance(result, Failure):
                if self.hop:
                    self.clock.callLater(0, on_lost)
                else:
                    on_lost()  # the peer drops the connection the service has just taken

        work = maybeDeferred(self.work)
        work.addBoth(settle)
        return attempt

    def start(self) -> None:
        self.service.start()

    def stop(self) -> None:
        self.service.stop()

    def wait(self, timeout_ms: int) -> Deferred[object]:
        d = self.service.whenConnected(timeout_ms / 1000)
        self.waiters.append(d)
        return d


def reconnect_backoff(retry: int) -> tuple[float, float]:
    """The k-th failed attempt in a row waits min(100 * 2**(k-1), 800) ms; after a success (a
    connection, dropped at once) the service waits 100 ms, backoff_ms(1), as the docs count it."""
    delay = min(INITIAL_MS * FACTOR ** (retry - 1), CAP_MS)
    return (delay, delay)


def every_wait_answered(run: Run) -> object:
    """Every whenConnected waiter has been answered by the end of the run: with the connection,
    ConnectTimeout at its deadline, or ServiceStopped at the stop. The glue keeps the Deferreds:
    the trace records a waiter's failure (call.refused), not its success (finding 4)."""
    gate = run.subject
    if not gate.waiters:
        return NOT_JUDGED
    calls = [c for c in run.view.calls if c.operation == "wait"]
    for call, d in zip(calls, gate.waiters):
        if not d.called:
            raise InvariantFailed(f"wait({call.args[0]}) called at {format_ms(call.t_us)} was never answered",
                                  events=(call.index,))
    return None


WAIT = Operation(lambda s, ms: s.wait(ms), args=(st.integers(0, 60).map(lambda n: n * 10),),
                 raises=(reconnect.ConnectTimeout, reconnect.ServiceStopped))


def _reconnect(cls: type[reconnect.ReconnectingService], description: str, hop: bool = False) -> Target:
    return Target(
        build=lambda clock, work: ReconnectGate(clock, work, cls, hop),
        kind="periodic",
        backoff_ms=reconnect_backoff,
        operations={"wait": WAIT},
        invariants=(every_wait_answered,),
        # no real endpoint connects inside connect(): the glue's drop would come before the
        # service has taken the connection (faults.md: leave out immediate and value)
        menu=None if hop else {"job_kinds": ("succeed", "fail", "raise", "hang")},
        description=description,
    )


reconnect_ok = _reconnect(reconnect.ReconnectingService, "round 8: reconnecting service, capped exponential backoff")
reconnect_stop_keeps_timer = _reconnect(reconnect.StopKeepsBackoffTimer, "round 8 twin: stop() leaves the backoff timer")
reconnect_waiter_deadline = _reconnect(reconnect.WaiterDeadlineNotCleared,
                                       "round 8 twin: a connection leaves the waiters' deadlines armed")
reconnect_backoff_not_reset = _reconnect(reconnect.BackoffNotReset,
                                         "round 8 twin: a connection does not reset the backoff")
#: Finding 2: the same service, the drop notified from a callLater(0), so that a connect that
#: succeeds inside connect() (immediate, value: in the menu again) is dropped after the service took
#: it: two timers between a success and the next call, each as late as the clock may be;
#: time.loop_died allowed one lateness, and now the lateness of the chain (fixed by fix8a).
reconnect_hop = _reconnect(reconnect.ReconnectingService, "round 8: the reconnecting service, the loss from a callLater(0)",
                           hop=True)

# ---------------------------------------------------------------------------------------------
# drain: submit through run(job); drain(deadline) an operation
# ---------------------------------------------------------------------------------------------


class DrainGate:
    def __init__(self, clock: IReactorTime, cls: type[drain.DrainCoordinator] = drain.DrainCoordinator) -> None:
        self.coordinator = cls(clock)
        self.drains: list[tuple[float, Deferred[drain.DrainSummary]]] = []
        self.clock = clock
        self.fired: list[int] = []

    def submit(self, job: Callable[[], Any]) -> Deferred[Any]:
        return self.coordinator.run(job)

    def drain(self, deadline_ms: int) -> Deferred[drain.DrainSummary]:
        d = self.coordinator.drain(deadline_ms / 1000)
        n = len(self.drains)
        self.drains.append((deadline_ms, d))

        def fired(summary: Any) -> Any:
            self.fired.append(n)
            return summary

        return d.addBoth(fired)


def _submit_indices(view: RunView) -> dict[int, int]:
    return {event.job: index for index, event in view.of_kind(EventKind.SUBMIT)}


def _first_drain_index(view: RunView) -> Optional[int]:
    return next((c.index for c in view.calls if c.operation == "drain"), None)


def refused_only_after_drain(view: RunView, job: JobRecord, t_us: int) -> bool:
    """Draining is legitimate only for a job submitted after a drain call."""
    first = _first_drain_index(view)
    return first is not None and _submit_indices(view)[job.id] > first


def admits_until_drain(run: Run) -> object:
    """Every job submitted after the first drain call is refused with Draining (never run)."""
    first = _first_drain_index(run.view)
    if first is None:
        return NOT_JUDGED
    stop = next((i for i, _ in run.view.of_kind(EventKind.STOP)), None)
    for job_id, index in _submit_indices(run.view).items():
        if index < first or (stop is not None and index > stop):
            continue
        job = run.view.jobs[job_id]
        got = job.received
        if job.attempts or got is None or "Draining" not in (got.error or ""):
            raise InvariantFailed(f"job {job_id} was submitted at {format_ms(job.submitted_us)}, after drain() "
                                  f"was called, but was not refused with Draining (it got {got and (got.error or got.value)})",
                                  events=(first, index))
    return None


def every_drain_fires_once(run: Run) -> object:
    """Each drain() Deferred has fired, exactly once, by the end of the run (after the teardown)."""
    gate = run.subject
    if not gate.drains:
        return NOT_JUDGED
    for n, (deadline_ms, d) in enumerate(gate.drains):
        assert d.called, f"drain #{n} (deadline {deadline_ms}ms) never fired"
        assert gate.fired.count(n) == 1, f"drain #{n} fired {gate.fired.count(n)} times"
    return None


DRAIN = Operation(lambda s, ms: s.drain(ms), args=(st.integers(0, 60).map(lambda n: n * 10),))


def _drain(cls: type[drain.DrainCoordinator], description: str) -> Target:
    return Target(
        build=lambda clock: DrainGate(clock, cls),
        rejects=(drain.Draining,),
        rejects_only_while=refused_only_after_drain,
        operations={"drain": DRAIN},
        stop=lambda gate: gate.drain(0),
        invariants=(admits_until_drain, every_drain_fires_once),
        description=description,
    )


drain_ok = _drain(drain.DrainCoordinator, "round 8: graceful drain coordinator")
drain_deadline_not_cleared = _drain(drain.DeadlineNotCleared, "round 8 twin: an early drain leaves its deadline armed")
drain_cancel_while_iterating = _drain(drain.CancelWhileIterating,
                                      "round 8 twin: the deadline cancels while iterating the in-flight dict")
drain_admits_when_idle = _drain(drain.AdmitsWhenIdle, "round 8 twin: an idle draining coordinator admits work")

# ---------------------------------------------------------------------------------------------
# fanout: one subscriber runs the jobs; each submission one publish
# ---------------------------------------------------------------------------------------------

BUFFER, DELIVERY_MS = 2, 300


class DeliveryTimeout(Exception):
    """The subscriber's handler did not finish within the delivery timeout."""


class Dropped(Exception):
    """The message was dropped from the subscriber's full buffer (drop_oldest)."""


class Unsubscribed(Exception):
    """The subscriber went away (unsubscribed or evicted) before the message was delivered."""


class _Message:
    def __init__(self, job: Callable[[], Any], caller: Deferred[Any]) -> None:
        self.job = job
        self.caller = caller
        self.sub: Optional[fanout.Subscription] = None  # the subscriber it was published to


class FanoutGate:
    def __init__(self, clock: IReactorTime, cls: type[fanout.Broker] = fanout.Broker,
                 policy: str = "drop_oldest") -> None:
        self.broker = cls(clock, buffer_size=BUFFER, delivery_timeout=DELIVERY_MS / 1000, policy=policy)
        self.sub = self._subscribe()

    def _subscribe(self) -> fanout.Subscription:
        sub = self.broker.subscribe(lambda msg: self._handle(sub, msg))
        sub.closed.addCallback(self._closed, sub)
        return sub

    def _handle(self, sub: fanout.Subscription, msg: _Message) -> Deferred[Any]:
        def settle(result: Any) -> Any:
            if not msg.caller.called:
                if isinstance(result, Failure) and result.check(CancelledError):
                    if msg in sub.timed_out:
                        msg.caller.errback(DeliveryTimeout())
                    elif not sub.active:
                        msg.caller.errback(Unsubscribed())
                    else:
                        msg.caller.errback(result)
                elif isinstance(result, Failure):
                    msg.caller.errback(result)
                else:
                    msg.caller.callback(result)
            return result

        return maybeDeferred(msg.job).addBoth(settle)

    def _closed(self, reason: str, sub: fanout.Subscription) -> None:
        pass  # the buffered messages were answered by unsubscribe() below, or by submit() on eviction

    def submit(self, job: Callable[[], Any]) -> Deferred[Any]:
        sub = self.sub
        msg: _Message = _Message(job, Deferred(lambda d: self._cancel(msg)))
        msg.sub = sub
        dropped_before = len(sub.dropped)
        waiting = list(sub.buffer)
        self.broker.publish(msg)
        if not sub.active:  # evicted: its waiting messages are gone; a fresh subscriber takes this one
            for old in waiting:
                if not old.caller.called:
                    old.caller.errback(Unsubscribed())
            self.sub = msg.sub = self._subscribe()
            self.broker.publish(msg)
        for old in sub.dropped[dropped_before:]:
            if not old.caller.called:
                old.caller.errback(Dropped())
        return msg.caller

    def _cancel(self, msg: _Message) -> None:
        sub = msg.sub
        assert sub is not None
        if msg in sub.buffer:
            sub.buffer.remove(msg)
        elif sub.delivering is not None:
            # the running delivery is this message's (the only one): cancel the handler's work
            sub.delivering.cancel()

    def unsubscribe(self) -> None:
        sub = self.sub
        waiting = list(sub.buffer)
        self.broker.unsubscribe(sub)
        for msg in waiting:
            if not msg.caller.called:
                msg.caller.errback(Unsubscribed())
        self.sub = self._subscribe()


def drop_only_when_full(view: RunView, job: JobRecord, t_us: int) -> bool:
    """Dropped: legitimate when, as the job was dropped, BUFFER other jobs submitted after it waited
    (submitted, not started, not answered: by trace index, since one instant holds many events)."""
    got = job.received
    assert got is not None
    submitted = _submit_indices(view)
    started = {e.job: i for i, e in reversed(list(view.of_kind(EventKind.JOB_START)))}  # first start
    later = [j for j in view.jobs.values()
             if j.id != job.id and submitted[job.id] < submitted[j.id] < got.index
             and started.get(j.id, got.index + 1) > got.index
             and (j.received is None or j.received.index > got.index)]
    return len(later) >= BUFFER


def waiting_at_instant_ends(run: Run) -> Iterator[tuple[int, dict[int, int]]]:
    """At the last event of each instant: its time and the jobs waiting then (submitted, not
    started, not answered), each with the trace index of its submission."""
    waiting: dict[int, int] = {}
    events = run.trace.events
    for index, event in enumerate(events):
        if event.kind == EventKind.SUBMIT:
            waiting[event.job] = index
        elif event.kind in (EventKind.JOB_START, EventKind.RESULT, EventKind.FAILURE):
            waiting.pop(event.job, None)
        if index + 1 == len(events) or events[index + 1].t_us != event.t_us:
            yield event.t_us, waiting


def buffer_bounded(run: Run) -> object:
    """At the end of each instant at most BUFFER messages wait (submitted, not started, not answered)."""
    for t_us, waiting in waiting_at_instant_ends(run):
        if len(waiting) > BUFFER:
            raise InvariantFailed(f"{len(waiting)} messages waited at {format_ms(t_us)} (jobs "
                                  f"{', '.join(map(str, sorted(waiting)))}) but the buffer holds {BUFFER}",
                                  events=tuple(sorted(waiting.values())))
    return None


def unsubscribe_cancels_delivery(run: Run) -> object:
    """A delivery running when unsubscribe() is called (the target's stop, or the operation) ends
    (is cancelled) in that instant."""
    marks = [(i, e.t_us) for i, e in run.view.of_kind(EventKind.STOP)]
    marks += [(c.index, c.t_us) for c in run.view.calls if c.operation == "unsubscribe"]
    if not marks:
        return NOT_JUDGED
    started = {(e.job, e.attempt): i for i, e in run.view.of_kind(EventKind.JOB_START)}
    for index, t_us in marks:
        for attempt in run.view.running_at(t_us):
            # started before it (by trace index: the same instant may hold both orders)
            if started[(attempt.job, attempt.n)] < index and (attempt.end_us is None or attempt.end_us > t_us):
                raise InvariantFailed(f"job {attempt.job} was being delivered when unsubscribe() was called at "
                                      f"{format_ms(t_us)} and ran on until "
                                      f"{'the end' if attempt.end_us is None else format_ms(attempt.end_us)}",
                                      events=(index,))
    return None


def dropped_or_unsubscribed(view: RunView, job: JobRecord, t_us: int) -> bool:
    """With unsubscribe an operation: Dropped as drop_only_when_full says; Unsubscribed in the instant
    of an unsubscribe() call, after it, for a job submitted before it (by trace index)."""
    got = job.received
    assert got is not None
    if got.error != "Unsubscribed":
        return drop_only_when_full(view, job, t_us)
    submitted = _submit_indices(view)[job.id]
    return any(c.operation == "unsubscribe" and submitted < c.index < got.index and c.t_us == got.t_us
               for c in view.calls)


def _fanout(cls: type[fanout.Broker], description: str, as_operation: bool = False) -> Target:
    """``unsubscribe`` is the target's stop (a stop excuses the cancel of the running delivery);
    ``as_operation``: an operation instead, as I first declared it, which ends the delivery in
    progress on purpose (finding 1: ``cancels_work=True`` says so; without it, time.timeout called
    the cancel an early timeout)."""
    unsubscribe = Operation(lambda s: s.unsubscribe(), cancels_work=True)
    return Target(
        build=lambda clock: FanoutGate(clock, cls),
        limit=1,  # one delivery at a time per subscriber
        order="fifo",
        timeout_ms=DELIVERY_MS,
        timeout_error=DeliveryTimeout,
        rejects=(Dropped, Unsubscribed),
        rejects_only_while=dropped_or_unsubscribed if as_operation else drop_only_when_full,
        operations={"unsubscribe": unsubscribe} if as_operation else {},
        stop=None if as_operation else (lambda gate: gate.unsubscribe()),
        invariants=(buffer_bounded, unsubscribe_cancels_delivery),
        description=description,
    )


fanout_ok = _fanout(fanout.Broker, "round 8: pub/sub subscriber with a bounded drop-oldest buffer")
fanout_unsubscribe_leaves_delivery = _fanout(fanout.UnsubscribeLeavesDelivery,
                                             "round 8 twin: unsubscribe leaves the delivery running")
fanout_buffer_one_too_many = _fanout(fanout.BufferOneTooMany, "round 8 twin: buffer bound off by one")
fanout_timeout_double_advance = _fanout(fanout.TimeoutDoubleAdvance,
                                        "round 8 twin: a delivery timeout advances twice")
#: Finding 1: unsubscribe as an operation; the correct broker's cancel of the running delivery was
#: called an early timeout by time.timeout, until the operation could declare cancels_work=True.
fanout_unsubscribe_op = _fanout(fanout.Broker, "round 8: the broker with unsubscribe as an operation",
                                as_operation=True)

# ---------------------------------------------------------------------------------------------
# stealing: a work-stealing pool of two lanes
# ---------------------------------------------------------------------------------------------

LANES, JOB_MS = 2, 300


def no_idle_lane_while_queued(run: Run) -> object:
    """At the end of each instant, a job waits (submitted, not started, not answered) only while
    every lane runs a job."""
    for t_us, waiting in waiting_at_instant_ends(run):
        if waiting:
            running = run.view.running_at(t_us)
            busy = [a for a in running if a.end_us is None or a.end_us > t_us or a.canceller_raised]
            if len(busy) < LANES:
                raise InvariantFailed(f"at {format_ms(t_us)} job {min(waiting)} waited while only "
                                      f"{len(busy)} of {LANES} lanes ran a job", events=(waiting[min(waiting)],))
    return None


def _stealing(cls: type[stealing.StealingPool], description: str) -> Target:
    return Target(
        build=lambda clock: cls(clock, lanes=LANES, timeout=JOB_MS / 1000),
        limit=LANES,
        timeout_ms=JOB_MS,
        timeout_error=stealing.JobTimeout,
        retries=0,
        invariants=(no_idle_lane_while_queued,),
        description=description,
    )


stealing_ok = _stealing(stealing.StealingPool, "round 8: work-stealing pool, 2 lanes, 300ms per job")
stealing_timer_keyed_by_lane = _stealing(stealing.TimerKeyedByLaneLeaks,
                                         "round 8 twin: a finished job's lane timer stays armed")
stealing_only_from_busy_queues = _stealing(stealing.StealsOnlyFromBusyQueues,
                                           "round 8 twin: steals only from queues of two or more")
stealing_cancel_leaves_queued = _stealing(stealing.CancelLeavesQueued,
                                          "round 8 twin: a cancelled queued job stays queued")

# ---------------------------------------------------------------------------------------------
# Specimens for the findings
# ---------------------------------------------------------------------------------------------


class DrainForgetsIdle(drain.DrainCoordinator):
    """drain() on an idle coordinator sets no deadline and never finishes: its Deferred (and so the
    target's stop(), which is drain(0)) never fires."""

    def drain(self, deadline: float) -> Deferred[drain.DrainSummary]:
        if not self.draining:
            self.draining = True
            if self._inflight:
                self._timer = self.clock.callLater(deadline, self._expire)
        d: Deferred[drain.DrainSummary] = Deferred()
        self._done.addCallback(self._notify, d)
        return d


#: Finding 3: the stop() Deferred never fires, with nothing in flight and nothing scheduled; only
#: the built-in invariants (my every_drain_fires_once catches it).
drain_stop_never_fires = Target(
    build=lambda clock: DrainGate(clock, DrainForgetsIdle),
    rejects=(drain.Draining,),
    rejects_only_while=refused_only_after_drain,
    operations={"drain": DRAIN},
    stop=lambda gate: gate.drain(0),
    description="round 8 specimen: a graceful stop whose Deferred never fires",
)


def evicted_only_when_full(view: RunView, job: JobRecord, t_us: int) -> bool:
    """Unsubscribed (evict policy): legitimate when, as the job was refused, BUFFER jobs submitted
    before the one that overflowed waited: the subscriber's buffer was full."""
    got = job.received
    assert got is not None
    submitted = _submit_indices(view)
    started = {e.job: i for i, e in reversed(list(view.of_kind(EventKind.JOB_START)))}
    overflow = max((i for i in submitted.values() if i < got.index), default=-1)
    waiting = [j for j in view.jobs.values()
               if submitted[j.id] < overflow and started.get(j.id, got.index + 1) > overflow
               and (j.received is None or j.received.index > overflow)]
    return len(waiting) >= BUFFER


#: Finding 1, its second face: the evict policy. An overflowing publish evicts the slow subscriber,
#: which cancels the delivery in progress; time.timeout called it an early timeout, and no
#: declaration (not even making it the stop) covered a cancel the subject decides on in a submit,
#: until sheds: the evicted delivery's caller is refused with Unsubscribed in that instant.
fanout_evict = Target(
    build=lambda clock: FanoutGate(clock, fanout.Broker, policy="evict"),
    limit=1,
    order="fifo",
    timeout_ms=DELIVERY_MS,
    timeout_error=DeliveryTimeout,
    rejects=(Unsubscribed,),
    rejects_only_while=evicted_only_when_full,
    sheds=(Unsubscribed,),
    invariants=(buffer_bounded,),
    stop=lambda gate: gate.unsubscribe(),
    description="round 8: pub/sub subscriber evicted when its buffer overflows",
)

#: The only workaround for finding 1's eviction face: drop the delivery-timeout promise.
fanout_evict_untimed = Target(
    build=lambda clock: FanoutGate(clock, fanout.Broker, policy="evict"),
    limit=1,
    order="fifo",
    rejects=(Unsubscribed, DeliveryTimeout),
    rejects_only_while=lambda view, job, t_us: job.received is not None and (
        job.received.error == "DeliveryTimeout" or evicted_only_when_full(view, job, t_us)),
    invariants=(buffer_bounded,),
    stop=lambda gate: gate.unsubscribe(),
    description="round 8: the evicting subscriber without its timeout declared",
)


class StopStrandsWaiters(reconnect.ReconnectingService):
    """stop() forgets the waiters (and cancels their deadlines with them): they are never answered."""

    def stop(self) -> None:
        for w in self._waiters:
            if w.timer is not None and w.timer.active():
                w.timer.cancel()
        self._waiters = []
        super().stop()


#: Finding 4: an operation's Deferred that never fires is judged by nothing built in (and its
#: success is not in the trace); every_wait_answered, left out here, catches it.
reconnect_stop_strands_waiters = Target(
    build=lambda clock, work: ReconnectGate(clock, work, StopStrandsWaiters),
    kind="periodic",
    backoff_ms=reconnect_backoff,
    operations={"wait": WAIT},
    menu={"job_kinds": ("succeed", "fail", "raise", "hang")},
    description="round 8 specimen: stop() leaves the whenConnected waiters unanswered",
)
