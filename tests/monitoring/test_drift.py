"""Feature drift (PSI) and staleness on the real warehouse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayapp.testing.serving import FEATURE_NAMES, make_market, write_offline


def test_psi_separates_same_and_shifted_distributions() -> None:
    from rayapp.monitoring.drift import PSI_ALERT, PSI_WARN, psi

    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 5000)
    assert psi(ref, rng.normal(0, 1, 2000)) < PSI_WARN
    assert psi(ref, rng.normal(1.0, 1, 2000)) > PSI_ALERT
    # a feature that goes missing in serving is drift, not silence
    assert psi(ref, np.full(500, np.nan)) > PSI_ALERT
    assert np.isnan(psi(ref, np.array([])))
    assert psi(np.ones(100), np.ones(50)) == pytest.approx(0.0, abs=1e-6)


def test_drift_report_flags_shifted_served_features(db, pool) -> None:
    from rayapp.monitoring.drift import drift_report
    from rayapp.serving import prediction_log

    end = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=1)
    market = make_market(400, end, seed=11)
    write_offline(pool, market, fsv="drift-v1")
    served = make_market(120, end, seed=12).features.copy()
    served["rsi"] = served["rsi"] + 40  # what serving sees has moved
    # The served forecasts go into the session's shared `predictions` table, at the same recent
    # hours the serving packages forecast: removed afterwards so their /predictions/latest and
    # prediction ids stay theirs.
    try:
        for i, (ts, row) in enumerate(served.iterrows()):
            prediction_log.insert(
                db,
                {
                    "prediction_id": prediction_log.prediction_id("BTCUSDT", ts.isoformat(), 1, "m", "1"),
                    "symbol": "BTCUSDT",
                    "ts": ts.to_pydatetime(),
                    "horizon_h": 1,
                    "model_name": "m",
                    "model_version": "1",
                    "feature_set_version": "drift-v1",
                    "expected_return": 0.0,
                    "p_up": 0.5,
                    "direction": 1 if i % 2 else -1,
                    "interval_low": None,
                    "interval_high": None,
                    "features": {k: float(v) for k, v in row.items()},
                    "explanation": None,
                },
            )
        rep = drift_report(
            db,
            "BTCUSDT",
            "drift-v1",
            [market.features.index[0].isoformat(), market.features.index[-1].isoformat()],
            hours=24,
            max_age_s=7200,
        )
        assert rep.reference_rows == 400 and rep.current_rows == 120
        assert set(rep.psi) == set(FEATURE_NAMES)
        assert "rsi" in rep.drifted and "atr" not in rep.drifted
        assert not rep.stale and rep.newest_feature_ts == end.isoformat()
        with pytest.raises(LookupError):
            drift_report(db, "BTCUSDT", "no-such-set", [], 24, 7200)
    finally:
        db.rollback()
        db.execute("DELETE FROM predictions WHERE feature_set_version = 'drift-v1'")
        db.commit()
