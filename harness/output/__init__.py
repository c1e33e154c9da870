"""Outputs people and CI read: the JSON summary, JUnit, merged summaries, timelines, progress, the HTML report.

Owns the summary and its schema (``summary``, ``validate``,
``summary.schema.json``), JUnit XML (``junit``), merging shard summaries
(``merge``), text timelines (``timeline``), the progress line
(``progress``) and the HTML report (``report``).

May import: every layer below it, never ``cli`` or ``pytest``.
"""
