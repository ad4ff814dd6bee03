"""The Prometheus tools the monitoring tests call (a helper, not a test module)."""

from __future__ import annotations

import os
import shutil

import pytest


def required_tool(name: str, install: str) -> str:
    """The path of `name`; without it the calling test skips with how to install it, or fails
    where RAYAPP_ALERTING_REQUIRED=1 (CI installs the tools, so there a missing one is a defect)."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not on PATH ({install})"
        if os.environ.get("RAYAPP_ALERTING_REQUIRED") == "1":
            pytest.fail(f"RAYAPP_ALERTING_REQUIRED=1 but {reason}")
        pytest.skip(reason)
    return path
