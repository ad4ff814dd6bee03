-- Issue 21: staleness is part of every forecast. A champion row records how old its data was
-- when it was served (seconds from the feature hour to the system clock: wall time, or the replay
-- server's market clock) and whether that was past serving.feature_staleness_s. NULL: a shadow
-- row (never served), or a row logged before this migration.
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS data_age_s double precision;
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS stale boolean;
