"""The ``harness`` command line: ``fuzz``, ``replay``, ``report``, ``merge`` and friends.

One module per idea: ``main`` (the entry point and console script: errors
to exit codes), ``parser`` (the grammar: options, defaults, help),
``fuzz`` (the ``fuzz`` command: options to a campaign, checks, reports
written), ``commands`` (the commands that read files: ``replay``, ``show``,
``report``, ``merge``, ``list``), ``printing`` (what a campaign prints),
``exits`` (the exit codes) and ``options`` (parsers for typed numbers,
shared with the pytest plugin).

May import: every layer below it, never ``harness.pytest``.
"""
