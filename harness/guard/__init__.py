"""Guards of the process: what keeps a hostile or broken target from taking the harness down.

Owns the refusal of the global reactor and real sleeps (``escapes``), the
wall-clock limit on a run (``watchdog``), signal handling (``signals``),
Hypothesis's local constants switched off (``determinism``) and the
supervising process that owns the exit code (``supervise``).

May import: ``harness.errors``, ``harness.model``.
"""
