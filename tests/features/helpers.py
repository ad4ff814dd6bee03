"""Helpers over the generated silver (tests/features/factories.py): feature inputs built from it,
its rows loaded into the warehouse, and bit-exact frame comparison."""

from __future__ import annotations

import pandas as pd

from rayapp.features.definitions import FeatureSet
from rayapp.features.frame import FeatureInputs
from rayapp.features.inputs import inputs_from_silver
from rayapp.warehouse import upsert_frame
from tests.features import factories as F


def to_inputs(s: F.Silver, fs: FeatureSet, symbol: str = "BTCUSDT") -> FeatureInputs:
    return inputs_from_silver(symbol, s.candles, s.articles, s.sentiment, s.social_counts, s.market, fs.params)


def load_silver(conn, s: F.Silver) -> None:
    for table, df, key in s.tables():
        upsert_frame(conn, table, df, key=key)
    conn.commit()


def frames_identical(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Same index, columns and float bits (NaN == NaN)."""
    return (
        a.index.equals(b.index)
        and list(a.columns) == list(b.columns)
        and bool((a.to_numpy("float64").view("int64") == b.to_numpy("float64").view("int64")).all())
    )
