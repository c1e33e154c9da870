"""Targets for the round-9 components, written from the user documentation alone.

Each component gets a correct target and one per buggy twin (BUGS.md). The glue adapts each
component to ``submit(job) -> Deferred`` (or to a periodic loop, for the supervisor); the promises
the built-in invariants cannot express are replayed by a user invariant over the trace.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from twisted.internet import defer
from twisted.python.failure import Failure

from harness import EventKind, InvariantFailed, Operation, Run, Target, format_ms

from . import barrier, idle, rpc, supervisor

# ---------------------------------------------------------------------------------------------
# 1. supervisor: a periodic backoff loop whose work is the worker; it ends on purpose
# ---------------------------------------------------------------------------------------------
MAX_RESTARTS = 3
WINDOW_S = 1.0


def supervisor_backoff(retry: int) -> tuple[int, int]:
    """100, 200, 400, 800, 800... ms: ``base * 2**(k-1)`` capped, as the Supervisor computes it."""
    delay = min(100 * 2 ** (retry - 1), 800)
    return (delay, delay)


class SupervisorLoop:
    """The worker is the harness's work; the supervisor reports its own end (gave up, exited)."""

    def __init__(self, clock: Any, work: Any, cls: type[supervisor.Supervisor] = supervisor.Supervisor) -> None:
        self.sup = cls(clock, lambda: defer.maybeDeferred(work), max_restarts=MAX_RESTARTS,
                       window=WINDOW_S, base=0.1, cap=0.8)
        self._stopping = False
        self.sup.stopped.addCallbacks(self._ended, self._gave_up, callbackArgs=(work,), errbackArgs=(work,))

    def _ended(self, _: object, work: Any) -> None:
        if not self._stopping:
            work.report_end("worker exited")

    def _gave_up(self, failure: Failure, work: Any) -> None:
        failure.trap(supervisor.GaveUp)
        work.report_end("gave up")

    def start(self) -> None:
        self.sup.start()

    def stop(self) -> None:
        self._stopping = True
        self.sup.stop()


def _crashes(run: Run) -> tuple[list[int], list[int]]:
    """The end times of the worker's failed runs followed by a restart, and of every failed run."""
    [job] = [j for j in run.view.jobs.values() if j.periodic] or [None]
    if job is None:
        return [], []
    attempts = list(job.attempts)
    restarts = [attempts[i - 1].end_us for i in range(1, len(attempts)) if attempts[i - 1].end_us is not None]
    failed = [a.end_us for a in attempts if a.outcome == "failed" and a.end_us is not None]
    return [t for t in restarts if t is not None], failed


def restarts_within_intensity(run: Run) -> None:
    """At most MAX_RESTARTS restarts decided in any WINDOW_S window (monotonic time)."""
    restarts, _ = _crashes(run)
    window_us = int(WINDOW_S * 1_000_000)
    for i, t in enumerate(restarts):
        recent = [r for r in restarts[: i + 1] if r > t - window_us]
        assert len(recent) <= MAX_RESTARTS, (
            f"restart {i + 1} decided at {format_ms(t)}: {len(recent)} restarts within {WINDOW_S}s "
            f"(at most {MAX_RESTARTS})")


def gives_up_only_at_the_limit(run: Run) -> None:
    """A 'gave up' end only when MAX_RESTARTS restarts already fell in the window of the last crash."""
    restarts, failed = _crashes(run)
    window_us = int(WINDOW_S * 1_000_000)
    for index, event in run.view.of_kind(EventKind.LOOP_END):
        if "gave up" not in str(event.detail):
            continue
        assert failed, "gave up without a crash"
        last = failed[-1]
        # a restart expires by a timer, which a late reactor fires late: it may still count then
        recent = [r for r in restarts if last - window_us - run.view.late_us <= r <= last]
        if len(recent) < MAX_RESTARTS:
            raise InvariantFailed(f"gave up at {format_ms(event.t_us)} with only {len(recent)} restarts "
                                  f"in the {WINDOW_S}s before the crash at {format_ms(last)}", events=(index,))


def _supervisor_target(cls: type[supervisor.Supervisor], description: str) -> Target:
    return Target(build=lambda clock, work: SupervisorLoop(clock, work, cls), kind="periodic",
                  backoff_ms=supervisor_backoff, stop_cancels_work=True,
                  invariants=(restarts_within_intensity, gives_up_only_at_the_limit), description=description)


supervisor_ok = _supervisor_target(supervisor.Supervisor, "supervisor with restart intensity")
supervisor_off_by_one = _supervisor_target(supervisor.SupervisorOffByOne, "supervisor: R + 1 restarts")
supervisor_stop_leaks_restart = _supervisor_target(supervisor.SupervisorStopLeaksRestart,
                                                   "supervisor: stop() leaves the restart")
supervisor_crash_after_stop = _supervisor_target(supervisor.SupervisorCrashAfterStop,
                                                 "supervisor: stop()'s cancel taken for a crash")

# ---------------------------------------------------------------------------------------------
# 2. idle timeouts: a pipelined session per key; answers released in request order
# ---------------------------------------------------------------------------------------------
IDLE_S = 0.3
SESSIONS = 2


class IdleGate:
    """Each key is a session; a job is a request answered (in order) when its work is done.

    The session's idle timer is its pending requests' deadline: the glue tells the harness when it
    restarts (any activity of the session) or is switched off (``set_timeout(None)``), for
    ``timeout_from="glue"`` (finding 3, fixed)."""

    def __init__(self, clock: Any, manager: type[idle.IdleTimeoutManager] = idle.IdleTimeoutManager) -> None:
        self.manager = manager(clock)
        self._lines: dict[int, list[dict[str, Any]]] = {}
        self._disarmed: set[int] = set()

    def _restart(self, s: idle.Session) -> None:
        """Activity: the pending requests' deadline restarts now (unless the timer is off)."""
        if id(s) not in self._disarmed:
            for slot in self._lines.get(id(s), ()):
                slot["job"].restart_timeout()

    def touch(self, key: int) -> None:
        s = self.session(key)
        s.activity()
        self._restart(s)

    def disarm(self, key: int) -> None:
        s = self.session(key)
        s.set_timeout(None)
        self._disarmed.add(id(s))
        for slot in self._lines.get(id(s), ()):
            slot["job"].stop_timeout()

    def rearm(self, key: int) -> None:
        s = self.session(key)
        s.set_timeout(IDLE_S)
        self._disarmed.discard(id(s))
        self._restart(s)

    def session(self, key: int) -> idle.Session:
        s = self.manager.sessions.get(str(key))
        if s is None:
            s = self.manager.open(str(key), IDLE_S)
            self._disarmed.discard(id(s))  # a new session is armed (an id may be reused)
            line: list[dict[str, Any]] = []
            self._lines[id(s)] = line
            s.closed.addCallback(self._closed, line)
        return s

    def submit(self, job: Any, key: int) -> defer.Deferred[object]:
        s = self.session(key)
        d = s.request()
        if s.is_closed:
            return d
        line = self._lines[id(s)]
        self._restart(s)  # a request is activity
        slot: dict[str, Any] = {"done": False, "result": None, "job": job}
        if id(s) in self._disarmed:
            job.stop_timeout()
        line.append(slot)
        d.addErrback(self._maybe_cancelled, s, line, slot)
        work = defer.maybeDeferred(job)
        slot["work"] = work
        work.addBoth(self._finished, s, line, slot)
        return d

    def _maybe_cancelled(self, failure: Failure, s: idle.Session, line: list[dict[str, Any]],
                         slot: dict[str, Any]) -> Failure:
        if failure.check(defer.CancelledError) and slot in line:
            line.remove(slot)
            # the answers held behind it go out now (first written without: the harness found a
            # finished request never answered, cancellation.releases)
            self._flush(s, line)
            if not slot["done"]:
                slot["done"] = True
                slot["work"].cancel()
        return failure

    def _finished(self, result: object, s: idle.Session, line: list[dict[str, Any]], slot: dict[str, Any]) -> None:
        if slot["done"]:
            return None  # cancelled, or closed: its work was cancelled
        slot["done"], slot["result"] = True, result
        self._flush(s, line)
        return None

    def _flush(self, s: idle.Session, line: list[dict[str, Any]]) -> None:
        while line and line[0]["done"]:
            head = line.pop(0)
            s.answer(head["result"])
            self._restart(s)  # an answer is activity

    def _closed(self, _reason: str, line: list[dict[str, Any]]) -> None:
        slots = list(line)
        line.clear()
        for slot in slots:
            if not slot["done"]:
                slot["done"] = True
                slot["work"].cancel()

    def stop(self) -> None:
        self.manager.close_all()


def idle_refusal_legit(view: Any, job: Any, t_us: int) -> bool:
    """A SessionClosed only in the instant of a close() of the job's session. The idle timer's
    timeouts are declared (``timeout_from="glue"``, finding 3, fixed): this replaces the first
    workaround, a 60-line user invariant replaying the timer."""
    return any(c.operation == "close" and c.args == (job.key,) and c.t_us == t_us for c in view.calls)


def _idle_operations() -> dict[str, Operation]:
    key = st.integers(0, SESSIONS - 1)
    return {
        "touch": Operation(lambda g, k: g.touch(k), args=(key,)),
        "disarm": Operation(lambda g, k: g.disarm(k), args=(key,)),
        "rearm": Operation(lambda g, k: g.rearm(k), args=(key,)),
        "close": Operation(lambda g, k: g.manager.sessions[str(k)].close() if str(k) in g.manager.sessions else None,
                           args=(key,)),
    }


def _idle_target(manager: type[idle.IdleTimeoutManager], description: str) -> Target:
    return Target(build=lambda clock: IdleGate(clock, manager), keys=SESSIONS, timeout_ms=int(IDLE_S * 1000),
                  timeout_from="glue", timeout_error=idle.SessionTimedOut, rejects=(idle.SessionClosed,),
                  rejects_only_while=idle_refusal_legit, operations=_idle_operations(), description=description)


idle_ok = _idle_target(idle.IdleTimeoutManager, "idle-timeout sessions")
idle_disarm_keeps_timer = _idle_target(idle.ManagerDisarmKeepsTimer, "idle: set_timeout(None) keeps the timer")
idle_close_leaves_timer = _idle_target(idle.ManagerCloseLeavesTimer, "idle: close() leaves the timer")
idle_timeout_fails_one = _idle_target(idle.ManagerTimeoutFailsOne, "idle: a timeout fails one request")

# ---------------------------------------------------------------------------------------------
# 3. multiplexed RPC client: the job is the remote side of one request
# ---------------------------------------------------------------------------------------------
RPC_TIMEOUT_MS = 300


class RpcGate:
    """``send(id, job)`` runs the job as the server would; its outcome comes back by id."""

    def __init__(self, clock: Any, cls: type[rpc.RpcClient] = rpc.RpcClient) -> None:
        self.client = cls(clock, self._send, RPC_TIMEOUT_MS / 1000)

    def _send(self, request_id: int, job: Any) -> None:
        defer.maybeDeferred(job).addBoth(lambda outcome: self.client.answer_received(request_id, outcome))

    def submit(self, job: Any) -> defer.Deferred[object]:
        return self.client.call(job)

    def stop(self) -> None:
        self.client.close()


def rpc_refusal_legit(view: Any, job: Any, t_us: int) -> bool:
    """A ConnectionDone only in the instant of a lose() (ClientClosed comes with stop())."""
    return any(c.operation == "lose" and c.t_us == t_us for c in view.calls)


def _rpc_target(cls: type[rpc.RpcClient], description: str) -> Target:
    """The call's timeout fails the caller at T and leaves the request on the wire running
    (finding 1, fixed: ``timeout_detaches``); the first workaround (the timeout a declared reject
    plus a user invariant for "fails by T") is gone."""
    return Target(build=lambda clock: RpcGate(clock, cls), cancellable="detach",
                  timeout_ms=RPC_TIMEOUT_MS, timeout_from="submit", timeout_error=rpc.RpcTimeout,
                  timeout_detaches=True, rejects=(rpc.ConnectionDone, rpc.ClientClosed),
                  rejects_only_while=rpc_refusal_legit, stop_cancels_timers=True,
                  operations={"lose": Operation(lambda g: g.client.connection_lost())},
                  description=description)


rpc_ok = _rpc_target(rpc.RpcClient, "multiplexed RPC client")
# finding 1, as a user first declares it: time.timeout demands the work cancelled at T
rpc_timeout_declared = Target(build=lambda clock: RpcGate(clock), cancellable="detach",
                              timeout_ms=RPC_TIMEOUT_MS, timeout_from="submit", timeout_error=rpc.RpcTimeout,
                              timeout_detaches=True,
                              rejects=(rpc.ConnectionDone, rpc.ClientClosed), stop_cancels_timers=True,
                              description="multiplexed RPC client, its timeout declared")
rpc_timeout_keeps_id = _rpc_target(rpc.RpcTimeoutKeepsId, "rpc: a timed-out id stays pending")
rpc_answer_leaves_timer = _rpc_target(rpc.RpcAnswerLeavesTimer, "rpc: an answer leaves its timer")
rpc_answers_in_order = _rpc_target(rpc.RpcAnswersInOrder, "rpc: answers matched by order")

# ---------------------------------------------------------------------------------------------
# 4. barrier: a job runs once its generation is released
# ---------------------------------------------------------------------------------------------
PARTIES = 3
BARRIER_TIMEOUT_S = 0.3


class BarrierGate:
    """A job runs once its generation is released; each party's deadline is its generation's, from
    its first arrival (finding 3, fixed: the glue tells the harness, ``timeout_from="glue"``)."""

    def __init__(self, clock: Any, cls: type[barrier.Barrier] = barrier.Barrier) -> None:
        self.barrier = cls(clock, PARTIES, BARRIER_TIMEOUT_S)
        self._first: Any = None

    def submit(self, job: Any) -> defer.Deferred[object]:
        if self.barrier.waiting == 0:
            self._first = job  # a new generation: its deadline runs from this arrival
        else:
            job.restart_timeout(like=self._first)
        return self.barrier.wait().addCallback(self._released, job)

    @staticmethod
    def _released(_generation: int, job: Any) -> object:
        job.stop_timeout()  # released: the deadline was the generation's wait, not the job's
        return job()


def barrier_releases_together(run: Run) -> None:
    """Replay the barrier: the N-th live arrival releases the N waiting together (their jobs start
    then). The generation's deadline (first arrival + timeout) is declared: ``timeout_from="glue"``,
    the glue naming each party's generation (finding 3, fixed; first written here, 10 more lines)."""
    waiting: list[int] = []
    released: set[int] = set()
    for index, e in enumerate(run.trace):
        if e.kind == EventKind.SUBMIT:
            waiting.append(e.job)
            if len(waiting) == PARTIES:
                released.update(waiting)
                waiting = []
        elif e.kind == EventKind.CANCEL and e.job in waiting:
            waiting.remove(e.job)
        elif e.kind == EventKind.JOB_START and e.attempt == 0:
            if e.job not in released:
                raise InvariantFailed(f"job {e.job} started at {format_ms(e.t_us)} though its generation "
                                      f"was not full ({len(waiting)} of {PARTIES} waiting)", events=(index,))
        elif e.kind == EventKind.FAILURE and str(e.detail).startswith("BarrierTimeout") and e.job in waiting:
            waiting.remove(e.job)


def _barrier_target(cls: type[barrier.Barrier], description: str) -> Target:
    return Target(build=lambda clock: BarrierGate(clock, cls), timeout_ms=int(BARRIER_TIMEOUT_S * 1000),
                  timeout_from="glue", timeout_error=barrier.BarrierTimeout,
                  invariants=(barrier_releases_together,), description=description)


barrier_ok = _barrier_target(barrier.Barrier, "reusable barrier of 3 with a timeout")
barrier_cancel_keeps_slot = _barrier_target(barrier.BarrierCancelKeepsSlot, "barrier: a cancel keeps its slot")
barrier_deadline_not_cleared = _barrier_target(barrier.BarrierDeadlineNotCleared,
                                               "barrier: a release leaves the deadline")
barrier_off_by_one = _barrier_target(barrier.BarrierOffByOne, "barrier: waits for N + 1")

# finding 3, as a user first declares them: a deadline shared by a group of jobs
barrier_timeout_declared = Target(build=lambda clock: BarrierGate(clock), timeout_ms=int(BARRIER_TIMEOUT_S * 1000),
                                  timeout_from="glue", timeout_error=barrier.BarrierTimeout,
                                  description="barrier, its generation deadline declared as a timeout")
idle_timeout_declared = Target(build=lambda clock: IdleGate(clock), keys=SESSIONS, timeout_ms=int(IDLE_S * 1000),
                               timeout_from="glue", timeout_error=idle.SessionTimedOut,
                               rejects=(idle.SessionClosed,), description="sessions, the idle timeout declared")
