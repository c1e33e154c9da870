"""harness: property-based fault-injection testing for Twisted scheduling code.

The public surface, for a user who writes a target, an invariant or a
pytest property, or drives campaigns from Python: describe your subject
with ``Target`` (and ``Menu``, ``Operation``), generate schedules with
``schedules``, play one with ``run_schedule``, judge it with ``check``, or
let ``run_campaign`` do all of it and shrink what it finds (``run_workers``:
on several processes, or one shard of a campaign). Everything else is
internal and may change; ``docs/api.md`` documents exactly these names
(``tests/test_public_api.py`` keeps the two in step).

Dropped from the public names, still importable from here with a
``DeprecationWarning`` (see ``_DEPRECATED``): ``Examples`` and
``STRATEGIES`` (the search's own schedule generator: choose a strategy by
name with ``CampaignConfig.strategy``, which refuses a bad name with the list).
"""


from harness.search.campaign import CampaignConfig, CampaignResult, Finding, run_campaign
from harness.search.verdict import NondeterministicTarget
from harness.run.clock import FaultClock
from harness.errors import FailureFileError, HarnessError, ReportError, TargetError, UsageError
from harness.store.failure_file import FailureRecord
from harness.model.faults import BUILTIN_ERRORS, InjectedError
from harness.invariants import INVARIANTS, Invariant, Violation, check
from harness.run.jobs import Job
from harness.model.operations import Operation
from harness.run.runner import Run, TargetHung, run_schedule
from harness.model.schedule import Call, Cancel, ClockPolicy, JobSpec, Jump, Schedule, ScheduleError, Start, Stop, Submit
from harness.search.shard import Shard
from harness.model.menu import Menu
from harness.model.user_fail import NOT_JUDGED, InvariantFailed
from harness.search.strategies import job_specs, schedules
from harness.model.target import Target, load_target
from harness.model.trace import Event, Trace, format_ms
from harness.run.outcomes import Outcome
from harness.run.view import AttemptRecord, CallRecord, EventKind, JobRecord, RunView, TimerRecord
from harness.search.workers import ParallelResult, WorkerReport, run_workers

__all__ = [
    "AttemptRecord",
    "BUILTIN_ERRORS",
    "Call",
    "CallRecord",
    "CampaignConfig",
    "CampaignResult",
    "Cancel",
    "check",
    "ClockPolicy",
    "Event",
    "EventKind",
    "FailureFileError",
    "FailureRecord",
    "FaultClock",
    "Finding",
    "format_ms",
    "HarnessError",
    "InjectedError",
    "Invariant",
    "InvariantFailed",
    "INVARIANTS",
    "Job",
    "job_specs",
    "JobRecord",
    "JobSpec",
    "Jump",
    "load_target",
    "Menu",
    "NondeterministicTarget",
    "NOT_JUDGED",
    "Operation",
    "Outcome",
    "ParallelResult",
    "ReportError",
    "Run",
    "run_campaign",
    "run_schedule",
    "run_workers",
    "RunView",
    "Schedule",
    "ScheduleError",
    "schedules",
    "Shard",
    "Start",
    "Stop",
    "Submit",
    "Target",
    "TargetError",
    "TargetHung",
    "TimerRecord",
    "Trace",
    "UsageError",
    "Violation",
    "WorkerReport",
]


#: Names once public, now internal: where each lives, and why it left the public API.
_DEPRECATED = {
    "Examples": ("harness.search.generate", "the search's own generator; choose one by name with CampaignConfig.strategy"),
    "STRATEGIES": ("harness.search.generate", "CampaignConfig.strategy names the strategy; a bad name is refused with the list"),
}


def __getattr__(name: str) -> object:
    """Deprecated names stay importable (``from harness import Examples``), with a ``DeprecationWarning``."""
    if name in _DEPRECATED:
        import importlib
        import warnings

        module, why = _DEPRECATED[name]
        warnings.warn(
            f"harness.{name} is no longer public ({why}); import it from {module} if you must, "
            "it may change without notice",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
