-- swingml schema v1 (sqlite). Prices are stored as the source gave them.
CREATE TABLE IF NOT EXISTS symbols (
    symbol TEXT NOT NULL PRIMARY KEY,
    name TEXT,
    exchange TEXT,
    country TEXT,
    currency TEXT,
    timezone TEXT
);

CREATE TABLE IF NOT EXISTS watchlist_members (
    watchlist TEXT NOT NULL,
    symbol TEXT NOT NULL,
    PRIMARY KEY (watchlist, symbol)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS candles (
    symbol TEXT NOT NULL,
    date TEXT NOT NULL,
    open REAL NOT NULL,
    high REAL NOT NULL,
    low REAL NOT NULL,
    close REAL NOT NULL,
    adj_close REAL,
    volume INTEGER NOT NULL,
    split_coef REAL,
    PRIMARY KEY (symbol, date)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS ta_signals (
    symbol TEXT NOT NULL,
    date TEXT NOT NULL,
    ema_20 REAL,
    ema_50 REAL,
    sma_20 REAL,
    sma_50 REAL,
    sma_200 REAL,
    rsi_14 REAL,
    macd REAL,
    macd_signal REAL,
    macd_hist REAL,
    bb_upper REAL,
    bb_middle REAL,
    bb_lower REAL,
    bb_pctb REAL,
    bb_width REAL,
    atr_14 REAL,
    adx_14 REAL,
    plus_di_14 REAL,
    minus_di_14 REAL,
    obv REAL,
    volume_sma_20 REAL,
    volume_ratio_20 REAL,
    ret_1d REAL,
    ret_5d REAL,
    ret_20d REAL,
    volatility_20d REAL,
    high_52w REAL,
    low_52w REAL,
    dist_52w_high REAL,
    dist_52w_low REAL,
    price_over_ema20 REAL,
    price_over_sma50 REAL,
    sma20_over_sma50 REAL,
    support_20 REAL,
    resistance_20 REAL,
    ta_stop_loss REAL,
    ta_take_profit REAL,
    adx_strength TEXT,
    di_strength TEXT,
    madi_trend TEXT,
    trend_reversal TEXT,
    ta_recommendation TEXT,
    ta_version INTEGER NOT NULL,
    computed_at TEXT NOT NULL,
    PRIMARY KEY (symbol, date)
) WITHOUT ROWID;

-- The streaming indicator state after the last computed bar of a symbol:
-- lets a daily run continue exactly where the last one stopped.
CREATE TABLE IF NOT EXISTS ta_state (
    symbol TEXT NOT NULL PRIMARY KEY,
    ta_version INTEGER NOT NULL,
    last_date TEXT NOT NULL,
    bars INTEGER NOT NULL,
    split_factor REAL NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS job_runs (
    run_id TEXT NOT NULL PRIMARY KEY,
    job TEXT NOT NULL,
    watchlist TEXT,
    as_of TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    message TEXT
);
