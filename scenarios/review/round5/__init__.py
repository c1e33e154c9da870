"""Round 5 of the outside-user review: four components written blind (before reading the harness),
each with three buggy twins (BUGS.md), and their targets (targets.py)."""
