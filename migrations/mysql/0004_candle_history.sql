-- swingml schema v4 (mysql/mariadb): a per-symbol counter that every
-- write rewriting a symbol's past (a back-filled or revised candle) raises
-- before it writes, and the counter `ta-signals run` computed a symbol's
-- state from. Equal counters: no candle before the state's last date
-- changed, so the daily run need not count the symbol's history.
CREATE TABLE IF NOT EXISTS candle_history (
    symbol VARCHAR(32) NOT NULL PRIMARY KEY,
    generation BIGINT NOT NULL
) ENGINE=InnoDB;
ALTER TABLE ta_state ADD COLUMN history_generation BIGINT;
