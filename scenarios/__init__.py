"""Ready-made targets: correct reference subjects and a zoo of buggy ones, one bug each.

``CATALOG`` lists them for ``harness list``: each entry's target string, what
a campaign must find (``pass`` or the invariant it breaks) and what it is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    target: str
    expect: str
    description: str
    primitive: str = ""


CATALOG: tuple[Scenario, ...] = (
    Scenario(
        "scenarios.pools:semaphore_pool",
        "pass",
        "worker pool on DeferredSemaphore(2): at most two jobs at once, FIFO",
        "DeferredSemaphore",
    ),
    Scenario(
        "scenarios.pools:double_release_pool",
        "concurrency.limit",
        "hand-rolled pool that releases a slot twice when a job fails, then runs one job too many",
        "Deferred",
    ),
)
