"""What the harness keeps on disk: safe file reads and writes, failure files, the example database.

Owns atomic writes and bounded reads (``files``), the JSON failure-file
format (``failure_file``) and the Hypothesis example database wrapper
(``database``).

May import: ``harness.errors``, ``harness.model``, ``harness.guard``,
``harness.run``, ``harness.invariants``.
"""
