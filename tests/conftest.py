"""Shared test settings: bounded Hypothesis example counts keep the default suite fast."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "harness-tests", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "harness-tests"))
