"""Session-wide real components: embedded PostgreSQL and Redis, one local Ray cluster.

Everything here is real: the services are the same embedded servers `rayapp services up`
starts, under a temporary state dir, and Ray is one `ray.init(num_cpus=2)` for the whole run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
DATA_TABLES = (
    "predictions", "features", "feature_sets", "article_sentiment", "articles", "candles",
    "social_counts", "market_index", "quarantine", "watermarks",
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (../shared/data); tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (fresh clone outside this environment)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A short path: PostgreSQL's unix socket path must stay under ~100 bytes.
    path = tmp_path_factory.mktemp("st")
    os.environ["RAYAPP_STATE_DIR"] = str(path)
    return path


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
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, ignore_reinit_error=True)
    yield
    ray.shutdown()
