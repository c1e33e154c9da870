"""A process forked out of a run leaves at the next checkpoint, noticed without a getpid per checkpoint.

The runner's checkpoint reads a count that every fork through Python raises in
the child (``harness.guard.forks``). C code that forks through Python's API
(as ``multiprocessing`` does) bypasses the guard's patched ``os.fork``: its
child must still leave at the step that forked, never run the rest of the
run. (A fork through the C library alone leaves at the run's end:
``tests/test_hardening.py``.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from harness import JobSpec, Schedule, Submit, Target, run_schedule
from harness.guard import forks
from harness.guard.escapes import PROCESS_FUNCTIONS
from harness.run.session import RunSession
from scenarios.pools import SemaphorePool

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")


def _real_fork() -> int:
    """The process's own fork, as C code forking through Python's API reaches it: the guard patches
    ``os.fork`` and every module global bound to it, so it is looked up here, not bound."""
    return PROCESS_FUNCTIONS["os.fork"][0]()


class _ForksThroughPython(SemaphorePool):
    """Forks at its second submission; the child notes every submission it sees after that in ``notes``."""

    notes: Path
    children: list[int] = []

    def __init__(self, clock: Any) -> None:
        super().__init__(clock, 2)
        self.submitted = 0
        self.child = False

    def submit(self, job: Any) -> defer.Deferred[Any]:
        self.submitted += 1
        if self.child:
            with self.notes.open("a") as notes:
                notes.write(f"{os.getpid()} submission {self.submitted}\n")
        if self.submitted == 2:
            pid = _real_fork()
            if pid:
                self.children.append(pid)
            else:
                self.child = True
                with self.notes.open("a") as notes:
                    notes.write(f"{os.getpid()} forked\n")
        return super().submit(job)


SIX = Schedule(tuple(Submit(at, at, JobSpec("succeed", 5)) for at in range(6)))


@pytest.mark.parametrize("in_session", [False, True])
def test_a_child_forked_through_python_leaves_at_the_checkpoint_after_the_step(tmp_path, in_session) -> None:
    _ForksThroughPython.notes = tmp_path / "notes"
    target = Target(build=_ForksThroughPython, limit=2)
    if in_session:
        with RunSession():
            run = run_schedule(target, SIX)
    else:
        run = run_schedule(target, SIX)
    assert len(run.trace) > 6  # the parent's run went on as if nothing happened
    (pid,) = _ForksThroughPython.children
    _ForksThroughPython.children.clear()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    lines = (tmp_path / "notes").read_text().splitlines()
    assert lines == [f"{pid} forked"]  # no submission after the fork: the child left at the step's checkpoint


def test_the_fork_count_rises_in_the_child_only(tmp_path) -> None:
    before = forks.FORKS[0]
    pid = _real_fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(0 if forks.FORKS[0] == before + 1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert forks.FORKS[0] == before
