"""Sphinx configuration of the harness documentation (built by ``docs/build.sh``).

Pages are Markdown (MyST). The build runs with ``-W -n``: any warning, a broken
cross-reference or an internal link to a page or heading that does not exist
fails it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

project = "harness"
author = "the harness developers"
copyright = "the harness developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]

# "#some-heading" links in Markdown resolve against generated heading anchors (h1 to h4);
# a link to a heading that does not exist is a warning, hence a failed build.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence", "deflist"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
# Type hints name Twisted, Hypothesis and stdlib types that have no page here; the network is
# not available to fetch other projects' inventories, so nitpicky mode ignores those names.
nitpick_ignore_regex = [
    ("py:.*", r"(twisted|hypothesis|_pytest|pytest|coverage|collections|typing|types|pathlib|enum|re|os|io|json|signal|threading|multiprocessing|concurrent)(\..*)?"),
    ("py:.*", r"harness\..*\._.*"),
    # Zope interfaces as Sphinx renders them in type hints, and bare names from `from x import Y`.
    ("py:.*", r"<InterfaceClass .*>"),
    ("py:.*", r"(DelayedCall|Deferred|Failure|Path|Namespace)"),
    # Internal types that appear in public signatures (the exercised tally a worker sends back).
    ("py:class", r"Tally"),
    # The plain tuple a trace records per event (``harness.model.trace.RawEvent``, an alias).
    ("py:class", r"RawEvent"),
]
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

# No network in CI: `-b linkcheck`, if run by hand, leaves external addresses alone.
linkcheck_ignore = [r"https?://.*"]

html_theme = "furo"
html_title = "harness"
html_static_path: list[str] = []
