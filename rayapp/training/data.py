"""The training frame: point-in-time features at hour t plus the h-hour forward return target.

Features come from the offline store (`rayapp.features.load_features`) or, for
tests and ad-hoc runs, from any DataFrame of features plus close prices. The target is the log
return from close(t) to close(t+h), looked up by time, so a missing hour leaves a NaN target that
is dropped and counted, never filled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rayapp.errors import InputError
from rayapp.log import get_logger

log = get_logger(__name__)


def feature_groups() -> dict[str, list[str]]:
    """The feature groups (price, sentiment, social, ...) as the features stage defines them."""
    from rayapp.features import FEATURE_GROUPS

    return {str(k): list(v) for k, v in FEATURE_GROUPS.items()}


class TrainingDataError(InputError):
    """The input cannot make a training frame; the message says what is wrong (exit 2)."""


@dataclass
class TrainingFrame:
    X: pd.DataFrame  # index: hour t (UTC), columns: features in model order
    y: np.ndarray  # 1 = the h-hour return is > 0
    ret: np.ndarray  # log return close(t) -> close(t+h)
    last_ret: np.ndarray  # log return close(t-1h) -> close(t), for the persistence baselines
    horizon: int
    feature_set_version: str = "adhoc"
    groups: dict[str, list[str]] = field(default_factory=feature_groups)

    @property
    def times(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.X.index)

    @property
    def feature_names(self) -> list[str]:
        return [str(c) for c in self.X.columns]

    def __len__(self) -> int:
        return len(self.X)

    @property
    def next_ret(self) -> np.ndarray:
        """The 1-hour log return from each row's hour to the next (the next row's last_ret when the
        next row is the next hour; NaN otherwise): what an hourly book earns that hour."""
        return next_hour_returns(self.times, self.last_ret)

    def data_range(self) -> list[str]:
        return [self.times[0].isoformat(), self.times[-1].isoformat()] if len(self) else []

    def select(self, columns: list[str]) -> TrainingFrame:
        missing = [c for c in columns if c not in self.X.columns]
        if missing:
            raise TrainingDataError(f"features not in the frame: {missing}")
        return TrainingFrame(
            self.X[columns],
            self.y,
            self.ret,
            self.last_ret,
            self.horizon,
            self.feature_set_version,
            self.groups,
        )

    def between(self, start: Any = None, end: Any = None) -> TrainingFrame:
        t = self.times
        mask = np.ones(len(t), dtype=bool)
        if start is not None:
            mask &= t >= _utc(start)
        if end is not None:
            mask &= t < _utc(end)
        return TrainingFrame(
            self.X[mask],
            self.y[mask],
            self.ret[mask],
            self.last_ret[mask],
            self.horizon,
            self.feature_set_version,
            self.groups,
        )

    def group_columns(self, group: str) -> list[str]:
        return [c for c in self.groups.get(group, []) if c in self.X.columns]

    def groups_with_data(self) -> dict[str, dict[str, Any]]:
        """Per group: its columns present, the share of rows with a value, and whether any varies."""
        out: dict[str, dict[str, Any]] = {}
        for g in self.groups:
            cols = self.group_columns(g)
            share = float(_has_value(self.X[cols]).any(axis=1).mean()) if cols and len(self) else 0.0
            # A column that never varies (e.g. an article count of 0 in every hour) carries no data.
            varies = any(self.X[c].nunique(dropna=True) > 1 for c in cols)
            out[g] = {"columns": cols, "coverage": share if varies else 0.0, "has_data": share > 0 and varies}
        return out

    def to_frame(self) -> pd.DataFrame:
        """Features plus targets, e.g. to write a file for `rayapp train --data`."""
        df = self.X.copy()
        df["target_ret"] = self.ret
        df["last_ret"] = self.last_ret
        return df


def next_hour_returns(times: Any, last_ret: np.ndarray) -> np.ndarray:
    """The 1-hour return from each hour to the next: the next row's last return when the next row
    is the next hour, NaN otherwise (a gap, or the last row)."""
    idx = pd.DatetimeIndex(times)
    out = np.full(len(idx), np.nan)
    if len(idx) > 1:
        hours = idx.as_unit("s").asi8 // 3600
        out[:-1] = np.where(np.diff(hours) == 1, np.asarray(last_ret, float)[1:], np.nan)
    return out


def _has_value(df: pd.DataFrame) -> pd.DataFrame:
    """Non-missing cells; in count columns (`*_count`, `*_volume`) a 0 means nothing was seen."""
    present = df.notna()
    for c in df.columns:
        if str(c).endswith(("_count", "_volume")):
            present[c] &= df[c].fillna(0).to_numpy() != 0
    return present


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _utc_index(index: Any) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    if idx.tz is None:
        raise TrainingDataError("feature timestamps must be timezone-aware (UTC)")
    return idx.tz_convert("UTC")


def build_training_frame(
    features: pd.DataFrame,
    close: pd.Series,
    horizon: int = 1,
    feature_set_version: str = "adhoc",
    groups: dict[str, list[str]] | None = None,
) -> TrainingFrame:
    """Attach the h-hour forward log return of `close` to each feature row at hour t."""
    if horizon < 1:
        raise TrainingDataError(f"horizon must be >= 1 hour, got {horizon}")
    if features.empty:
        raise TrainingDataError("the feature frame is empty")
    feats = features.copy()
    feats.index = _utc_index(feats.index)
    if feats.index.has_duplicates:
        dup = feats.index[feats.index.duplicated()].unique()
        raise TrainingDataError(f"{len(dup)} duplicated feature hours, first {dup[0]}")
    feats = feats.sort_index()
    bad = [c for c in feats.columns if not pd.api.types.is_numeric_dtype(feats[c])]
    if bad:
        raise TrainingDataError(f"non-numeric feature columns: {bad}")
    px = pd.Series(close, dtype=float)
    px.index = _utc_index(px.index)
    px = px[~px.index.duplicated(keep="last")].sort_index()
    if (px <= 0).any() or not np.isfinite(px.to_numpy()).all():
        raise TrainingDataError("close prices must be finite and > 0")
    now = px.reindex(feats.index).to_numpy()
    ahead = px.reindex(feats.index + pd.Timedelta(hours=horizon)).to_numpy()
    before = px.reindex(feats.index - pd.Timedelta(hours=1)).to_numpy()
    ret = np.log(ahead / now)
    keep = np.isfinite(ret)
    dropped = int((~keep).sum())
    log.info(
        "training frame built",
        rows=len(feats),
        kept=int(keep.sum()),
        dropped_no_target=dropped,
        horizon_h=horizon,
        features=feats.shape[1],
    )
    if not keep.any():
        raise TrainingDataError("no feature hour has a close price h hours later")
    X = feats[keep].astype("float64")
    r = ret[keep]
    return TrainingFrame(
        X=X,
        y=(r > 0).astype(np.int8),
        ret=r,
        last_ret=np.log(now / before)[keep],
        horizon=horizon,
        feature_set_version=feature_set_version,
        groups=groups or feature_groups(),
    )


def frame_from_table(df: pd.DataFrame, horizon: int, feature_set_version: str = "adhoc") -> TrainingFrame:
    """A frame from a file written by `TrainingFrame.to_frame` (index or column `ts`)."""
    data = df.set_index("ts") if "ts" in df.columns else df
    if "target_ret" not in data.columns:
        raise TrainingDataError("the data file needs a target_ret column (see TrainingFrame.to_frame)")
    data = data.copy()
    data.index = _utc_index(data.index)
    data = data.sort_index()
    ret = data.pop("target_ret").to_numpy(dtype=float)
    last = data.pop("last_ret").to_numpy(dtype=float) if "last_ret" in data.columns else np.full(len(data), np.nan)
    keep = np.isfinite(ret)
    if (~keep).any():
        log.warning("rows without a target dropped", dropped=int((~keep).sum()), kept=int(keep.sum()))
    return TrainingFrame(
        X=data[keep].astype("float64"),
        y=(ret[keep] > 0).astype(np.int8),
        ret=ret[keep],
        last_ret=last[keep],
        horizon=horizon,
        feature_set_version=feature_set_version,
    )


def read_data_file(path: str | Path, horizon: int) -> TrainingFrame:
    p = Path(path)
    if not p.exists():
        raise TrainingDataError(f"data file {p} does not exist")
    df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p, parse_dates=["ts"])
    return frame_from_table(df, horizon, feature_set_version=f"file:{p.name}")


def load_training_frame(
    settings: Any, start: Any = None, end: Any = None, symbol: str | None = None, feature_set_version: str | None = None
) -> TrainingFrame:
    """Features from the offline store plus closes from the candle source the feature set reads."""
    from rayapp.features import load_close, load_features

    sym = symbol or settings.symbols[0]
    h = settings.features.horizon_h
    feats = load_features(settings, sym, feature_set_version, start, end)
    if feats.empty:
        raise TrainingDataError(f"no stored features for {sym} in [{start}, {end}): run `rayapp features build`")
    fsv = str(feats.attrs.get("feature_set_version", feature_set_version or "unknown"))
    close = load_close(
        settings, sym, fsv, feats.index[0] - pd.Timedelta(hours=1), feats.index[-1] + pd.Timedelta(hours=h + 1)
    )
    return build_training_frame(feats, close, h, fsv)


def read_price_csv(path: str | Path) -> pd.DataFrame:
    """The CryptoCompare hourly file (`time,date,hour,open,high,close,low,volumefrom,volumeto`)."""
    p = Path(path)
    if not p.exists():
        raise TrainingDataError(f"price file {p} does not exist")
    raw = pd.read_csv(p)
    need = {"time", "open", "high", "low", "close", "volumefrom"}
    if not need <= set(raw.columns):
        raise TrainingDataError(f"{p.name}: expected columns {sorted(need)}, got {list(raw.columns)}")
    idx = pd.DatetimeIndex(pd.to_datetime(raw["time"].astype("int64"), unit="s", utc=True), name="open_time")
    candles = pd.DataFrame(
        {
            "open": raw["open"].to_numpy(float),
            "high": raw["high"].to_numpy(float),
            "low": raw["low"].to_numpy(float),
            "close": raw["close"].to_numpy(float),
            "volume": raw["volumefrom"].to_numpy(float),
        },
        index=idx,
    )
    return candles[~candles.index.duplicated(keep="last")].sort_index()


def price_file_frame(path: str | Path, horizon: int = 1, set_name: str = "core") -> TrainingFrame:
    """Features computed by the features package from candles alone (no news or social data:
    those groups are all-missing), for runs and benchmarks without a warehouse."""
    from rayapp.features import FeatureInputs, compute_features, make_feature_set

    candles = read_price_csv(path)
    fs = make_feature_set(set_name)
    inputs = FeatureInputs(
        symbol="BTCUSDT",
        candle_source="csv",
        candles=candles,
        news=FeatureInputs.empty_items(),
        social=FeatureInputs.empty_items(),
        social_counts=FeatureInputs.empty_counts(),
        market=FeatureInputs.empty_market(),
    )
    feats = compute_features(inputs, fs)
    return build_training_frame(feats, candles["close"], horizon, f"{fs.version}:{Path(path).name}")
