"""The tutorial (docs/tutorial.md) runs as written: its code, its commands, the output it shows.

The pool, target and test module are taken from the page's code blocks (each headed by a
``# mypkg/...`` or ``# tests/...`` comment line), written into a scratch project, and the
page's commands run there in order; what the page quotes of their output must be what they print.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from md_pages import fences

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "tutorial.md"
FAILURE = "reports/failures/9bf0763bc451.json"


def code_blocks(text: str) -> dict[str, list[str]]:
    """Every python block that starts with a ``# path`` comment line, by path, in page order."""
    found: dict[str, list[str]] = {}
    for info, body in fences(text):
        first = body.partition("\n")[0]
        if info == "python" and first.startswith("# ") and "/" in first:
            found.setdefault(first[2:].strip(), []).append(body)
    return found


def quoted_outputs(text: str) -> list[str]:
    """The page's untagged blocks: the output it shows."""
    return [body for info, body in fences(text) if info == ""]


@pytest.fixture(scope="module")
def page() -> str:
    return PAGE.read_text()


@pytest.fixture
def project(tmp_path: Path, page: str) -> Path:
    blocks = code_blocks(page)
    assert set(blocks) == {"mypkg/pool.py", "mypkg/harness_targets.py", "tests/test_pool_harness.py"}
    assert len(blocks["mypkg/pool.py"]) == 2, "the page shows the buggy pool, then the fixed one"
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "tests").mkdir()
    for path, bodies in blocks.items():
        (tmp_path / path).write_text(bodies[0])
    return tmp_path


def harness(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(project), COLUMNS="80")
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=project, capture_output=True, text=True, env=env, timeout=300
    )


def lines_shown(block: str) -> list[str]:
    """A quoted output's lines, less those that carry timings (they vary from run to run)."""
    timing = re.compile(r"\d+ examples? in [\d.]+s|in [\d.]+s ===")
    return [line for line in block.splitlines() if line and not timing.search(line)]


@pytest.mark.slow  # a 2000-example campaign, as the page runs it (about 15 s)
def test_tutorial_commands_print_what_the_page_shows(project: Path, page: str) -> None:
    outputs = quoted_outputs(page)
    shown_fuzz = next(o for o in outputs if o.startswith("harness: fuzzing") and "FAIL" in o)
    shown_replays = [o for o in outputs if o.startswith("harness: replaying")]
    shown_clean = next(o for o in outputs if o.startswith("harness: fuzzing") and "no violations" in o)

    # 3. The campaign finds the bug and saves the file the page names.
    fuzz = harness(project, "fuzz", "mypkg.harness_targets:pool", "--budget", "30", "--seed", "6")
    assert fuzz.returncode == 1, fuzz.stdout + fuzz.stderr
    assert (project / FAILURE).is_file(), fuzz.stdout
    for line in lines_shown(shown_fuzz):
        assert line in fuzz.stdout, line

    # 5. Replay reproduces it exactly.
    replay = harness(project, "replay", FAILURE)
    assert replay.returncode == 1, replay.stdout + replay.stderr
    for line in lines_shown(shown_replays[0]):
        assert line in replay.stdout, line

    # The fixed pool: the replay no longer fails, and a campaign over it with the regression is clean.
    (project / "mypkg" / "pool.py").write_text(code_blocks(page)["mypkg/pool.py"][1])
    fixed = harness(project, "replay", FAILURE)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    for line in lines_shown(shown_replays[1]):
        assert line in fixed.stdout, line
    (project / "harness-regressions").mkdir()
    shutil.copy(project / FAILURE, project / "harness-regressions")
    clean = harness(project, "fuzz", "mypkg.harness_targets:pool", "--max-examples", "2000", "--seed", "1")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    for line in lines_shown(shown_clean):
        assert line in clean.stdout, line

    # 6. The pytest module passes against the fixed pool, the regression file collected as an item.
    env = dict(os.environ, PYTHONPATH=str(project))
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:xdist", "-p", "no:cacheprovider", "--harness-seed", "1"],
        cwd=project, capture_output=True, text=True, env=env, timeout=300,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    for item in (
        "harness-regressions/9bf0763bc451.json::cancellation.propagates PASSED",
        "tests/test_pool_harness.py::test_pool_keeps_its_promises PASSED",
        "tests/test_pool_harness.py::test_cancel_running_job_frees_its_slot PASSED",
    ):
        assert item in tests.stdout and item in page, item
