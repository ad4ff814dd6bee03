"""CSV history into silver, through the same validation and upserts as live ingest.

Formats are exactly those of the files in ../shared/data (see its README):

- ``cryptocompare``: hourly ``time,date,hour,open,high,close,low,volumefrom,volumeto``
  (unix seconds; **close before low**),
- ``binance``: Binance data-portal klines (12 columns, ms or µs times, header optional),
- ``cryptonews``: ``;``-separated news with day-first ``D-M-YYYY HH:MM`` dates, newest first,
- ``fear-greed``: ``value,value_classification,timestamp`` with every day twice and mixed
  ``YYYY-MM-DD`` / ``YYYY-MM-DD HH:MM:SS`` timestamps.

A line the CSV parser cannot split into the header's columns, or a field that is not a number or
date, goes to quarantine with the raw fields; everything else is vectorised pandas (the 48k-row
price file loads in about a second).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from rayapp.errors import InputError
from rayapp.ingest.silver import SourceSummary, write_silver
from rayapp.log import get_logger
from rayapp.warehouse.quarantine import QuarantinedRow

log = get_logger(__name__)

CRYPTOCOMPARE_COLS = ["time", "date", "hour", "open", "high", "close", "low", "volumefrom", "volumeto"]
BINANCE_COLS = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
]
NEWS_COLS = ["date", "sentiment", "source", "subject", "text", "title", "url"]
FEAR_GREED_COLS = ["value", "value_classification", "timestamp"]
FEAR_GREED_INDEX = "fear_greed"
FEAR_GREED_SOURCE = "fear_greed"  # as the live client names it: one source per row either way

PRICE_FORMATS = ("cryptocompare", "binance")
NEWS_FORMATS = ("cryptonews",)
FEAR_GREED_FORMATS = ("fear-greed",)


class BackfillError(InputError):
    """The file is not in the format asked for (wrong header, unreadable): nothing was written."""


@dataclass
class Parsed:
    """A CSV file turned into silver rows plus the lines that could not be."""

    table: str
    source: str
    frame: pd.DataFrame
    raw: pd.DataFrame  # the CSV fields as text, indexed like `frame`
    rejected: list[QuarantinedRow] = field(default_factory=list)
    skipped: int = 0


# ---- reading ------------------------------------------------------------------------------------
def read_records(
    path: Path, columns: Sequence[str], sep: str = ",", header: bool | None = None
) -> tuple[pd.DataFrame, list[QuarantinedRow]]:
    """The file's rows as text columns; rows with the wrong number of fields are rejected.

    `header=None` detects it: a first row equal to `columns` is a header. Index = record number
    (1-based, data rows only), stable across runs so quarantine keys stay idempotent.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh, delimiter=sep))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BackfillError(f"{path}: cannot read as CSV: {exc}") from exc
    if rows and header is not False:
        first = [c.strip().lower() for c in rows[0]]
        if first == [c.lower() for c in columns]:
            rows = rows[1:]
        elif header:
            raise BackfillError(f"{path}: header {rows[0]} is not the expected {list(columns)}")
    # Blank lines are not records (csv yields []); they carry nothing to keep.
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    records = np.arange(1, len(rows) + 1)
    keep = lengths > 0
    good = keep & (lengths == len(columns))
    rejected = [
        QuarantinedRow(
            f"{path.name}#{records[i]}",
            "csv_field_count",
            f"expected {len(columns)} fields, got {lengths[i]}",
            {"file": path.name, "record": int(records[i]), "fields": rows[i]},
        )
        for i in np.nonzero(keep & ~good)[0]
    ]
    # Only a file with bad or blank lines pays for picking rows out one by one.
    good_rows = rows if good.all() else [rows[i] for i in np.nonzero(good)[0]]
    frame = pd.DataFrame(good_rows, columns=list(columns), dtype=object)
    frame.index = pd.Index(records[good], name="record")
    frame = frame.astype("string")
    if not len(rows):
        log.warning("empty file", path=str(path))
    return frame, rejected


class _Rejector:
    """Collects parse failures (vectorised masks) and removes those rows from the frame."""

    def __init__(self, path: Path, raw: pd.DataFrame) -> None:
        self.path, self.raw = path, raw
        self.rejected: list[QuarantinedRow] = []
        self.bad = pd.Series(False, index=raw.index)

    def reject(self, mask: pd.Series, check: str, reason: str) -> None:
        mask = mask.fillna(False).astype(bool) & ~self.bad
        for idx in mask.index[mask]:
            fields = {k: (None if pd.isna(v) else str(v)) for k, v in self.raw.loc[idx].items()}
            self.rejected.append(
                QuarantinedRow(
                    f"{self.path.name}#{idx}", check, reason, {"file": self.path.name, "record": int(idx), **fields}
                )
            )
        self.bad |= mask

    def number(self, s: pd.Series, column: str) -> pd.Series:
        out = pd.to_numeric(s.str.strip(), errors="coerce")
        self.reject(
            out.isna() & s.notna() & (s.str.strip() != ""), f"{column}:unparseable_number", f"{column} is not a number"
        )
        return out.astype("float64")


def _source_symbol(path: Path, default: str) -> str:
    # Data-portal names look like BTCUSDT-1h-2023-01.csv (ours: binance_BTCUSDT-1h-2023-01.csv).
    m = re.search(r"(?:^|_)([A-Z0-9]{5,})-1h-", path.name)
    return m.group(1) if m else default


# ---- formats ------------------------------------------------------------------------------------
def parse_cryptocompare(path: Path, symbol: str, source: str = "cryptocompare") -> Parsed:
    raw, rejected = read_records(path, CRYPTOCOMPARE_COLS, header=True)
    rj = _Rejector(path, raw)
    t = rj.number(raw["time"], "time")
    num = {c: rj.number(raw[c], c) for c in ("open", "high", "close", "low", "volumefrom", "volumeto")}
    open_time = pd.to_datetime(t, unit="s", utc=True, errors="coerce")
    # The export repeats the open time as date + hour: when they disagree the row is ambiguous.
    hour = pd.to_numeric(raw["hour"], errors="coerce")
    day = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce", utc=True)
    stated = day + pd.to_timedelta(hour, unit="h")
    rj.reject(
        stated.notna() & open_time.notna() & (stated != open_time),
        "time_matches_date_hour",
        "time does not match date + hour",
    )
    frame = pd.DataFrame(
        {
            "source": source,
            "symbol": symbol,
            "open_time": open_time,
            "open": num["open"],
            "high": num["high"],
            "low": num["low"],
            "close": num["close"],
            "volume": num["volumefrom"],
            "quote_volume": num["volumeto"],
            "trades": pd.array([pd.NA] * len(raw), dtype="Int64"),
        },
        index=raw.index,
    )
    return Parsed("candles", source, frame[~rj.bad], raw, rejected + rj.rejected)


def parse_binance(path: Path, symbol: str, source: str = "binance") -> Parsed:
    raw, rejected = read_records(path, BINANCE_COLS)
    rj = _Rejector(path, raw)
    ot, ct = rj.number(raw["open_time"], "open_time"), rj.number(raw["close_time"], "close_time")
    # Spot exports switched from milliseconds to microseconds in 2025.
    unit = np.where(ot > 1e14, 1_000, 1)
    ot_ms, ct_ms = ot / unit, ct / unit
    span = ((ct_ms - ot_ms) / 1000).round().dropna()  # close_time is the bar's last ms (or µs)
    if len(span) and span.median() != 3600:
        raise BackfillError(
            f"{path}: klines span {span.median():.0f}s, not 1h: only hourly exports can be loaded into candles"
        )
    # A bar may close early (the 2023-03-24 trading halt) and is still that hour's bar; a bar
    # that does not open on the hour is not an hourly candle at all.
    rj.reject(ot_ms.notna() & (ot_ms % 3_600_000 != 0), "open_time_on_hour", "open_time is not on the hour")
    num = {c: rj.number(raw[c], c) for c in ("open", "high", "low", "close", "volume", "quote_volume")}
    trades = rj.number(raw["count"], "count")
    frame = pd.DataFrame(
        {
            "source": source,
            "symbol": _source_symbol(path, symbol),
            "open_time": pd.to_datetime(ot_ms, unit="ms", utc=True, errors="coerce"),
            "open": num["open"],
            "high": num["high"],
            "low": num["low"],
            "close": num["close"],
            "volume": num["volume"],
            "quote_volume": num["quote_volume"],
            "trades": trades.round().astype("Int64"),
        },
        index=raw.index,
    )
    return Parsed("candles", source, frame[~rj.bad], raw, rejected + rj.rejected)


def _lag(lags: dict[str, float], source: pd.Series) -> pd.Series:
    default = float(lags.get("default", 0.0))
    per_source = {k: float(v) for k, v in lags.items() if k != "default"}
    minutes = source.astype(object).map(per_source).astype("float64").fillna(default)
    return pd.to_timedelta(minutes, unit="min")


def parse_cryptonews(path: Path, lags: dict[str, float], source: str = "news_csv") -> Parsed:
    from rayapp.ingest.ids import article_id

    raw, rejected = read_records(path, NEWS_COLS, sep=";", header=True)
    rj = _Rejector(path, raw)
    published = pd.to_datetime(raw["date"].str.strip(), format="%d-%m-%Y %H:%M", errors="coerce")
    rj.reject(published.isna(), "published_at:unparseable_date", "date is not D-M-YYYY HH:MM")
    published = published.dt.tz_localize("UTC")
    log.info("news dates carry no timezone: treated as UTC", path=str(path))
    log.info("news 'sentiment' column ignored: TextBlob output, not a label", path=str(path))
    publisher = raw["source"].fillna("").str.strip().str.lower().str.replace(r"\s+", "_", regex=True)
    url = raw["url"].str.strip().replace("", pd.NA)
    title = raw["title"].fillna("").str.strip()
    # Rows without a URL have no natural id: a hash of what they say is stable across re-runs.
    content = raw["date"].fillna("") + "|" + title + "|" + raw["text"].fillna("")
    guid = pd.Series(pd.NA, index=raw.index, dtype="string")
    no_url = url.isna()
    guid[no_url] = ["csv:" + hashlib.sha1(c.encode()).hexdigest()[:20] for c in content[no_url]]
    ident = guid.fillna(url).fillna("")
    ids = [
        article_id(s or source, i) if i else pd.NA
        for s, i in zip(publisher.astype(object), ident.astype(object), strict=True)
    ]
    first_seen = published + _lag(lags, publisher)
    frame = pd.DataFrame(
        {
            "article_id": ids,
            "kind": "news",
            "source": publisher,
            "guid": guid,
            "url": url,
            "title": title,
            "body": raw["text"],
            "categories": [[s] if isinstance(s, str) and s else [] for s in raw["subject"].astype(object)],
            "published_at": published,
            # Backfilled: we never saw it live, so it counts as available at published_at + lag.
            "first_seen_at": first_seen,
            "backfilled": True,
        },
        index=raw.index,
    )
    return Parsed("articles", source, frame[~rj.bad], raw, rejected + rj.rejected)


def parse_fear_greed(path: Path, source: str = FEAR_GREED_SOURCE) -> Parsed:
    raw, rejected = read_records(path, FEAR_GREED_COLS, header=True)
    rj = _Rejector(path, raw)
    value = rj.number(raw["value"], "value")
    ts_text = raw["timestamp"].str.strip()
    unix = pd.to_numeric(ts_text, errors="coerce")
    ts = pd.to_datetime(ts_text, format="%Y-%m-%d %H:%M:%S", errors="coerce", utc=True)
    ts = ts.fillna(pd.to_datetime(ts_text, format="%Y-%m-%d", errors="coerce", utc=True))
    ts = ts.fillna(pd.to_datetime(unix, unit="s", errors="coerce", utc=True))
    rj.reject(ts.isna(), "ts:unparseable_date", "timestamp is not YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or unix seconds")
    frame = pd.DataFrame(
        {
            "index_name": FEAR_GREED_INDEX,
            "ts": ts.dt.floor("D"),
            "value": value,
            "classification": raw["value_classification"].str.strip(),
            "source": source,
        },
        index=raw.index,
    )[~rj.bad]
    # Every day appears twice: identical repeats are skipped (counted); a day with two different
    # values is left to silver, which keeps the first and quarantines the other.
    repeat = frame.duplicated(subset=["index_name", "ts", "value", "classification"], keep="first")
    return Parsed("market_index", source, frame[~repeat], raw, rejected + rj.rejected, skipped=int(repeat.sum()))


# ---- entry points -------------------------------------------------------------------------------
def detect_price_format(path: Path) -> str:
    with open(path, encoding="utf-8-sig") as fh:
        first = fh.readline().strip().lower()
    if first.startswith("time,date,hour"):
        return "cryptocompare"
    head = first.split(",")[0]
    if head == "open_time" or head.isdigit():
        return "binance"
    raise BackfillError(f"{path}: unknown price format (header {first[:80]!r}); pass --format")


def parse_file(kind: str, path: Path, fmt: str | None, *, symbol: str, lags: dict[str, float]) -> Parsed:
    if not path.is_file():
        raise BackfillError(f"{path}: no such file")
    if kind == "prices":
        fmt = fmt or detect_price_format(path)
        parsers: dict[str, Callable[[], Parsed]] = {
            "cryptocompare": lambda: parse_cryptocompare(path, symbol),
            "binance": lambda: parse_binance(path, symbol),
        }
    elif kind == "news":
        fmt = fmt or "cryptonews"
        parsers = {"cryptonews": lambda: parse_cryptonews(path, lags)}
    elif kind == "fear-greed":
        fmt = fmt or "fear-greed"
        parsers = {"fear-greed": lambda: parse_fear_greed(path)}
    else:
        raise BackfillError(f"unknown backfill kind {kind!r}")
    if fmt not in parsers:
        raise BackfillError(f"format {fmt!r} is not a {kind} format (use one of {sorted(parsers)})")
    return parsers[fmt]()


def backfill_file(
    conn: psycopg.Connection, kind: str, path: Path, fmt: str | None = None, *, symbol: str, lags: dict[str, float]
) -> SourceSummary:
    """Parse one CSV and load it: valid rows upserted, the rest quarantined, all counted."""
    parsed = parse_file(kind, path, fmt, symbol=symbol, lags=lags)
    summary = write_silver(
        conn,
        parsed.table,
        parsed.frame,
        source=parsed.source,
        raw=parsed.raw,
        rejected=parsed.rejected,
        skipped=parsed.skipped,
    )
    log.info(
        "backfill file loaded",
        path=str(path),
        table=parsed.table,
        source=parsed.source,
        read=summary.read,
        written=summary.written,
        unchanged=summary.unchanged,
        quarantined=summary.quarantined,
        skipped=summary.skipped,
    )
    return summary
