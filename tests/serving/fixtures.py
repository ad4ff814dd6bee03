"""The serving world as package-scoped fixtures, shared by tests/serving and tests/e2e.

A plain module, not a conftest: each package's conftest imports the fixtures from here, so each
package gets its own instances (package scope), and no module ever imports a conftest.

The world: a real model in the session's MLflow, features in the real stores, and the Ray Serve
application deployed on the session Ray cluster. Isolation from other stages' tests sharing the
session: a registered model and experiment of the package's own (not `bitcoin_predictor`), a
feature-set version of our own, and a dedicated redis-server that the resilience tests may stop.
The app is package-scoped, so it is torn down when a package's tests end rather than idling
through the rest of the session.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from rayapp.services import free_port
from rayapp.testing import wait_until
from rayapp.testing.serving import FSV, SYMBOL, Market, seed_champion
from tests.serving.factories import API_KEY, RedisProcess, log_ablation


def make_serving_settings(settings: Any, pg_url: str, serving_redis: RedisProcess, *, model: str) -> Any:
    """The app's settings for one test package; `model` keeps each package's registered versions
    (and the serving model cache keyed by that name) apart from the other packages'."""
    from rayapp.config import load_settings
    from rayapp.serving.deployments import resolve_settings

    s = load_settings(
        [
            f"state_dir={settings.state_dir}",
            f"mlflow.registered_model={model}",
            f"mlflow.experiment={model}",
            f"serving.api_key={API_KEY}",
            f"serving.port={free_port()}",
            "serving.champion_poll_s=1",
            "serving.watch_interval_s=0.5",
            "serving.ws_heartbeat_s=1",
            "serving.ws_metrics_interval_s=0.5",
            "serving.resolve_interval_s=2",
            "serving.predictor_replicas=2",
            "serving.feature_staleness_s=14400",
            "serving.cors_origins=[http://dashboard.test]",
            "serving.max_body_bytes=4096",
            "serving.intervals.aci_refresh_s=1",
        ]
    )
    s.database.url = pg_url
    s.redis.url = serving_redis.url
    # the alert feed's bearer token (as `rayapp alerting render` creates it): its webhook is on
    token = s.alert_token_path
    if not token.exists():
        token.parent.mkdir(parents=True, exist_ok=True)
        token.write_text(secrets.token_urlsafe(32) + "\n")
    return resolve_settings(s)


def forget_earlier_package(settings: Any, pool: Any) -> None:
    """Start from a clean slate: another package of this session (tests/e2e) deploys the same
    fixture world, and what it leaves behind (its registered versions, the serving model cache
    with its last-known champion, a newer feature row it landed, its logged predictions) would
    otherwise leak into this package's app."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from rayapp.registry import cache_dir, setup_mlflow

    setup_mlflow(settings)
    with contextlib.suppress(MlflowException):
        mlflow.MlflowClient().delete_registered_model(settings.mlflow.registered_model)
    shutil.rmtree(cache_dir(settings), ignore_errors=True)
    with pool.connection() as conn:
        conn.execute("DELETE FROM predictions WHERE feature_set_version = %s", (FSV,))
        conn.execute("DELETE FROM features WHERE feature_set_version = %s", (FSV,))
        conn.execute("DELETE FROM candles WHERE symbol = %s", (SYMBOL,))
        conn.commit()


@dataclass
class ServingWorld:
    settings: Any
    market: Market
    version: str
    latest_ts: pd.Timestamp


@pytest.fixture(scope="package")
def serving_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    r = RedisProcess(tmp_path_factory.mktemp("serving-redis"))
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="package")
def world(serving_settings: Any, pool: Any, serving_redis: RedisProcess) -> ServingWorld:
    """300 hourly rows ending 2 h before now (fresh under the 4 h staleness limit), a champion."""
    forget_earlier_package(serving_settings, pool)
    end = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=2)
    market, version, ts = seed_champion(serving_settings, pool, serving_redis.url, end, seed=1)
    log_ablation(serving_settings)
    return ServingWorld(serving_settings, market, version, ts)


@pytest.fixture(scope="package")
def app_url(world: ServingWorld, ray_cluster: None) -> Iterator[str]:
    import httpx
    from ray import serve

    from rayapp.serving.deployments import run

    url = run(world.settings)
    # serve.run returns once replicas are up; the proxy may need a moment more to route.
    wait_until(
        lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200,
        60,
        ignore=(httpx.HTTPError,),
        what="the serve app to answer /health",
    )

    # A replica warm-starts from the locally cached champion (an earlier package of this session
    # may have promoted another version), then confirms the alias with the registry: wait until
    # every replica answers with this package's champion (several answers in a row).
    def serves_champion() -> bool:
        for _ in range(6):
            r = httpx.get(f"{url}/model", timeout=5)
            if r.status_code != 200 or str(r.json().get("version")) != world.version:
                return False
        return True

    wait_until(
        serves_champion,
        120,
        ignore=(httpx.HTTPError,),
        what=f"every replica to serve champion version {world.version} (6 answers in a row)",
    )
    yield url
    serve.delete(world.settings.serving.app_name)
    serve.shutdown()
