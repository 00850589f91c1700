//! Technical indicators, TA-Lib-exact from the first defined bar.
//!
//! Plain slices in, vectors out: no polars or sqlx types here. Each
//! indicator is a streaming state with `update` (one bar in, one value
//! out) and, where useful, a pure function over a whole series that folds
//! that state — so the full pass and a daily continuation give the same
//! numbers by construction. [`IndicatorState`] bundles every state of a
//! symbol; it serialises to JSON (floats round-trip exactly), which is how
//! `ta-signals run` continues a symbol where the last run stopped.
//!
//! A value is `None` (NULL) until TA-Lib would give one. Bar indices are
//! 0-based per symbol. The conventions are in each module's docs; the
//! zero tests use TA-Lib's tolerance (|x| < 1e-8).

pub mod average;
pub mod momentum;
pub mod signals;
pub mod trend;
pub mod volatility;
pub mod volume;
pub mod window;

#[cfg(test)]
pub(crate) mod testing;

use serde::{Deserialize, Serialize};

use self::average::{Ema, Sma};
use self::momentum::{Macd, Rsi};
use self::trend::Dmi;
use self::volatility::{Atr, Bollinger};
use self::volume::Obv;
use self::window::{RollingExtreme, Window};

/// Version of the indicator definitions. Bump it when a definition
/// changes: stored rows of another version are recomputed in full.
pub const TA_VERSION: i64 = 1;

/// Bars in a 52-week window.
pub const BARS_52W: usize = 252;

/// TA-Lib's `TA_IS_ZERO`.
pub(crate) fn is_zero(x: f64) -> bool {
    -1e-8 < x && x < 1e-8
}

/// One split-adjusted daily bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// Declares the numeric columns once: the struct, the column names in
/// storage order, and the values in the same order.
macro_rules! numeric_columns {
    ($($name:ident),* $(,)?) => {
        /// The numeric indicator columns of one bar.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Numeric {
            $(pub $name: Option<f64>,)*
        }

        /// Names of the numeric columns, in storage order.
        pub const NUMERIC_COLUMNS: &[&str] = &[$(stringify!($name)),*];

        impl Numeric {
            pub fn values(&self) -> Vec<Option<f64>> {
                vec![$(self.$name),*]
            }

            /// Build from values in [`NUMERIC_COLUMNS`] order.
            pub fn from_values(values: &[Option<f64>]) -> Numeric {
                let mut it = values.iter().copied();
                Numeric { $($name: it.next().flatten(),)* }
            }
        }
    };
}

numeric_columns!(
    ema_20,
    ema_50,
    sma_20,
    sma_50,
    sma_200,
    rsi_14,
    macd,
    macd_signal,
    macd_hist,
    bb_upper,
    bb_middle,
    bb_lower,
    bb_pctb,
    bb_width,
    atr_14,
    adx_14,
    plus_di_14,
    minus_di_14,
    obv,
    volume_sma_20,
    volume_ratio_20,
    ret_1d,
    ret_5d,
    ret_20d,
    volatility_20d,
    high_52w,
    low_52w,
    dist_52w_high,
    dist_52w_low,
    price_over_ema20,
    price_over_sma50,
    sma20_over_sma50,
    support_20,
    resistance_20,
    ta_stop_loss,
    ta_take_profit,
);

/// Names of the categorical columns, in storage order.
pub const CATEGORICAL_COLUMNS: &[&str] = &[
    "adx_strength",
    "di_strength",
    "madi_trend",
    "trend_reversal",
    "ta_recommendation",
];

/// Every column of one bar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndicatorRow {
    pub numeric: Numeric,
    pub adx_strength: Option<&'static str>,
    pub di_strength: Option<&'static str>,
    pub madi_trend: Option<&'static str>,
    pub trend_reversal: Option<&'static str>,
    pub ta_recommendation: Option<&'static str>,
}

impl IndicatorRow {
    /// Categorical values in [`CATEGORICAL_COLUMNS`] order.
    pub fn categoricals(&self) -> [Option<&'static str>; 5] {
        [
            self.adx_strength,
            self.di_strength,
            self.madi_trend,
            self.trend_reversal,
            self.ta_recommendation,
        ]
    }
}

/// The streaming state of every indicator of one symbol.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndicatorState {
    bars: u64,
    ema_20: Ema,
    ema_50: Ema,
    sma_20: Sma,
    sma_50: Sma,
    sma_200: Sma,
    rsi: Rsi,
    macd: Macd,
    bollinger: Bollinger,
    atr: Atr,
    dmi: Dmi,
    obv: Obv,
    volume_sma: Sma,
    /// Closes of the last 21 bars (for the 1/5/20-bar returns).
    closes: Window,
    log_returns: Window,
    high_52w: RollingExtreme,
    low_52w: RollingExtreme,
    support: RollingExtreme,
    resistance: RollingExtreme,
    prev_macd: Option<(f64, f64)>,
    recent_rsi: Window,
}

impl Default for IndicatorState {
    fn default() -> Self {
        IndicatorState::new()
    }
}

impl IndicatorState {
    pub fn new() -> IndicatorState {
        IndicatorState {
            bars: 0,
            ema_20: Ema::new(20),
            ema_50: Ema::new(50),
            sma_20: Sma::new(20),
            sma_50: Sma::new(50),
            sma_200: Sma::new(200),
            rsi: Rsi::new(14),
            macd: Macd::new(12, 26, 9),
            bollinger: Bollinger::new(20, 2.0),
            atr: Atr::new(14),
            dmi: Dmi::new(14),
            obv: Obv::default(),
            volume_sma: Sma::new(20),
            closes: Window::new(21),
            log_returns: Window::new(20),
            high_52w: RollingExtreme::max(BARS_52W),
            low_52w: RollingExtreme::min(BARS_52W),
            support: RollingExtreme::min(20),
            resistance: RollingExtreme::max(20),
            prev_macd: None,
            recent_rsi: Window::new(5),
        }
    }

    /// Bars seen so far.
    pub fn bars(&self) -> u64 {
        self.bars
    }

    /// Feed one bar; the row of that bar.
    pub fn update(&mut self, bar: &Bar) -> IndicatorRow {
        self.bars += 1;
        let close = bar.close;
        let mut n = Numeric {
            ema_20: self.ema_20.update(close),
            ema_50: self.ema_50.update(close),
            sma_20: self.sma_20.update(close),
            sma_50: self.sma_50.update(close),
            sma_200: self.sma_200.update(close),
            rsi_14: self.rsi.update(close),
            atr_14: self.atr.update(bar.high, bar.low, close),
            obv: Some(self.obv.update(close, bar.volume)),
            volume_sma_20: self.volume_sma.update(bar.volume),
            high_52w: self.high_52w.update(bar.high),
            low_52w: self.low_52w.update(bar.low),
            support_20: self.support.update(bar.low),
            resistance_20: self.resistance.update(bar.high),
            ..Numeric::default()
        };
        let macd = self.macd.update(close);
        if let Some(m) = macd {
            (n.macd, n.macd_signal, n.macd_hist) = (Some(m.line), Some(m.signal), Some(m.hist));
        }
        if let Some(b) = self.bollinger.update(close) {
            (n.bb_upper, n.bb_middle, n.bb_lower) = (Some(b.upper), Some(b.middle), Some(b.lower));
            n.bb_pctb = ratio(close - b.lower, b.upper - b.lower);
            n.bb_width = ratio(b.upper - b.lower, b.middle);
        }
        let dmi = self.dmi.update(bar.high, bar.low, close);
        if let Some(d) = dmi {
            (n.plus_di_14, n.minus_di_14, n.adx_14) = (Some(d.plus_di), Some(d.minus_di), d.adx);
        }
        self.update_returns(close, &mut n);
        self.update_ratios(bar, &mut n);
        let mut row = IndicatorRow {
            numeric: n,
            ..IndicatorRow::default()
        };
        self.update_signals(close, macd.map(|m| (m.line, m.signal)), &mut row);
        row
    }

    fn update_returns(&mut self, close: f64, n: &mut Numeric) {
        if let Some(prev) = self.closes.back(0) {
            self.log_returns.push((close / prev).ln());
        }
        self.closes.push(close);
        let ret = |back: usize| self.closes.back(back).map(|then| close / then - 1.0);
        (n.ret_1d, n.ret_5d, n.ret_20d) = (ret(1), ret(5), ret(20));
        // Sample (ddof 1) deviation of the last 20 daily log returns.
        n.volatility_20d = self.log_returns.is_full().then(|| self.log_returns.stdev(1)).flatten();
    }

    fn update_ratios(&self, bar: &Bar, n: &mut Numeric) {
        let close = bar.close;
        n.volume_ratio_20 = n.volume_sma_20.and_then(|avg| ratio(bar.volume, avg));
        n.dist_52w_high = n.high_52w.and_then(|h| ratio(close, h)).map(|r| r - 1.0);
        n.dist_52w_low = n.low_52w.and_then(|l| ratio(close, l)).map(|r| r - 1.0);
        n.price_over_ema20 = n.ema_20.and_then(|e| ratio(close, e));
        n.price_over_sma50 = n.sma_50.and_then(|s| ratio(close, s));
        n.sma20_over_sma50 = n.sma_20.zip(n.sma_50).and_then(|(a, b)| ratio(a, b));
        n.ta_stop_loss = n.atr_14.map(|atr| close - 2.0 * atr);
        n.ta_take_profit = n.atr_14.map(|atr| close + 3.0 * atr);
    }

    fn update_signals(&mut self, close: f64, macd: Option<(f64, f64)>, row: &mut IndicatorRow) {
        let n = &row.numeric;
        if let Some(rsi) = n.rsi_14 {
            self.recent_rsi.push(rsi);
        }
        row.adx_strength = n.adx_14.map(signals::adx_strength);
        row.di_strength = n.plus_di_14.zip(n.minus_di_14).map(|(p, m)| signals::di_strength(p, m));
        row.madi_trend = match (n.sma_50, n.plus_di_14, n.minus_di_14) {
            (Some(sma), Some(p), Some(m)) => Some(signals::madi_trend(close, sma, p, m)),
            _ => None,
        };
        let recent: Vec<f64> = self.recent_rsi.iter().collect();
        row.trend_reversal = match (self.prev_macd, macd) {
            (Some(prev), Some(now)) => Some(signals::trend_reversal(prev, now, &recent)),
            _ => None,
        };
        self.prev_macd = macd;
        row.ta_recommendation = match (
            n.rsi_14,
            n.macd_hist,
            row.madi_trend,
            row.di_strength,
            n.adx_14,
            row.trend_reversal,
        ) {
            (Some(rsi), Some(macd_hist), Some(madi), Some(di), Some(adx), Some(reversal)) => {
                let votes = signals::Votes {
                    rsi,
                    macd_hist,
                    madi_trend: madi,
                    di_strength: di,
                    adx,
                    trend_reversal: reversal,
                    bb_pctb: n.bb_pctb,
                };
                Some(signals::recommendation(signals::score(&votes)))
            }
            _ => None,
        };
    }
}

/// a / b, or None when b is zero (no made-up values).
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| a / b)
}

/// Every row of a whole series.
pub fn compute(bars: &[Bar]) -> Vec<IndicatorRow> {
    let mut state = IndicatorState::new();
    bars.iter().map(|b| state.update(b)).collect()
}

/// Bars from split-adjusted columns.
pub fn bars_from(adjusted: &crate::candles::splits::AdjustedBars) -> Vec<Bar> {
    (0..adjusted.len())
        .map(|i| Bar {
            open: adjusted.open[i],
            high: adjusted.high[i],
            low: adjusted.low[i],
            close: adjusted.close[i],
            volume: adjusted.volume[i],
        })
        .collect()
}

#[cfg(test)]
mod tests;
