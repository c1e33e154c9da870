"""Job keys: how a job's key is written in the trace, and read back from it.

A target that declares ``keys=N`` has every submitted job carry a key from
``range(N)`` (``Job.key``). The key goes into the detail of the ``submit``
event (``p0 key 2``), so that a timeline drawn from the trace alone (a
failure file, the HTML report) can show it. Targets without keys keep the
old detail (``p0``), so their traces, and the hashes in failure files
written before keys existed, are unchanged.
"""

from __future__ import annotations

_KEY = " key "


def submit_detail(priority: int, key: int | None) -> str:
    """The detail of a ``submit`` event: the priority, and the key when the target declares keys."""
    return f"p{priority}" if key is None else f"p{priority}{_KEY}{key}"


def key_of_submit(detail: str) -> int | None:
    """The key in a ``submit`` event's detail, or None when the target declares no keys."""
    _, sep, key = detail.partition(_KEY)
    return int(key) if sep and key.isdigit() else None
