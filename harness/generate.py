"""Search examples without Hypothesis: seeded random byte strings, decoded by the schedule codec.

Hypothesis costs about a millisecond of bookkeeping per example (choice
sequences, its tree of what was tried, mutation), more than running a medium
schedule. A campaign's search does not need it: every byte string decodes to
a schedule (``harness.strategies._Codec.decode_blob``), so drawing plain
random bytes from a seeded ``random.Random`` is a search that costs next to
nothing per example, keeps no state between examples (memory stays flat
however long the campaign), and is a pure function of its seed: the n-th
example of a seed is the same whatever the example cap.

Hypothesis's ``schedules()`` strategy stays the way to write one's own
property tests; a failure found here is shrunk by ``harness.shrink``.
"""

from __future__ import annotations

from random import Random

from .schedule import Schedule
from .strategies import Menu, codec


class Examples:
    """The schedules one search round tries, in order, for a menu and a seed."""

    def __init__(self, menu: Menu, seed: int) -> None:
        self.menu = menu
        self.codec = codec(menu)
        self.random = Random(seed)

    def blob(self) -> bytes:
        """The next random byte string: a uniform number of operations within the menu's bounds."""
        ops = self.random.randint(self.menu.min_ops, self.menu.max_ops)
        return self.random.randbytes(self.codec.blob_size(ops))

    def __next__(self) -> Schedule:
        return self.codec.decode_blob(self.blob())

    def __iter__(self) -> Examples:
        return self
