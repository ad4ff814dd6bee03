"""End-to-end fixtures: the serving stage's real Ray Serve app (trained XGBoost model in MLflow,
features in PostgreSQL and a dedicated Redis, the feature watch pushing over /ws/predictions),
the same fixtures tests/serving uses (tests/serving/fixtures.py), so the dashboard is tested
against exactly what serving tests deploy.

The built dashboard must exist (frontend/dist, built by `frontend/ci.sh` or `npm run build`)
before the app starts: the ingress mounts it at `/` when it builds the FastAPI app.
"""

from __future__ import annotations

import os

import pytest

from tests.e2e.browser import missing_prerequisite
from tests.serving.fixtures import (  # noqa: F401  (fixtures, registered for this package)
    app_url,
    make_serving_settings,
    serving_redis,
    world,
)


@pytest.fixture(scope="package")
def serving_settings(settings, pg_url, serving_redis):  # noqa: F811  (the imported fixture)
    """The serving package's app settings under a registered model of this package's own."""
    return make_serving_settings(settings, pg_url, serving_redis, model="e2e_test_model")


@pytest.fixture(scope="package")
def e2e_ready() -> None:
    why = missing_prerequisite()
    if why:
        # frontend/ci.sh sets RAYAPP_E2E_REQUIRED=1: there a missing prerequisite is a failure
        if os.environ.get("RAYAPP_E2E_REQUIRED") == "1":
            pytest.fail(why)
        pytest.skip(why)
