"""Ready-made targets: correct reference subjects and a zoo of buggy ones, one bug each.

Every module in this package declares ``SCENARIOS``: for each of its targets,
the target string, what a campaign must find (``pass`` or the invariant it
breaks), a one-line description and the Twisted primitive it is built on.
``CATALOG`` gathers them, module by module, for ``harness list``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    target: str
    expect: str
    description: str
    primitive: str = ""
    #: Other invariants that name the same bug when the search reaches it through another window.
    also: tuple[str, ...] = ()

    def caught_by(self, invariant: str) -> bool:
        """Whether a violation of ``invariant`` is this scenario's bug being caught."""
        return invariant == self.expect or invariant in self.also


def _gather() -> tuple[Scenario, ...]:
    found: list[Scenario] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(getattr(module, "SCENARIOS", ()))
    return tuple(found)


CATALOG: tuple[Scenario, ...] = _gather()

#: The time and leaks zoo (``tests/test_scenarios_time.py``).
TIME_MODULES = (
    "scenarios.backoff_loop",
    "scenarios.background_retry",
    "scenarios.forced_poll",
    "scenarios.hedge",
    "scenarios.heartbeat",
    "scenarios.poller",
    "scenarios.quorum",
    "scenarios.quota_poller",
    "scenarios.rate_limit",
    "scenarios.retry",
    "scenarios.timeout",
)
#: The hard zoo: bugs that need a rare window (``tests/test_scenarios_hard.py``, ``benchmarks/bench.py``).
HARD_MODULES = (
    "scenarios.handoff",
    "scenarios.wall_watchdog",
    "scenarios.slow_lane",
    "scenarios.last_retry",
    "scenarios.wall_breaker",
    "scenarios.timeout_tie",
    "scenarios.drift_ticker",
    "scenarios.shed_throttle",
    "scenarios.sleepy_linearizer",
    "scenarios.polled_lanes",
    "scenarios.retry_sweep",
)


def zoo(*modules: str) -> tuple[Scenario, ...]:
    """The scenarios of ``modules`` (``scenarios.<name>``), in catalog order."""
    return tuple(s for s in CATALOG if s.target.partition(":")[0] in modules)
