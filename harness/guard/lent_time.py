"""The ``time`` module's clocks lent to a run's clock, for code written for the real process.

A target declaring ``global_reactor="lend"`` runs code written on the global
reactor, and such code commonly times itself with the ``time`` module:
``elapsed = time.monotonic() - started``, a deadline from ``time.time()``.
Left alone those read the real clock, which hardly moves during a run (a run
plays virtual seconds in a few real milliseconds) and moves by a different
amount every run: the code would never see a timeout expire, and a verdict
could change with the machine's load. While such a run is armed
(``EscapeGuard.arm(clock)``), the clocks of ``LENT_CLOCKS`` called from the
target's code read the run's clock instead:

* ``monotonic``, ``perf_counter`` (and their ``_ns``): the clock's monotonic
  virtual time (``FaultClock.monotonic``), which only moves forward, as the
  real ones do: a wall-clock jump never reaches them, and lateness does (a
  late call reads the late instant).
* ``time``, ``time_ns``: the clock's wall-clock reading (``seconds()``),
  which carries the schedule's jumps forward and back, as the real one can.

"Called from the target's code": the caller's module (``sys._getframe(1)``)
is not one of ``KEPT_REAL``. The harness's own modules keep the real clocks
(the watchdog and the campaign's timings; ``harness.guard.clocks`` is never
patched), and so do the standard library's (``threading``, ``queue``,
``subprocess`` time their real blocking waits with ``monotonic``: on a clock
that stands still during the wait they would never time out), Twisted's own
(its ``Cooperator`` slices its work by ``time.time``, its logger stamps
events; the reactor's time is lent through ``reactor.seconds``) and the test
tools' (Hypothesis, pytest). Every other module is the target's, third-party
libraries it uses included.

The guard (``EscapeGuard._lend_time``, at the first run that lends a clock)
patches the attributes of the ``time`` module, every global holding one of the
real clocks in a module outside ``KEPT_REAL`` (``from time import
monotonic``), and every such attribute of a class defined at a module's top
level (``now = time.monotonic``; ``harness.guard.class_sites``): bound before
the patch, they are the real function under another name. Instance
attributes and default arguments bound before the run are not reached, nor
is what reads the clock in C (``datetime.now()``, ``time.localtime()``
without an argument), nor the CPU clocks (``process_time``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

#: Each lent clock of the ``time`` module, as a function of the run's clock (a ``FaultClock``).
LENT_CLOCKS: dict[str, Callable[[Any], float | int]] = {
    "monotonic": lambda clock: clock.monotonic(),
    "monotonic_ns": lambda clock: clock.now_us * 1000,
    "perf_counter": lambda clock: clock.monotonic(),
    "perf_counter_ns": lambda clock: clock.now_us * 1000,
    "time": lambda clock: clock.seconds(),
    "time_ns": lambda clock: (clock.now_us + clock.skew_us) * 1000 + math.floor(clock.drift * 1e9),
}

#: The real functions, as the ``time`` module had them when the harness was imported (by name).
ORIGINALS: dict[str, Callable[[], float | int]] = {
    name: getattr(time, name) for name in LENT_CLOCKS if hasattr(time, name)
}

#: Top-level packages whose calls always read the real clocks (see the module's docstring).
KEPT_REAL: frozenset[str] = frozenset(sys.stdlib_module_names) | {
    "harness", "twisted", "hypothesis", "_hypothesis_pytestplugin", "_pytest", "pytest", "pluggy", "zope",
}

_verdicts: dict[str, bool] = {}


def lent_to(module: object) -> bool:
    """Whether code of the module named ``module`` (a ``__name__``; anything else: code of no module, the
    target's) reads the run's clock from a lent ``time`` function."""
    if not isinstance(module, str):
        return True
    verdict = _verdicts.get(module)
    if verdict is None:
        verdict = _verdicts[module] = module.partition(".")[0] not in KEPT_REAL
    return verdict


class LentClock:
    """The stand-in for ``time.<name>``: the run's clock's reading when ``lent()`` gives a clock (a run lends one,
    in its thread) and the caller is the target's code (``lent_to``); the real function's otherwise.

    A callable object, not a function: a class attribute bound to it (``now = time.monotonic`` in a class
    defined while it is patched) is called without ``self``, as the builtin it stands for is."""

    __slots__ = ("name", "original", "read", "lent")

    def __init__(self, name: str, lent: Callable[[], Any]) -> None:
        self.name = name
        self.original = ORIGINALS[name]
        self.read = LENT_CLOCKS[name]
        self.lent = lent

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        clock = self.lent()
        if clock is None or args or kwargs or not lent_to(_getframe(1).f_globals.get("__name__")):
            return self.original(*args, **kwargs)  # (given arguments: the real one's TypeError)
        return self.read(clock)

    def __repr__(self) -> str:
        return f"<time.{self.name}, lent to a run's clock>"


_getframe = sys._getframe


def labels_by_id() -> dict[int, str]:
    """``"time.<name>"`` for each real clock of ``LENT_CLOCKS``, by the clock's id."""
    return {id(function): f"time.{name}" for name, function in ORIGINALS.items()}


#: The labels of the lent clocks (``"time.monotonic"``...), and the name of each in the ``time`` module.
LABELS: dict[str, str] = {f"time.{name}": name for name in ORIGINALS}
