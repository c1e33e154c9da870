"""A bulkhead: at most ``per_tenant`` requests of one tenant run at once, and at most ``total``
of all tenants; the rest wait in arrival order, a request of a tenant with a free slot never
waits behind one whose tenant is full.  Plain Twisted, clock passed in (unused: no timers)."""
from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from twisted.internet import defer


@dataclass(eq=False)
class _Request:
    tenant: int
    work: Callable[[], Any]
    caller: defer.Deferred = field(init=False)
    running: Optional[defer.Deferred] = None


class Bulkhead:
    def __init__(self, clock: Any, per_tenant: int = 2, total: int = 3) -> None:
        self.clock = clock
        self.per_tenant, self.total = per_tenant, total
        self.active: dict[int, int] = defaultdict(int)
        self.active_total = 0
        self.waiting: deque[_Request] = deque()

    def submit(self, work: Callable[[], Any], tenant: int) -> defer.Deferred:
        request = _Request(tenant, work)
        request.caller = defer.Deferred(lambda _: self._cancel(request))
        self.waiting.append(request)
        self._pump()
        return request.caller

    def _cancel(self, request: _Request) -> None:
        if request.running is not None:
            request.running.cancel()          # its end releases the slots
        elif request in self.waiting:
            self.waiting.remove(request)      # Twisted fails the caller with CancelledError

    def _has_room(self, tenant: int) -> bool:
        return self.active_total < self.total and self.active[tenant] < self.per_tenant

    def _pump(self) -> None:
        # Start one request at a time and look again: a request that ends at once re-enters
        # _pump from _finished and may have started the others already.
        while self.active_total < self.total:
            request = next((r for r in self.waiting if self._has_room(r.tenant)), None)
            if request is None:
                return
            self.waiting.remove(request)
            self._start(request)

    def _start(self, request: _Request) -> None:
        self.active[request.tenant] += 1
        self.active_total += 1
        request.running = defer.maybeDeferred(request.work)
        request.running.addBoth(self._finished, request)

    def _release(self, request: _Request) -> None:
        self.active[request.tenant] -= 1
        self.active_total -= 1

    def _finished(self, outcome: Any, request: _Request) -> None:
        request.running = None
        self._release(request)
        if not request.caller.called:
            request.caller.callback(outcome)
        self._pump()
        return None


class BulkheadOffByOne(Bulkhead):
    """BUG: the per-tenant check was written ``<=`` (\"up to per_tenant\"), so a tenant gets one
    more slot than promised."""

    def _has_room(self, tenant: int) -> bool:
        return self.active_total < self.total and self.active[tenant] <= self.per_tenant


class BulkheadLeaksOnError(Bulkhead):
    """BUG: the end of a request was split into a success and an error path; the error path
    hands the failure on and frees the global slot but forgets the tenant's."""

    def _start(self, request: _Request) -> None:
        self.active[request.tenant] += 1
        self.active_total += 1
        request.running = defer.maybeDeferred(request.work)
        request.running.addCallbacks(self._succeeded, self._failed,
                                     callbackArgs=(request,), errbackArgs=(request,))

    def _succeeded(self, value: Any, request: _Request) -> None:
        request.running = None
        self._release(request)
        if not request.caller.called:
            request.caller.callback(value)
        self._pump()

    def _failed(self, failure: Any, request: _Request) -> None:
        request.running = None
        self.active_total -= 1                # the tenant's slot is never given back
        if not request.caller.called:
            request.caller.errback(failure)
        self._pump()
