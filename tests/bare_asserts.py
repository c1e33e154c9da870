"""A subject with bare ``assert`` statements, kept out of test modules so pytest does not rewrite them."""

from __future__ import annotations

from twisted.internet import defer


class Checky:
    """Fails the caller with a bare assert in a callback, and raises one from a timer into the reactor."""

    def __init__(self, clock) -> None:
        self.clock = clock

    def submit(self, job):
        d = defer.maybeDeferred(job)
        d.addCallback(self._check)
        self.clock.callLater(0.01, self._tick)
        return d

    @staticmethod
    def _check(result):
        assert result is None  # the bare assert under test
        return result

    def _tick(self) -> None:
        assert not self.clock  # the bare assert under test


class Dropper:
    """Fails a Deferred of its own with a bare assert and drops it: an unhandled error."""

    def __init__(self, clock) -> None:
        self.clock = clock

    def submit(self, job):
        defer.maybeDeferred(job).addCallback(self._check)  # dropped, failing
        return defer.succeed(None)

    @staticmethod
    def _check(result):
        assert result is None  # the bare assert under test
        return result
