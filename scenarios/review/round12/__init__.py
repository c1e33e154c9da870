"""Round 12 of the blind outside-user review: four components written before reading the harness.

Each module holds one correct component and three buggy twins (subclasses overriding one method);
BUGS.md lists the twins and the bug each one carries.
"""
