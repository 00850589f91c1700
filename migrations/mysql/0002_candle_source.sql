-- swingml schema v2 (mysql/mariadb): where each candle came from. Rows
-- stored before this migration came from `ta-signals import`.
ALTER TABLE candles ADD COLUMN source VARCHAR(16) NOT NULL DEFAULT 'import';
