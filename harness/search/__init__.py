"""Searching for failures: generating schedules, campaigns, workers, shrinking and replaying.

Owns schedule strategies and the byte codec (``strategies``), the seeded
search (``generate``), shrinking (``shrink``, ``shrink_teardown``,
``clock_causes``), the campaign and its parallel workers (``campaign``,
``workers``, ``shard``), the regression corpus and replay verdicts
(``corpus``, ``verdict``), and what a campaign exercised (``exercised``).

May import: every layer below it (``harness.errors``, ``model``, ``guard``,
``run``, ``invariants``, ``store``), never ``output``, ``cli`` or ``pytest``.
"""
