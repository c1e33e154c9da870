"""harness: property-based fault-injection testing for Twisted scheduling code.

The public surface: describe your subject with ``Target``, generate schedules
with ``schedules``, play one with ``run_schedule``, judge it with ``check``,
or let ``run_campaign`` do all of it and shrink what it finds (``run_workers``:
on several processes, or one shard of a campaign; ``Examples``: the search's
seeded schedules, one of ``STRATEGIES``).
"""

from .campaign import CampaignConfig, CampaignResult, Finding, NondeterministicTarget, run_campaign
from .clock import FaultClock
from .errors import FailureFileError, HarnessError, ReportError, TargetError, UsageError
from .failure_file import FailureRecord
from .generate import STRATEGIES, Examples
from .faults import BUILTIN_ERRORS, InjectedError
from .invariants import INVARIANTS, Invariant, Violation, check
from .jobs import Job
from .operations import Operation
from .runner import Run, TargetHung, run_schedule
from .schedule import Call, Cancel, ClockPolicy, JobSpec, Jump, Schedule, Stop, Submit
from .shard import Shard
from .strategies import Menu, job_specs, schedules
from .target import Target, load_target
from .trace import Event, Trace, format_ms
from .invariants.outcomes import Outcome
from .view import AttemptRecord, CallRecord, EventKind, JobRecord, RunView
from .workers import ParallelResult, WorkerReport, run_workers

__all__ = [
    "AttemptRecord",
    "CallRecord",
    "EventKind",
    "JobRecord",
    "RunView",
    "BUILTIN_ERRORS",
    "CampaignConfig",
    "Call",
    "CampaignResult",
    "Cancel",
    "ClockPolicy",
    "Event",
    "Examples",
    "FailureFileError",
    "FailureRecord",
    "FaultClock",
    "Finding",
    "HarnessError",
    "INVARIANTS",
    "InjectedError",
    "Invariant",
    "Job",
    "JobSpec",
    "Jump",
    "Menu",
    "NondeterministicTarget",
    "Operation",
    "Outcome",
    "ReportError",
    "ParallelResult",
    "Run",
    "STRATEGIES",
    "Schedule",
    "Shard",
    "Stop",
    "Submit",
    "Target",
    "TargetError",
    "TargetHung",
    "Trace",
    "UsageError",
    "Violation",
    "WorkerReport",
    "check",
    "format_ms",
    "job_specs",
    "load_target",
    "run_campaign",
    "run_schedule",
    "run_workers",
    "schedules",
]
