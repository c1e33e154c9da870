"""``known``: the value when it is set, a loud error when the harness relied on a None."""

from __future__ import annotations

import pytest

from harness.model.known import known


def test_known_returns_the_value_set() -> None:
    assert known(0) == 0  # falsy values are set values
    assert known("") == ""


def test_known_refuses_none() -> None:
    with pytest.raises(AssertionError, match="relies on being set"):
        known(None)
