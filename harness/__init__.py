"""harness: property-based fault-injection testing for Twisted scheduling code.

The public surface: describe your subject with ``Target``, generate schedules
with ``schedules``, play one with ``run_schedule``, judge it with ``check``,
or let ``run_campaign`` do all of it and shrink what it finds (``run_workers``:
on several processes, or one shard of a campaign; ``Examples``: the search's
seeded schedules, one of ``STRATEGIES``).
"""

from harness.search.campaign import CampaignConfig, CampaignResult, Finding, NondeterministicTarget, run_campaign
from harness.run.clock import FaultClock
from harness.errors import FailureFileError, HarnessError, ReportError, TargetError, UsageError
from harness.store.failure_file import FailureRecord
from harness.search.generate import STRATEGIES, Examples
from harness.model.faults import BUILTIN_ERRORS, InjectedError
from harness.invariants import INVARIANTS, Invariant, Violation, check
from harness.run.jobs import Job
from harness.model.operations import Operation
from harness.run.runner import Run, TargetHung, run_schedule
from harness.model.schedule import Call, Cancel, ClockPolicy, JobSpec, Jump, Schedule, Stop, Submit
from harness.search.shard import Shard
from harness.model.menu import Menu
from harness.search.strategies import job_specs, schedules
from harness.model.target import Target, load_target
from harness.model.trace import Event, Trace, format_ms
from harness.run.outcomes import Outcome
from harness.run.view import AttemptRecord, CallRecord, EventKind, JobRecord, RunView
from harness.search.workers import ParallelResult, WorkerReport, run_workers

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
