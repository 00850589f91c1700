-- swingml schema v3 (mysql/mariadb): whether every candle `ta-signals run`
-- has seen for a symbol carries a usable adj_close (1/0), which decides
-- the prices labels are measured on; NULL until the next run finds out.
-- Lets the daily jobs build labels from recent candles only.
ALTER TABLE ta_state ADD COLUMN all_adj_close TINYINT(1);
