"""Hypothesis fuzz of the request models and the feature-vector path (pure: no service, no Ray).

- `PredictRequest` takes any JSON document without raising anything but a ValidationError, and
  what it accepts is strictly typed (a symbol string, a boolean `explain`, finite numbers or null).
- Every vector the API accepts (the model, then the documented ranges) is scored and explained by
  a real booster and bundle without raising; the explanation adds up to the booster's margin and
  the answer is strict JSON. The same holds for any finite value at all (a stored vector is not
  range-checked): `feature_row` never hands the booster an inf.
- An error body built from any input stays small (echoed input truncated).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rayapp.features import FEATURE_RANGES, out_of_range
from rayapp.serving.api_models import PredictRequest
from rayapp.serving.hardening import MAX_ECHO_CHARS, truncate_errors
from rayapp.serving.predictor import feature_row, score
from rayapp.testing.serving import FEATURE_NAMES, FSV, fit_bundle, make_market, train_booster

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
FUZZ_MODEL = settings(FUZZ, max_examples=30)  # each example scores and explains with a real booster

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
)
any_number = st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(10**400), max_value=10**400)
near_valid = st.fixed_dictionaries(
    {"symbol": st.sampled_from(["BTCUSDT", "btc", "", "ETHUSDT", 5, None, True])},
    optional={
        "features": st.none()
        | st.dictionaries(
            st.sampled_from([*FEATURE_NAMES, "", "x" * 70, "other"]),
            any_number | st.none() | st.booleans() | st.text(max_size=5),
            max_size=20,
        ),
        "explain": st.sampled_from([True, False, "yes", 1, 0, None, "true"]),
        "extra": json_values,
    },
)


@FUZZ
@given(body=json_values | near_valid)
def test_predict_request_is_strict_and_never_raises_otherwise(body: Any) -> None:
    try:
        req = PredictRequest.model_validate(body)
    except ValidationError as exc:
        errors = truncate_errors(exc.errors(include_url=False))
        assert errors and all("loc" in e and "msg" in e for e in errors)
        return
    assert isinstance(body, dict) and set(body) <= {"symbol", "features", "explain"}
    assert isinstance(body["symbol"], str) and req.symbol == body["symbol"]
    assert type(body.get("explain", True)) is bool and req.explain == body.get("explain", True)
    for name, v in (req.features or {}).items():
        raw = body["features"][name]
        assert v is None or (math.isfinite(v) and not isinstance(raw, bool | str)), (name, raw)


@pytest.fixture(scope="module")
def model() -> Any:
    from rayapp.registry import LoadedModel

    market = make_market(120, pd.Timestamp("2024-01-01", tz="UTC"), seed=5)
    booster = train_booster(market, rounds=15)
    return LoadedModel("fuzz", "1", None, booster, fit_bundle(booster, market))


@pytest.fixture(scope="module")
def explainer(model: Any, settings_fast: Any) -> Any:
    from rayapp.serving.explainer import Explainer

    ex = Explainer(settings_fast)
    ex._cache[model.version] = ex._build(model)  # the registry load, done here from the model itself
    return ex


@pytest.fixture(scope="module")
def settings_fast() -> Any:
    from rayapp.config import load_settings

    return load_settings([])


def in_range(name: str) -> st.SearchStrategy[float | None]:
    r = FEATURE_RANGES[name]
    return st.none() | st.floats(min_value=r.low, max_value=r.high, allow_nan=False)


vectors = st.fixed_dictionaries({n: in_range(n) for n in FEATURE_NAMES})
finite_vectors = st.fixed_dictionaries(
    {n: st.none() | st.floats(allow_nan=False, allow_infinity=False) for n in FEATURE_NAMES}
)


def _check_path(model: Any, explainer: Any, values: dict[str, float | None]) -> None:
    row = feature_row(values, model.feature_names)
    assert row.dtype == np.float32 and not np.isinf(row).any()
    pred = score(model, values, FSV)
    assert 0.0 <= pred["p_up"] <= 1.0 and math.isfinite(pred["expected_return"])
    ex = explainer.explain(model.version, values, pred["p_up"])
    dm = xgb.DMatrix(row, feature_names=model.feature_names)
    margin = float(np.asarray(model.booster.predict(dm, output_margin=True))[0])
    assert math.isclose(ex["margin"], margin, rel_tol=1e-4, abs_tol=1e-4)
    json.dumps({"prediction": pred, "explanation": ex}, allow_nan=False)  # strict JSON: no inf, no NaN


@FUZZ_MODEL
@given(values=vectors)
def test_every_accepted_vector_is_scored_and_explained(model: Any, explainer: Any, values: dict) -> None:
    req = PredictRequest.model_validate({"symbol": "BTCUSDT", "features": values})
    assert req.features is not None and out_of_range(req.features) == []
    _check_path(model, explainer, req.features)


@FUZZ_MODEL
@given(values=finite_vectors)
def test_any_finite_vector_never_breaks_the_explanation(model: Any, explainer: Any, values: dict) -> None:
    _check_path(model, explainer, values)
    bad = {n for n, _, _ in out_of_range(values)}
    assert bad == {n for n, v in values.items() if v is not None and not FEATURE_RANGES[n].contains(v)}


@FUZZ_MODEL
@given(value=json_values | st.text(min_size=90, max_size=20_000), key=st.text(max_size=300))
def test_error_bodies_stay_small(value: Any, key: str) -> None:
    errors = truncate_errors([{"type": "x", "loc": ["body", "features", key], "msg": "m", "input": value}] * 60)
    assert len(errors) <= 50
    text = json.dumps(errors, default=str)
    assert len(text) <= 50 * (4 * MAX_ECHO_CHARS + 2000)
    assert all(len(p) <= MAX_ECHO_CHARS + 30 for p in errors[0]["loc"] if isinstance(p, str))


def test_every_feature_has_a_documented_range() -> None:
    from rayapp.features import RV_FEATURES, make_feature_set

    names = set(make_feature_set("extended").names) | set(make_feature_set("core").names) | set(RV_FEATURES)
    assert names == set(FEATURE_RANGES)
    assert FEATURE_RANGES["rsi"].describe() == "[0, 100]"
    assert (FEATURE_RANGES["returns_1h"].low, FEATURE_RANGES["returns_1h"].high) == (-1.0, 1.0)
    for r in FEATURE_RANGES.values():
        assert r.low < r.high and abs(r.high) < float(np.finfo(np.float32).max) and r.why
    # the bounds hold on the test world the serving tests train on (the formulas' own output)
    market = make_market(300, pd.Timestamp("2024-01-01", tz="UTC"), seed=1)
    for name in FEATURE_NAMES:
        col = market.features[name].dropna()
        assert ((col >= FEATURE_RANGES[name].low) & (col <= FEATURE_RANGES[name].high)).all(), name
