-- swingml schema v2 (sqlite): where each candle came from. Rows stored
-- before this migration came from `ta-signals import`.
ALTER TABLE candles ADD COLUMN source TEXT NOT NULL DEFAULT 'import';
