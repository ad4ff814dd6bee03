"""COPY+upsert vs row-by-row executemany for the 48,024 real hourly candles.

Starts its own embedded PostgreSQL under a temporary state dir (or uses --database-url), loads the
history cold, reloads it (idempotent: 0 inserted, 0 updated), then truncates and loads it again
row by row (one INSERT .. ON CONFLICT round trip per row) as the baseline, and once more with
psycopg 3's pipelined `executemany` for reference. Last line: JSON.

    python benchmarks/warehouse_load.py [--data ../shared/data] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
KEY = ["source", "symbol", "open_time"]


def read_history(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path)
    return pd.DataFrame(
        {
            "source": "cryptocompare",
            "symbol": "BTCUSD",
            "open_time": pd.to_datetime(raw["time"], unit="s", utc=True),
            "open": raw["open"],
            "high": raw["high"],
            "low": raw["low"],
            "close": raw["close"],
            "volume": raw["volumefrom"],
            "quote_volume": raw["volumeto"],
        }
    )


def executemany_load(conn, df: pd.DataFrame, *, pipelined: bool) -> None:
    """The baseline: one parameterised INSERT .. ON CONFLICT per row.

    pipelined=False sends the rows one round trip each (what executemany does in psycopg2, and in
    psycopg 3 when libpq has no pipeline mode); pipelined=True is psycopg 3's default executemany,
    which batches the same per-row statements into one pipeline.
    """
    cols = list(df.columns)
    rows = [
        tuple(v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in r)
        for r in df.astype(object).itertuples(index=False)
    ]
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in KEY)
    stmt = (
        f"INSERT INTO candles ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
        f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {sets}"
    )
    with conn.transaction(), conn.cursor() as cur:
        if pipelined:
            cur.executemany(stmt, rows)
        else:
            for row in rows:
                cur.execute(stmt, row, prepare=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--database-url", default=None, help="external PostgreSQL (default: embedded, temporary)")
    args = ap.parse_args()
    path = args.data / "btc_usd_1h_2019-11_2025-05.csv"
    if not path.exists():
        print(f"skip: {path} is absent", file=sys.stderr)
        return 0

    from rayapp.config import load_settings
    from rayapp.services import services_down
    from rayapp.warehouse import get_pool, upsert_frame

    df = read_history(path)
    with tempfile.TemporaryDirectory(prefix="rb-") as tmp:
        overrides = [f"state_dir={tmp}"] + ([f"database.url={args.database_url}"] if args.database_url else [])
        settings = load_settings(overrides)
        try:
            with get_pool(settings).connection() as conn:
                conn.execute("TRUNCATE candles")
                conn.commit()
                t0 = time.perf_counter()
                cold = upsert_frame(conn, "candles", df, key=KEY)
                copy_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                again = upsert_frame(conn, "candles", df, key=KEY)
                reload_s = time.perf_counter() - t0
                conn.execute("TRUNCATE candles")
                conn.commit()
                t0 = time.perf_counter()
                executemany_load(conn, df, pipelined=False)
                many_s = time.perf_counter() - t0
                n = conn.execute("SELECT count(*) FROM candles").fetchone()[0]
                conn.execute("TRUNCATE candles")
                conn.commit()
                t0 = time.perf_counter()
                executemany_load(conn, df, pipelined=True)
                pipelined_s = time.perf_counter() - t0
                conn.execute("TRUNCATE candles")
                conn.commit()
        finally:
            from rayapp.warehouse.db import close_pools

            close_pools()
            if not args.database_url:
                services_down(settings)
    assert cold.inserted == len(df) and again.inserted == 0 and again.updated == 0 and n == len(df)
    print(
        json.dumps(
            {
                "rows": len(df),
                "copy_upsert_s": round(copy_s, 3),
                "reload_s": round(reload_s, 3),
                "reload_inserted": again.inserted,
                "reload_updated": again.updated,
                "executemany_s": round(many_s, 3),
                "speedup": round(many_s / copy_s, 1),
                "pipelined_executemany_s": round(pipelined_s, 3),
                "speedup_vs_pipelined": round(pipelined_s / copy_s, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
