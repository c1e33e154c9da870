"""treq's request timeout over its in-memory test client, declaring only what treq documents.

Needs treq, in the ``thirdparty`` extra (``pip install -e '.[thirdparty]'``; matrix-synapse and
buildbot already depend on it, so the extra costs nothing more); without it, importing this module
raises an ``ImportError`` that says so (``harness list`` does not import it). Verified against treq
26.7.0.

``request_timeout``: ``StubTreq(resource).get(url, timeout=0.3, reactor=clock)``, then
``treq.content``. ``StubTreq`` is treq's own test client: a real ``twisted.web`` ``Agent`` (with
treq's cookie, redirect and decoder agents) talking HTTP over an in-memory transport
(``twisted.test.iosim``) to a real ``Site``. The resource runs the job at ``render_GET`` and returns
``NOT_DONE_YET``; the job's value is the response body, its failure a 500 whose error the glue
hands back to the caller (kept by job id, as a client library maps a server's error to its own);
when the connection is lost before the response (``request.notifyFinish()`` fails), the resource
cancels the job, as a Twisted web resource should. The in-memory transport moves bytes only when
flushed ("after each write from the server, ``flush()`` must be called so the client can see it"):
the glue flushes after each request, each response and each failure of a request, in the same
instant, as a network with no latency would.

Promise (``treq.request``): "timeout: Request timeout seconds. If a response is not received
within this timeframe, a connection is aborted with ``CancelledError``". The caller gets Twisted's
``ResponseNeverReceived`` carrying the ``CancelledError`` (treq's own integration test accepts
``CancelledError`` or ``ResponseFailed``); the glue unwraps it (``CancelledError`` when every reason
is one). Declared: ``timeout_ms=300``, ``timeout_from="submit"`` (the timer runs from the request,
covering the connection too), ``timeout_error=CancelledError``; cancellable (cancelling treq's
Deferred aborts the connection the same way). Twin ``request_timeout_server_ignores_abort``: a
resource that never watches ``notifyFinish()`` (the classic omission): the timed-out request's job
runs on after the connection was aborted (``time.timeout``).

Not targeted: the body once the headers arrived (treq's timeout stops at the response:
``gotResult`` cancels its timer then), ``treq.testing.RequestSequence`` (synchronous).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import Target

try:
    import treq
    from treq.testing import StubTreq
    from twisted.web._newclient import ResponseNeverReceived
    from twisted.web.resource import Resource
    from twisted.web.server import NOT_DONE_YET
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the treq targets need treq ({exc}); install it with pip install -e '.[thirdparty]'"
    ) from None

#: ``timeout=`` of each request (ms).
TIMEOUT_MS = 300


class JobResource(Resource):
    """``GET /{job id}`` runs that job: its value the body, its failure a 500 (kept in ``failures``);
    a connection lost before the response cancels it."""

    isLeaf = True

    def __init__(self, owner: Fetcher) -> None:
        super().__init__()
        self.owner = owner

    def render_GET(self, request: Any) -> Any:
        number = int(request.postpath[0])
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)
        work = defer.maybeDeferred(self.owner.jobs.pop(number))

        def respond(result: Any) -> None:
            if gone:
                return  # the client gave up: nobody to answer
            if isinstance(result, Failure):
                self.owner.failures[number] = result
                request.setResponseCode(500)
            else:
                request.write(str(result).encode())
            request.finish()
            self.owner.pump()

        work.addBoth(respond)
        self.watch(request, work)
        return NOT_DONE_YET

    def watch(self, request: Any, work: defer.Deferred[Any]) -> None:
        request.notifyFinish().addErrback(lambda _: work.cancel())


class Unwatching(JobResource):
    """Never watches ``notifyFinish()``: an aborted request's job runs on."""

    def watch(self, request: Any, work: defer.Deferred[Any]) -> None:
        pass


def _unwrap(failure: Failure) -> Failure:
    """``ResponseNeverReceived`` of nothing but ``CancelledError``s, as treq documents it: ``CancelledError``."""
    if failure.check(ResponseNeverReceived) and all(r.check(defer.CancelledError) for r in failure.value.reasons):
        return Failure(defer.CancelledError())
    return failure


class Fetcher:
    """Each job a ``GET`` through ``StubTreq`` with ``timeout=TIMEOUT_MS``, its body the caller's result."""

    resource_class: type[JobResource] = JobResource

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.stub = StubTreq(self.resource_class(self))
        self.jobs: dict[int, Callable[[], Any]] = {}
        self.failures: dict[int, Failure] = {}
        self.count = 0
        self.pumping = False
        self.again = False

    def pump(self) -> None:
        """Flush the in-memory connections until quiet (a flush may run a resource that writes again)."""
        if self.pumping:
            self.again = True
            return
        self.pumping = True
        try:
            self.again = True
            while self.again:
                self.again = False
                self.stub.flush()
        finally:
            self.pumping = False

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        number, self.count = self.count, self.count + 1
        self.jobs[number] = job
        d = self.stub.get(f"http://jobs.example/{number}", timeout=TIMEOUT_MS / 1000, reactor=self.clock)

        def failed(failure: Failure) -> Failure:
            self.pump()  # the abort reaches the server in this instant
            return _unwrap(failure)

        def body(response: Any) -> Any:
            if response.code == 500:
                return self.failures.pop(number)
            return treq.content(response).addCallback(bytes.decode)

        self.pump()
        return d.addCallbacks(body, failed)


class FetcherUnwatching(Fetcher):
    resource_class = Unwatching


def _fetch(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, timeout_ms=TIMEOUT_MS, timeout_from="submit", timeout_error=defer.CancelledError,
                  description=description)


request_timeout = _fetch(Fetcher, "treq's StubTreq.get(timeout=0.3, reactor=clock): aborted with CancelledError at 300ms")
request_timeout_server_ignores_abort = _fetch(
    FetcherUnwatching, "the same over a resource that never watches notifyFinish(): a timed-out job runs on")
