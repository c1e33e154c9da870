"""The harness's pytest plugin, registered through the ``pytest11`` entry point.

Installing the package activates it; nothing goes in ``conftest.py``. It adds
the ``--harness-*`` options and ini settings and the ``harness_slow`` marker,
and shares one session seed with every xdist worker. The pieces live in
``harness.pytest``; this module only wires them into pytest's hooks.
"""

from __future__ import annotations

from typing import Any

import pytest
from .pytest.settings import SETTINGS_KEY, add_options, resolve, settings_of

MARKERS = (
    "harness_slow(max_examples=None, budget=None): a long harness campaign; its own example count or budget "
    "(seconds) replace the ini settings, the command line still wins; deselect with -m 'not harness_slow'",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[SETTINGS_KEY] = resolve(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistSeed(), "harness-xdist-seed")


class _XdistSeed:
    """Hands the controller's session seed to every xdist worker, so that all of them fuzz alike."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        settings = settings_of(node.config)
        node.workerinput["harness_seed"] = settings.seed
        node.workerinput["harness_seed_source"] = settings.seed_source


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = settings_of(config)
    if settings.seed_source == "fresh":
        seed = f"seed {settings.seed} (fresh; reuse with --harness-seed {settings.seed})"
    else:
        seed = f"seed {settings.seed} (from {settings.seed_source})"
    limits = []
    if settings.max_examples is not None or settings.budget_s is None:
        max_examples, _ = settings.limits()
        limits.append(f"{max_examples} examples")
    if settings.budget_s is not None:
        limits.append(f"{settings.budget_s:g}s")
    return [f"harness: {seed}; {' or '.join(limits)} per fuzz test; failures to {settings.report_dir / 'failures'}"]
