"""The exit codes of the ``harness`` command, shared by every command and by ``main``.

0 clean (or a replay that no longer fails), 1 an invariant was violated or
the target hung (or a replay reproduced it), 2 a usage, target or file
error, 3 an internal error of the harness itself, 130 a campaign interrupted
(Ctrl-C, SIGTERM) before it found anything, 141 standard output closed by
its reader. (``harness.output.summary.exit_code`` says which of 0, 1, 2 and
130 a campaign's result gives.)
"""

from __future__ import annotations

EXIT_CLEAN, EXIT_VIOLATION, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: Exit code when standard output was closed by its reader: 128 + SIGPIPE, as the shell reports a writer it killed.
EXIT_BROKEN_PIPE = 141
