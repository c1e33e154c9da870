"""Parsers for the numbers users type (seeds, counts, seconds), shared by the CLI and the pytest plugin.

Each raises ``argparse.ArgumentTypeError`` with a message that names what
was expected, so both front ends print the same one-line error.
"""

from __future__ import annotations

import argparse
import math

#: Seeds and counts are below 2**63: the JSON summary holds them, and summaries hold 64-bit integers only
#: (``harness.output.validate.MAX_INTEGER``), so a larger one would write a summary merge and report refuse.
SEED_LIMIT = COUNT_LIMIT = 2**63


def _shown(value: int) -> str:
    """An integer for a one-line message: a 4000-digit one is named by its length."""
    return str(value) if abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"


def parse_seed(text: str) -> int:
    """A campaign seed: an integer from 0 to 2**63 - 1 (``0x`` prefixes allowed)."""
    try:
        value = int(str(text).strip(), 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be zero or more, got {value}")
    if value >= SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"a seed must be below 2**63 ({SEED_LIMIT}), got {_shown(value)}")
    return value


def parse_count(text: str, what: str = "the number") -> int:
    """A whole number from 1 to 2**63 - 1 (examples, failures)."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{what} must be at least 1, got {_shown(value)}")
    if value >= COUNT_LIMIT:
        raise argparse.ArgumentTypeError(f"{what} must be below 2**63 ({COUNT_LIMIT}), got {_shown(value)}")
    return value


def parse_seconds(text: str, what: str = "the duration") -> float:
    """Seconds, more than zero: ``60`` or ``60s``."""
    raw = str(text).strip()
    raw = raw[:-1] if raw.endswith("s") else raw
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds such as 60 or 60s, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{what} must be more than 0 seconds, got {text!r}")
    if not math.isfinite(value):
        # A summary holding Infinity is not JSON that strict parsers read; no limit is the default anyway.
        raise argparse.ArgumentTypeError(f"{what} must be a finite number of seconds, got {text!r}; leave it out for none")
    return value
