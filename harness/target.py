"""Targets: the user's adapter between the harness and the code under test.

A target builds the *subject* from a clock and declares what the subject
promises. The harness only ever reaches the subject through the target, so
any object with ``submit(job) -> Deferred`` (and optionally ``stop()``) can be
tested, and anything else can be adapted in a line or two.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime

from .errors import TargetError
from .faults import error_table
from .strategies import Menu

ORDERS = ("fifo", "priority")


@dataclass(frozen=True)
class Target:
    """What to test and what it promises.

    ``build(clock)`` returns a fresh subject for every run; it must schedule
    through ``clock`` (an ``IReactorTime``), never the global reactor.
    ``submit(subject, job, priority)`` hands a job over and returns the
    Deferred of its result; the default calls ``subject.submit(job)`` (with
    ``priority=`` when ``order == "priority"``). ``stop(subject)`` defaults to
    ``subject.stop()`` when the subject has one.

    Promises: ``limit`` is the most jobs that may run at once; ``order`` is
    ``"fifo"`` or ``"priority"`` (higher priority first) for start order;
    ``errors`` are extra exception types the schedule may inject; ``menu``
    narrows or widens what schedules contain (``harness.Menu``).
    """

    build: Callable[[IReactorTime], Any]
    limit: int | None = None
    order: str | None = None
    submit: Callable[[Any, Any, int], Any] | None = None
    stop: Callable[[Any], Any] | None = None
    errors: tuple[type[BaseException], ...] = ()
    menu: Menu | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not callable(self.build):
            raise TargetError(f"Target build must be callable (clock -> subject), got {self.build!r}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise TargetError(f"Target limit must be a positive integer or None, got {self.limit!r}")
        if self.order is not None and self.order not in ORDERS:
            raise TargetError(f"Target order must be one of {', '.join(ORDERS)} or None, got {self.order!r}")

    @property
    def error_types(self) -> dict[str, type[BaseException]]:
        return error_table(self.errors)

    def submit_job(self, subject: Any, job: Any, priority: int) -> Any:
        if self.submit is not None:
            return self.submit(subject, job, priority)
        if self.order == "priority":
            return subject.submit(job, priority=priority)
        return subject.submit(job)

    def can_stop(self, subject: Any) -> bool:
        return self.stop is not None or callable(getattr(subject, "stop", None))

    def stop_subject(self, subject: Any) -> Any:
        if self.stop is not None:
            return self.stop(subject)
        return subject.stop()


def load_target(spec: str) -> Target:
    """Import ``module:attribute`` and return the ``Target`` it names.

    The current directory is importable, as with ``python -m``, so a user's
    own modules load without installing them.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"target {spec!r} must look like 'package.module:attribute'")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise TargetError(
            f"cannot import module {module_name!r} for target {spec!r} ({exc}); "
            "check the spelling and that it is importable from the current directory"
        ) from None
    except Exception as exc:
        raise TargetError(f"importing {module_name!r} for target {spec!r} raised {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TargetError(f"module {module_name!r} has no attribute {attr!r} (target {spec!r})")
        obj = getattr(obj, part)
    if not isinstance(obj, Target):
        raise TargetError(
            f"{spec!r} is a {type(obj).__name__}, not a harness.Target; wrap your subject in harness.Target(build=...)"
        )
    return obj
