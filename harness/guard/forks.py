"""Forks counted as Python makes them, so a run notices one without asking the kernel.

A process forked out of a run must leave before it runs any of the
campaign's code. The runner's checkpoint (before every wake and after every
step: about 75 a run) used to compare ``os.getpid()`` with the run's pid, a
system call each time (2% of a run). Instead, every fork made through
Python's own fork machinery (``os.fork``, which the escape guard refuses in a
run anyway, and C code that forks through Python's API, as
``multiprocessing`` does) counts one here in the child
(``os.register_at_fork``), and the checkpoint compares this count, a read.

A fork through the C library alone (``ctypes``'s ``fork()``) runs none of
Python's fork hooks: its child goes on with the run and leaves when the run
ends, where the guard compares pids (``EscapeGuard.disarm``, also the first
thing a run that did not finish reaches), still before any campaign code.
"""

from __future__ import annotations

import os

#: How many forks through Python lie between this process and the one that imported this module.
FORKS = [0]


def _forked() -> None:
    FORKS[0] += 1


if hasattr(os, "register_at_fork"):  # (POSIX; elsewhere no fork)
    os.register_at_fork(after_in_child=_forked)
