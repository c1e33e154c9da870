"""Reports people would rather look at: the HTML page, its SVG timelines, and what a campaign exercised.

- ``exercised``: per fault and per invariant, how many examples reached it
  (``Tally``, the campaign's ``on_run`` hook);
- ``coverage_probe``: line and branch coverage of the target's own package
  during a campaign (``CoverageProbe``);
- ``svg``: a failure's trace as an SVG timeline (``timeline_svg``);
- ``page``: the self-contained HTML page (``render_report``, ``write_report``).
"""
