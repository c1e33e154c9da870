"""The ``harness`` command line: ``fuzz``, ``replay``, ``report``, ``merge`` and friends.

Owns argument parsing and the parsers for typed numbers shared with the
pytest plugin (``options``), and the commands themselves (``commands``).

May import: every layer below it, never ``harness.pytest``.
"""
