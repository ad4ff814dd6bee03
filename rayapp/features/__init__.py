"""Features: the feature definitions, point-in-time joins, and the offline/online feature stores.

The names below are the stage's public API; other packages import only these (checked by
`lint-imports`). They load on first use so that importing the package stays cheap.
"""

from typing import TYPE_CHECKING

from rayapp.exports import lazy_exports

if TYPE_CHECKING:
    from rayapp.features.build import BuildSummary, run_build, update_after_ingest
    from rayapp.features.definitions import FEATURE_GROUPS, feature_set_from_settings, make_feature_set
    from rayapp.features.errors import FeatureInputError, FeatureSetNotFound
    from rayapp.features.frame import FeatureInputs, compute_features
    from rayapp.features.inputs import pick_source
    from rayapp.features.offline_store import candle_sources, load_close, load_features
    from rayapp.features.online import online_check
    from rayapp.features.online_redis import AsyncOnlineReader, RedisOnlineStore
    from rayapp.features.online_store import OnlineStore, OnlineVector, open_online_store
    from rayapp.features.ranges import FEATURE_RANGES, FeatureRange, out_of_range
    from rayapp.features.realized_vol import (
        RV_FEATURES,
        RV_WARMUP_H,
        realized_vol_features,
        realized_vol_for_rows,
        realized_vol_from_returns,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rayapp.features.build": ("BuildSummary", "run_build", "update_after_ingest"),
        "rayapp.features.definitions": ("FEATURE_GROUPS", "feature_set_from_settings", "make_feature_set"),
        "rayapp.features.errors": ("FeatureInputError", "FeatureSetNotFound"),
        "rayapp.features.frame": ("FeatureInputs", "compute_features"),
        "rayapp.features.inputs": ("pick_source",),
        "rayapp.features.offline_store": ("candle_sources", "load_close", "load_features"),
        "rayapp.features.online": ("online_check",),
        "rayapp.features.online_redis": ("AsyncOnlineReader", "RedisOnlineStore"),
        "rayapp.features.online_store": ("OnlineStore", "OnlineVector", "open_online_store"),
        "rayapp.features.ranges": ("FEATURE_RANGES", "FeatureRange", "out_of_range"),
        "rayapp.features.realized_vol": (
            "RV_FEATURES",
            "RV_WARMUP_H",
            "realized_vol_features",
            "realized_vol_for_rows",
            "realized_vol_from_returns",
        ),
    },
)

__all__ = [
    "FEATURE_GROUPS",
    "FEATURE_RANGES",
    "RV_FEATURES",
    "RV_WARMUP_H",
    "AsyncOnlineReader",
    "BuildSummary",
    "FeatureInputError",
    "FeatureInputs",
    "FeatureRange",
    "FeatureSetNotFound",
    "OnlineStore",
    "OnlineVector",
    "RedisOnlineStore",
    "candle_sources",
    "compute_features",
    "feature_set_from_settings",
    "load_close",
    "load_features",
    "make_feature_set",
    "online_check",
    "open_online_store",
    "out_of_range",
    "pick_source",
    "realized_vol_features",
    "realized_vol_for_rows",
    "realized_vol_from_returns",
    "run_build",
    "update_after_ingest",
]
