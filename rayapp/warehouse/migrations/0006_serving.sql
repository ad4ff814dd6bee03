-- A forecast is one (symbol, hour, horizon, registered model, version): two registered models
-- that both have a version "3" serving the same hour are two forecasts, not one row. The old key
-- left out the model name (and the prediction id, derived from the key, did too).
ALTER TABLE predictions DROP CONSTRAINT IF EXISTS predictions_symbol_ts_horizon_h_model_version_key;
ALTER TABLE predictions
    ADD CONSTRAINT predictions_forecast_key UNIQUE (symbol, ts, horizon_h, model_name, model_version);
