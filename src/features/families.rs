//! Optional feature families for the batch model, computed from a
//! symbol's own OHLCV only (causal: bar `t` and the bars before it) and
//! scale-free (ratios, returns, shares, correlations):
//!
//! - `candle`: the shape of each of the last 5 bars — body, upper and
//!   lower wick (over the open), close location in the bar's range, and
//!   the opening gap over the previous close;
//! - `window`: for windows of 5, 10, 20 and 60 bars — return, mean and
//!   standard deviation of daily returns, close over its moving average,
//!   close over the highest high and the lowest low and its position
//!   between them, slope and R² of a straight line through log close,
//!   the 20 % and 80 % quantiles of close over close, bars since the
//!   highest high and the lowest low, the share of up days, the
//!   correlation of close with log volume, volume over its mean, the
//!   volume's standard deviation over its mean, and the volume-weighted
//!   mean return;
//! - `rank`: the families' values replaced by their per-date percentile
//!   rank among the date's symbols (a cross-sectional normalisation:
//!   the model then compares stocks, not regimes).
//!
//! Each value at bar `t` is computed from the split-adjusted window of
//! the bars `t − LOOKBACK … t` alone, so the training path (a symbol's
//! whole history) and the scoring path (its last candles) give the same
//! bits. The online model never sees these columns: they are the batch
//! model's, appended after its base columns.

use serde::{Deserialize, Serialize};

use crate::candles::Candle;
use crate::candles::splits::{AdjustedBars, split_ratio};

/// The windows of the `window` family.
pub const WINDOWS: [usize; 4] = [5, 10, 20, 60];

/// Bars of the `candle` family (the scan bar and the 4 before it).
const CANDLE_LAGS: usize = 5;

const CANDLE_MEASURES: [&str; 5] = ["body", "upper", "lower", "close_loc", "gap"];

const WINDOW_MEASURES: [&str; 18] = [
    "ret",
    "ret_mean",
    "ret_std",
    "close_over_ma",
    "close_over_max",
    "close_over_min",
    "range_pos",
    "slope",
    "r2",
    "q20",
    "q80",
    "since_max",
    "since_min",
    "up_share",
    "corr_close_logvol",
    "vol_over_mean",
    "vol_std_over_mean",
    "vwap_ret",
];

/// Which families a model uses: a setting at bootstrap, recorded with
/// the model (its transformer bundle and feature config) for scoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Families {
    pub candle: bool,
    pub window: bool,
    pub rank: bool,
}

/// The names `[features] families` accepts.
pub const FAMILY_NAMES: [&str; 3] = ["candle", "window", "rank"];

impl Families {
    pub const NONE: Families = Families {
        candle: false,
        window: false,
        rank: false,
    };

    /// From `[features] families`; an unknown name is an error naming the
    /// known ones.
    pub fn parse(names: &[String]) -> Result<Families, String> {
        let mut f = Families::NONE;
        for name in names {
            match name.as_str() {
                "candle" => f.candle = true,
                "window" => f.window = true,
                "rank" => f.rank = true,
                other => {
                    return Err(format!(
                        "unknown feature family {other:?} (known: {})",
                        FAMILY_NAMES.join(", ")
                    ));
                }
            }
        }
        if f.rank && !(f.candle || f.window) {
            return Err("the family \"rank\" ranks the candle and window families: name one of them too".into());
        }
        Ok(f)
    }

    /// The families' names, in [`FAMILY_NAMES`] order.
    pub fn names(&self) -> Vec<&'static str> {
        let on = [self.candle, self.window, self.rank];
        FAMILY_NAMES
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        !(self.candle || self.window)
    }

    /// Bars before the scan bar a value reads: a symbol needs this many
    /// plus one for every value to be defined.
    pub fn lookback(&self) -> usize {
        match (self.window, self.candle) {
            (true, _) => WINDOWS[WINDOWS.len() - 1],
            (false, true) => CANDLE_LAGS, // the oldest bar's gap reads the bar before it
            (false, false) => 0,
        }
    }

    /// How many columns [`Families::columns`] names, without naming them
    /// (the matrices ask for every chunk of rows).
    pub fn width(&self) -> usize {
        usize::from(self.candle) * CANDLE_LAGS * CANDLE_MEASURES.len()
            + usize::from(self.window) * WINDOWS.len() * WINDOW_MEASURES.len()
    }

    /// The columns, in the order [`values_at`] fills them; the rank
    /// family keeps the names (it changes the values, not the columns).
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.candle {
            for lag in 0..CANDLE_LAGS {
                out.extend(CANDLE_MEASURES.iter().map(|m| format!("candle_{m}_{lag}")));
            }
        }
        if self.window {
            for w in WINDOWS {
                out.extend(WINDOW_MEASURES.iter().map(|m| format!("w{w}_{m}")));
            }
        }
        out
    }
}

/// The families' values at `candles[t]`, from the window of bars ending
/// there (NaN where the history is too short or a value is undefined).
pub fn values_at(candles: &[Candle], t: usize, families: Families) -> Box<[f32]> {
    Scratch::default().values_at(candles, t, families)
}

/// Buffers reused from one bar to the next: a symbol's values are
/// computed for every one of its bars, a million times in a bootstrap.
#[derive(Default)]
pub struct Scratch {
    bars: AdjustedBars,
    values: Vec<f64>,
    series: [Vec<f64>; 3],
}

impl Scratch {
    /// As [`values_at`].
    pub fn values_at(&mut self, candles: &[Candle], t: usize, families: Families) -> Box<[f32]> {
        let start = t.saturating_sub(families.lookback());
        adjust_into(&candles[start..=t], &mut self.bars);
        let last = t - start;
        self.values.clear();
        if families.candle {
            for lag in 0..CANDLE_LAGS {
                candle_shape(&self.bars, last.checked_sub(lag), &mut self.values);
            }
        }
        if families.window {
            for w in WINDOWS {
                window_statistics(&self.bars, last, w, &mut self.series, &mut self.values);
            }
        }
        self.values.iter().map(|&x| x as f32).collect()
    }
}

/// [`adjust`] into reused vectors (the same arithmetic, so the same bits).
fn adjust_into(candles: &[Candle], out: &mut AdjustedBars) {
    let mut later = 1.0;
    let factors = candles.iter().rev().map(|c| {
        let f = later;
        later *= split_ratio(c);
        f
    });
    let factors: Vec<f64> = factors.collect();
    for v in [
        &mut out.open,
        &mut out.high,
        &mut out.low,
        &mut out.close,
        &mut out.volume,
    ] {
        v.clear();
    }
    for (c, f) in candles.iter().zip(factors.into_iter().rev()) {
        out.open.push(c.open / f);
        out.high.push(c.high / f);
        out.low.push(c.low / f);
        out.close.push(c.close / f);
        out.volume.push(c.volume as f64 * f);
    }
}

/// Body, wicks, close location and gap of bar `i` (NaN when it is not in
/// the window).
fn candle_shape(bars: &AdjustedBars, i: Option<usize>, out: &mut Vec<f64>) {
    let Some(i) = i else {
        out.extend([f64::NAN; CANDLE_MEASURES.len()]);
        return;
    };
    let (o, h, l, c) = (bars.open[i], bars.high[i], bars.low[i], bars.close[i]);
    let location = if h > l { (c - l) / (h - l) } else { f64::NAN };
    let gap = if i > 0 { o / bars.close[i - 1] - 1.0 } else { f64::NAN };
    out.extend([(c - o) / o, (h - o.max(c)) / o, (o.min(c) - l) / o, location, gap]);
}

/// The `window` family's values over the `w` bars ending at `last`
/// (`series`: scratch space).
fn window_statistics(bars: &AdjustedBars, last: usize, w: usize, series: &mut [Vec<f64>; 3], out: &mut Vec<f64>) {
    if last < w {
        out.extend([f64::NAN; WINDOW_MEASURES.len()]);
        return;
    }
    let first = last + 1 - w;
    let close = &bars.close[first..=last];
    let volume = &bars.volume[first..=last];
    let c = bars.close[last];
    let [returns, log_close, log_volume] = series;
    returns.clear();
    returns.extend((first..=last).map(|i| bars.close[i] / bars.close[i - 1] - 1.0));
    log_close.clear();
    log_close.extend(close.iter().map(|x| x.ln()));
    log_volume.clear();
    log_volume.extend(volume.iter().map(|v| (v + 1.0).ln()));
    let high = bars.high[first..=last]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let low = bars.low[first..=last].iter().copied().fold(f64::INFINITY, f64::min);
    // The first bar of the window holding the extreme.
    let at_high = first + bars.high[first..=last].iter().position(|&x| x == high).unwrap_or(0);
    let at_low = first + bars.low[first..=last].iter().position(|&x| x == low).unwrap_or(0);
    let (slope, r2) = line_fit(log_close);
    // Both quantiles from one sort (the log series is done with).
    log_close.clear();
    log_close.extend_from_slice(close);
    log_close.sort_by(f64::total_cmp);
    let (q20, q80) = (quantile(log_close, 0.2), quantile(log_close, 0.8));
    let volume_mean = mean(volume);
    let volume_sum: f64 = volume.iter().sum();
    let weighted: f64 = returns.iter().zip(volume).map(|(r, v)| r * v).sum();
    out.extend([
        c / bars.close[last - w] - 1.0,
        mean(returns),
        sample_std(returns),
        c / mean(close),
        c / high,
        c / low,
        if high > low { (c - low) / (high - low) } else { f64::NAN },
        slope,
        r2,
        q20 / c,
        q80 / c,
        (last - at_high) as f64 / w as f64,
        (last - at_low) as f64 / w as f64,
        returns.iter().filter(|&&r| r > 0.0).count() as f64 / w as f64,
        correlation(close, log_volume),
        if volume_mean > 0.0 {
            volume[w - 1] / volume_mean
        } else {
            f64::NAN
        },
        if volume_mean > 0.0 {
            sample_std(volume) / volume_mean
        } else {
            f64::NAN
        },
        if volume_sum > 0.0 {
            weighted / volume_sum
        } else {
            f64::NAN
        },
    ]);
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Standard deviation with n − 1 in the denominator (pandas' default).
fn sample_std(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// Linear interpolation between the order statistics of `v` (sorted):
/// numpy's and pandas' default.
fn quantile(v: &[f64], q: f64) -> f64 {
    let at = q * (v.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (at - lo as f64)
}

/// Pearson correlation; NaN when either side is constant.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa > 0.0 && sbb > 0.0 {
        sab / (saa * sbb).sqrt()
    } else {
        f64::NAN
    }
}

/// Least-squares slope of `ys` over 0, 1, … and the fit's R² (NaN for a
/// flat series).
fn line_fit(ys: &[f64]) -> (f64, f64) {
    let n = ys.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = mean(ys);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (y - my);
        sxx += dx * dx;
        syy += (y - my).powi(2);
    }
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 { sxy * sxy / (sxx * syy) } else { f64::NAN };
    (slope, r2)
}

/// Replace each family column of one date's rows by its percentile rank
/// among the rows where it is defined ((rank − 1)/(n − 1) of average
/// ranks; 0.5 for a lone value); undefined values stay undefined.
pub fn rank_day(day: &mut [&mut super::Features]) {
    let width = day.first().map_or(0, |f| f.extra.len());
    let mut defined: Vec<usize> = Vec::with_capacity(day.len());
    let mut values: Vec<f64> = Vec::with_capacity(day.len());
    for j in 0..width {
        defined.clear();
        values.clear();
        for (i, f) in day.iter().enumerate() {
            let x = f.extra.get(j).copied().unwrap_or(f32::NAN);
            if !x.is_nan() {
                defined.push(i);
                values.push(f64::from(x));
            }
        }
        let ranks = crate::models::metrics::ranks(&values);
        let n = values.len();
        for (&i, r) in defined.iter().zip(ranks) {
            day[i].extra[j] = if n < 2 {
                0.5
            } else {
                ((r - 1.0) / (n - 1) as f64) as f32
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn bar(day: u64, o: f64, h: f64, l: f64, c: f64, v: i64) -> Candle {
        Candle {
            symbol: crate::symbols::Symbol::parse("X").unwrap(),
            date: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(day),
            open: o,
            high: h,
            low: l,
            close: c,
            adj_close: None,
            volume: v,
            split_coef: None,
        }
    }

    #[test]
    fn names_parse_and_unknown_ones_are_refused() {
        let f = Families::parse(&["window".into(), "candle".into()]).unwrap();
        assert_eq!(f.names(), ["candle", "window"]);
        assert_eq!(f.columns().len(), 5 * 5 + 4 * 18);
        assert_eq!(f.width(), f.columns().len());
        assert_eq!(f.lookback(), 60);
        let err = Families::parse(&["volume".into()]).unwrap_err();
        assert!(
            err.contains("\"volume\"") && err.contains("candle, window, rank"),
            "{err}"
        );
        assert!(Families::parse(&["rank".into()]).is_err());
    }

    #[test]
    fn candle_shape_by_hand() {
        // Bar 1: open 10, high 12, low 9, close 11 after a close of 10.5.
        let candles = [bar(0, 10.0, 10.6, 10.0, 10.5, 100), bar(1, 10.0, 12.0, 9.0, 11.0, 100)];
        let f = Families {
            candle: true,
            ..Families::NONE
        };
        let v = values_at(&candles, 1, f);
        let expect = [0.1, 0.1, 0.1, 2.0 / 3.0, 10.0 / 10.5 - 1.0];
        for (x, e) in v[..5].iter().zip(expect) {
            assert!((f64::from(*x) - e).abs() < 1e-6, "{v:?}");
        }
        // Lag 1 is bar 0, which has no bar before it: no gap.
        assert!(v[9].is_nan() && !v[8].is_nan());
        // Lags 2..4 are before the first bar.
        assert!(v[10..].iter().all(|x| x.is_nan()));
    }

    #[test]
    fn a_split_inside_the_window_changes_nothing() {
        let plain: Vec<Candle> = (0..70)
            .map(|i| {
                let c = 50.0 + (i as f64 * 0.3).sin() * 3.0 + i as f64 * 0.1;
                bar(i, c * 0.99, c * 1.02, c * 0.98, c, 1000 + (i as i64 % 5) * 100)
            })
            .collect();
        // The same prices with a 2:1 split on bar 40: earlier bars quoted double.
        let split: Vec<Candle> = plain
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let k = if i < 40 { 2.0 } else { 1.0 };
                Candle {
                    open: c.open * k,
                    high: c.high * k,
                    low: c.low * k,
                    close: c.close * k,
                    volume: (c.volume as f64 / k) as i64,
                    split_coef: (i == 40).then_some(2.0),
                    ..c.clone()
                }
            })
            .collect();
        let f = Families {
            candle: true,
            window: true,
            rank: false,
        };
        let (a, b) = (values_at(&plain, 69, f), values_at(&split, 69, f));
        for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1e-3), "column {i}: {x} vs {y}");
        }
        assert!(a.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn reused_buffers_adjust_as_adjust_does() {
        let candles: Vec<Candle> = (0..30)
            .map(|i| Candle {
                split_coef: [(7, 2.0), (20, 3.0)].iter().find(|s| s.0 == i).map(|s| s.1),
                ..bar(
                    i,
                    10.0 + i as f64,
                    12.0 + i as f64,
                    9.0,
                    11.0 + 0.3 * i as f64,
                    1000 + i as i64,
                )
            })
            .collect();
        let mut out = AdjustedBars::default();
        adjust_into(&candles[3..], &mut out);
        assert_eq!(out, crate::candles::splits::adjust(&candles[3..]));
        // And the scratch path equals a fresh computation.
        let f = Families {
            candle: true,
            window: true,
            rank: false,
        };
        let mut scratch = Scratch::default();
        for t in [25, 29, 12] {
            let (a, b) = (scratch.values_at(&candles, t, f), values_at(&candles, t, f));
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
    }

    #[test]
    fn ranks_of_a_day_by_hand() {
        use crate::features::{Features, N_CATEGORICAL, N_NUMERIC};
        let mut rows: Vec<Features> = [[3.0, f32::NAN], [1.0, 5.0], [3.0, 4.0], [2.0, f32::NAN]]
            .iter()
            .map(|e| {
                let mut f = Features::new([Some(0.0); N_NUMERIC], [None; N_CATEGORICAL]);
                f.extra = e.to_vec().into_boxed_slice();
                f
            })
            .collect();
        let mut day: Vec<&mut Features> = rows.iter_mut().collect();
        rank_day(&mut day);
        // Column 0: 1 < 2 < 3 = 3 → ranks 3.5, 1, 3.5, 2 of 4.
        let col0: Vec<f32> = rows.iter().map(|f| f.extra[0]).collect();
        assert_eq!(col0, [2.5 / 3.0, 0.0, 2.5 / 3.0, 1.0 / 3.0]);
        let col1: Vec<f32> = rows.iter().map(|f| f.extra[1]).collect();
        assert!(col1[0].is_nan() && col1[3].is_nan());
        assert_eq!((col1[1], col1[2]), (1.0, 0.0));
    }
}
