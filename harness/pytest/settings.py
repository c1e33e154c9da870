"""The plugin's settings: each is a command-line option and an ini setting, declared once.

A value given on the command line wins over the ini file, which wins over the
built-in default. The session seed is the one setting that is also decided at
run time: when neither the option nor the ini file fixes it, the controlling
process draws a fresh one and hands it to every xdist worker, so that all
processes of one session fuzz with the same seed and the printed rerun line
reproduces any of them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cli.options import parse_count, parse_seconds, parse_seed
from harness.search.campaign import DEFAULT_MAX_EXAMPLES  # per fuzz test when neither a count nor a budget is set


def parse_examples(text: str) -> int:
    return parse_count(text, "the example count")


def parse_budget(text: str) -> float:
    return parse_seconds(text, "the budget")


@dataclass(frozen=True)
class Setting:
    """One knob: ``--harness-<name>`` on the command line and ``harness_<name>`` in the ini file."""

    name: str
    help: str
    parse: Callable[[str], Any]
    metavar: str
    default: str | None = None

    @property
    def flag(self) -> str:
        return "--harness-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "harness_" + self.name


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "seed",
        "campaign seed for every fuzz test (default: a fresh one per session, shown in the header)",
        parse_seed,
        "N",
    ),
    Setting(
        "max_examples",
        f"schedules per fuzz test (default {DEFAULT_MAX_EXAMPLES}; unlimited when only a budget is set)",
        parse_examples,
        "N",
    ),
    Setting("budget", "wall-clock seconds per fuzz test, e.g. 30 or 30s (default: none)", parse_budget, "SECONDS"),
    Setting(
        "report_dir",
        "where failures/<id>.json are written (default reports; in the ini file, relative to the rootdir)",
        str,
        "DIR",
        "reports",
    ),
    Setting(
        "regressions",
        "directory of saved failure files, each replayed as a test "
        "(default harness-regressions; in the ini file, relative to the rootdir)",
        str,
        "DIR",
        "harness-regressions",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    """Declare every setting as an option and an ini value, both documented in ``--help``."""
    group = parser.getgroup("harness", "fault-injection harness (twisted-fault-harness)")
    for setting in SETTINGS:
        group.addoption(
            setting.flag, dest=setting.ini, metavar=setting.metavar, type=setting.parse, default=None, help=setting.help
        )
        parser.addini(setting.ini, setting.help, type="string", default=setting.default)


def _ini(config: pytest.Config, setting: Setting) -> Any:
    raw = config.getini(setting.ini)
    if raw in (None, ""):
        return None
    try:
        return setting.parse(raw)
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"ini setting {setting.ini} = {raw!r}: {exc}") from None


@dataclass(frozen=True)
class HarnessSettings:
    """The resolved settings of one pytest session (the same in every xdist worker)."""

    seed: int
    seed_source: str
    max_examples: int | None
    budget_s: float | None
    report_dir: Path
    regressions_dir: Path
    #: Names of the settings given on the command line (they beat a marker's own values).
    on_command_line: frozenset[str] = frozenset()

    @property
    def rerun_args(self) -> tuple[str, ...]:
        """The campaign-size options given on the command line, repeated in the printed rerun line."""
        args: list[str] = []
        if "max_examples" in self.on_command_line:
            args += ["--harness-max-examples", str(self.max_examples)]
        if "budget" in self.on_command_line:
            args += ["--harness-budget", f"{self.budget_s:g}"]
        return tuple(args)

    def limits(
        self, marker: pytest.Mark | None = None, own: tuple[int | None, float | None] = (None, None)
    ) -> tuple[int | None, float | None]:
        """Examples and budget for one fuzz test: command line, then its ``harness_slow`` marker, then its
        own size (``@fuzz(target, max_examples=..., budget=...)``), then ini."""
        max_examples, budget = self.max_examples, self.budget_s
        if own[0] is not None and "max_examples" not in self.on_command_line:
            max_examples = own[0]
        if own[1] is not None and "budget" not in self.on_command_line:
            budget = own[1]
        if marker is not None:
            if "max_examples" in marker.kwargs and "max_examples" not in self.on_command_line:
                max_examples = _marker_value(marker, "max_examples", parse_examples)
            if "budget" in marker.kwargs and "budget" not in self.on_command_line:
                budget = _marker_value(marker, "budget", parse_budget)
        if max_examples is None and budget is None:
            max_examples = DEFAULT_MAX_EXAMPLES
        return max_examples, budget


def _marker_value(marker: pytest.Mark, key: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(marker.kwargs[key])
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"@pytest.mark.{marker.name}({key}={marker.kwargs[key]!r}): {exc}") from None


def new_seed() -> int:
    """A fresh session seed from the OS."""
    return int.from_bytes(os.urandom(4), "big")


def resolve(config: pytest.Config) -> HarnessSettings:
    """Read every setting: command line first, then the ini file, then the default."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        value = config.getoption(setting.ini)
        if value is not None:
            sources[setting.name] = "option"
        else:
            value = _ini(config, setting)
            sources[setting.name] = "ini"
        values[setting.name] = value
    seed = values["seed"]
    seed_source = sources["seed"]
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "harness_seed" in workerinput:
        seed, seed_source = workerinput["harness_seed"], workerinput["harness_seed_source"]
    elif seed is None:
        seed, seed_source = new_seed(), "fresh"
    return HarnessSettings(
        seed=seed,
        seed_source=seed_source,
        max_examples=values["max_examples"],
        budget_s=values["budget"],
        report_dir=_path(config, values["report_dir"], sources["report_dir"]),
        regressions_dir=_path(config, values["regressions"], sources["regressions"]),
        on_command_line=frozenset(name for name, source in sources.items() if source == "option"),
    )


def _path(config: pytest.Config, value: str, source: str) -> Path:
    """Command-line paths are relative to where pytest was invoked, ini paths to the rootdir."""
    base = config.invocation_params.dir if source == "option" else config.rootpath
    return Path(os.path.normpath(base / Path(value).expanduser()))


SETTINGS_KEY = pytest.StashKey[HarnessSettings]()


def settings_of(config: pytest.Config) -> HarnessSettings:
    """The session's settings; a clear error if the plugin was disabled with ``-p no:harness``."""
    try:
        return config.stash[SETTINGS_KEY]
    except KeyError:
        raise pytest.UsageError(
            "the harness pytest plugin is not active in this session (was it disabled with '-p no:harness'?); "
            "@fuzz tests and the harness fixtures need it"
        ) from None
