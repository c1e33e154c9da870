"""autobahn's Twisted timers: the WAMP ``Component``'s transport retry and the WebSocket auto-ping,
each target declaring only what autobahn documents.

Needs autobahn, in the ``thirdparty`` extra (``pip install -e '.[thirdparty]'``; buildbot already
depends on it, so the extra costs nothing more); without it, importing this module raises an
``ImportError`` that says so (``harness list`` does not import it). Verified against autobahn 26.11.1
(txaio 26.6.1).

**The clock.** autobahn on Twisted schedules through txaio (``txaio.call_later``, ``txaio.sleep`` and
the factories' batched timers all read ``txaio.config.loop``), so the glue points txaio's loop at the
run's clock at each ``build`` (``txaio_utils.on_clock``, what ``txaio.testutil.replace_loop`` does);
the WebSocket factories also take ``reactor=clock``, and ``Component.start(reactor)`` its reactor.
No other global is touched.

``component_retry``: each job one ``autobahn.twisted.component.Component`` with one WebSocket
transport whose ``endpoint`` is a stand-in ``IStreamClientEndpoint`` running the job as its
``connect`` (the job's failure a refused connection, its success a connection), and transport
options ``max_retries=2, initial_retry_delay=0.1, retry_delay_growth=2, max_retry_delay=0.3,
retry_delay_jitter=0``. The caller's Deferred is ``Component.start(clock)``'s: once connected the
glue calls ``stop()`` (it fires with ``None``, and the glue hands over the job's value); when every
attempt failed it fails with ``RuntimeError("Component failed: Exhausted all transport connect
attempts")``, which the glue replaces by the last connect error (the ``connectfailure`` event's, as a
client library reports the cause). ``_Transport.next_delay``: the first attempt at once, then
``retry_delay *= retry_delay_growth``, capped at ``max_retry_delay``; ``can_reconnect``: at most
``max_retries + 1`` attempts. Declared ``retries=2`` and ``backoff_ms``: retry k waits
``min(100 * 2**k, 300)`` ms after the failed attempt (k from 1). Not cancellable: see the first
finding. **Jitter** is declared 0: ``next_delay`` draws ``random.normalvariate(delay, delay *
jitter)`` from the global ``random`` (the harness would report it nondeterministic; the fix is a
seeded ``random.Random`` rebound per build, as ``scrapy_utils`` does), and a normal law has no bound,
so no backoff range could be declared for it (and each draw compounds into the next delay). With
jitter 0 ``normalvariate`` still consumes the global ``random``, but returns the delay exactly.
Twins, each a ``_Transport`` subclass swapped in: ``component_retry_one_more`` (``can_reconnect``
comparing with ``<=``, an off-by-one: ``next_delay`` then raises "max reconnects reached" in a timer,
``errors.escaped``), ``component_retry_cap_first`` (``next_delay`` capping the delay before growing
it: a retry waits 0.4 s, ``time.backoff``). ``component_retry_forever``: the same with
``max_retries=-1`` ("Unlimited if set to -1"), declared ``retries=math.inf``; twin
``component_retry_forever_cap_first``.

``auto_ping``: each job one WebSocket connection, autobahn's ``WebSocketServerProtocol`` and
``WebSocketClientProtocol`` over an in-memory transport (``twisted.test.iosim``; autobahn's own
``autobahn.twisted.testing`` pumps on the global reactor), the glue moving the bytes after each of its
own calls and after each timer (a network with no latency). The server's factory sets
``autoPingInterval=0.1, autoPingTimeout=0.3`` ("Automatically send WebSocket pings every given
seconds. When the peer does not respond in ``autoPingTimeout``, drop the connection"). The client
(the peer) runs its job when a ping arrives and sends the pong when the job succeeds; a failing job
closes the connection (code 4000), its error handed to the caller by job id; a lost connection
cancels the job. The first pong answers the caller with the job's value (the server then closes
cleanly); the connection dropped fails it with ``PeerTimedOut``. Declared ``timeout_ms=300`` from
the job's start (the ping, sent and received in one instant), ``timeout_error=PeerTimedOut``;
cancellable (a cancel drops the connection, which cancels the peer's job). The factory's batched
timers (``_batched_timer``, the server's and the client's) are replaced by plain ``call_later`` on the clock: autobahn's own fires up
to a second early (the second finding). Twin ``auto_ping_peer_ignores_close``: a peer that does not
cancel its job when the connection is lost (``time.timeout``: the job runs on past its timeout).

Findings in autobahn 26.11.1 (not catalogued; ``tests/test_thirdparty_autobahn.py`` shows each
caught, and in plain Twisted):

- ``component_stop_while_connecting`` (``cancellation.no_start``): ``Component.stop()`` during a
  connection attempt does not stop the retry loop. ``stop()`` sets ``_stopping`` and resolves
  ``start()``'s Deferred, but the attempt in flight, when it then fails (here the glue cancels it; a
  refused or timed-out TCP connect does the same), goes through ``handle_connect_error`` to
  ``transport_check``, which never looks at ``_stopping``: it sleeps the next delay and connects
  again, after the component said it stopped. Once the retries run out it rejects ``start()``'s
  Deferred, reset to ``None`` by then (an ``AttributeError`` in a timer), and a second ``stop()``
  raises the same way.
- ``auto_ping_batched`` (``time.timeout``): on the factory's own timer, ``make_batched_timer(
  bucket_seconds=0.200, chunk_size=1000)``, the ping due at 0.1 s goes at once and its 0.3 s timeout
  fires in the same instant, dropping every peer before its pong can arrive. txaio truncates each
  batched call to the whole second (``txaio_utils``' ``batched_timer_subsecond``), so autobahn's
  auto-ping and handshake timeouts fire up to a second early, at once below a second.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.python.failure import Failure
from zope.interface import implementer

from harness import Target

from .txaio_utils import on_clock

try:
    from autobahn.twisted.component import Component
    from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from autobahn.wamp.component import _Transport
    from txaio._common import _BatchedTimer
    from twisted.test import iosim
    from twisted.test.iosim import FakeTransport
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the autobahn targets need autobahn ({exc}); install it with pip install -e '.[thirdparty]'"
    ) from None

#: The transport's retry options (jitter 0: see the module docstring).
MAX_RETRIES = 2
INITIAL_S = 0.1
GROWTH = 2
MAX_DELAY_S = 0.3
RETRY_OPTIONS = {"max_retries": MAX_RETRIES, "initial_retry_delay": INITIAL_S, "retry_delay_growth": GROWTH,
                 "max_retry_delay": MAX_DELAY_S, "retry_delay_jitter": 0}

#: The server's ``autoPingInterval`` and ``autoPingTimeout`` (ms).
PING_INTERVAL_MS = 100
PING_TIMEOUT_MS = 300


# -- Component transport retry ------------------------------------------------------------------


@implementer(IStreamClientEndpoint)
class JobEndpoint:
    """An ``IStreamClientEndpoint`` stand-in: ``connect`` runs the job; its success is a connection."""

    def __init__(self, job: Callable[[], Any], connected: Callable[[Any], None]) -> None:
        self.job = job
        self.connected = connected
        self.connecting: defer.Deferred[Any] | None = None

    def connect(self, factory: Any) -> defer.Deferred[Any]:
        def made(value: Any) -> Any:
            self.connected(value)
            return factory.buildProtocol(None)

        self.connecting = defer.maybeDeferred(self.job).addCallback(made)
        return self.connecting


class OneMore(_Transport):
    """``can_reconnect`` off by one: ``<=`` where autobahn has ``<``."""

    def can_reconnect(self) -> bool:
        if self._permanent_failure:
            return False
        if self.max_retries == -1:
            return True
        return bool(self.connect_attempts <= self.max_retries + 1)


class Connecting:
    """Each job a ``Component`` connecting over a ``JobEndpoint`` with ``RETRY_OPTIONS``; the caller
    gets the job's value once connected (the glue then stops the component) or the last connect error."""

    transport_class: type[Any] = _Transport
    max_retries = MAX_RETRIES

    def __init__(self, clock: IReactorTime) -> None:
        on_clock(clock)
        self.clock = clock

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        value: list[Any] = []
        errors: list[BaseException] = []
        component: Any = None

        def connected(result: Any) -> None:
            value.append(result)
            if not caller.called:  # a second stop() raises (autobahn resets start()'s Deferred to None)
                component.stop()

        endpoint = JobEndpoint(job, connected)
        component = Component(transports=[{"type": "websocket", "url": "ws://jobs.example/ws", "endpoint": endpoint,
                                           **RETRY_OPTIONS, "max_retries": self.max_retries}], realm="jobs")
        if self.transport_class is not _Transport:
            # The twins: the Component builds its transports itself, so the planted one is swapped in.
            component._transports[0].__class__ = self.transport_class
        component.on("connectfailure", lambda _, error: errors.append(error))

        def answer(result: Any) -> Any:
            if isinstance(result, Failure):
                return Failure(errors[-1]) if errors and result.check(RuntimeError) else result
            return value[0] if value else result

        def cancel(caller: defer.Deferred[Any]) -> None:
            # The caller fails first; then the component is stopped, and the connection attempt in
            # flight ended (as a refused connect would end it).
            caller.errback(Failure(defer.CancelledError()))
            component.stop()
            if endpoint.connecting is not None:
                endpoint.connecting.cancel()

        def hand_over(result: Any) -> None:
            if not caller.called:
                caller.callback(result) if not isinstance(result, Failure) else caller.errback(result)

        caller: defer.Deferred[Any] = defer.Deferred(canceller=cancel)
        component.start(self.clock).addBoth(answer).addBoth(hand_over)
        return caller


class CapFirst(_Transport):
    """``next_delay`` capping the delay before it grows (two lines swapped): a retry waits up to
    ``max_retry_delay * retry_delay_growth``."""

    def next_delay(self) -> float:
        if self.connect_attempts == 0:
            return 0
        if self.max_retries != -1 and self.connect_attempts >= self.max_retries + 1:
            raise RuntimeError("max reconnects reached")
        self.retry_delay = min(self.retry_delay, self.max_retry_delay)
        self.retry_delay = self.retry_delay * self.retry_delay_growth
        return float(self.retry_delay)


class ConnectingForever(Connecting):
    """``max_retries=-1``: "Unlimited if set to -1"."""

    max_retries = -1


class ConnectingForeverCapFirst(ConnectingForever):
    transport_class = CapFirst


class ConnectingOneMore(Connecting):
    transport_class = OneMore


class ConnectingCapFirst(Connecting):
    transport_class = CapFirst


def component_backoff(retry: int) -> tuple[float, float]:
    """``next_delay``: retry k waits ``min(0.1 * 2**k, 0.3)`` s after the failed attempt ends."""
    delay = min(INITIAL_S * GROWTH ** min(retry, 64), MAX_DELAY_S) * 1000
    return (delay, delay)


def _component(build: Callable[[IReactorTime], Any], description: str, cancellable: bool = False,
               retries: float = MAX_RETRIES, gives_up_after_retries: bool = False) -> Target:
    return Target(build=build, retries=retries, backoff_ms=component_backoff, cancellable=cancellable,
                  gives_up_after_retries=gives_up_after_retries, description=description)


component_retry = _component(
    Connecting, "autobahn's Component, max_retries=2, retry delays 0.1*2**k s capped at 0.3 s, jitter 0",
    gives_up_after_retries=True)  # start() fails only once max_retries + 1 connects failed (cancel15)
component_retry_one_more = _component(
    ConnectingOneMore, "a Component transport whose can_reconnect is off by one: a fourth attempt")
component_retry_cap_first = _component(
    ConnectingCapFirst, "a Component transport capping its retry delay before growing it: 0.2 s becomes 0.4 s")
component_retry_forever = _component(
    ConnectingForever, "autobahn's Component, max_retries=-1 (forever), retry delays 0.1*2**k s capped at 0.3 s",
    retries=math.inf)
component_retry_forever_cap_first = _component(
    ConnectingForeverCapFirst, "the same, its transport capping the retry delay before growing it", retries=math.inf)
#: A finding in autobahn 26.11.1 (module docstring): a cancel stops the component while it connects.
component_stop_while_connecting = _component(
    Connecting, "autobahn's Component stopped during a connection attempt: it connects again", cancellable=True)


# -- WebSocket auto-ping ------------------------------------------------------------------------


class PeerTimedOut(Exception):
    """The server dropped the connection: no pong within ``autoPingTimeout``."""


class Unbatched:
    """An ``IBatchedTimer`` that is not batched: each ``call_later`` is a ``callLater`` of its own (the
    workaround for the second finding: autobahn's own 0.2 s batched timer fires up to a second early)."""

    def __init__(self, call_later: Callable[..., Any]) -> None:
        self.call_later = call_later


class Pinged(WebSocketClientProtocol):
    """The peer: a ping runs its job, and the pong goes back when the job succeeds; when the job
    fails the peer closes the connection (code 4000); a connection lost cancels the job."""

    owner: AutoPing
    number: int

    def onPing(self, payload: bytes) -> None:
        self.work = self.owner.run_job(self.number)

        def done(result: Any) -> None:
            if isinstance(result, Failure):
                if not result.check(defer.CancelledError):
                    self.owner.failures[self.number] = result
                    self.sendClose(code=4000)
            elif self.state == self.STATE_OPEN:
                self.sendPong(payload)
            self.owner.pump()

        self.work.addBoth(done)

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        self.lost()

    def lost(self) -> None:
        work = getattr(self, "work", None)
        if work is not None:
            work.cancel()


class PingedIgnoringClose(Pinged):
    """A peer that does not cancel its job when the connection is lost."""

    def lost(self) -> None:
        pass


class Pinging(WebSocketServerProtocol):
    """The server: auto-ping on; the first pong answers the caller (then the server closes); a
    dropped or closed connection fails it."""

    owner: AutoPing
    caller: defer.Deferred[Any]
    number: int

    def onPong(self, payload: bytes) -> None:
        if not self.caller.called:
            self.caller.callback(self.owner.values.pop(self.number))
            self.sendClose(code=1000)

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        if self.caller.called:
            return
        failure = self.owner.failures.pop(self.number, None)
        self.caller.errback(failure if failure is not None else Failure(PeerTimedOut(reason or self.wasNotCleanReason)))


class AutoPing:
    """Each job one WebSocket connection over an in-memory transport (``twisted.test.iosim``), the
    server pinging every ``PING_INTERVAL_MS`` with ``autoPingTimeout`` ``PING_TIMEOUT_MS``, the client
    answering a ping when its job succeeds. Bytes move after each of the glue's calls and each timer
    (a network with no latency)."""

    client_class: type[Pinged] = Pinged

    def __init__(self, clock: IReactorTime) -> None:
        on_clock(clock)
        self.clock = clock
        self.jobs: dict[int, Callable[[], Any]] = {}
        self.values: dict[int, Any] = {}
        self.failures: dict[int, Failure] = {}
        self.pumps: list[Any] = []
        self.count = 0
        self.pumping = False
        self.again = False
        self.server_factory = WebSocketServerFactory("ws://jobs.example/ws", reactor=clock)
        self.server_factory.protocol = Pinging
        self.server_factory.setProtocolOptions(autoPingInterval=PING_INTERVAL_MS / 1000,
                                               autoPingTimeout=PING_TIMEOUT_MS / 1000)
        self.server_factory._batched_timer = self.make_timer()
        self.client_factory = WebSocketClientFactory("ws://jobs.example/ws", reactor=clock)
        self.client_factory.protocol = self.client_class
        self.client_factory._batched_timer = self.make_timer()

    def make_timer(self) -> Any:
        return Unbatched(self.call_later)

    def call_later(self, delay: float, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``callLater`` on the clock, the connections pumped after the call (named as the call, for the trace)."""
        @functools.wraps(fun)
        def fire() -> None:
            try:
                fun(*args, **kwargs)
            finally:
                self.pump()

        return self.clock.callLater(delay, fire)

    def run_job(self, number: int) -> defer.Deferred[Any]:
        work = defer.maybeDeferred(self.jobs.pop(number))
        work.addCallback(lambda value: self.values.__setitem__(number, value))
        return work

    def pump(self) -> None:
        if self.pumping:
            self.again = True
            return
        self.pumping = True
        try:
            self.again = True
            while self.again:
                self.again = False
                for pump in self.pumps:
                    pump.flush(advanceClock=False)
                self.pumps = [p for p in self.pumps if not (p.clientIO.disconnected and p.serverIO.disconnected)]
        finally:
            self.pumping = False

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        number, self.count = self.count, self.count + 1
        self.jobs[number] = job
        server = self.server_factory.buildProtocol(None)
        client = self.client_factory.buildProtocol(None)
        server.owner = client.owner = self
        server.number = client.number = number

        def cancel(caller: defer.Deferred[Any]) -> None:
            caller.errback(Failure(defer.CancelledError()))
            server.dropConnection(abort=True)
            self.pump()

        server.caller = defer.Deferred(canceller=cancel)
        self.pumps.append(iosim.connect(server, FakeTransport(server, isServer=True), client,
                                        FakeTransport(client, isServer=False), greet=False))
        self.pump()
        return server.caller


class AutoPingIgnoringClose(AutoPing):
    client_class = PingedIgnoringClose


class AutoPingBatched(AutoPing):
    """autobahn's own timer: what its factory makes, ``txaio.make_batched_timer(bucket_seconds=0.200,
    chunk_size=1000)``, on the same pumping ``call_later``."""

    def make_timer(self) -> Any:
        return _BatchedTimer(200.0, 1000, seconds_provider=self.clock.seconds, delayed_call_creator=self.call_later)


def _ping(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, timeout_ms=PING_TIMEOUT_MS, timeout_error=PeerTimedOut, description=description)


auto_ping = _ping(AutoPing, "autobahn's WebSocket auto-ping (0.1 s, timeout 0.3 s): a peer silent 300ms is dropped")
auto_ping_peer_ignores_close = _ping(
    AutoPingIgnoringClose, "the same with a peer that does not cancel its job when the connection drops")
#: A finding in autobahn 26.11.1 (module docstring): its own batched timer drops a live peer early.
auto_ping_batched = _ping(
    AutoPingBatched, "autobahn's WebSocket auto-ping on its own 0.2 s batched timer: a peer dropped up to 1 s early")
