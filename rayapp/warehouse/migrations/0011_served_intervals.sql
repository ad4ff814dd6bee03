-- Issue 20: the served forecast distribution (docs/INTERVALS.md, "The serving contract").
--
-- Every forecast logged from now on records the interval it was served with, beside the 90 %
-- interval that interval_low/high keep holding (lifecycle.coverage.level: the coverage trigger
-- reads those two): the method that made it (cqr_vol, cqr_vol_aci, constant_conformal_legacy),
-- its nominal level, the quantiles of the h-hour log return with their prices, the volatility,
-- and every interval served (level, low, high as log returns, price_low/high, alpha_t and the
-- running coverage when served). NULL: logged before this migration.
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS interval_method text;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS interval_level double precision;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS quantiles jsonb;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS volatility double precision;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS intervals jsonb;
-- The ACI step the resolve applies when this forecast's outcome arrives (serving.aci_gamma / h,
-- or the bundle's intervals.aci_gamma); NULL: no ACI (the legacy band: coverage is counted,
-- alpha_t is not moved).
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS aci_gamma double precision;
-- When the forecast's outcome was counted into interval_aci: each forecast is counted once,
-- whoever resolves it (the scheduler's resolve job, an ingress replica's resolve loop) and however
-- often.
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS aci_applied_at timestamptz;
CREATE INDEX IF NOT EXISTS predictions_aci_pending ON predictions (ts)
    WHERE aci_applied_at IS NULL AND intervals IS NOT NULL;

-- Adaptive conformal inference (Gibbs & Candès 2021), one state per (registered model, version,
-- horizon, nominal level), shared by every ingress replica: alpha_t is the miscoverage the served
-- interval uses now, covered / resolved the live running coverage of its resolved forecasts.
CREATE TABLE IF NOT EXISTS interval_aci (
    model_name    text             NOT NULL,
    model_version text             NOT NULL,
    horizon_h     integer          NOT NULL CHECK (horizon_h > 0),
    level         double precision NOT NULL CHECK (level > 0 AND level < 1),
    alpha_t       double precision NOT NULL,
    resolved      bigint           NOT NULL DEFAULT 0 CHECK (resolved >= 0),
    covered       bigint           NOT NULL DEFAULT 0 CHECK (covered >= 0 AND covered <= resolved),
    last_ts       timestamptz,                          -- feature hour of the newest forecast counted
    updated_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (model_name, model_version, horizon_h, level)
);
