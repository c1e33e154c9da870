"""``python -m harness.cli``: the ``harness`` console script."""

from harness.cli.commands import console

console()
