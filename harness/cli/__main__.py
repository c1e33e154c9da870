"""``python -m harness.cli``: the ``harness`` console script."""

from harness.cli.main import console

console()
