"""foolscap's Twisted scheduling: the ``Reconnector``'s backoff, the eventual-send queue and Banana's
disconnect timeout, each target declaring only what foolscap documents.

Needs foolscap, in the ``thirdparty`` extra (``pip install -e '.[thirdparty]'``); without it, importing
this module raises an ``ImportError`` that says so (``harness list`` does not import it). Verified
against foolscap 24.9.0.

**The clock.** foolscap takes no clock anywhere: ``foolscap.reconnector``, ``foolscap.eventual`` and
``foolscap.banana`` do ``from twisted.internet import reactor`` and call ``reactor.callLater`` at call
time, and time themselves with ``time.time()``. So every target declares ``global_reactor="lend"``:
during a run those calls, and the ``time.time()`` calls of foolscap's code, act on the run's clock.
Module globals outlive a run, and the glue sets them at each ``build`` (``idle_drop`` also re-points
``foolscap.banana``'s ``time``: the finding below):

- ``foolscap.eventual._theSimpleQueue``, the process's one turn queue: a turn timer left pending on a
  finished run's clock (a run ended by a limit) would never fire, and every later ``eventually()``
  would wait on it (``append`` schedules a turn only when none is pending). ``build`` gives the module
  a fresh ``_SimpleCallQueue``, foolscap's own class.
- ``Reconnector`` draws its **jitter** with ``random.normalvariate(delay, delay * jitter)`` from the
  global ``random``, not injectable. The targets declare ``jitter = 0`` (a class attribute, as the
  backoff's ``initialDelay``, ``factor`` and ``maxDelay``: "adapted from
  ReconnectingClientFactory", whose users set them on a subclass or instance), which skips the
  draw (``if self.jitter:``). A normal law has no bound, so no backoff range could be declared for a
  jittered delay, and each draw compounds into the next delay (the delay itself is multiplied by
  ``factor``, jitter included); a seeded ``random.Random`` rebound per build
  (``foolscap.reconnector.random``, as ``scrapy_utils`` does for Scrapy) would make it
  deterministic but still undeclarable.

``reconnector``: each job one ``foolscap.reconnector.Reconnector`` (``initialDelay=0.1, factor=2,
maxDelay=0.3, jitter=0``) started on a stand-in Tub whose ``getReference`` runs the job (its success
a reference, its failure a failed connection). The Reconnector's callback answers the caller with the
job's value and calls ``stopConnecting()``. ``_failed``: ``delay = min(delay * factor, maxDelay)``,
then a ``callLater(delay)``: the first attempt at once, retry k ``min(0.1 * 2**k, 0.3)`` s after the
failed attempt ended; there is no limit on attempts (declared ``retries=math.inf``). Cancellable as
``"detach"``: a cancel fails the caller and calls ``stopConnecting()``, which cancels a pending retry
but not an attempt in flight ("I promise to not invoke your callback after you've called
stopConnecting(), even if there was already a connection attempt in progress"; ``_failed`` returns
before scheduling when stopped). Twins: ``reconnector_keeps_timer`` (``stopConnecting`` clearing
``_active`` but forgetting to cancel the pending retry, a refactor slip: the retry fires after the
cancel and connects again, ``cancellation.no_start``) and ``reconnector_cap_first`` (the cap applied
before the growth: the second retry waits 0.4 s, ``time.backoff``).

``reconnector_loop``: the Reconnector as a periodic loop (``kind="periodic"``): started on the
stand-in Tub whose ``getReference`` calls the harness's work; a success is a connection that drops at
once (the stand-in reference calls its ``notifyOnDisconnect`` watchers in a later turn, through
``eventually``, as a Broker's ``finish`` does), and ``_disconnected`` resets the delay to
``initialDelay`` and retries. Declared ``backoff_after_success="base"``: 100 ms after a success
(``backoff_ms(0)``), then 200, 300, 300 ms... after 1, 2, 3 failures in a row; ``stop()`` is
``stopConnecting()`` (no attempt after it: ``time.after_stop``). Twin ``reconnector_loop_no_reset``
(``_disconnected`` forgetting to reset the delay: ``time.backoff`` after a failure then a success).

``eventual_fifo``: each job run by ``fireEventually().addCallback(...)``: "The callable will be invoked
(with args and kwargs) in a later reactor turn. Doing 'eventually(a); eventually(b)' guarantees that a
will be called before b", so jobs start in submission order (``order="fifo"``). Not cancellable:
``fireEventually``'s Deferred has no canceller. Twin ``eventual_timer_per_call``: a queue that sets
one ``callLater(0)`` per call rather than one per turn (a "simplification"): two calls due in the
same instant are ordered only by the clock's tie-break, and a clock that runs ties in another order
starts them out of order (``concurrency.fifo``).

``idle_drop``: each job a remote call on a ``foolscap.banana.Banana`` connection of its own (a Broker's
base, over a ``StringTransport``) with ``disconnectTimeout=0.3`` ("disconnect after this much idle
time", ``Tub.disconnectTimeout``), made at submission; the job's answer arrives as data (a ``PONG``
token) and answers the caller, which then closes the connection. ``connectionTimedOut`` fails the
caller with ``ConnectionLost("banana timeout: connection dropped")``, what a Broker's ``shutdown`` does.
Banana checks the idle age ``EPSILON`` (0.1 s) after the timeout and every ``disconnectTimeout +
EPSILON`` after that, so a call unanswered is dropped at 0.4 s: declared ``timeout_ms=400`` from the
submission, ``timeout_error=ConnectionLost``, ``timeout_detaches`` (the call is remote: the drop fails
the caller, the work runs on), ``cancellable="detach"`` (a cancel drops the connection). Banana reads
the idle age with ``time.time()``: the glue re-points ``foolscap.banana``'s ``time`` at the run's
monotonic time (the finding below). Twin ``idle_drop_lenient``: ``disconnectTimerFired`` allowing for
the ``EPSILON`` (``age > disconnectTimeout + EPSILON``): the first check never drops, a call unanswered
is dropped at 0.8 s (``time.timeout``).

A finding in foolscap 24.9.0 (not catalogued; ``tests/test_thirdparty_foolscap.py`` shows it caught,
and in plain Twisted): ``idle_drop_wall_clock`` (``time.timeout``), the same with the idle age on
``time.time()``, as shipped. The timers run on reactor time and the age on the wall clock: on the
harness's clock, whose timers keep monotonic time, a wall-clock step back of 930 ms just after the
connection is made delays the drop from 0.4 s to 1.6 s (the age stays under 0.3 s for three more
checks), and a step forward drops a connection that received data a moment ago (the check after the
step reads an age of the step). On Twisted's own reactors ``seconds()`` is ``time.time()`` as well, so
a step back delays the check as it delays every timer; but a step forward still fires the pending
check at once and reads the step as idle time, dropping a live connection. Reading the age with
``time.monotonic()`` would keep both.
"""

from __future__ import annotations

import math
import time
import types
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, error
from twisted.internet.interfaces import IReactorTime
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from harness import Target

try:
    import foolscap.banana as banana_module
    import foolscap.eventual as eventual_module
    from foolscap.banana import Banana
    from foolscap.eventual import _SimpleCallQueue, eventually, fireEventually
    from foolscap.reconnector import Reconnector
    from foolscap.tokens import PONG
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the foolscap targets need foolscap ({exc}); install it with pip install -e '.[thirdparty]'"
    ) from None

#: The Reconnector's backoff (jitter 0: see the module docstring).
INITIAL_S = 0.1
FACTOR = 2
MAX_DELAY_S = 0.3
#: The FURL handed to each Reconnector (the stand-in Tub ignores it).
FURL = "pb://jobs@tcp:jobs.example:1/jobs"


def fresh_queue() -> None:
    """A fresh eventual-send queue for the run (the module's singleton outlives a run)."""
    eventual_module._theSimpleQueue = _SimpleCallQueue()


class Reconnecting(Reconnector):  # type: ignore[misc]
    """foolscap's Reconnector with the targets' backoff and no jitter."""

    initialDelay = INITIAL_S
    factor = FACTOR
    maxDelay = MAX_DELAY_S
    jitter = 0


class JobReference:
    """A stand-in ``RemoteReference`` whose connection drops at once: its disconnect watchers are
    called in a later turn (``eventually``, as ``Broker.finish`` calls them)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def notifyOnDisconnect(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        eventually(callback, *args, **kwargs)


class JobTub:
    """A stand-in Tub: ``getReference`` runs ``connect`` (its success a reference, its failure a
    failed connection); the rest of what a Reconnector asks of its Tub does nothing."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self.connect = connect

    def getReference(self, url: str) -> defer.Deferred[Any]:
        return defer.maybeDeferred(self.connect).addCallback(JobReference)

    def getConnectionInfoForFURL(self, url: str) -> None:
        return None

    def _removeReconnector(self, reconnector: Any) -> None:
        pass


# -- Reconnector, a job per connection ------------------------------------------------------------


class KeepsTimer(Reconnecting):
    """``stopConnecting`` forgetting to cancel the pending retry (it only clears ``_active``)."""

    def stopConnecting(self) -> None:
        self._active = False
        if self._tub:
            self._tub._removeReconnector(self)


class CapFirst(Reconnecting):
    """``_failed`` capping the delay before growing it (two lines swapped)."""

    def _failed(self, f: Failure) -> None:
        self._last_failure = f
        if not self._active:
            return
        self._delay = min(self._delay, self.maxDelay) * self.factor
        self._retry()


class Connecting:
    """Each job a Reconnector on a ``JobTub``; its callback answers the caller and stops it."""

    reconnector_class: type[Reconnector] = Reconnecting

    def __init__(self, clock: IReactorTime) -> None:
        fresh_queue()

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        def connected(rref: JobReference) -> None:
            reconnector.stopConnecting()
            caller.callback(rref.value)

        def cancel(caller: defer.Deferred[Any]) -> None:
            reconnector.stopConnecting()  # the caller then fails with CancelledError

        caller: defer.Deferred[Any] = defer.Deferred(canceller=cancel)
        reconnector = self.reconnector_class(FURL, connected, (), {})
        reconnector.startConnecting(JobTub(job))
        return caller


class ConnectingKeepsTimer(Connecting):
    reconnector_class = KeepsTimer


class ConnectingCapFirst(Connecting):
    reconnector_class = CapFirst


def reconnector_backoff(retry: int) -> tuple[float, float]:
    """``_failed``: retry k (k from 1) waits ``min(0.1 * 2**k, 0.3)`` s after the failed attempt;
    0.1 s (``initialDelay``) after a connection lost (``_disconnected``), retry 0."""
    delay = min(INITIAL_S * FACTOR ** min(retry, 64), MAX_DELAY_S) * 1000
    return (delay, delay)


def _connecting(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, retries=math.inf, backoff_ms=reconnector_backoff, cancellable="detach",
                  global_reactor="lend", description=description)


reconnector = _connecting(
    Connecting, "foolscap's Reconnector(initialDelay=0.1, factor=2, maxDelay=0.3, jitter=0): retries until connected")
reconnector_keeps_timer = _connecting(
    ConnectingKeepsTimer, "a Reconnector whose stopConnecting leaves its pending retry: it connects after the cancel")
reconnector_cap_first = _connecting(
    ConnectingCapFirst, "a Reconnector capping its delay before growing it: 0.2 s becomes 0.4 s")


# -- Reconnector, a periodic loop -------------------------------------------------------------------


class NoReset(Reconnecting):
    """``_disconnected`` forgetting to reset the delay to ``initialDelay``."""

    def _disconnected(self) -> None:
        self._retry()


class Loop:
    """A Reconnector whose connections (the harness's work) drop at once; ``stop()`` is
    ``stopConnecting()``."""

    reconnector_class: type[Reconnector] = Reconnecting

    def __init__(self, clock: IReactorTime, work: Callable[[], Any]) -> None:
        fresh_queue()
        self.tub = JobTub(work)
        self.reconnector = self.reconnector_class(FURL, lambda rref: None, (), {})

    def start(self) -> None:
        self.reconnector.startConnecting(self.tub)

    def stop(self) -> None:
        self.reconnector.stopConnecting()


class LoopNoReset(Loop):
    reconnector_class = NoReset


def _loop(build: Callable[[IReactorTime, Any], Any], description: str) -> Target:
    return Target(build=build, kind="periodic", backoff_ms=reconnector_backoff, backoff_after_success="base",
                  global_reactor="lend", description=description)


reconnector_loop = _loop(
    Loop, "foolscap's Reconnector kept connected: 0.1 s after a lost connection, 0.2, 0.3 s after failures")
reconnector_loop_no_reset = _loop(
    LoopNoReset, "a Reconnector whose _disconnected keeps the grown delay: slow to reconnect after a failure")


# -- eventual send ------------------------------------------------------------------------------------


class Eventual:
    """Each job run in a later turn: ``fireEventually().addCallback(lambda _: job())``."""

    def __init__(self, clock: IReactorTime) -> None:
        self.make_queue()

    def make_queue(self) -> None:
        fresh_queue()

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return fireEventually().addCallback(lambda _: job())


class TimerPerCall(_SimpleCallQueue):  # type: ignore[misc]
    """One ``callLater(0)`` per call, each running its own call."""

    def append(self, cb: Callable[..., Any], args: Any, kwargs: Any) -> None:
        eventual_module.reactor.callLater(0, cb, *args, **kwargs)


class EventualTimerPerCall(Eventual):
    def make_queue(self) -> None:
        eventual_module._theSimpleQueue = TimerPerCall()


def _eventual(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, order="fifo", cancellable=False, global_reactor="lend", description=description)


eventual_fifo = _eventual(Eventual, "foolscap's fireEventually(): each job in a later turn, in the order sent")
eventual_timer_per_call = _eventual(
    EventualTimerPerCall, "an eventual-send queue setting a callLater(0) per call: ties decide the order")


# -- Banana's disconnectTimeout ------------------------------------------------------------------------

#: ``disconnectTimeout`` (s), and foolscap's ``EPSILON``: the timer checks ``EPSILON`` after it.
DISCONNECT_S = 0.3
EPSILON_S = 0.1


class Watched(Banana):  # type: ignore[misc]
    """A Banana connection with ``disconnectTimeout``: ``connectionTimedOut`` (what a Broker does:
    ``shutdown`` with ``ConnectionLost("banana timeout: connection dropped")``) fails the caller."""

    def __init__(self, caller: defer.Deferred[Any]) -> None:
        super().__init__()
        self.disconnectTimeout = DISCONNECT_S
        self.caller = caller

    def connectionTimedOut(self) -> None:
        self.drop(Failure(error.ConnectionLost("banana timeout: connection dropped")))

    def drop(self, why: Failure) -> None:
        if not self.caller.called:
            self.caller.errback(why)
        if self.transport.connected:
            self.transport.loseConnection()
            self.connectionLost(why)


class Lenient(Watched):
    """``disconnectTimerFired`` allowing for the timer's ``EPSILON`` ("it fires that late anyway"):
    ``age > disconnectTimeout + EPSILON``, never true at the first check."""

    def disconnectTimerFired(self) -> None:
        self.disconnectTimer = None
        age = banana_module.time.time() - self.dataLastReceivedAt
        if age > self.disconnectTimeout + EPSILON_S:
            self.connectionTimedOut()
        else:
            self.disconnectTimer = eventual_module.reactor.callLater(self.disconnectTimeout + EPSILON_S,
                                                                     self.disconnectTimerFired)


class IdleDropping:
    """Each job a remote call on a Banana connection of its own, made at submission: the job's answer
    arrives as data (a ``PONG`` token) and answers the caller, which then closes the connection; no
    data for ``disconnectTimeout`` drops it. Banana's idle age read on the run's monotonic time."""

    connection_class: type[Watched] = Watched

    def __init__(self, clock: IReactorTime) -> None:
        fresh_queue()
        self.on_time(clock)

    def on_time(self, clock: IReactorTime) -> None:
        monotonic = getattr(clock, "monotonic", clock.seconds)
        banana_module.time = types.SimpleNamespace(time=monotonic)  # type: ignore[attr-defined]

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        def cancel(_: defer.Deferred[Any]) -> None:
            conn.drop(Failure(defer.CancelledError()))

        caller: defer.Deferred[Any] = defer.Deferred(canceller=cancel)
        conn = self.connection_class(caller)
        conn.makeConnection(StringTransport())

        def answered(result: Any) -> None:
            if not conn.transport.connected:
                return  # dropped: the answer has nowhere to go
            conn.dataReceived(PONG)
            if not caller.called:
                caller.callback(result) if not isinstance(result, Failure) else caller.errback(result)
            conn.drop(Failure(error.ConnectionDone()))

        defer.maybeDeferred(job).addBoth(answered)
        return caller


class IdleDroppingLenient(IdleDropping):
    connection_class = Lenient


class IdleDroppingWallClock(IdleDropping):
    """foolscap as shipped: Banana's idle age on ``time.time()`` (lent: the run's wall clock)."""

    def on_time(self, clock: IReactorTime) -> None:
        banana_module.time = time  # type: ignore[attr-defined]


def _idle(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, timeout_ms=round((DISCONNECT_S + EPSILON_S) * 1000), timeout_from="submit",
                  timeout_error=error.ConnectionLost, timeout_detaches=True, cancellable="detach",
                  global_reactor="lend", description=description)


idle_drop = _idle(IdleDropping, "foolscap's Banana(disconnectTimeout=0.3): a call unanswered is dropped at 0.4 s")
idle_drop_lenient = _idle(IdleDroppingLenient, "a Banana whose disconnect check allows for EPSILON: dropped at 0.8 s")
#: A finding in foolscap 24.9.0 (module docstring): the idle age on the wall clock.
idle_drop_wall_clock = _idle(
    IdleDroppingWallClock, "foolscap's Banana(disconnectTimeout=0.3), idle age on time.time(): a step back delays the drop")
