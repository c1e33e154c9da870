"""The documentation site builds with warnings as errors, and a broken internal link fails it.

Needs the docs extra (``pip install -e '.[docs]'``, which ``.ci/run`` installs); without
Sphinx, MyST and the theme these tests skip, saying so, unless ``HARNESS_TEST_DOCS=required``
(``.ci/run`` sets it: the whole-site test is CI's only build of the site), when they fail.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "docs" / "build.sh"

for module in ("sphinx", "myst_parser", "furo"):
    if os.environ.get("HARNESS_TEST_DOCS") == "required":
        # .ci/run builds the site only here: without the docs extra its run must fail, not skip.
        importlib.import_module(module)
    else:
        pytest.importorskip(module, reason=f"the docs extra is not installed ({module} missing): pip install -e '.[docs]'")


def build(out: Path, src: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = ["bash", str(BUILD), str(out)] + ([str(src)] if src else [])
    # The script runs `python -m sphinx`: make that this interpreter, with its packages.
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(out)}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow  # the whole site, about 10 s: CI's one build of it (.ci/run builds no other)
def test_site_builds_without_warnings(tmp_path: Path) -> None:
    done = build(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    html = tmp_path / "html"
    for page in ("index", "tutorial", "api", "reference/cli", "run-api", "troubleshooting"):
        assert (html / f"{page}.html").is_file(), page
    # The API reference really came from the docstrings.
    api = (html / "api.html").read_text()
    assert 'id="harness.run_schedule"' in api
    assert "is the wall-clock limit of the run" in api


#: Broken internal links of each kind, and what the build must say about each.
BROKEN = {
    "[gone](no-such-page.md)": "no-such-page.md",
    "[gone](reference/cli.md#no-such-heading)": "no-such-heading",
    "[gone](#no-such-anchor)": "no-such-anchor",
    "{py:func}`harness.no_such_function`": "harness.no_such_function",
}


def test_broken_internal_links_fail_the_build(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "docs" / "conf.py", src / "conf.py")
    (src / "reference").mkdir()
    (src / "reference" / "cli.md").write_text("# CLI\n\n## Exit codes\n\nText.\n")
    page = "# Home\n\n```{toctree}\nreference/cli\n```\n\n"
    (src / "index.md").write_text(page + "".join(f"See {link}.\n\n" for link in BROKEN))
    done = build(tmp_path / "out", src)
    assert done.returncode != 0, "broken links built cleanly"
    for complaint in BROKEN.values():
        assert complaint in done.stderr, (complaint, done.stderr)
    # The same page with good links builds: the failure above is the links'.
    (src / "index.md").write_text(page + "## Here\n\nSee [exit codes](reference/cli.md#exit-codes) and [here](#here).\n")
    good = build(tmp_path / "out2", src)
    assert good.returncode == 0, good.stdout + good.stderr
