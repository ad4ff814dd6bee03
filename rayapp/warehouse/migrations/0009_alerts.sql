-- Issue 16: the in-app alert feed. Alertmanager posts every notification to the serving app's
-- authenticated webhook (POST /alerts/webhook); each alert is one row per fingerprint and start
-- (a re-fired alert after a resolution is a new row), updated in place by later notifications
-- (still firing, then resolved). GET /alerts reads the active ones and the recent history.
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint   text        NOT NULL,                 -- Alertmanager's label-set fingerprint
    starts_at     timestamptz NOT NULL,
    alertname     text        NOT NULL,
    severity      text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    ends_at       timestamptz,                          -- set when resolved
    labels        jsonb       NOT NULL,
    annotations   jsonb       NOT NULL,
    generator_url text,
    receiver      text        NOT NULL,
    group_key     text        NOT NULL,
    first_received_at timestamptz NOT NULL DEFAULT now(),
    received_at   timestamptz NOT NULL DEFAULT now(),   -- the newest notification about it
    notifications integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS alerts_active ON alerts (status, received_at DESC);
CREATE INDEX IF NOT EXISTS alerts_recent ON alerts (received_at DESC);
