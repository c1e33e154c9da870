"""The reference pages of the documentation site (docs/reference/) name everything the code has.

Plain text checks, no Sphinx needed: a new invariant, CLI option or built-in error that the
reference does not mention fails here.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from harness import BUILTIN_ERRORS, INVARIANTS
from harness.cli.parser import build_parser

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference"


def table_names(page: str) -> list[str]:
    """The first column of every table row of a page that is a single `code` name."""
    return re.findall(r"^\| `([^`]+)` \|", (REFERENCE / page).read_text(), flags=re.MULTILINE)


def test_invariants_page_lists_every_invariant_in_report_order() -> None:
    listed = [name for name in table_names("invariants.md") if "." in name]
    builtin = [invariant.name for invariant in INVARIANTS if invariant.name != "user"]
    assert [name for name in listed if name in builtin] == builtin
    assert "user.<name>" in listed and set(listed) - set(builtin) == {"user.<name>", "harness.hang", "harness.livelock", "harness.nondeterministic"}


def test_cli_page_lists_every_command_and_fuzz_option() -> None:
    text = (REFERENCE / "cli.md").read_text()
    parser = build_parser()
    (commands,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    for name, sub in commands.choices.items():
        assert f"| `harness {name}" in text, name
        if name == "fuzz":
            for action in sub._actions:
                for option in action.option_strings:
                    if option not in ("-h", "--help"):
                        assert f"`{option}" in text, option


def test_failure_files_and_faults_pages_name_the_builtin_errors() -> None:
    for page in ("failure-files.md", "faults.md"):
        text = (REFERENCE / page).read_text()
        for name in BUILTIN_ERRORS:
            assert f"`{name}`" in text, (page, name)
