"""The round-4 periodic components declaring the promises added after the review (fix4a).

Findings 4 and 8 of docs/reviews/outside-user-4.md: a periodic target may now declare
``timeout_ms`` (each call of the work is cancelled T after it started: ``time.timeout``) and
``stop_cancels_work`` (``stop()`` cancels the call in flight: ``leaks.work``). The correct cron
runner and heartbeat monitor declare both and stay clean; the twins that break them are caught
by the built-in invariants alone, with no ``user.*`` invariant:

* ``heartbeat_declared``, ``cron_declared``: correct, every promise declared (with the review's own
  invariants kept);
* ``heartbeat_no_timeout``: a ping with no ``addTimeout`` (``time.timeout``);
* ``heartbeat_stop_keeps_ping``: ``stop()`` leaves the ping in flight (``leaks.work``);
* ``cron_overlap_on_timeout``: the timeout watches a copy, the job runs on (``time.timeout``; or
  ``leaks.work``, its ``stop()`` cancelling the copy; or ``time.overlap``).
"""
from __future__ import annotations

from dataclasses import replace

from scenarios.review.round4 import mistakes, targets

_HEARTBEAT = dict(timeout_ms=targets.HB_TIMEOUT_MS, stop_cancels_work=True)
_CRON = dict(timeout_ms=targets.CRON_TIMEOUT_MS, stop_cancels_work=True, stop_cancels_timers=True)

heartbeat_declared = replace(targets.heartbeat, description="heartbeat (correct), its ping timeout and stop declared",
                             **_HEARTBEAT)
cron_declared = replace(targets.cron, description="cron runner (correct), its run timeout and stop declared", **_CRON)
# The twins, judged by the built-in invariants alone (their user.* invariants dropped).
heartbeat_no_timeout = replace(mistakes.heartbeat_no_timeout_declared, **_HEARTBEAT)
heartbeat_stop_keeps_ping = replace(targets.heartbeat_stop_keeps_ping, invariants=(), **_HEARTBEAT)
cron_overlap_on_timeout = replace(targets.cron_overlap_on_timeout, invariants=(), **_CRON)
