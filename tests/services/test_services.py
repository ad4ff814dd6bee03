"""The embedded services' lifecycle through the real `rayapp services` command."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from tests.helpers import short_tmpdir

pytestmark = pytest.mark.integration  # `rayapp services` subprocesses start PostgreSQL and Redis


def rayapp(state: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAYAPP_STATE_DIR": str(state)}
    env.pop("RAYAPP_DATABASE_URL", None)
    env.pop("RAYAPP_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "rayapp.cli", *args], capture_output=True, text=True, env=env, check=check, timeout=120
    )


@pytest.fixture
def fresh_state():
    state = short_tmpdir("rayapp-svc-")
    yield state
    rayapp(state, "services", "down", check=False)
    shutil.rmtree(state, ignore_errors=True)


def status(state: Path) -> dict:
    return json.loads(rayapp(state, "services", "status", "--json", check=False).stdout)


def test_up_reuse_down_and_data_survives(fresh_state):
    before = status(fresh_state)
    assert before["postgres"]["healthy"] is False and before["redis"]["healthy"] is False

    first = json.loads(rayapp(fresh_state, "services", "up", "--json").stdout)
    assert first["postgres"]["started"] and first["redis"]["started"]
    st = status(fresh_state)
    assert st["postgres"]["healthy"] and st["redis"]["healthy"]
    assert st["postgres"]["url"].startswith("postgresql://")
    pg_pid = (fresh_state / "postgres" / "data" / "postmaster.pid").read_text().split()[0]

    # a second `up` reuses the running servers
    second = json.loads(rayapp(fresh_state, "services", "up", "--json").stdout)
    assert not second["postgres"]["started"] and not second["redis"]["started"]
    assert second["redis"]["url"] == first["redis"]["url"]
    assert (fresh_state / "postgres" / "data" / "postmaster.pid").read_text().split()[0] == pg_pid

    rayapp(fresh_state, "db", "migrate")
    with psycopg.connect(st["postgres"]["url"]) as conn:
        conn.execute("INSERT INTO watermarks (source, symbol, watermark) VALUES ('t', 'X', now())")
    redis.Redis.from_url(st["redis"]["url"]).set("survives", "yes")

    rayapp(fresh_state, "services", "down")
    down = status(fresh_state)
    assert not down["postgres"]["healthy"] and not down["redis"]["healthy"]
    assert not (fresh_state / "postgres" / "data" / "postmaster.pid").exists()

    rayapp(fresh_state, "services", "up")
    st2 = status(fresh_state)
    assert st2["postgres"]["healthy"] and st2["redis"]["healthy"]
    with psycopg.connect(st2["postgres"]["url"]) as conn:
        assert conn.execute("SELECT count(*) FROM watermarks").fetchone()[0] == 1
    assert redis.Redis.from_url(st2["redis"]["url"]).get("survives") == b"yes"
    assert json.loads(rayapp(fresh_state, "db", "stats", "--json").stdout)["watermarks"] == 1


def test_commands_start_services_on_demand(fresh_state):
    stats = json.loads(rayapp(fresh_state, "db", "stats", "--json").stdout)
    assert stats["candles"] == 0
    assert status(fresh_state)["postgres"]["healthy"]


def test_configured_urls_are_only_checked(fresh_state):
    # An external database that is down: status reports it unhealthy and starts nothing.
    res = rayapp(
        fresh_state,
        "services",
        "status",
        "--json",
        "database.url=postgresql://nobody@127.0.0.1:1/none",
        "redis.url=redis://127.0.0.1:1/0",
        check=False,
    )
    assert res.returncode == 1
    st = json.loads(res.stdout)
    assert st["postgres"] == {
        "url": "postgresql://nobody@127.0.0.1:1/none",
        "healthy": False,
        "embedded": False,
        "error": st["postgres"]["error"],
    }
    assert st["postgres"]["error"]
    assert st["redis"]["healthy"] is False
    assert not (fresh_state / "postgres").exists()


def test_store_down_gives_a_clear_error(fresh_state):
    res = rayapp(fresh_state, "db", "stats", "database.url=postgresql://nobody@127.0.0.1:1/none", check=False)
    assert res.returncode != 0
    assert "127.0.0.1" in res.stderr and "Traceback" not in res.stderr
