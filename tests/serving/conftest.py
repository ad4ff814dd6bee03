"""Serving fixtures: the serving world (tests/serving/fixtures.py: a real model in the session's
MLflow, features in the real stores, the Ray Serve application on the session Ray cluster) under
this package's own registered model, plus the request helpers."""

from __future__ import annotations

from typing import Any

import pytest

from rayapp.testing.serving import FSV, SYMBOL
from tests.serving.factories import API_KEY, RedisProcess
from tests.serving.fixtures import (  # noqa: F401  (fixtures, registered for this package)
    app_url,
    make_serving_settings,
    serving_redis,
    world,
)


@pytest.fixture(scope="package")
def serving_settings(settings: Any, pg_url: str, serving_redis: RedisProcess) -> Any:  # noqa: F811
    return make_serving_settings(settings, pg_url, serving_redis, model="serving_test_model")


@pytest.fixture
def auth() -> dict[str, str]:
    return {"X-API-Key": API_KEY}


@pytest.fixture(scope="package")
def symbol() -> str:
    return SYMBOL


@pytest.fixture(scope="package")
def fsv() -> str:
    return FSV
