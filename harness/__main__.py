"""``python -m harness``: the ``harness`` console script."""

from harness.cli.main import console

console()
