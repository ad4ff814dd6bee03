"""End-to-end fixtures: the serving stage's real Ray Serve app (trained XGBoost model in MLflow,
features in PostgreSQL and a dedicated Redis, the feature watch pushing over /ws/predictions),
reused from tests/serving so the dashboard is tested against exactly what serving tests deploy.

The built dashboard must exist (frontend/dist, built by `frontend/ci.sh` or `npm run build`)
before the app starts: the ingress mounts it at `/` when it builds the FastAPI app.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.serving.conftest import (  # noqa: F401  (fixtures re-exported for this package)
    API_KEY,
    app_url,
    make_serving_settings,
    serving_redis,
    world,
)


@pytest.fixture(scope="package")
def serving_settings(settings, pg_url, serving_redis):  # noqa: F811  (the imported fixture)
    """The serving package's app settings under a registered model of this package's own."""
    return make_serving_settings(settings, pg_url, serving_redis, model="e2e_test_model")


FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
CHROMIUM = "/usr/bin/chromium"


def missing_prerequisite() -> str | None:
    """Why the browser test cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (Node 20 runs the Playwright driver)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if not (FRONTEND / "node_modules" / "playwright-core").is_dir():
        return "frontend/node_modules is missing (run `npm ci` in frontend/, or frontend/ci.sh)"
    if not (FRONTEND / "dist" / "index.html").is_file():
        return "frontend/dist is not built (run `npm run build` in frontend/, or frontend/ci.sh)"
    return None


@pytest.fixture(scope="package")
def e2e_ready() -> None:
    why = missing_prerequisite()
    if why:
        # frontend/ci.sh sets RAYAPP_E2E_REQUIRED=1: there a missing prerequisite is a failure
        if os.environ.get("RAYAPP_E2E_REQUIRED") == "1":
            pytest.fail(why)
        pytest.skip(why)
