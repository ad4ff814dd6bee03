-- The model lifecycle (rayapp/lifecycle, docs/LIFECYCLE.md).
--
-- model_events: every trigger that fired (or was suppressed by the cooldown or a retrain in
-- flight), every gate decision, shadow verdict, promotion and rollback, with its evidence. The
-- MLflow versions carry the same decisions as tags; this table is the ordered history
-- `rayapp models history` and `GET /models` show.
CREATE TABLE IF NOT EXISTS model_events (
    event_id      bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),   -- wall time the event was written
    clock_ts      timestamptz NOT NULL,                 -- on the scheduler's clock (market time in replay)
    model_name    text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('trigger', 'suppressed', 'retrain', 'gate', 'shadow_start',
                      'shadow_verdict', 'promotion', 'watch_start', 'watch_verdict', 'rollback', 'error')),
    trigger       text,                                 -- schedule | drift | degradation | new_data | max_age | manual
    version       text,                                 -- the version the event is about
    other_version text,                                 -- the champion it was compared with / replaced
    decision      text,                                 -- fired | promoted | refused | kept | rolled_back | ...
    p_value       double precision,
    evidence      jsonb NOT NULL DEFAULT '{}'::jsonb,
    pipeline_run  bigint                                -- the scheduler run that wrote it (pipeline_runs.run_id)
);
CREATE INDEX IF NOT EXISTS model_events_by_model ON model_events (model_name, event_id);
CREATE INDEX IF NOT EXISTS model_events_by_version ON model_events (model_name, version);

-- A served forecast is the champion's (returned to the client) or a shadow's (a gated challenger,
-- or the previous champion during the watch period: scored off the request path, never returned).
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS role text NOT NULL DEFAULT 'champion';
ALTER TABLE predictions DROP CONSTRAINT IF EXISTS predictions_role_check;
ALTER TABLE predictions ADD CONSTRAINT predictions_role_check CHECK (role IN ('champion', 'shadow'));
CREATE INDEX IF NOT EXISTS predictions_by_version ON predictions (model_name, model_version, ts);

-- The lifecycle's own state: which version is in shadow and why, when the watch period of a
-- promotion ends, when the last retrain was. One row per registered model.
CREATE TABLE IF NOT EXISTS model_lifecycle (
    model_name        text PRIMARY KEY,
    shadow_version    text,
    shadow_role       text CHECK (shadow_role IN ('challenger', 'watch')),
    shadow_since      timestamptz,          -- on the scheduler's clock
    last_retrain_at   timestamptz,          -- on the scheduler's clock
    retrain_running   boolean NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
