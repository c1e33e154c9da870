"""``python -m harness``: the ``harness`` console script."""

from harness.cli.commands import console

console()
