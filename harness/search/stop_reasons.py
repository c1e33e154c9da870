"""Why a campaign stopped: the closed vocabulary of ``CampaignResult.stopped_by``.

A ``StrEnum``: each member is the string summaries, failure reports and the
merged summary have always held (``StopReason.BUDGET == "budget"``), so
files stay byte-identical, and a misspelt reason is an ``AttributeError``.
"""

from __future__ import annotations

from enum import StrEnum


class StopReason(StrEnum):
    """Why a campaign (or one of its workers, or the shrinking of a failure) stopped."""

    MAX_EXAMPLES = "max-examples"  #: it ran the examples it was asked for
    BUDGET = "budget"  #: its wall-clock budget was spent
    MAX_FAILURES = "max-failures"  #: it found as many distinct failures as it was asked for
    #: the search ran out of new schedules: written by older versions only, still read in their summaries
    EXHAUSTED = "exhausted"
    INTERRUPT = "interrupt"  #: a stop was requested (Ctrl-C, SIGTERM)
    ERROR = "error"  #: a target error stopped it
    CRASH = "crash"  #: every worker of a parallel campaign crashed
