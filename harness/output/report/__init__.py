"""Reports people would rather look at: the HTML page, its SVG timelines, and what a campaign exercised.

- ``exercised``: per fault and per invariant, how many examples reached it
  (``Tally``, the campaign's ``on_run`` hook);
- ``coverage_probe``: line and branch coverage of the target's own package
  during a campaign (``CoverageProbe``);
- ``svg``: a failure's trace as an SVG timeline (``timeline_svg``);
- ``page``: the self-contained HTML page (``render_report``, ``write_report``).
"""

from harness.output.report.coverage_probe import CoverageProbe
from harness.run.lines import target_source
from harness.search.exercised import Tally
from harness.output.report.page import REPORT_NAME, FailureView, load_inputs, render_report, view_of_finding, view_of_record, write_report
from harness.output.report.svg import timeline_svg

__all__ = [
    "REPORT_NAME",
    "CoverageProbe",
    "FailureView",
    "Tally",
    "load_inputs",
    "render_report",
    "target_source",
    "timeline_svg",
    "view_of_finding",
    "view_of_record",
    "write_report",
]
