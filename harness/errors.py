"""Errors the harness reports to its user, as opposed to bugs it finds.

Each carries a one-line message naming the thing, the problem and the fix; the
CLI prints it and exits 2 (usage, target or file errors).
"""

from __future__ import annotations

from typing import Any


class HarnessError(Exception):
    """A problem with what the user gave the harness; printed as one line.

    ``result`` is set when the error stopped a campaign: the
    ``CampaignResult`` so far (what was found before the error), so a caller
    can still report it.
    """

    result: Any = None


class UsageError(HarnessError):
    """A bad command-line argument or option value."""


class TargetError(HarnessError):
    """The target could not be loaded, built, or driven (not an invariant violation)."""


class FailureFileError(HarnessError):
    """A failure file that is missing, corrupt, foreign or from a newer harness."""


class ReportError(HarnessError):
    """A failure file, corpus file or report that cannot be written where it was asked for."""
