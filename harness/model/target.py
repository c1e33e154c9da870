"""Targets: the user's adapter between the harness and the code under test.

A target builds the *subject* from a clock and declares what the subject
promises. The harness only ever reaches the subject through the target, so
any object with ``submit(job) -> Deferred`` (or ``start(work)`` for periodic
code) and optionally ``stop()`` can be tested, and anything else can be
adapted in a line or two. Each promise turns on the invariants that check it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import os
import sys
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FunctionType, MethodType
from typing import Any

from twisted.internet import defer

from harness.errors import TargetError
from harness.model.faults import error_table
from harness.model.operations import Operation, operation_table
from harness.model.menu import Menu
from harness.model.trace import format_ms as _format_ms, one_line
from harness.model.weights import Weight, ask as ask_weight, call_per_job, check_declaration as check_weight

KINDS = ("submit", "periodic")
#: ``cancellable``: True (cancel fails the caller and cancels the work), False (no cancels
#: are promised or drawn), "detach" (cancel fails the caller at once; the work runs on), or
#: "abandon" (as "detach", but once every caller of an execution has cancelled, the work may be
#: cancelled too: a single-flight cache that drops work nobody waits for), or "delayed" (cancel
#: fails the caller late: no later than the job would have started, or than its running work
#: ended; the job never starts after the cancel; running work may run on or be cancelled), or
#: "detach_queued" (as "detach", for work not started yet too: cancel only stops the caller waiting;
#: the job, queued or running, still runs, and may start or be retried after the cancel: a write-behind
#: buffer's write, a work queue's message).
#: ``cancellable`` may also be a function of a job's ``(key, priority)`` returning one of the modes but
#: False, when the promise differs between jobs (a lock's readers cancel at once, its writers late).
CANCEL_MODES = (True, False, "detach", "abandon", "delayed", "detach_queued")
#: The modes a per-job ``cancellable(key, priority)`` may return: every job it is asked about may be cancelled.
PER_JOB_CANCEL_MODES = (True, "detach", "abandon", "delayed", "detach_queued")


def _one_of(modes: tuple[object, ...]) -> str:
    """How messages list the modes: ``True, 'detach', ... or 'detach_queued'`` (one list, told once)."""
    return ", ".join(repr(m) for m in modes[:-1]) + f" or {modes[-1]!r}"
#: A cancellation promise: one mode for every job, or a function of a job's key and priority giving its mode.
CancelPromise = bool | str | Callable[[int, int], bool | str]
ORDERS = ("fifo", "priority")
#: ``timeout_from``: the timeout runs from the job's start, from its submission, or covers only the
#: wait in the queue ("wait": a job not started T after submission fails at T, never starts after), or from where
#: the glue says ("glue": from the submission, restarted, shared with another job or switched off by the job's
#: ``restart_timeout(like=None)`` and ``stop_timeout()``: a group's deadline, an idle timer reset by activity).
TIMEOUT_FROM = ("start", "submit", "wait", "glue")

#: ``global_reactor``: what a run does with a call of the global reactor's time methods (``callLater``,
#: ``seconds``, ``getDelayedCalls``, ``callWhenRunning``). "refuse" (the default): the run ends with an error
#: saying to use the clock given to ``build(clock)``. "lend": they act on that clock for the run (code written on
#: the global reactor, ``deferLater(reactor, ...)``, a ``LoopingCall`` left on its default clock, is tested as it
#: is), and so do the ``time`` module's clocks called from the target's code (``time.monotonic``, ``time.time``...:
#: ``harness.guard.lent_time``); the reactor's other methods (``run``, ``stop``, ``callFromThread``, threads,
#: sockets) stay refused.
GLOBAL_REACTOR = ("refuse", "lend")

#: Failures in a row whose backoff waits bound how long a backoff loop is watched.
BACKOFF_RETRIES_OBSERVED = 8
#: ``backoff_after_success``: how a backoff loop's count of failures in a row restarts after a
#: successful call. "reset": at 0 (the first failure after it is retry 1); "first_failure": at 1, the
#: success's end counting as the first failure of the next streak (the first failed call after it is
#: retry 2: Twisted's ``ClientService``, which counts the lost connection); "base": at 0, and the wait after
#: the success itself is ``backoff_ms(0)``, the loop's base, from the success's end (an adaptive poller: the
#: base after a success, doubling after each failure; review 11, finding 1).
BACKOFF_AFTER_SUCCESS = ("reset", "first_failure", "base")

#: A backoff promise: a fixed ``(low_ms, high_ms)`` range for every retry, or
#: a function of the retry number (1 for the first retry) giving the range.
Backoff = tuple[int, int] | Callable[[int], tuple[float, float]]


@dataclass(frozen=True)
class Target:
    """What to test and what it promises.

    ``build(clock)`` returns a fresh subject for every run; it must schedule
    through ``clock`` (an ``IReactorTime``), never the global reactor. A
    periodic subject that takes its function at construction is built by
    ``build(clock, work)`` (a build with two required parameters), and then
    started with ``subject.start()``.

    Work-submission subjects (``kind="submit"``): ``submit(subject, job,
    priority)`` hands a job over and returns the Deferred of its result; the
    default calls ``subject.submit(job)`` (with ``priority=`` when ``order`` is
    ``"priority"``, and ``key=job.key`` when ``keys`` is declared). Periodic
    subjects (``kind="periodic"``): ``start(subject, work)`` starts calling
    ``work`` periodically; default ``subject.start(work)``.
    ``stop(subject)`` defaults to ``subject.stop()`` when the subject has one.

    A periodic target with ``backoff_ms`` is a *backoff loop* (a reconnecting
    client, a poller that backs off): after its k-th failed call in a row the
    next call comes ``backoff_range(k)`` after that call ended; after a
    successful call, ``interval_ms`` after it started, or without an
    ``interval_ms``, ``backoff_range(1)`` after it ended (a success resets
    the count). With ``backoff_after_success="first_failure"`` the count
    restarts at 1 instead: the success's end counts as the first failure, so
    the k-th failed call after a success is retry ``k + 1`` (before any
    success, retry ``k`` as ever). With ``backoff_after_success="base"`` the
    count restarts at 0 and the wait after a success is ``backoff_range(0)``,
    the loop's base, from its end (both ends judged). With
    ``backoff_counts_timeouts=True`` a call the subject cancelled itself (its
    own ``timeout_ms``) counts as a failed call; by default it leaves the
    count as it was.

    ``skips`` is how many ticks of ``interval_ms`` in a row a periodic loop may
    skip by design (1 by default; ``math.inf``: any number while it ticks):
    ``time.loop_died`` waits that many more ticks before calling it silent.

    On a periodic target ``timeout_ms`` bounds each call of the work, from
    its start (``time.timeout``), and ``stop_cancels_work=True`` promises that
    ``stop()`` cancels the call in flight (``leaks.work``).

    Every promise is optional; each one declared switches on its invariants
    (see the invariants reference in the documentation). ``menu`` says what
    schedules contain, apart from the promises: a ``Menu``, or a dict of
    ``Menu`` fields to change in ``Menu.derived(target)``
    (``menu={"canceller_raises": True}``). ``rejects_only_while(view, job,
    t_us)`` says when a refusal is legitimate: ``errors.rejects`` asks it,
    for each job refused with a ``rejects`` type before ``stop()``, with the
    run's ``RunView``, the job's ``JobRecord`` and the virtual time of the
    refusal, and a False answer is a violation. ``sheds`` names the
    ``rejects`` a caller gets when the subject cancels its running job on
    purpose (an evicted slow consumer, shed load): ``time.timeout`` takes
    such an early cancel, the caller refused in its instant, for no early
    timeout. ``timeout_detaches=True`` says the timeout fails the caller at
    T and leaves the work running (it cannot reach it: a multiplexed call
    already on the wire), as ``cancellable="detach"`` does for a cancel:
    ``time.timeout`` then holds the caller to T, not the work. ``timeout_cleanup_ms=C`` says the
    timeout cancels the work at T and the subject then cleans up (a saga compensating its completed
    steps, a rollback) before failing the caller with ``timeout_error``, within C of the cancel:
    ``time.timeout`` holds the caller to that, not to T (review 10, finding 2). ``key_limit`` is a positive
    integer, ``math.inf`` (no bound: with ``shared``, executions of one key
    may overlap without limit) or None (none declared: 1 with ``shared``).

    ``slot_timers`` names the functions whose delayed calls hold one of the
    subject's slots while pending, besides the running jobs: a connection
    pool whose size counts the connects in progress, each a timer of its fake
    database, declares ``slot_timers=(FakeDB._connect_done,)``. With
    ``timeout_from="wait"`` a waiter's timeout is then judged at the moment it
    fired: the slots were full (running jobs plus pending slot timers reach
    ``capacity``), or each job waiting then had a slot being prepared (as
    many slot timers pending as jobs waiting).

    ``hedge_ms`` (with ``hedges``, 1 by default) declares a hedged request:
    while the caller waits and no copy succeeded, another call of the job
    ``hedge_ms`` after the latest one (at once after a copy failed), up to
    ``hedges`` beyond the first, the copies still running cancelled when the
    caller's Deferred fires (``harness.invariants.hedging``).
    ``retries=math.inf`` (with ``backoff_ms``) declares a subject that retries
    a failed job until it lands: a caller whose job it is still retrying
    when the run drains is not stranded (``harness.run.facts.retrying_jobs``),
    one whose job it stopped retrying is (``errors.poison``).
    ``retries_after_answer=True`` says the subject may call a job again after
    its caller's Deferred fired (background retries): ``time.retries`` then
    no longer holds the caller's answer final, and judges the rest as before.
    ``gives_up_after_retries=True`` says the subject gives up on a job only
    after ``retries + 1`` failed attempts (``retries`` promises only *at
    most* that many): ``time.gave_up_early`` catches a caller failed with its
    job's own error sooner, and a run a ``redrives`` operation started that
    the subject left with fewer failed attempts
    (``harness.invariants.gave_up``).

    ``lease_ms`` declares at-least-once delivery with a lease (a work queue's
    visibility timeout, Celery's ``acks_late``): an attempt that has not
    succeeded within ``lease_ms`` of its start may be called again while it
    still runs, and a success it delivers at or after its lease ran out is
    not final (the subject may refuse it and deliver the job again, and
    ``errors.propagate`` does not hold it against the caller's failure). A
    success within the lease stays final, an attempt still in its lease is
    never joined by another one (``time.retries``); ``retries`` still counts
    every delivery.

    ``logs`` declares what the subject may log as an error (``errors.logged``): a
    tuple of exception types it may log besides its jobs' own errors (``()``: those
    only); any other error logged during the run is a violation. None (the
    default) judges no logged error.

    ``fanout=N`` with ``quorum=K`` declares a quorum call: the subject calls
    each job N times at once (its copies), answers once K copies succeeded
    (with a copy's value), fails once K successes are impossible (more than
    N - K copies failed) or at its ``timeout_ms``, and cancels the copies
    still running in the instant of its answer (``harness.invariants.fanout``).

    ``global_reactor="lend"`` lends the global reactor's time methods (``callLater``, ``seconds``,
    ``getDelayedCalls``, ``callWhenRunning``) to the run's clock during each run: a subject written on
    ``from twisted.internet import reactor`` schedules on the fault clock, its timers recorded, faulted and
    judged exactly as if it had been given the clock (the default, "refuse", ends such a run with an error).
    It also lends the ``time`` module's clocks to the target's code: ``time.monotonic()`` (and ``perf_counter``)
    read the run's monotonic virtual time, ``time.time()`` its wall clock, jumps included
    (``harness.guard.lent_time``).
    """

    build: Callable[..., Any]  # build(clock), or build(clock, work) for periodic targets
    kind: str = "submit"
    # concurrency
    limit: int | None = None
    # how many jobs that never end fill the subject (default: limit): an adaptive limiter's smallest window; with
    # weight, the total weight that may hold the subject at once (a readers-writer lock: its writer's weight)
    capacity: int | None = None
    # a job's share of capacity, a function of its (key, priority) (default: 1 each): a lock's readers 1, its writer
    # all of capacity; the wait rules of timeout_from="wait" then weigh the jobs holding slots instead of counting them
    weight: Weight | None = None
    # the subject's delayed calls that each hold one of its slots while pending (a connect in progress): with
    # timeout_from="wait", a waiter's timeout is legitimate only if at that moment the slots were full or each
    # waiting job had one being prepared
    slot_timers: tuple[Callable[..., Any], ...] = ()
    order: str | None = None
    # keys: each job is submitted under a key from range(keys); order and "stuck" are judged per key
    keys: int | None = None
    # math.inf: no bound (a shared subject whose executions of one key may overlap without limit)
    key_limit: int | float | None = None
    shared: bool = False
    cache_ms: int | None = None
    # cancellation
    cancellable: CancelPromise = True
    cancel_error: type[BaseException] = defer.CancelledError
    # time
    timeout_ms: int | None = None
    timeout_from: str = "start"
    timeout_error: type[BaseException] = defer.TimeoutError
    timeout_fires: bool = False
    # the timeout fails the caller at T and leaves the work running (it cannot reach it: a multiplexed call already on
    # the wire), as cancellable="detach" does for a caller's cancel: time.timeout then holds the caller, not the work
    timeout_detaches: bool = False
    # the timeout cancels the work at T and the subject cleans up (compensates a saga's completed steps, rolls
    # back) for at most this long before failing the caller with timeout_error: time.timeout holds it to T + C
    timeout_cleanup_ms: int | None = None
    # math.inf: no bound (the subject retries a failed job until it lands; needs backoff_ms)
    retries: int | float | None = None
    # the subject may run a job again after its caller has its answer (retrying in the background, say): it
    # silences time.retries' "the caller's answer is final" rule only
    retries_after_answer: bool = False
    # the subject gives up on a job only after its retries + 1 attempts failed: a caller failed with its job's
    # own error sooner, or a redriven run left short, is time.gave_up_early (retries promises only at most)
    gives_up_after_retries: bool = False
    # at-least-once delivery with a lease (a visibility timeout): an attempt that has not succeeded within
    # lease_ms of its start may be called again while it runs, and a success it delivers after that is not final
    lease_ms: int | None = None
    backoff_ms: Backoff | None = None
    # hedging: a copy of a job that has not answered within hedge_ms is started beside it, up to hedges
    # copies beyond the first (1 when hedge_ms is declared alone); the first answer wins, the others are cancelled
    hedge_ms: int | None = None
    hedges: int | None = None
    # a quorum call: each job is called fanout times at once (its copies), and the caller answered once quorum
    # copies succeeded (or failed once that is impossible); the copies still running then are cancelled
    fanout: int | None = None
    quorum: int | None = None
    rate: tuple[int, int] | None = None
    # with rate=(n, per_ms): a burst of this many may start at once (a token bucket's capacity)
    burst: int | None = None
    interval_ms: int | None = None
    overlap: bool = False
    # periodic: how many ticks in a row the loop may skip by design (a misfire grace: 1, the default); a loop
    # silent longer (its timers still ticking) is dead (time.loop_died). math.inf: skipping is unbounded (a paused
    # poller), and only a loop that stopped setting timers is judged silent
    skips: int | float = 1
    # a backoff loop: after a success its count of failures in a row restarts at 0 ("reset") or at 1
    # ("first_failure": the success's end counts as the first failure, as ClientService counts a lost connection)
    backoff_after_success: str = "reset"
    # a backoff loop: a call the subject cancelled itself (at its own timeout_ms, before any stop()) counts as a
    # failed call, and the next call waits that retry's backoff (a poller whose timed-out poll is idle)
    backoff_counts_timeouts: bool = False
    # completion
    deadline_ms: int | None = None
    # leaks: stop() cancels the timers it does not leave to work in flight (leaks.calls also looks when it completes)
    stop_cancels_timers: bool = False
    # periodic: stop() cancels the call of the work in flight (leaks.work: it ends in stop()'s instant)
    stop_cancels_work: bool = False
    # errors
    rejects: tuple[type[BaseException], ...] = ()
    # when a refusal (a failure of a rejects type) is legitimate: (view, job, t_us) -> bool; None: always
    rejects_only_while: Callable[[Any, Any, int], bool] | None = None
    # the rejects the subject answers a caller with when it cancels the caller's running job on purpose (evicts a
    # slow consumer, sheds load): such a cancel, with the caller refused in its instant, is no early timeout
    sheds: tuple[type[BaseException], ...] = ()
    errors: tuple[type[BaseException], ...] = ()
    # what the subject may log as an error (errors.logged): None, not judged; a tuple, the exception types it
    # may log besides its jobs' own errors (a worker's handler timeout: (defer.TimeoutError,); () for none)
    logs: tuple[type[BaseException], ...] | None = None
    # error types that carry the job's error, with how to get it: {GaveUp: lambda e: e.last}
    wraps: Mapping[type[BaseException], Callable[[Any], Any]] = field(default_factory=dict, hash=False)
    # adapters and extras
    submit: Callable[[Any, Any, int], Any] | None = None
    start: Callable[[Any, Any], Any] | None = None
    stop: Callable[[Any], Any] | None = None
    # each raises AssertionError on a broken promise; returning False is one too; returning harness.NOT_JUDGED
    # says the run gave it nothing to judge (the HTML report counts the examples each judged)
    invariants: tuple[Callable[[Any], object], ...] = field(default=())
    # named calls on the subject besides submit/cancel/stop, drawn into schedules (harness.model.operations)
    operations: Mapping[str, Operation | Callable[..., Any]] = field(default_factory=dict, hash=False)
    menu: Menu | Mapping[str, Any] | None = None
    description: str = ""
    # "lend": the global reactor's callLater, seconds, getDelayedCalls and callWhenRunning act on the run's
    # clock during each run, and so do time.monotonic, time.time... called from the target's code; "refuse" (the
    # default): a run that calls the reactor's ends with an error (and time's read the real clock)
    global_reactor: str = "refuse"

    def __post_init__(self) -> None:
        if not callable(self.build):
            raise TargetError(f"Target build must be callable (clock -> subject), got {self.build!r}")
        if self.kind not in KINDS:
            raise TargetError(f"Target kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("limit", "capacity", "timeout_ms", "interval_ms", "deadline_ms", "keys", "cache_ms", "hedge_ms", "hedges",
                     "fanout", "quorum", "lease_ms", "timeout_cleanup_ms"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise TargetError(f"Target {name} must be a positive integer or None, got {value!r}")
        if self.key_limit is not None and self.key_limit != math.inf and (
            not isinstance(self.key_limit, int) or isinstance(self.key_limit, bool) or self.key_limit < 1
        ):
            raise TargetError(
                f"Target key_limit must be a positive integer, math.inf (no bound: executions of one key may overlap "
                f"without limit) or None (none declared: 1 with shared=True), got {self.key_limit!r}"
            )
        check_weight(self.weight, self.capacity, self.kind, self.slot_timers,
                     read=(self.timeout_ms is not None and self.timeout_from == "wait") or self.backoff_ms is not None)
        if self.capacity is not None and self.weight is None and (self.limit is None or self.capacity > self.limit):
            raise TargetError(
                f"Target capacity ({self.capacity}) is how many jobs that never end fill a subject whose limit "
                f"moves below the declared one; it must be at most limit ({self.limit}): declare limit=N as well, "
                "or drop capacity (without a limit one such job already fills the subject)"
                if self.limit is None
                else f"Target capacity ({self.capacity}) is how many jobs that never end fill the subject; it must be "
                f"at most limit ({self.limit}), the most that may run at once"
            )
        if self.capacity is not None and self.kind != "submit":
            raise TargetError(
                "Target capacity is how many submitted jobs that never end fill the subject (the jobs waiting "
                "behind them are not stranded), which a periodic Target has none of: drop it"
            )
        if self.retries is not None and self.retries != math.inf and (
            not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0
        ):
            raise TargetError(
                f"Target retries must be a non-negative integer, math.inf (no bound: a failed job is retried until "
                f"it lands) or None, got {self.retries!r}"
            )
        if self.retries == math.inf and (self.kind != "submit" or self.backoff_ms is None):
            raise TargetError(
                "Target retries=math.inf promises each failed attempt is retried within backoff_ms: declare "
                "backoff_ms=(low_ms, high_ms) too (the longest wait before a retry is what tells a subject still "
                "retrying from one that stopped)"
                if self.kind == "submit"
                else "Target retries=math.inf is a promise about submitted jobs; a periodic Target cannot declare it"
            )
        if self.gives_up_after_retries is True and (
            self.kind != "submit" or not isinstance(self.retries, int) or self.retries < 1
        ):
            raise TargetError(
                "Target gives_up_after_retries promises a job is given up only after its retries + 1 attempts "
                f"failed: declare retries=N (a whole number, 1 or more) on a submit Target, got retries={self.retries!r}"
                + ("" if self.kind == "submit" else " on a periodic Target")
            )
        if self.gives_up_after_retries is True and self.retries_after_answer is True:
            raise TargetError(
                "Target gives_up_after_retries promises the caller is failed only once the retries are spent, and "
                "retries_after_answer that it is answered before they end: declare one of them"
            )
        if callable(self.cancellable):
            _check_adapter("cancellable", self.cancellable, "key, priority")
        elif not _cancel_mode(self.cancellable, CANCEL_MODES):
            raise TargetError(
                f"Target cancellable must be {_one_of(CANCEL_MODES)}, got {self.cancellable!r} "
                "(or, when jobs promise different things, a function of a job's (key, priority) returning one of "
                "them but False)"
            )
        if (self.key_limit is not None or self.shared or self.cache_ms is not None) and self.keys is None:
            raise TargetError("Target key_limit, shared and cache_ms are promises about keys: declare keys=N as well")
        if self.cache_ms is not None and not self.shared:
            raise TargetError("Target cache_ms is how long a shared result is served again: declare shared=True as well")
        if self.keys is not None and self.kind != "submit":
            raise TargetError("Target keys apply to submitted jobs; a periodic Target cannot declare them")
        if self.order is not None and self.order not in ORDERS:
            raise TargetError(f"Target order must be one of {', '.join(ORDERS)} or None, got {self.order!r}")
        if self.timeout_from not in TIMEOUT_FROM:
            raise TargetError(f"Target timeout_from must be one of {', '.join(TIMEOUT_FROM)}, got {self.timeout_from!r}")
        for name in ("shared", "overlap", "stop_cancels_timers", "stop_cancels_work", "timeout_fires", "timeout_detaches",
                     "retries_after_answer", "gives_up_after_retries"):
            if not isinstance(getattr(self, name), bool):
                raise TargetError(f"Target {name} must be True or False, got {getattr(self, name)!r}")
        if type(self.global_reactor) is not str or self.global_reactor not in GLOBAL_REACTOR:
            raise TargetError(
                f"Target global_reactor must be 'refuse' (the default: a run calling the global reactor ends with an "
                f"error) or 'lend' (its callLater, seconds, getDelayedCalls and callWhenRunning act on the run's "
                f"clock), got {self.global_reactor!r}"
            )
        if not isinstance(self.description, str):
            raise TargetError(f"Target description must be a string, got {_a(self.description)}")
        if self.timeout_fires and self.timeout_ms is None:
            raise TargetError(
                "Target timeout_fires=True promises the caller fails by the timeout; declare timeout_ms too"
            )
        self._check_timeout_detaches()
        self._check_timeout_cleanup()
        self._check_glue_timeout()
        for name in ("cancel_error", "timeout_error"):
            if not _exception_class(getattr(self, name)):
                raise TargetError(f"Target {name} must be an exception class, got {getattr(self, name)!r}")
        for name in ("rejects", "errors"):
            value = getattr(self, name)
            if not (isinstance(value, tuple) and all(_exception_class(t) for t in value)):
                one = f": write {name}=({value.__name__},)" if isinstance(value, type) else ""
                raise TargetError(f"Target {name} must be a tuple of exception classes, got {value!r}{one}")
        if self.logs is not None and not (isinstance(self.logs, tuple) and all(_exception_class(t) for t in self.logs)):
            one = f": write logs=({self.logs.__name__},)" if isinstance(self.logs, type) else ""
            raise TargetError(
                "Target logs must be None (logged errors not judged) or a tuple of the exception classes the subject "
                f"may log besides its jobs' own errors (() for none), got {self.logs!r}{one}"
            )
        if self.rejects_only_while is not None:
            _check_adapter("rejects_only_while", self.rejects_only_while, "view, job, t_us")
            if not self.rejects:
                raise TargetError(
                    "Target rejects_only_while says when the subject may refuse a job, but rejects names no "
                    "refusal type: declare rejects=(YourRefusalError,) too"
                )
            if self.kind != "submit":
                raise TargetError(
                    "Target rejects_only_while judges refused submitted jobs; a periodic Target cannot declare it"
                )
        self._check_sheds()
        self._check_slot_timers()
        if not (isinstance(self.wraps, Mapping) and all(_exception_class(t) and callable(g) for t, g in self.wraps.items())):
            raise TargetError(
                "Target wraps must map exception classes to functions giving the error they carry "
                f"({{GaveUp: lambda e: e.last}}), got {self.wraps!r}"
            )
        if self.rate is not None and not (
            isinstance(self.rate, tuple) and len(self.rate) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in self.rate)
        ):
            raise TargetError(f"Target rate must be (jobs, per_ms) with positive integers, got {self.rate!r}")
        if self.burst is not None and (not isinstance(self.burst, int) or isinstance(self.burst, bool) or self.burst < 1):
            raise TargetError(f"Target burst must be a positive integer or None, got {self.burst!r}")
        if self.burst is not None and self.rate is None:
            raise TargetError("Target burst is how many may start at once beside a rate: declare rate=(jobs, per_ms) too")
        self._check_hedging()
        self._check_fanout()
        if self.kind == "periodic" and self.interval_ms is None and self.backoff_ms is None:
            raise TargetError(
                "a periodic Target must declare interval_ms (the period its subject promises) "
                "or backoff_ms (the delays of a backoff loop), or both"
            )
        if self.kind == "submit" and (self.interval_ms is not None or self.overlap):
            raise TargetError(
                f"Target {'interval_ms' if self.interval_ms is not None else 'overlap'} is a promise about a periodic "
                "subject's calls, which a submit Target has none of: declare kind='periodic' (with start), or drop it"
            )
        if self.kind == "submit" and self.stop_cancels_work:
            raise TargetError(
                "Target stop_cancels_work is a promise about a periodic subject's call in flight, which a submit "
                "Target has none of: declare kind='periodic' (with start), or drop it"
            )
        if self.kind == "periodic" and (self.timeout_from != "start" or self.timeout_fires):
            bad = "timeout_fires=True" if self.timeout_fires else f"timeout_from={self.timeout_from!r}"
            raise TargetError(
                f"Target {bad} is a promise about a submitted job's caller, which a periodic Target has none of: "
                "its timeout_ms is each call's, from the call's start (drop it)"
            )
        if self.skips != math.inf and (not isinstance(self.skips, int) or isinstance(self.skips, bool) or self.skips < 0):
            raise TargetError(
                "Target skips must be how many ticks in a row a periodic loop may skip by design: a non-negative "
                f"integer (default 1), or math.inf (no bound), got {self.skips!r}"
            )
        if self.skips != 1 and (self.kind != "periodic" or self.interval_ms is None):
            raise TargetError(
                "Target skips is how many ticks of interval_ms a periodic loop may skip in a row: declare "
                "kind='periodic' with interval_ms, or drop it"
            )
        if type(self.backoff_after_success) is not str or self.backoff_after_success not in BACKOFF_AFTER_SUCCESS:
            raise TargetError(
                "Target backoff_after_success must be 'reset' (after a success a backoff loop counts its failures "
                "from 0), 'first_failure' (the success's end counts as the first failure) or 'base' (from 0, and "
                f"the wait after a success is backoff_ms(0)), got {self.backoff_after_success!r}"
            )
        if self.backoff_after_success == "base" and self.interval_ms is not None:
            raise TargetError(
                "Target backoff_after_success='base' says a backoff loop waits backoff_ms(0) after a success's end, "
                "but interval_ms says it waits the interval from the success's start: declare one of them"
            )
        if type(self.backoff_counts_timeouts) is not bool:
            raise TargetError(
                f"Target backoff_counts_timeouts must be True or False, got {self.backoff_counts_timeouts!r}"
            )
        if self.backoff_counts_timeouts and (not self.backoff_loop or self.timeout_ms is None):
            raise TargetError(
                "Target backoff_counts_timeouts=True says a backoff loop counts a call cancelled at its own timeout "
                "as a failed call: declare kind='periodic', backoff_ms and timeout_ms too, or drop it"
            )
        if self.backoff_after_success != "reset" and not self.backoff_loop:
            raise TargetError(
                f"Target backoff_after_success={self.backoff_after_success!r} says how a backoff loop counts its "
                "failures after a success: declare kind='periodic' and backoff_ms too, or leave it 'reset'"
            )
        if self.backoff_ms is not None and not callable(self.backoff_ms) and not (
            isinstance(self.backoff_ms, tuple) and len(self.backoff_ms) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.backoff_ms)
            and 0 <= self.backoff_ms[0] <= self.backoff_ms[1]
        ):
            raise TargetError(
                "Target backoff_ms must be (low_ms, high_ms) with 0 <= low <= high, or a function of the retry "
                f"number returning that range, got {self.backoff_ms!r}"
            )
        object.__setattr__(self, "operations", operation_table(self.operations))
        now = next((name for name, op in self.operations.items() if isinstance(op, Operation) and op.calls_now), None)
        if now is not None and self.kind != "periodic":
            raise TargetError(
                f"Target operation {now!r} declares calls_now=True, a request for a call of a periodic loop's work, "
                "which a submit Target has none of: declare kind='periodic', or drop calls_now"
            )
        again = next((name for name, op in self.operations.items() if isinstance(op, Operation) and op.restarts), None)
        if again is not None and self.kind != "submit":
            raise TargetError(
                f"Target operation {again!r} declares restarts=True, which a periodic Target cannot take (its "
                "invariants hold the work to the first stop(): time.after_stop); drop restarts=True"
            )
        again = next((name for name, op in self.operations.items() if isinstance(op, Operation) and op.redrives), None)
        if again is not None and self.kind != "submit":
            raise TargetError(
                f"Target operation {again!r} declares redrives=True (it starts afresh jobs whose callers had their "
                "answer), which a periodic Target has no jobs for; drop redrives=True"
            )
        if isinstance(self.menu, Mapping):
            # Keyword overrides of the derived menu, applied once: the target then holds a plain Menu.
            try:
                object.__setattr__(self, "menu", Menu.derived(self).with_(**self.menu))
            except (TypeError, ValueError) as exc:
                raise TargetError(f"Target menu overrides are invalid: {exc}") from None
        elif self.menu is not None and not isinstance(self.menu, Menu):
            raise TargetError(
                f"Target menu must be a harness.Menu or a dict of Menu fields to change, got {self.menu!r}"
            )
        # The menu is a Menu or None by now (isinstance says so to the type checker too).
        unknown = [name for name in self.menu.errors if name not in self.error_types] if isinstance(self.menu, Menu) else []
        if unknown:
            raise TargetError(
                f"Target menu errors {', '.join(map(repr, unknown))} are neither built-in errors nor ones the target "
                "declares: declare their exception classes in errors=(...)"
            )
        if self.cancellable is False and isinstance(self.menu, Menu) and self.menu.cancels and not self.menu.periodic:
            raise TargetError(
                "Target cancellable=False promises nothing about cancels, so its invariants cannot judge them, but its "
                f"menu draws cancels: pass Menu(cancels=False, ...), or declare cancellable={_one_of(PER_JOB_CANCEL_MODES)}"
            )
        if self.weight is not None:
            menu = self.default_menu()  # ask the function about every key and priority the menu draws: its errors now
            for key in range(max(menu.keys, 1)):
                for priority in range(max(menu.priorities, 1)):
                    self.weight_of(key, priority)
        if callable(self.cancellable):
            self.cancel_modes  # asks the function about every key and priority the menu draws: its errors now
        for name, args in (("submit", "subject, job, priority"), ("start", "subject, work"), ("stop", "subject")):
            _check_adapter(name, getattr(self, name), args)
        if not isinstance(self.invariants, tuple):
            name = getattr(self.invariants, "__name__", None) if callable(self.invariants) else None
            fix = f": write invariants=({name},)" if isinstance(name, str) else ""
            raise TargetError(f"Target invariants must be a tuple of functions taking the run, got {_a(self.invariants)}{fix}")
        for fn in self.invariants:
            if not callable(fn):
                raise TargetError(f"Target invariants must be callables taking the run, got {fn!r}")

    def _check_slot_timers(self) -> None:
        """Refuse a ``slot_timers`` that is not a tuple of functions, or that no invariant would read."""
        if not (isinstance(self.slot_timers, tuple) and all(callable(f) for f in self.slot_timers)):
            one = ": write slot_timers=(YourPool._connect_done,)" if callable(self.slot_timers) else ""
            raise TargetError(
                "Target slot_timers must be a tuple of the functions whose delayed calls hold one of the subject's "
                f"slots while pending, got {_a(self.slot_timers)}{one}"
            )
        if self.slot_timers and (self.timeout_ms is None or self.timeout_from != "wait"):
            raise TargetError(
                "Target slot_timers says what besides running jobs holds the subject's slots while a job waits; only "
                'the wait timeout reads it: declare timeout_ms=T and timeout_from="wait" too, or drop slot_timers'
            )

    def _check_hedging(self) -> None:
        """Refuse hedging and background-retry declarations that promise nothing checkable, or contradict."""
        if self.hedges is not None and self.hedge_ms is None:
            raise TargetError(
                "Target hedges is how many copies of a job a hedging subject may add: declare hedge_ms (the delay "
                "before each copy) too"
            )
        if self.kind != "submit" and (self.hedge_ms is not None or self.retries_after_answer or self.lease_ms is not None):
            name = (
                "hedge_ms" if self.hedge_ms is not None else "lease_ms" if self.lease_ms is not None else "retries_after_answer"
            )
            raise TargetError(
                f"Target {name} is a promise about the attempts of submitted jobs, which a periodic Target has none "
                "of: declare kind='submit', or drop it"
            )
        if self.hedge_ms is not None and self.retries is not None:
            raise TargetError(
                "Target hedge_ms and retries are two policies for running a job again, and retries promises "
                "attempts never overlap, which hedged copies do: declare hedges=N (the most copies beyond the "
                "first) and drop retries"
            )
        if self.hedge_ms is not None and self.lease_ms is not None:
            raise TargetError(
                "Target hedge_ms and lease_ms are two reasons to call a job again while it runs: hedge_ms starts "
                "copies that race for the caller (the first answer wins), lease_ms redelivers work whose lease ran "
                "out (a late success is not final); declare the one the subject does"
            )
        if self.hedge_ms is not None and self.retries_after_answer:
            raise TargetError(
                "Target hedge_ms promises the copies still running are cancelled once the caller has its answer, "
                "and retries_after_answer that the job may run on after it: declare one of them"
            )

    def _check_fanout(self) -> None:
        """Refuse a quorum declaration that is incomplete, impossible, or contradicts another policy."""
        if self.fanout is None and self.quorum is None:
            return
        if self.fanout is None:
            raise TargetError(
                f"Target quorum ({self.quorum}) is how many copies of a job must succeed in a quorum call: declare "
                "fanout=N (how many copies of each job the subject calls at once) too"
            )
        if self.quorum is None:
            raise TargetError(
                f"Target fanout ({self.fanout}) needs quorum=K: how many of the copies must succeed before the caller "
                "is answered (quorum=1: the first success wins)"
            )
        if self.quorum > self.fanout:
            raise TargetError(
                f"Target quorum ({self.quorum}) must be at most fanout ({self.fanout}): a quorum call cannot wait for "
                "more successes than the copies it makes"
            )
        if self.kind != "submit":
            raise TargetError(
                "Target fanout is a promise about the copies of submitted jobs, which a periodic Target has none of: "
                "declare kind='submit', or drop it"
            )
        clash = next((name for name in ("hedge_ms", "retries") if getattr(self, name) is not None), None)
        if clash is not None:
            raise TargetError(
                f"Target fanout starts every copy of a job at once, and {clash} promises copies "
                f"{'spaced hedge_ms apart' if clash == 'hedge_ms' else 'only after a failure, never overlapping'}: "
                f"declare one of them"
            )
        if self.retries_after_answer:
            raise TargetError(
                "Target fanout promises the copies still running are cancelled once the caller has its answer, "
                "and retries_after_answer that the job may run on after it: declare one of them"
            )
        if self.limit is not None and self.limit < self.fanout:
            raise TargetError(
                f"Target limit ({self.limit}) is below fanout ({self.fanout}): a job's copies start together, so a "
                "limit must leave room for all of them (declare limit >= fanout, or drop it)"
            )

    @property
    def lends_reactor(self) -> bool:
        """Whether each run lends the global reactor's time methods to its clock (``global_reactor="lend"``)."""
        return self.global_reactor == "lend"

    @property
    def hedge_limit(self) -> int:
        """The most copies of a job a hedging subject may run in all (``hedges + 1``; 2 with ``hedges``
        undeclared); 0 for a target that declares no ``hedge_ms``."""
        if self.hedge_ms is None:
            return 0
        return (self.hedges if self.hedges is not None else 1) + 1

    @property
    def takes_work(self) -> bool:
        """Whether ``build`` is ``build(clock, work)``: a periodic subject given its function at construction."""
        return self.kind == "periodic" and _required_positional(self.build) == 2

    @property
    def detaches(self) -> bool:
        """Whether cancelling a caller leaves its work running (``cancellable="detach"``, ``"abandon"`` or
        ``"detach_queued"``, for every job)."""
        return self.cancel_modes <= {"detach", "abandon", "detach_queued"}

    @property
    def abandons(self) -> bool:
        """Whether work every caller has cancelled may be cancelled (``cancellable="abandon"``, for every job)."""
        return self.cancel_modes == {"abandon"}

    @property
    def delays(self) -> bool:
        """Whether a cancel may fail the caller late, once its job would have started or ended (``"delayed"``, for
        every job)."""
        return self.cancel_modes == {"delayed"}

    @functools.cached_property
    def cancel_modes(self) -> frozenset[bool | str]:
        """The cancellation modes of this target's jobs: ``{cancellable}``, or with a per-job promise, what it
        returns for every key and priority the target's menu draws (asked once, when the target is made)."""
        if not callable(self.cancellable):
            return frozenset({self.cancellable})
        menu = self.default_menu()
        return frozenset(
            self.cancel_mode(key, priority) for key in range(max(menu.keys, 1)) for priority in range(max(menu.priorities, 1))
        )

    def cancel_mode(self, key: int, priority: int) -> bool | str:
        """The cancellation promise of a job submitted under ``key`` at ``priority``: ``cancellable``, or what a
        per-job ``cancellable(key, priority)`` returns for it (asked once per key and priority: it must depend on
        them alone). A function that raises or returns something else is a ``TargetError`` naming the job's key
        and priority."""
        promise = self.cancellable
        if not callable(promise):
            return promise
        asked = self._cancel_modes_asked
        mode = asked.get((key, priority))
        if mode is None:
            mode = asked[(key, priority)] = _per_job_cancel_mode(promise, key, priority)
        return mode

    @functools.cached_property
    def _cancel_modes_asked(self) -> dict[tuple[int, int], bool | str]:
        return {}

    def allows_refusal(self, view: Any, job: Any, t_us: int) -> bool:
        """What ``rejects_only_while`` answers for ``job`` (a ``JobRecord`` of ``view``, the run's ``RunView``)
        refused at virtual time ``t_us`` (True when none is declared). A function that raises, or answers
        anything but True or False, is a ``TargetError`` naming it, the job and the time."""
        allowed = self.rejects_only_while
        if allowed is None:
            return True
        name = getattr(allowed, "__name__", type(allowed).__name__)
        where = f"for job {job.id} refused at {_format_ms(t_us)}"
        try:
            answer = allowed(view, job, t_us)
        except Exception as exc:
            raise TargetError(
                f"the target's rejects_only_while ({name}) raised {type(exc).__name__}: {one_line(str(exc)):.200} {where}; it must "
                "return whether a refusal then is legitimate (True or False)"
            ) from None
        if not isinstance(answer, bool):
            raise TargetError(
                f"the target's rejects_only_while ({name}) returned {one_line(repr(answer)):.80} {where}; it must return True "
                "(a refusal then is legitimate) or False"
            )
        return answer

    def weight_of(self, key: int, priority: int) -> int:
        """The share of ``capacity`` a job submitted under ``key`` at ``priority`` holds while it runs: 1 without a
        ``weight``, else what ``weight(key, priority)`` returns (asked once per key and priority). A function that
        raises, or returns anything but an integer from 1 to ``capacity``, is a ``TargetError`` naming the job's key
        and priority."""
        weight = self.weight
        if weight is None:
            return 1
        asked = self._weights_asked
        value = asked.get((key, priority))
        if value is None:
            value = asked[(key, priority)] = ask_weight(weight, self.capacity or 0, key, priority)
        return value

    @functools.cached_property
    def _weights_asked(self) -> dict[tuple[int, int], int]:
        return {}

    @property
    def fill(self) -> int:
        """How many attempts that never end fill the subject, so that a job waiting behind them is not stuck:
        ``capacity``, else ``limit``, else 1 (no declared limit is no promise of parallelism). With a ``weight``,
        ``limit``, else 1: one job that never ends may hold all of a weighted capacity (a lock's writer), and the
        rules that count such jobs (a stranded job, a delayed cancel's turn) cannot weigh them."""
        if self.capacity is not None and self.weight is None:
            return self.capacity
        return self.limit if self.limit is not None else 1

    @property
    def keyed_limit(self) -> int | None:
        """At most how many attempts of one key may run at once: ``key_limit``, else 1 when shared; None
        for no bound (none declared and not shared, or ``key_limit=math.inf``)."""
        if self.key_limit is not None:
            return None if self.key_limit == math.inf else int(self.key_limit)
        return 1 if self.shared else None

    def _work_timed_out_by(self, names: tuple[str, ...]) -> str | None:
        """The first of ``names`` declared (not None), as ``name=value``, else ``shared=True`` if declared: what
        times out the work itself, or serves several callers with it, where a caller's own timeout promise needs
        one caller per job run once (``timeout_detaches``, ``timeout_cleanup_ms``, ``timeout_from="glue"``)."""
        return next((f"{name}={getattr(self, name)!r}" for name in names if getattr(self, name) is not None),
                    "shared=True" if self.shared else None)

    def _check_timeout_detaches(self) -> None:
        """``timeout_detaches`` is a promise about a submitted job's caller and its running work: it needs
        ``timeout_ms`` on a submit target, timed from the job's start or submission, and one caller per job run
        once (no ``retries``, ``hedge_ms``, ``fanout``, ``shared``: their timeouts are judged on the work)."""
        if not self.timeout_detaches:
            return
        clash = self._work_timed_out_by(("retries", "hedge_ms", "fanout"))
        problem = (
            "declare timeout_ms too" if self.timeout_ms is None
            else "a periodic Target has no caller (drop it)" if self.kind == "periodic"
            else 'timeout_from="wait" times only the wait, where no work runs to detach (drop it)'
            if self.timeout_from == "wait"
            else f"{clash} times out the work itself (drop one)" if clash is not None
            else None
        )
        if problem is not None:
            raise TargetError(
                "Target timeout_detaches=True promises the caller fails with timeout_error at T and its running work "
                f"runs on: {problem}"
            )

    def _check_timeout_cleanup(self) -> None:
        """``timeout_cleanup_ms`` is a promise about a submitted job's caller after the timeout cancelled its work:
        it needs ``timeout_ms`` on a submit target, from the job's start or submission, a timeout that ends the
        work and holds the caller to T (not ``timeout_detaches``, nor ``retries`` with a timeout from the start,
        which already lift that), and one caller per job run once (no ``hedge_ms``, ``fanout``, ``shared``)."""
        if self.timeout_cleanup_ms is None:
            return
        clash = self._work_timed_out_by(("hedge_ms", "fanout"))
        problem = (
            "declare timeout_ms too" if self.timeout_ms is None
            else "a periodic Target has no caller (drop it)" if self.kind == "periodic"
            else f'timeout_from="{self.timeout_from}" times the caller, not work the timeout cancels (drop it)'
            if self.timeout_from in ("wait", "glue")
            else "timeout_detaches=True answers the caller at T and leaves the work running (drop one)"
            if self.timeout_detaches
            else f"retries={self.retries!r} already lets the caller be answered after an attempt's timeout (a retry "
            'may follow): drop one, or time the whole request (timeout_from="submit")'
            if self.retries and self.timeout_from == "start"
            else f"{clash} times out the work of several callers (drop one)" if clash is not None
            else None
        )
        if problem is not None:
            raise TargetError(
                "Target timeout_cleanup_ms promises the caller fails with timeout_error within C of the timeout's "
                f"cancel of its work: {problem}"
            )

    def _check_glue_timeout(self) -> None:
        """``timeout_from="glue"`` times each caller of a submit target from where its glue says: one caller
        per job run once (no ``retries``, ``hedge_ms``, ``fanout``, ``shared``: their timeouts act on the work)."""
        if self.timeout_from != "glue" or self.kind != "submit":
            return
        clash = self._work_timed_out_by(("retries", "hedge_ms", "fanout"))
        if clash is not None:
            raise TargetError(
                f'Target timeout_from="glue" times each caller from where its glue says, but {clash} times out the '
                "work itself: drop one"
            )

    def _check_sheds(self) -> None:
        """``sheds`` must be refusals (``rejects`` types, judged by ``errors.rejects``), not the timeout error, and
        excuses something only beside a ``timeout_ms`` of a submit target."""
        sheds = self.sheds
        if not (isinstance(sheds, tuple) and all(_exception_class(t) for t in sheds)):
            one = f": write sheds=({sheds.__name__},)" if isinstance(sheds, type) else ""
            raise TargetError(f"Target sheds must be a tuple of exception classes, got {sheds!r}{one}")
        if not sheds:
            return
        if self.timeout_ms is None or self.kind != "submit":
            raise TargetError(
                "Target sheds says which refusal answers a caller whose running job the subject cancels on purpose, "
                "so that time.timeout does not take the cancel for an early timeout; it needs timeout_ms on a submit "
                "target (drop sheds, or declare timeout_ms)"
            )
        for shed in sheds:
            if not any(issubclass(shed, r) for r in self.rejects):
                raise TargetError(
                    f"Target sheds names {shed.__name__}, which is not among its rejects: a shed job's caller is "
                    f"refused, and errors.rejects judges when; declare rejects=(..., {shed.__name__}) too"
                )
            if issubclass(shed, self.timeout_error) or issubclass(self.timeout_error, shed):
                raise TargetError(
                    f"Target sheds names {shed.__name__}, the timeout error (timeout_error): an early timeout would "
                    "pass for a shed job; shed jobs must be refused with an error of their own"
                )

    @functools.cached_property
    def declared_wait_ms(self) -> int:
        """How long after its start a job's caller may wait for its answer by the declared timeout alone:
        ``timeout_ms`` plus the ``timeout_cleanup_ms`` after it (0 without a timeout, and for a periodic target,
        whose work no caller waits for). The run's drain goes at least this far
        (``harness.run.runner._DrainHorizon``): a saga compensating for 30 s after its timeout, as declared, must
        not be taken for a deadlock by a drain that stops 10 s after the last operation (audit 14)."""
        if self.kind != "submit":
            return 0
        return (self.timeout_ms or 0) + (self.timeout_cleanup_ms or 0)

    @functools.cached_property
    def declared_answer_ms(self) -> tuple[int, int]:
        """How long a caller still waiting once the drain reached its horizon may yet be answered through the
        subject's own timers, by what the target declares: ``(deadline_ms, backoff)``, ``deadline_ms`` (0 if
        none: each job answered within it of its submission) and the longest high end of the declared
        ``backoff_ms`` over the declared ``retries`` (0 without both, or with ``retries=math.inf``, whose jobs
        still retrying are excused): how long after an attempt failed its retry may come. Only for a submit
        target. The drain lingers that long past its horizon while a caller waits
        (``harness.run.runner._DrainHorizon``): a batcher flushing every 15 s, or a retry 30 s later, must
        not be taken for a deadlock by a drain that stopped 10 s after the last operation (audit 14)."""
        if self.kind != "submit":
            return 0, 0
        backoff = 0
        if self.backoff_ms is not None and isinstance(self.retries, int) and self.retries > 0:
            backoff = math.ceil(max((self.backoff_range(k) or (0.0, 0.0))[1] for k in range(1, self.retries + 1)))
        return self.deadline_ms or 0, backoff

    @functools.cached_property
    def restarting_operations(self) -> frozenset[str]:
        """The names of the operations declared ``restarts`` (a call of one starts a stopped subject again)."""
        return frozenset(name for name, op in self.operations.items() if isinstance(op, Operation) and op.restarts)

    @functools.cached_property
    def redriving_operations(self) -> frozenset[str]:
        """The names of the operations declared ``redrives`` (a call of one starts answered jobs afresh)."""
        return frozenset(name for name, op in self.operations.items() if isinstance(op, Operation) and op.redrives)

    @functools.cached_property
    def work_cancelling_operations(self) -> frozenset[str]:
        """The names of the operations declared ``cancels_work`` (their calls may end work in flight)."""
        return frozenset(name for name, op in self.operations.items() if isinstance(op, Operation) and op.cancels_work)

    @functools.cached_property
    def declared_errors(self) -> tuple[type[BaseException], ...]:
        """The exception types the invariants judge by: a failure of a subclass counts as the type.

        Worked out once per target (read for every job of a run; the target is frozen)."""
        return (self.cancel_error, self.timeout_error, *self.rejects, *(t for t in self.sheds if t not in self.rejects))

    def carried(self, exc: BaseException) -> BaseException:
        """The error ``exc`` carries by ``wraps`` (unwrapped again while it is a declared wrapper), else ``exc``.

        A getter may return an exception, a ``Failure``, or None (nothing
        carried: ``exc`` is judged as itself); one that raises counts as None.
        """
        for _ in range(8):  # a wrapper carrying itself must not loop for ever
            getter = next((g for t, g in self.wraps.items() if isinstance(exc, t)), None)
            if getter is None:
                break
            try:
                inner = getter(exc)
            except Exception:
                break
            inner = getattr(inner, "value", inner)  # a Failure carries its exception as .value
            if not isinstance(inner, BaseException) or inner is exc:
                break
            exc = inner
        return exc

    @functools.cached_property
    def error_types(self) -> Mapping[str, type[BaseException]]:
        """The names a schedule may inject, and their types (made once per target, read every run: do not change it)."""
        return error_table(self.errors)

    def lease_final(self, start_us: int, end_us: int) -> bool:
        """Whether a success of an attempt started at ``start_us`` and ended at ``end_us`` (virtual
        microseconds) is final: always, unless ``lease_ms`` is declared and the success came at or after
        the lease ran out (``start_us + lease_ms``: the subject may have redelivered the job by then)."""
        return self.lease_ms is None or end_us < start_us + self.lease_ms * 1000

    @property
    def retries_unbounded(self) -> bool:
        """``retries=math.inf``: the subject retries a failed job, each retry within ``backoff_ms``, until it lands."""
        return self.retries == math.inf

    def backoff_range(self, retry: int) -> tuple[float, float] | None:
        """The promised (low, high) delay in ms before retry number ``retry`` (1-based; 0, a backoff loop's
        wait after a success, only with ``backoff_after_success="base"``), if any."""
        if self.backoff_ms is None:
            return None
        return _backoff_range(self.backoff_ms, retry)

    @property
    def backoff_restart(self) -> int:
        """Where a backoff loop's count of failures in a row restarts after a success: 0, or 1 with
        ``backoff_after_success="first_failure"`` (the success's end counts as the first failure)."""
        return 1 if self.backoff_after_success == "first_failure" else 0

    @property
    def backoff_first_wait(self) -> int:
        """The retry number whose ``backoff_range`` a backoff loop waits after a success (without
        ``interval_ms``): 0 with ``backoff_after_success="base"`` (the loop's base), else 1."""
        return 0 if self.backoff_after_success == "base" else 1

    @property
    def backoff_loop(self) -> bool:
        """A periodic subject whose delays back off after failures (see the class docstring)."""
        return self.kind == "periodic" and self.backoff_ms is not None

    def period_ms(self) -> int:
        """The longest a periodic subject may wait between two calls (0 for submit targets).

        For a backoff loop, the longest of its interval and its waits after
        up to ``BACKOFF_RETRIES_OBSERVED`` failures in a row: the runner
        watches a few such periods after the last operation, so that a loop
        that gave up is seen to have died.
        """
        if self.kind != "periodic":
            return 0
        waits = [self.interval_ms or 0]
        backoff = self.backoff_ms
        if backoff is not None:
            # Counting a success's end as the first failure, 8 failures in a row after it are retries 2 to 9.
            most = BACKOFF_RETRIES_OBSERVED + self.backoff_restart
            waits += [math.ceil(_backoff_range(backoff, k)[1]) for k in range(self.backoff_first_wait, most + 1)]
        return max(waits)

    def default_menu(self) -> Menu:
        """What schedules for this target contain: its own menu, else the one derived from its promises."""
        if isinstance(self.menu, Menu):  # __post_init__ turned a dict of overrides into a Menu
            return self.menu
        return Menu.derived(self)

    def submit_job(self, subject: Any, job: Any, priority: int) -> Any:
        """Hand ``job`` to ``subject`` (the adapter, else ``subject.submit``); return what it returned."""
        return self.job_submitter(subject)(job, priority)

    def job_submitter(self, subject: Any) -> Callable[[Any, int], Any]:
        """``submit_job`` for one subject, as a function of ``(job, priority)``: what is the same for every
        job of a run (the adapter, the default's keywords, its binding check once passed) is worked out
        once, not per job. Each call does what ``submit_job`` does, with the same errors and messages."""
        adapter = self.submit
        if adapter is not None:

            def submit_through_adapter(job: Any, priority: int) -> Any:
                try:
                    return adapter(subject, job, priority)
                except (AttributeError, TypeError) as exc:
                    if _raised_by(exc, adapter):
                        raise TargetError(
                            f"the target's submit(subject, job, priority) adapter raised {type(exc).__name__}: {exc}; "
                            "fix the adapter (Target(submit=...)) so it calls the subject's own method correctly"
                        ) from None
                    raise

            return submit_through_adapter
        by_priority, keyed = self.order == "priority", self.keys is not None
        with_keywords = by_priority or keyed
        #: The function of the last ``subject.submit`` (a bound method) whose call shape bound: not checked again.
        checked: Any = None

        def submit_by_default(job: Any, priority: int) -> Any:
            nonlocal checked
            try:
                method: Any = subject.submit  # (getattr(subject, "submit", None) without the builtin's call)
            except AttributeError:
                method = None
            if type(method) is not MethodType or method.__func__ is not checked:
                _check_default_submit(subject, method, job, _keywords(by_priority, keyed, priority, job))
                if type(method) is MethodType and type(method.__func__) is FunctionType:
                    checked = method.__func__  # (as _check_binds remembers it: a plain function's shape)
            if with_keywords:
                return _call_submit(method, job, _keywords(by_priority, keyed, priority, job))
            return method(job)

        return submit_by_default

    def can_start(self, subject: Any) -> bool:
        return self.start is not None or callable(getattr(subject, "start", None))

    def start_subject(self, subject: Any, work: Any) -> Any:
        if self.start is not None:
            return self.start(subject, work)
        if self.takes_work:
            return subject.start()
        return subject.start(work)

    def can_stop(self, subject: Any) -> bool:
        return self.stop is not None or callable(getattr(subject, "stop", None))

    def stop_subject(self, subject: Any) -> Any:
        if self.stop is not None:
            return self.stop(subject)
        return subject.stop()


#: Call shapes ``(bound?, keyword names)`` each submit function was seen to accept, so the default
#: submit reads a signature once per function rather than once per job (``inspect.signature`` cost
#: a fifth of a run). Weak keys: functions made per subject are forgotten with it.
_BINDS: weakref.WeakKeyDictionary[Callable[..., Any], set[tuple[bool, tuple[str, ...]]]] = weakref.WeakKeyDictionary()


#: The function last checked, and its shapes: a campaign submits every job through one function.
_LAST_BINDS: list[tuple[weakref.ref[Callable[..., Any]], set[tuple[bool, tuple[str, ...]]]] | None] = [None]


def _check_binds(method: Callable[..., Any], job: Any, extra: dict[str, Any]) -> None:
    """Raise ``TypeError`` (or ``ValueError``: no signature) unless ``method(job, **extra)`` binds.

    The answer depends only on the function and the call's shape, so a shape
    that bound once for a plain function (or a method bound to one) is not
    checked again; any other callable is checked every time.
    """
    func = method.__func__ if type(method) is MethodType else method
    if type(func) is not FunctionType:
        inspect.signature(method).bind(job, **extra)
        return
    shape = (func is not method, tuple(extra))
    last = _LAST_BINDS[0]
    if last is not None and last[0]() is func and shape in last[1]:
        return  # the usual case: the function of the previous job (a weakref call, no lookup)
    seen = _BINDS.get(func)
    if seen is None or shape not in seen:
        inspect.signature(method).bind(job, **extra)
        seen = _BINDS.setdefault(func, set())
        seen.add(shape)
    _LAST_BINDS[0] = (weakref.ref(func), seen)


def _keywords(by_priority: bool, keyed: bool, priority: int, job: Any) -> dict[str, Any]:
    """The keywords the default submit passes: ``priority=`` for ``order="priority"``, ``key=`` for ``keys``."""
    extra: dict[str, Any] = {}
    if by_priority:
        extra["priority"] = priority
    if keyed:
        extra["key"] = job.key
    return extra


def _check_default_submit(subject: Any, method: Any, job: Any, extra: dict[str, Any]) -> None:
    """Refuse (``TargetError``) a subject without a ``submit`` method, or whose ``submit`` cannot take
    ``(job, **extra)``; a builtin without a signature passes (its call will tell)."""
    if not callable(method):
        raise TargetError(
            f"the default submit calls subject.submit(job), but the subject ({type(subject).__name__}) has no "
            "submit method; pass Target(submit=lambda subject, job, priority: ...) calling the method it has"
        )
    try:
        _check_binds(method, job, extra)
    except TypeError as exc:
        if any(f"unexpected keyword argument '{name}'" in str(exc) for name in extra):
            raise _keyword_refused(extra, exc) from None
        given = "".join(f", {name}=..." for name in extra)
        raise TargetError(
            f"the default submit calls subject.submit(job{given}), but {type(subject).__name__}.submit does not "
            f"accept that ({exc}); pass Target(submit=lambda subject, job, priority: ...) that calls it as it expects"
        ) from None
    except ValueError:
        pass  # no signature to read (a builtin): the call itself will tell


def _call_submit(method: Callable[..., Any], job: Any, extra: dict[str, Any]) -> Any:
    """``method(job, **extra)``; a ``TypeError`` refusing one of the keywords becomes the one-line error."""
    try:
        return method(job, **extra)
    except TypeError as exc:
        if not any(f"unexpected keyword argument '{name}'" in str(exc) for name in extra):
            raise
        raise _keyword_refused(extra, exc) from None


def _cancel_mode(value: object, modes: tuple[bool | str, ...]) -> bool:
    """Whether ``value`` is one of ``modes`` (True is not 1, "detach" is not a str subclass's equal)."""
    return any(value is mode or (isinstance(mode, str) and type(value) is str and value == mode) for mode in modes)


def _per_job_cancel_mode(promise: Callable[[int, int], Any], key: int, priority: int) -> bool | str:
    """What the per-job promise says of the job at ``key`` and ``priority``, checked to be a mode it may return."""
    where = f"key {key}, priority {priority}"
    mode = call_per_job("cancellable", promise, key, priority, "a cancellation mode")
    if not _cancel_mode(mode, PER_JOB_CANCEL_MODES):
        refused = " (a job that cannot be cancelled at all: declare cancellable=False for the whole target)" if mode is False else ""
        raise TargetError(
            f"the target's cancellable(key, priority) returned {mode!r} for {where}; it must return "
            f"{_one_of(PER_JOB_CANCEL_MODES)}{refused}"
        )
    return mode  # type: ignore[no-any-return]


def _backoff_range(backoff: Backoff, retry: int) -> tuple[float, float]:
    """The (low, high) delay in ms a ``backoff_ms`` promises before retry number ``retry`` (1-based)."""
    if callable(backoff):
        low, high = backoff(retry)
        return float(low), float(high)
    return float(backoff[0]), float(backoff[1])


def _required_positional(fn: Callable[..., Any]) -> int | None:
    """How many positional parameters ``fn`` requires, or None when it cannot be told."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in parameters if p.kind in kinds and p.default is inspect.Parameter.empty)


def _keyword_refused(extra: dict[str, Any], exc: TypeError) -> TargetError:
    """The one-line error for a subject whose submit does not take the keywords the declared promises pass."""
    given = ", ".join(f"{name}=" for name in extra)
    return TargetError(
        f"the default submit calls subject.submit(job, {given}...) because the target declares "
        f"{' and '.join('keys' if n == 'key' else 'order=priority' for n in extra)}, but it raised TypeError: {exc}; "
        "accept the keyword, or pass Target(submit=lambda subject, job, priority: ...) reading job.key"
    )


def _check_adapter(name: str, adapter: Callable[..., Any] | None, args: str) -> None:
    """Refuse an adapter that cannot take the positional arguments the harness passes it."""
    if adapter is None:
        return
    if not callable(adapter):
        raise TargetError(f"Target {name} must be a function ({args}) -> ..., got {adapter!r}")
    try:
        inspect.signature(adapter).bind(*args.split(", "))
    except ValueError:
        return  # no signature to read (a builtin): nothing to check
    except TypeError as exc:
        raise TargetError(
            f"Target {name} is called as {name}({args}), but the function given cannot take that ({exc}); "
            f"give it exactly those {len(args.split(', '))} positional parameters"
        ) from None


def _raised_by(exc: BaseException, fn: Callable[..., Any]) -> bool:
    """Whether ``exc`` was raised in ``fn``'s own code (its innermost frame), not deeper in the subject."""
    code = getattr(fn, "__code__", None)
    tb = exc.__traceback__
    if code is None or tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code is code


_HARNESS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_IMPORTLIB_DIR = os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep


def _raised_in_user_code(exc: BaseException) -> str:
    """`` at FILE, line N``: the innermost frame of ``exc`` in the user's code, or "" when it has none.

    An import that fails names the module, not the line: a ``Target(...)`` refused
    while its module imports stops every target of the module, and without the
    place of the refused call the error reads as if the target asked for were the
    wrong one. The harness's own frames (``Target.__post_init__``), the dataclass
    ``__init__`` and importlib's frames are skipped, so the place is the user's
    call (a ``SyntaxError`` has no such frame: its text already has the place).
    The path is relative to the current directory when it lies under it.
    """
    place = ""
    tb = exc.__traceback__
    while tb is not None:
        path, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        full = os.path.abspath(path)
        if not path.startswith("<") and not full.startswith((_HARNESS_DIR, _IMPORTLIB_DIR)):
            shown = os.path.relpath(full) if full.startswith(os.getcwd() + os.sep) else full
            place = f" at {shown}, line {line}"
        tb = tb.tb_next
    return place


def _a(value: object) -> str:
    """The type of ``value`` with its article, for messages: "an int", "a function"."""
    kind = type(value).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _exception_class(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def load_target(spec: str) -> Target:
    """Import ``module:attribute`` and return the ``Target`` it names.

    The current directory is importable, as with ``python -m``, so a user's
    own modules load without installing them.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"target {spec!r} must look like 'package.module:attribute'")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise TargetError(
            f"cannot import module {module_name!r} for target {spec!r} ({exc}); "
            "check the spelling and that it is importable from the current directory"
        ) from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: importing the user's module must not end the harness
        raise TargetError(
            f"importing {module_name!r} for target {spec!r} raised {type(exc).__name__}{_raised_in_user_code(exc)}: {exc}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"module {module_name!r} has no attribute {attr!r} (target {spec!r})") from None
        except Exception as exc:
            raise TargetError(f"getting {attr!r} from {module_name!r} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, Target):
        raise TargetError(
            f"{spec!r} is {_a(obj)}, not a harness.Target; wrap your subject in harness.Target(build=...)"
        )
    return obj
