"""Every panel query of the Grafana dashboards (deploy/grafana/dashboards) runs against the real
Prometheus scraping the running app, and returns series once traffic has flowed: no panel charts
a metric the app does not export, a label it does not have, or a query Prometheus rejects."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pandas as pd
import pytest

from rayapp.testing import WaitTimeout, wait_until
from rayapp.testing.serving import insert_forecasts
from tests.monitoring.grafana_dashboards import concrete, load_dashboards, panel_queries

pytestmark = pytest.mark.timeout(600)


def _seed_live_forecasts(world, pool) -> None:
    """Resolved forecasts of the champion and of a shadow version, as the app logs them."""
    ts = pd.date_range(end=world.latest_ts - pd.Timedelta(hours=1), periods=120, freq="h")
    y = (np.random.default_rng(3).uniform(size=len(ts)) < 0.5).astype(int)
    with pool.connection() as conn:
        insert_forecasts(conn, world.settings, world.version, ts, y, 0.55, seed=1)
        insert_forecasts(conn, world.settings, "9999", ts, y, 0.5, seed=2, role="shadow")


async def _watch_metrics_feed(url: str) -> None:
    import websockets

    async with websockets.connect(url.replace("http", "ws", 1) + "/ws/metrics") as ws:
        for _ in range(2):
            await asyncio.wait_for(ws.recv(), 15)


def test_every_panel_query_parses_and_returns_series(alert_stack, world, pool, app_url, traffic):
    _seed_live_forecasts(world, pool)
    asyncio.run(_watch_metrics_feed(app_url))
    queries = [
        (uid, pid, title, concrete(expr))
        for uid, dash in load_dashboards().items()
        for pid, title, expr in panel_queries(dash)
    ]
    assert len(queries) >= 40

    missing: list[tuple] = []

    def all_answer() -> bool:
        missing[:] = [q for q in queries if not alert_stack.query(q[3])]  # a query Prometheus rejects raises
        return not missing

    # rates need two scrapes after a series' first sample; the drift job runs every 5 s
    with contextlib.suppress(WaitTimeout):
        wait_until(all_answer, 90, interval_s=2, what="every panel query to return series")
    assert not missing, "panels without series:\n" + "\n".join(f"{u} #{p} {t}: {e}" for u, p, t, e in missing)
