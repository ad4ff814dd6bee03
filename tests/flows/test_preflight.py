"""`rayapp demo` / `rayapp run` on a machine that cannot reach the markets, and a partial outage.

Every source points at loopback (tests/ingest/netfaults.py): a port nothing listens on, a
listener that never answers, a fault-injecting server that answers. With no price source
answering, the command stops at once with one error naming each source's cause and the ways on,
before it fetches or trains anything; with some answering, the run goes on without the others
and says which are missing. Nothing leaves this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from rayapp.flows.state import MARKER
from tests.ingest.faults import HOUR_MS, FaultServer, kline, klines_handler, respond
from tests.ingest.netfaults import ServerThread, SilentListener, closed_port

ROOT = Path(__file__).resolve().parents[2]
T0 = pd.Timestamp("2024-03-01", tz="UTC")
PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in PROXY_VARS and k != "RAY_ADDRESS"}


def _unreachable(refused: int, silent_url: str) -> list[str]:
    dead = f"http://127.0.0.1:{refused}"
    return [
        "sources.enabled=[binance,coinbase,fear_greed]",
        f"sources.binance_url={dead}",
        f"sources.binance_fallback_url={dead}",
        f"sources.coinbase_url={silent_url}",
        f"sources.fear_greed_url={dead}",
        "ingest.reachability_timeout_s=1",
    ]


@pytest.mark.parametrize("command", ["demo", "run"])
def test_no_price_source_answering_stops_the_main_command_with_the_cause(command, pg_url, redis_url, tmp_path):
    refused = closed_port()
    state = tmp_path / "state"
    with SilentListener() as silent:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "rayapp.cli",
                command,
                f"state_dir={state}",
                f"database.url='{pg_url}'",  # quoted: the URL has '=' in its query
                f"redis.url='{redis_url}'",
                *_unreachable(refused, silent.url),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=ROOT,
            env=_env(),
        )
    assert r.returncode == 1, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: no price source answers (binance, coinbase): this machine cannot reach the "
        "markets, so nothing live can be ingested"
    ], r.stderr
    assert f"binance (http://127.0.0.1:{refused}/api/v3/ping): connection refused by 127.0.0.1:{refused}" in r.stderr
    assert f"coinbase ({silent.url}/time): timeout: no answer within 1 s" in r.stderr
    assert "fear_greed" in r.stderr
    offline = "rayapp demo sources=replay replay.data=DIR" if command == "demo" else "rayapp run sources=replay"
    assert offline in r.stderr and "HTTPS_PROXY=" in r.stderr
    assert "Traceback" not in r.stderr
    # it stopped before anything else: nothing ingested, trained or served, and no mode recorded
    assert "ingest" not in r.stdout.lower() and "first prediction" not in r.stdout
    assert not (state / MARKER).exists()


@pytest.mark.integration  # loopback servers; the session's Ray and PostgreSQL
def test_a_partial_outage_goes_on_without_the_missing_sources_and_names_them(
    settings, db, ray_cluster, tmp_path, monkeypatch, capsys
):
    from rayapp.flows import demo
    from rayapp.flows.preflight import check_sources

    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    refused = closed_port()
    rows = [kline(int(T0.timestamp() * 1000) + i * HOUR_MS) for i in range(24)]
    server = FaultServer(defaults={"/api/v3/klines": klines_handler(rows), "/api/v3/ping": respond(200, {})})
    with ServerThread(server) as binance, SilentListener() as silent:
        s = settings.model_copy(deep=True)
        s.sources.mode = "live"
        s.sources.enabled = ["binance", "coinbase", "fear_greed"]
        s.sources.binance_url = s.sources.binance_fallback_url = binance.url
        s.sources.coinbase_url = f"http://127.0.0.1:{refused}"
        s.sources.fear_greed_url = silent.url
        s.ingest.reachability_timeout_s = 1
        s.ingest.workers = 1
        s.storage.root = str(tmp_path / "lake")

        reach = check_sources(s, offline_hint="(offline)")
        assert reach is not None and reach.reachable == ["binance"]
        err = capsys.readouterr().err
        assert "warning: continuing without coinbase, fear_greed: unreachable" in err
        assert f"coinbase (http://127.0.0.1:{refused}/time): connection refused by 127.0.0.1:{refused}" in err
        assert f"fear_greed ({silent.url}/fng/?limit=1&format=json): timeout: no answer within 1 s" in err

        recorded = Console(record=True, width=240, color_system=None)
        monkeypatch.setattr(demo, "out", recorded)
        demo.ingest(s, T0, T0 + pd.Timedelta(hours=24), reach)
    text = recorded.export_text()
    rows_by_source = {
        line.split()[0]: line.split()[1:]
        for line in text.splitlines()
        if line.split()[:1] in (["binance"], ["coinbase"], ["fear_greed"])
    }
    assert rows_by_source["binance"][:2] == ["24", "24"] and rows_by_source["binance"][-1] == "ok"
    assert rows_by_source["coinbase"][-1] == "failed" and rows_by_source["fear_greed"][-1] == "failed"
    assert f"error coinbase: unreachable, not fetched: coinbase (http://127.0.0.1:{refused}/time)" in text
    assert "error fear_greed: unreachable, not fetched:" in text
    assert "SourceSummary(" not in text
    n = db.execute("SELECT count(*) FROM candles WHERE source = 'binance'").fetchone()[0]
    assert n == 24  # the reachable source was ingested
    assert not binance.server.requests("/time")  # the missing ones were not fetched at all


@pytest.mark.integration  # a loopback server and a closed port; the session's Ray and PostgreSQL
def test_ingest_json_gives_the_summary_with_every_error(
    settings, db, ray_cluster, pg_url, redis_url, tmp_path, capsys, monkeypatch
):
    from rayapp.cli import main

    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    refused = closed_port()
    rows = [kline(int(T0.timestamp() * 1000) + i * HOUR_MS) for i in range(24)]
    with ServerThread(FaultServer(defaults={"/api/v3/klines": klines_handler(rows)})) as binance:
        capsys.readouterr()
        code = main(
            [
                "ingest",
                "--json",
                f"state_dir={tmp_path / 'state'}",  # not the session's: the mode record stays apart
                f"database.url='{pg_url}'",
                f"redis.url='{redis_url}'",
                f"storage.root={tmp_path / 'lake'}",
                "sources.enabled=[binance,coinbase]",
                f"sources.binance_url={binance.url}",
                f"sources.coinbase_url=http://127.0.0.1:{refused}",
                "ingest.max_attempts=1",
                "ingest.workers=1",
                "start=2024-03-01",
                "end=2024-03-02",
            ]
        )
    out = capsys.readouterr().out
    assert code == 1  # a source failed
    body = json.loads(out)
    by = {r["source"]: r for r in body["sources"]}
    assert by["binance"]["ok"] and by["binance"]["written"] == 24 and by["binance"]["first_error"] is None
    assert not by["coinbase"]["ok"] and by["coinbase"]["errors"]
    assert f"connection refused by 127.0.0.1:{refused}" in by["coinbase"]["first_error"]
    assert body["failed"] == ["coinbase"] and body["watermarks"]["binance/BTCUSDT"].startswith("2024-03-02")
    assert json.loads((tmp_path / "state" / MARKER).read_text())["mode"] == "live"
