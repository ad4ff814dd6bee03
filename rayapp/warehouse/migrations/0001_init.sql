-- Silver, gold and serving tables. Every table has a natural primary key so that every load
-- is an upsert; every time is timestamptz in UTC.

CREATE TABLE IF NOT EXISTS candles (
    source        text             NOT NULL,          -- binance | coinbase | cryptocompare | ...
    symbol        text             NOT NULL,          -- BTCUSDT
    open_time     timestamptz      NOT NULL,          -- a candle is keyed by its open time
    open          double precision NOT NULL,
    high          double precision NOT NULL,
    low           double precision NOT NULL,
    close         double precision NOT NULL,
    volume        double precision NOT NULL,          -- base asset (BTC)
    quote_volume  double precision,                   -- quote asset (USD/USDT)
    trades        bigint,
    ingested_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (source, symbol, open_time)
);
CREATE INDEX IF NOT EXISTS candles_symbol_time ON candles (symbol, open_time);

CREATE TABLE IF NOT EXISTS articles (
    article_id    text        PRIMARY KEY,            -- sha1(source + guid or url), see ingest
    kind          text        NOT NULL DEFAULT 'news', -- news | social
    source        text        NOT NULL,
    guid          text,
    url           text,
    title         text        NOT NULL,
    body          text,
    categories    text[]      NOT NULL DEFAULT '{}',
    published_at  timestamptz NOT NULL,
    first_seen_at timestamptz NOT NULL,               -- when we first fetched it
    backfilled    boolean     NOT NULL DEFAULT false, -- true: available_at = published_at + lag
    ingested_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS articles_published ON articles (published_at);

CREATE TABLE IF NOT EXISTS article_sentiment (
    article_id     text             NOT NULL REFERENCES articles (article_id) ON DELETE CASCADE,
    model_id       text             NOT NULL,         -- model name + revision or weights hash
    model_revision text,
    p_bearish      double precision NOT NULL,
    p_neutral      double precision NOT NULL,
    p_bullish      double precision NOT NULL,
    score          double precision NOT NULL CHECK (score BETWEEN -1 AND 1),
    scored_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (article_id, model_id)
);

CREATE TABLE IF NOT EXISTS social_counts (
    source        text        NOT NULL,               -- reddit
    symbol        text        NOT NULL,
    hour          timestamptz NOT NULL,               -- hour bucket (UTC) the posts were created in
    mentions      integer     NOT NULL CHECK (mentions >= 0),
    posts         integer     NOT NULL CHECK (posts >= 0),
    first_seen_at timestamptz NOT NULL,
    PRIMARY KEY (source, symbol, hour)
);

CREATE TABLE IF NOT EXISTS market_index (
    index_name     text             NOT NULL,         -- fear_greed
    ts             timestamptz      NOT NULL,         -- start of the day/hour the value is for
    value          double precision NOT NULL,
    classification text,
    source         text             NOT NULL,
    first_seen_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (index_name, ts)
);

-- Rows that failed validation, with the check that failed and the raw row: nothing is dropped
-- silently. The key makes re-quarantining the same row idempotent.
CREATE TABLE IF NOT EXISTS quarantine (
    target_table  text        NOT NULL,
    source        text        NOT NULL,
    row_key       text        NOT NULL,
    check_name    text        NOT NULL,
    reason        text        NOT NULL,
    raw           jsonb       NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_table, source, row_key, check_name)
);

-- Ingest progress: the newest time fully fetched per (source, symbol).
CREATE TABLE IF NOT EXISTS watermarks (
    source     text        NOT NULL,
    symbol     text        NOT NULL,
    watermark  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, symbol)
);

-- Feature-set versions: the ordered names and parameters a version hash stands for.
CREATE TABLE IF NOT EXISTS feature_sets (
    feature_set_version text        PRIMARY KEY,
    name                text        NOT NULL,         -- core | extended
    feature_names       text[]      NOT NULL,
    params              jsonb       NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- GOLD offline store. `vals` is ordered as feature_sets.feature_names; NaN = missing.
CREATE TABLE IF NOT EXISTS features (
    symbol              text               NOT NULL,
    ts                  timestamptz        NOT NULL,  -- the hour t (candle open time)
    feature_set_version text               NOT NULL,
    vals                double precision[] NOT NULL,
    computed_at         timestamptz        NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, ts, feature_set_version)
);

CREATE TABLE IF NOT EXISTS predictions (
    prediction_id       text             PRIMARY KEY,
    symbol              text             NOT NULL,
    ts                  timestamptz      NOT NULL,    -- feature hour the prediction is for
    horizon_h           integer          NOT NULL CHECK (horizon_h > 0),
    model_name          text             NOT NULL,
    model_version       text             NOT NULL,
    feature_set_version text             NOT NULL,
    expected_return     double precision NOT NULL,
    p_up                double precision NOT NULL CHECK (p_up BETWEEN 0 AND 1),
    direction           smallint         NOT NULL CHECK (direction IN (-1, 1)),
    interval_low        double precision,
    interval_high       double precision,
    features            jsonb            NOT NULL,
    explanation         jsonb,
    created_at          timestamptz      NOT NULL DEFAULT now(),
    realized_return     double precision,
    realized_direction  smallint,
    resolved_at         timestamptz,
    UNIQUE (symbol, ts, horizon_h, model_version)
);
CREATE INDEX IF NOT EXISTS predictions_created ON predictions (created_at);
