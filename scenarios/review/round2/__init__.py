"""Outside-user review, round 2: components written blind (before reading the harness docs).

Each module holds a correct component and a buggy twin with one realistic planted bug; the
twin's docstring names the bug. ``targets.py`` holds the harness targets written afterwards
from the user docs alone (the front page and docs/) (see docs/reviews/outside-user-2.md).
"""
