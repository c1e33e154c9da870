"""User invariants: the target's own checks, reported like the built-in ones.

The runner calls each function in ``Target.invariants`` with the finished run
(while the subject is still alive) and records an ``AssertionError`` as a
``user.fail`` event; this turns those events into violations named
``user.<function name>``.
"""

from __future__ import annotations

from collections.abc import Iterator

from harness.model.target import Target
from harness.invariants.base import Invariant, Violation


class UserInvariants(Invariant):
    name = "user"
    summary = "the target's own invariants (functions of the run that raise AssertionError)"

    def applies(self, target: Target) -> bool:
        return bool(target.invariants)

    def check(self, run) -> Iterator[Violation]:
        for index, event in enumerate(run.trace):
            if event.kind == "user.fail":
                function, _, message = event.detail.partition(": ")
                yield Violation(f"user.{function}", message, (index,), (), event.t_us)
