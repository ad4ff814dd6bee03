"""Session-wide real components: embedded PostgreSQL and Redis, one local Ray cluster.

Everything here is real: the services are the same embedded servers `rayapp services up`
starts, under a temporary state dir, and Ray is one `ray.init(num_cpus=2)` for the whole run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
DATA_TABLES = (
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


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (../shared/data); tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (fresh clone outside this environment)")
    return SHARED_DATA


def short_tmpdir(prefix: str) -> Path:
    """A fresh directory directly under /tmp.

    Not pytest's tmp_path: the embedded PostgreSQL runs as the unprivileged `pgserver` user when
    we are root, and pytest re-locks /tmp/pytest-of-<user> to mode 0700 whenever a session starts,
    which would cut the server off from its own data directory. The path is also short, as
    PostgreSQL's unix socket path must stay under ~100 bytes.
    """
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


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
