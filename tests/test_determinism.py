"""A seeded search depends on its seed and target only, not on which modules the process imported.

Recent Hypothesis versions mix the literals of every local module loaded into
what they generate; the campaign's search draws its examples from a seeded
``random.Random`` instead (``harness.search.generate``), so no Hypothesis
internals need patching for it. This test keeps it that way.
"""

from __future__ import annotations

import subprocess
import sys

SEARCH = """
import sys, importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
from harness import CampaignConfig, run_campaign
from scenarios.pools import double_release_pool
result = run_campaign(double_release_pool, "scenarios.pools:double_release_pool",
                      CampaignConfig(seed=17, report_dir=sys.argv[0] + ".reports"))
print(result.examples, result.findings[0].record.id)
"""


def _search(tmp_path, *modules: str) -> str:
    script = tmp_path / "search.py"
    script.write_text(SEARCH)
    # A local module full of literals: Hypothesis would mix them into generation.
    (tmp_path / "literals.py").write_text("VALUES = (7, 13, 250, 999, 'p0', 'hang', 3.5)\n")
    proc = subprocess.run(
        [sys.executable, str(script), *modules], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_same_seed_gives_the_same_search_whatever_else_is_imported(tmp_path) -> None:
    alone = _search(tmp_path)
    assert alone == _search(tmp_path, "literals", "harness.cli.main")

