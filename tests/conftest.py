"""Session-wide real components: embedded PostgreSQL and Redis, one local Ray cluster; and the
`integration` marker, set here on every test that uses a fixture starting a real component.

Everything here is real: the services are the same embedded servers `rayapp services up`
starts, under a temporary state dir, and Ray is one `ray.init(num_cpus=2)` for the whole run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import short_tmpdir

if TYPE_CHECKING:
    from tests.ray_head import RayHead

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
DATA_TABLES = (
    "alerts",
    "model_events",
    "model_lifecycle",
    "predictions",
    "features",
    "feature_sets",
    "article_sentiment",
    "articles",
    "candles",
    "social_counts",
    "market_index",
    "quarantine",
    "watermarks",
)

# Fixtures that start a real component (a server, a process, a cluster). A test that uses one,
# directly or through another fixture (`pool`, `db`, `pg_url`, `serving_settings`, `app_url`, ...
# all depend on one of these), is marked `integration`; `-m "not integration"` is the fast tier.
STARTS_COMPONENTS = frozenset(
    {
        "services",  # embedded PostgreSQL + Redis (and so pg_url, redis_url, pool, db)
        "ray_cluster",  # the session's local Ray cluster
        "serving_redis",  # tests/serving/fixtures.py: a dedicated redis-server process
        "world",  # tests/serving/fixtures.py: a model in MLflow, features in the stores
        "app_url",  # tests/serving/fixtures.py: the Ray Serve application
        "alert_stack",  # tests/alerting: Prometheus, Alertmanager, the Slack and SMTP stand-ins
        "e2e_ready",  # tests/e2e: the browser test's prerequisites (node, Chromium)
        "s3_endpoint",  # tests/lake: a moto S3 server on loopback
        "replay_url",  # tests/ingest/test_fanout.py: the replay server on loopback
        "ray_head",  # tests/training/test_job_submit.py: a `ray start --head` process
    }
)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `integration` every test whose fixture closure starts a real component. Tests that
    start one without a fixture (a `rayapp` subprocess, a loopback server) carry the mark
    explicitly."""
    for item in items:
        if STARTS_COMPONENTS.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (../shared/data); tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (fresh clone outside this environment)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    path = short_tmpdir("rayapp-test-")
    os.environ["RAYAPP_STATE_DIR"] = str(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(state_dir: Path):
    from rayapp.config import load_settings

    return load_settings([f"state_dir={state_dir}"])


@pytest.fixture(scope="session")
def services(settings) -> Iterator[dict]:
    from rayapp.services import services_down, services_up

    info = services_up(settings)
    yield info
    from rayapp.warehouse.db import close_pools

    close_pools()
    services_down(settings)


@pytest.fixture(scope="session")
def pg_url(services) -> str:
    return services["postgres"]["url"]


@pytest.fixture(scope="session")
def redis_url(services) -> str:
    return services["redis"]["url"]


@pytest.fixture(scope="session")
def pool(settings, services):
    from rayapp.warehouse import get_pool

    return get_pool(settings)


@pytest.fixture
def db(pool):
    """A connection to a warehouse whose data tables are empty at the start of the test."""
    with pool.connection() as conn:
        conn.execute("TRUNCATE " + ", ".join(DATA_TABLES) + " CASCADE")
        conn.commit()
        yield conn


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One local Ray cluster for the whole session (2 CPUs: the size of this machine)."""
    import ray

    if not ray.is_initialized():
        # Serve's throughput-optimized mode, as `rayapp serve` starts it (direct ingress ports
        # from a free base port, since every serving package picks its own).
        from rayapp.config import load_settings
        from rayapp.services import free_port
        from rayapp.serving.deployments import apply_serve_env

        base = free_port()
        apply_serve_env(load_settings([f"serving.port={base}"]))
        ray.init(
            num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False, ignore_reinit_error=True
        )
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """A real `ray start --head` (1 CPU), shared by the tests that join or submit to one (each
    leaves nothing running on it), stopped at the session's end (tests/ray_head.py)."""
    from tests.ray_head import start_ray_head

    with start_ray_head(num_cpus=1) as head:
        yield head
