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


def _gather() -> tuple[Scenario, ...]:
    found: list[Scenario] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(getattr(module, "SCENARIOS", ()))
    return tuple(found)


CATALOG: tuple[Scenario, ...] = _gather()
