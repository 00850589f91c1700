-- swingml schema v1 (mysql). Prices are stored as the source gave them.
CREATE TABLE IF NOT EXISTS symbols (
    symbol VARCHAR(32) NOT NULL PRIMARY KEY,
    name VARCHAR(1000),
    exchange VARCHAR(16),
    country VARCHAR(16),
    currency VARCHAR(16),
    timezone VARCHAR(64)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS watchlist_members (
    watchlist VARCHAR(64) NOT NULL,
    symbol VARCHAR(32) NOT NULL,
    PRIMARY KEY (watchlist, symbol)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS candles (
    symbol VARCHAR(32) NOT NULL,
    date DATE NOT NULL,
    open DOUBLE NOT NULL,
    high DOUBLE NOT NULL,
    low DOUBLE NOT NULL,
    close DOUBLE NOT NULL,
    adj_close DOUBLE,
    volume BIGINT NOT NULL,
    split_coef DOUBLE,
    PRIMARY KEY (symbol, date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS ta_signals (
    symbol VARCHAR(32) NOT NULL,
    date DATE NOT NULL,
    ema_20 DOUBLE,
    ema_50 DOUBLE,
    sma_20 DOUBLE,
    sma_50 DOUBLE,
    sma_200 DOUBLE,
    rsi_14 DOUBLE,
    macd DOUBLE,
    macd_signal DOUBLE,
    macd_hist DOUBLE,
    bb_upper DOUBLE,
    bb_middle DOUBLE,
    bb_lower DOUBLE,
    bb_pctb DOUBLE,
    bb_width DOUBLE,
    atr_14 DOUBLE,
    adx_14 DOUBLE,
    plus_di_14 DOUBLE,
    minus_di_14 DOUBLE,
    obv DOUBLE,
    volume_sma_20 DOUBLE,
    volume_ratio_20 DOUBLE,
    ret_1d DOUBLE,
    ret_5d DOUBLE,
    ret_20d DOUBLE,
    volatility_20d DOUBLE,
    high_52w DOUBLE,
    low_52w DOUBLE,
    dist_52w_high DOUBLE,
    dist_52w_low DOUBLE,
    price_over_ema20 DOUBLE,
    price_over_sma50 DOUBLE,
    sma20_over_sma50 DOUBLE,
    support_20 DOUBLE,
    resistance_20 DOUBLE,
    ta_stop_loss DOUBLE,
    ta_take_profit DOUBLE,
    adx_strength VARCHAR(16),
    di_strength VARCHAR(16),
    madi_trend VARCHAR(16),
    trend_reversal VARCHAR(16),
    ta_recommendation VARCHAR(16),
    ta_version INTEGER NOT NULL,
    computed_at VARCHAR(40) NOT NULL,
    PRIMARY KEY (symbol, date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The streaming indicator state after the last computed bar of a symbol:
-- lets a daily run continue exactly where the last one stopped.
CREATE TABLE IF NOT EXISTS ta_state (
    symbol VARCHAR(32) NOT NULL PRIMARY KEY,
    ta_version INTEGER NOT NULL,
    last_date DATE NOT NULL,
    bars BIGINT NOT NULL,
    split_factor DOUBLE NOT NULL,
    state LONGTEXT NOT NULL,
    updated_at VARCHAR(40) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS job_runs (
    run_id VARCHAR(80) NOT NULL PRIMARY KEY,
    job VARCHAR(40) NOT NULL,
    watchlist VARCHAR(64),
    as_of DATE,
    started_at VARCHAR(40) NOT NULL,
    finished_at VARCHAR(40),
    status VARCHAR(16) NOT NULL,
    message TEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
