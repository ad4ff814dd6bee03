"""Feature build and online lookup speed on the real data.

1. Loads ../shared/data (48k hours of BTC/USD + the news file, scored with VADER) into an
   embedded PostgreSQL under a temporary state dir.
2. build_s: the feature build as the job runs it (read silver, Ray tasks over time chunks,
   schema validation), store writes excluded. Ray workers are warmed first, as in a running
   cluster; the cold first run is printed too.
3. pandas_s: the same 15 features written as a plain single-process pandas implementation
   (rolling/ewm/groupby), from the same read, as the baseline.
4. 10,000 lookups of the latest vector from the Redis online store over loopback.

Usage: python benchmarks/features.py [--data ../shared/data] [--lookups 10000]
Last line: {"rows", "build_s", "pandas_s", "online_p50_ms", "online_p99_ms"}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pandas_features(inputs, p) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The core 15 features the way one would write them in plain pandas (the baseline)."""
    c = inputs.candles
    idx = pd.date_range(c.index[0], c.index[-1], freq="h")
    g = c.reindex(idx).ffill(limit=p.gap_fill_h)
    close, high, low, vol = g["close"], g["high"], g["low"], g["volume"]
    out = pd.DataFrame(index=idx)
    out["sma_20"] = close.rolling(20).mean() / close - 1
    d = close.diff()
    up = d.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    down = (-d).clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    out["rsi"] = 100 * up / (up + down)
    prev = close.shift(1)
    tr = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
    out["atr"] = tr.ewm(alpha=1 / 14, adjust=False).mean() / close
    for h in (1, 4, 24):
        out[f"returns_{h}h"] = np.log(close / close.shift(h))
    out["volume_ratio"] = vol / vol.rolling(24).mean()
    rv = np.log(close / prev).rolling(24).std()
    rank = rv.rolling(p.regime_window_h, min_periods=p.regime_min_periods).rank(pct=True)
    out["volatility_regime"] = pd.cut(rank, [0, 1 / 3, 2 / 3, 1], labels=False, include_lowest=True)
    news = inputs.news
    hour = news["available_at"].dt.floor("h")
    agg = news.groupby(hour)["score"].agg(["count", "mean"]).reindex(idx)
    ext = (news["score"].abs() >= p.extreme_threshold).groupby(hour).mean().reindex(idx)
    out["sentiment_mean"] = agg["mean"]
    out["sentiment_count"] = agg["count"].fillna(0)
    prev_mean = agg["mean"].ffill(limit=p.sentiment_change_max_gap_h - 1).shift(1)
    out["sentiment_change_1h"] = agg["mean"] - prev_mean
    out["sentiment_extreme"] = ext
    out["social_volume"] = np.nan
    soc = inputs.social
    out["social_sentiment"] = (
        soc.groupby(soc["available_at"].dt.floor("h"))["score"].mean().reindex(idx) if len(soc) else np.nan
    )
    out["hour_of_day"] = idx.hour
    return out.loc[c.index]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--lookups", type=int, default=10_000)
    args = ap.parse_args()
    data = Path(args.data)
    if not (data / "btc_usd_1h_2019-11_2025-05.csv").is_file():
        print(json.dumps({"skipped": f"real data folder {data} is absent"}))
        return 0
    state = tempfile.mkdtemp(prefix="rfb", dir="/tmp")
    os.environ["RAYAPP_STATE_DIR"] = state

    import ray

    from rayapp.config import load_settings
    from rayapp.features.build import build_frame, validate_features
    from rayapp.features.definitions import feature_set_from_settings, register_feature_set
    from rayapp.features.offline_store import read_inputs, write_features
    from rayapp.features.online import materialize_latest, online_store
    from rayapp.sentiment.vader import VaderBackend
    from rayapp.services import services_down, services_up
    from rayapp.testing.realdata import load_real_silver, score_titles
    from rayapp.warehouse import get_pool
    from rayapp.warehouse.db import close_pools

    settings = load_settings([f"state_dir={state}"])
    services_up(settings)
    try:
        pool = get_pool(settings)
        with pool.connection() as conn:
            t = time.perf_counter()
            loaded = load_real_silver(conn, data, dict(settings.ingest.backfill_lag_min), fear_greed=False)
            scored = score_titles(conn, VaderBackend().predict)  # the VADER lexicon
            print(f"silver loaded {loaded}, scored {scored} in {time.perf_counter() - t:.1f}s", file=sys.stderr)
            fs = feature_set_from_settings(settings, conn)
            register_feature_set(conn, fs)
            ncpu = os.cpu_count() or 2
            ray.init(num_cpus=ncpu, include_dashboard=False, log_to_driver=False, configure_logging=False)
            symbol = settings.symbols[0]

            def build() -> tuple[pd.DataFrame, float, dict[str, float]]:
                t0 = time.perf_counter()
                inputs = read_inputs(conn, symbol, fs.params)
                t1 = time.perf_counter()
                frame, chunks = build_frame(inputs, fs, chunk_h=settings.features.chunk_h)
                t2 = time.perf_counter()
                valid, bad = validate_features(frame, fs)
                t3 = time.perf_counter()
                assert not bad, bad[:3]
                return valid, t3 - t0, {"read": t1 - t0, "compute": t2 - t1, "validate": t3 - t2, "chunks": chunks}

            _, cold_s, cold_parts = build()
            frame, build_s, parts = build()
            print(f"build cold {cold_s:.2f}s {cold_parts}; warm {build_s:.2f}s {parts}", file=sys.stderr)
            ray.shutdown()  # its daemons would only add noise to the lookup latencies

            t0 = time.perf_counter()
            inputs = read_inputs(conn, symbol, fs.params)
            base = pandas_features(inputs, fs.params)
            pandas_s = time.perf_counter() - t0
            warm = frame.index[5000:]
            for name in ("sma_20", "rsi", "atr", "volume_ratio", "sentiment_mean", "sentiment_count"):
                diff = np.nanmax(np.abs(base.loc[warm, name].to_numpy(float) - frame.loc[warm, name].to_numpy()))
                print(f"pandas vs build max |diff| {name}: {diff:.3g}", file=sys.stderr)
            agree = (base.loc[warm, "volatility_regime"] == frame.loc[warm, "volatility_regime"]).mean()
            print(f"volatility_regime agreement {agree:.4f}", file=sys.stderr)

            t = time.perf_counter()
            res = write_features(conn, symbol, fs.version, frame)
            store = online_store(settings)
            materialize_latest(conn, store, symbol, fs.version)
            print(f"store write (not in build_s): {res.as_dict()} in {time.perf_counter() - t:.2f}s", file=sys.stderr)

        print(f"load average before lookups: {os.getloadavg()} on {os.cpu_count()} CPUs", file=sys.stderr)
        lat = np.empty(args.lookups)
        for _ in range(200):
            store.read(symbol, fs.version)
        for i in range(args.lookups):
            t = time.perf_counter()
            vec = store.read(symbol, fs.version)
            lat[i] = time.perf_counter() - t
        assert vec is not None and len(vec.values) == len(fs.names)
        result = {
            "rows": len(frame),
            "build_s": round(build_s, 3),
            "pandas_s": round(pandas_s, 3),
            "online_p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 4),
            "online_p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 4),
        }
    finally:
        close_pools()
        services_down(settings)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
