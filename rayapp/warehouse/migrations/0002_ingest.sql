-- Ingest resume: a watermark covers one contiguous range [covered_from, watermark) per
-- (source, symbol). A run asked for an earlier start than covered_from starts a new range there
-- (and refetches, idempotently); a run inside the range fetches only [watermark, end).
ALTER TABLE watermarks ADD COLUMN IF NOT EXISTS covered_from timestamptz;
UPDATE watermarks SET covered_from = watermark WHERE covered_from IS NULL;
