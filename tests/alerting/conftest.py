"""Alerting fixtures: the serving world of tests/serving/fixtures.py (a real model, the stores, the
Ray Serve app) under this package's own registered model, a real scheduler running a job the
tests can make fail, and the alerting stack (rayapp.testing.alerting): the repository's Prometheus
and Alertmanager configs rendered with test intervals, run by the real binaries, delivering to a
Slack stand-in (HTTP) and an e-mail stand-in (SMTP)."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rayapp.testing.alerting import AlertStack, SlackStandIn, SmtpStandIn, missing_binaries
from tests.serving.factories import API_KEY
from tests.serving.fixtures import (  # noqa: F401  (fixtures, registered for this package)
    app_url,
    make_serving_settings,
    serving_redis,
    world,
)

SCRAPE_S = 1.0
FOR_SCALE = 0.05  # 30 s -> 1.5 s, 1 m -> 3 s, 5 m -> 15 s


@pytest.fixture(scope="package")
def serving_settings(settings, pg_url, serving_redis):  # noqa: F811  (the imported fixture)
    return make_serving_settings(settings, pg_url, serving_redis, model="alerting_test_model")


@pytest.fixture(scope="package")
def alerting_ready() -> None:
    why = missing_binaries()
    if why:
        if os.environ.get("RAYAPP_ALERTING_REQUIRED") == "1":
            pytest.fail(why)
        pytest.skip(why)


class Traffic:
    """Background requests against the app (latest-vector predictions and reads), so that the
    request, latency, cache and fallback series move as they do in production."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.sent = 0
        self.statuses: dict[int, int] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=10, headers={"X-API-Key": API_KEY}) as c:
            while not self.stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    r = c.post("/predict", json={"symbol": "BTCUSDT", "explain": False})
                    c.get("/freshness")
                    self.sent += 1
                    self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
                self.stop.wait(0.3)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


@pytest.fixture(scope="package")
def traffic(app_url: str) -> Iterator[Traffic]:  # noqa: F811
    with Traffic(app_url) as t:
        yield t


@pytest.fixture(scope="package")
def fault_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """While this file exists the scheduler's `flaky` job fails (rayapp.testing.jobs:record)."""
    return tmp_path_factory.mktemp("faults") / "flaky.fail"


@pytest.fixture(scope="package")
def scheduler(world, app_url, pool, fault_file, tmp_path_factory):  # noqa: F811
    """A real scheduler on the session cluster: `flaky` every 2 s (fails while `fault_file`
    exists, never retried) and the built-in drift job every 5 s. Earlier packages' jobs are
    removed from the run history first: they would look stale to the pipeline rules."""
    from rayapp.config import JobSettings
    from rayapp.flows import SchedulerNotRunning, start_scheduler, stop_scheduler

    with pool.connection() as conn:
        conn.execute("DELETE FROM pipeline_runs")
        conn.execute("DELETE FROM pipeline_jobs")
        conn.execute("DELETE FROM alerts")
        conn.commit()
    s = world.settings.model_copy(deep=True)
    tag = uuid.uuid4().hex[:6]
    s.schedule.actor_name = f"alerting-sched-{tag}"
    marker = tmp_path_factory.mktemp("sched") / "flaky.jsonl"
    s.schedule.jobs = {
        "flaky": JobSettings(
            cron="* * * * * */2",
            target="rayapp.testing.jobs:record",
            retries=0,
            params={"marker": str(marker), "fail_while": str(fault_file)},
        ),
        "drift": JobSettings(cron="* * * * * */5", retries=0, params={"hours": 400}),
    }
    start_scheduler(s)
    yield s
    with contextlib.suppress(SchedulerNotRunning):
        stop_scheduler(s)


@pytest.fixture(scope="package")
def alert_stack(alerting_ready, world, app_url, scheduler, traffic, tmp_path_factory) -> Iterator[AlertStack]:  # noqa: F811
    from urllib.parse import urlsplit

    from rayapp.config import load_settings

    s = world.settings.model_copy(deep=True)
    s.alerting = load_settings(
        AlertStack.overrides(
            app_target=urlsplit(app_url).netloc,
            feed_url=f"{app_url}/alerts/webhook",
            scrape_s=SCRAPE_S,
            eval_s=SCRAPE_S,
            for_scale=FOR_SCALE,
            fast_routes=True,
        )
    ).alerting
    slack, smtp = SlackStandIn(), SmtpStandIn()
    stack = AlertStack(s, tmp_path_factory.mktemp("alerting"), slack, smtp)
    try:
        yield stack.start()
    finally:
        stack.stop()
        slack.close()
        smtp.close()
