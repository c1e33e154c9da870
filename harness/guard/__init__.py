"""Guards of the process: what keeps a hostile or broken target from taking the harness down.

Owns the refusal of the global reactor and real sleeps (``escapes``), the
forks a run notices without a system call (``forks``), the
wall-clock limit on a run (``watchdog``), signal handling (``signals``),
the supervising process that owns the exit code (``supervise``) and the
one place that reads private names of Twisted and Hypothesis
(``private_api``), each checked by the test suite.

May import: ``harness.errors``, ``harness.model``.
"""
