"""The README stays short and true: its commands, the run it quotes, its target, its links.

Everything else lives in the documentation site (docs/); these tests keep the README a
page a newcomer can trust: at most 300 lines, every relative link pointing at a file
(and a heading) that exists, the two commands first and the second run by ``.ci/run``,
the quoted failing run what the first command really prints, and the 15-line target
one that loads and keeps its promise.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

from harness import CampaignConfig, run_campaign
from harness.invariants import INVARIANTS
from md_pages import fences

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def section(text: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## `` heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def anchors(page: Path) -> set[str]:
    """The heading anchors of a Markdown page, as GitHub and MyST spell them."""
    found: set[str] = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#+ (.*)", line)):
            words = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            found |= {words, re.sub(r"-+", "-", words)}
    return found


def test_the_readme_is_at_most_300_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move the detail into a page under docs/"


def test_every_relative_link_in_the_readme_points_at_an_existing_file_and_heading() -> None:
    links = LINK.findall(README.read_text())
    assert any(link.startswith("docs/") for link in links), "the README links into docs/"
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue  # an external address (https:, mailto:): not checked here
        path, _, anchor = link.partition("#")
        target = (ROOT / path).resolve() if path else README
        assert target.is_file(), f"README.md links to {link}, but {path} does not exist"
        if anchor and target.suffix == ".md":
            assert anchor in anchors(target), f"README.md links to {link}, but {path or 'README.md'} has no such heading"


def test_the_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    first, second = fences(README.read_text())[:2]
    assert first == ("sh", "pip install -e . && harness fuzz scenarios.pools:double_release_pool --budget 30\n")
    assert second[0] == "sh"
    install, test = second[1].strip().split(" && ")
    extras = re.fullmatch(r"pip install -e ('\.\[[a-z,]+\]')", install)
    assert extras, install
    ci = (ROOT / ".ci" / "run").read_text()
    # .ci/run installs with its own pip options (--upgrade, constraints) but the same extras, and
    # runs the same pytest command line.
    assert f"-e {extras.group(1)}" in ci, f".ci/run must install {extras.group(1)}, as the README's test command does"
    assert any(line.startswith(test) for line in ci.splitlines()), f".ci/run must run {test!r}, as the README says"


def test_the_failing_run_the_readme_quotes_is_what_the_first_command_prints(tmp_path: Path) -> None:
    text = README.read_text()
    (quoted,) = [body for info, body in fences(section(text, "What a failing run prints")) if info == ""]
    seed = re.search(r" with seed (\d+);", quoted)
    assert seed, "the quoted run names its seed in its first line"
    command = fences(text)[0][1].split(" && ", 1)[1].split()
    assert command[0] == "harness"
    # The first command as run in a fresh checkout, with the seed it happened to draw pinned.
    # (An explicit --seed switches the default database off; naming the default keeps it on.)
    args = [*command[1:], "--seed", seed.group(1), "--database", ".hypothesis/harness"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="80")
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 1, done.stdout + done.stderr

    def steady(output: str) -> list[str]:
        return [re.sub(r"in [\d.]+s \(\d+/s\)", "in Xs (X/s)", line) for line in output.splitlines()]

    assert steady(done.stdout) == steady(quoted), (
        "README.md's 'What a failing run prints' no longer matches what the harness prints: run "
        f"`harness fuzz scenarios.pools:double_release_pool --budget 30` in a fresh directory and paste its output "
        f"(this run, with seed {seed.group(1)}, printed:\n{done.stdout})"
    )
    saved = re.search(r"^saved: (\S+)$", quoted, flags=re.MULTILINE)
    assert saved and (tmp_path / saved.group(1)).is_file()


def test_the_readme_target_fits_in_15_lines_and_keeps_its_promise(tmp_path: Path) -> None:
    (code,) = [body for info, body in fences(README.read_text()) if info == "python"]
    assert code.startswith("# mypkg/harness_targets.py\n")
    assert len(code.splitlines()) <= 15, "the README's target is the 15-line one; longer examples go in docs/"
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    pool = namespace["pool"]
    config = CampaignConfig(seed=1, max_examples=300, report_dir=str(tmp_path), database=None, regressions=None)
    kept = run_campaign(pool, "mypkg.harness_targets:pool", config)
    assert [f.record.invariant for f in kept.findings] == [], "the README's pool breaks its own promise"
    # Not a vacuous check: the same pool, promising one slot fewer than it has, is caught.
    liar = run_campaign(dataclasses.replace(pool, limit=2), "readme:liar", config)
    assert [f.record.invariant for f in liar.findings] == ["concurrency.limit"]


def test_what_it_checks_names_every_invariant_family() -> None:
    listed = section(README.read_text(), "What it checks")
    families = {invariant.name.split(".")[0] for invariant in INVARIANTS} | {"user", "harness"}
    for family in sorted(families):
        assert f"- `{family}.*`" in listed, family


def test_no_help_text_docstring_or_message_sends_the_user_to_the_readme() -> None:
    """What the harness prints and documents points at the docs page that holds the detail."""
    for path in sorted([*(ROOT / "harness").rglob("*.py"), *(ROOT / "scenarios").rglob("*.py")]):
        assert "README" not in path.read_text(), f"{path.relative_to(ROOT)} names the README: point at the page under docs/"
