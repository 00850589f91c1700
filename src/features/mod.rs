//! Model features: the scale-free view of a snapshot (no raw prices), and
//! the snapshots themselves — (symbol, scan date) with its indicator row
//! and, once its horizon is complete, its triple-barrier label.
//!
//! Snapshots are built from candles by the same code at training and at
//! scoring time ([`snapshots`]), so the two can never compute a feature
//! differently.

pub mod calibration;
pub mod config;
pub mod cross_section;
pub mod drift;
pub mod families;
pub mod transform;

use chrono::NaiveDate;

use crate::candles::Candle;
use crate::candles::splits::{AdjustedBars, PriceAdjust, adjust, total_return_bars};
use crate::indicators::{IndicatorRow, bars_from, compute, signals};
use crate::labels::{Barrier, Bars, Label, label_at};
use crate::symbols::Symbol;
pub use families::Families;

/// Numeric features, in model order: those of a symbol's own indicator
/// row ([`N_BASE_NUMERIC`] of them), then the cross-sectional ones
/// ([`cross_section`] fills them, in this order).
pub const NUMERIC_FEATURES: [&str; 26] = [
    "rsi_14",
    "macd_hist_over_close",
    "bb_pctb",
    "bb_width",
    "atr_over_close",
    "adx_14",
    "di_spread",
    "volume_ratio_20",
    "ret_1d",
    "ret_5d",
    "ret_20d",
    "volatility_20d",
    "dist_52w_high",
    "dist_52w_low",
    "price_over_ema20",
    "price_over_sma50",
    "sma20_over_sma50",
    "xs_rank_ret_5d",
    "xs_rank_ret_20d",
    "xs_rank_volatility_20d",
    "xs_rank_rsi_14",
    "xs_rank_volume_ratio_20",
    "market_ret_5d",
    "market_ret_20d",
    "market_breadth_sma50",
    "rel_strength_20d",
];

/// The numeric features with one value per date for the whole market:
/// drift judges them as a series of dates, not as a histogram of rows.
pub const PER_DATE_FEATURES: [&str; 3] = ["market_ret_5d", "market_ret_20d", "market_breadth_sma50"];

/// The features computed from a symbol's own indicator row.
pub const N_BASE_NUMERIC: usize = 17;

/// Categorical features, in model order.
pub const CATEGORICAL_FEATURES: [&str; 5] = [
    "adx_strength",
    "di_strength",
    "madi_trend",
    "trend_reversal",
    "ta_recommendation",
];

pub const N_NUMERIC: usize = NUMERIC_FEATURES.len();
pub const N_CATEGORICAL: usize = CATEGORICAL_FEATURES.len();

/// The features of one snapshot. Stored compactly — a million snapshots
/// are held at once in training: numerics as `f64` with NaN for "not
/// defined at that bar", categories as one-byte codes. Read them through
/// [`Features::numeric`] and [`Features::categorical`].
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    numeric: [f64; N_NUMERIC],
    categorical: [u8; N_CATEGORICAL],
    /// The optional families' values ([`families`]; NaN = undefined),
    /// empty when the model uses none: the batch model's extra columns.
    pub(crate) extra: Box<[f32]>,
}

impl Features {
    pub fn new(numeric: [Option<f64>; N_NUMERIC], categorical: [Option<&'static str>; N_CATEGORICAL]) -> Features {
        Features {
            // A non-finite value is as undefined as a missing one.
            numeric: numeric.map(|v| v.filter(|x| x.is_finite()).unwrap_or(f64::NAN)),
            categorical: categorical.map(signals::code),
            extra: Box::default(),
        }
    }

    /// The optional families' values, in [`families::Families::columns`]
    /// order (NaN = undefined).
    pub fn extra(&self) -> &[f32] {
        &self.extra
    }

    /// Numeric feature `i` (in [`NUMERIC_FEATURES`] order), `None` if undefined.
    pub fn numeric(&self, i: usize) -> Option<f64> {
        Some(self.numeric[i]).filter(|x| !x.is_nan())
    }

    /// Categorical feature `i` (in [`CATEGORICAL_FEATURES`] order).
    pub fn categorical(&self, i: usize) -> Option<&'static str> {
        signals::label_of(self.categorical[i])
    }

    /// The one-byte code of categorical feature `i` (0 = undefined): cheap
    /// to compare and count over a million rows.
    pub fn category_code(&self, i: usize) -> u8 {
        self.categorical[i]
    }

    pub(crate) fn set_numeric(&mut self, i: usize, value: f64) {
        self.numeric[i] = if value.is_finite() { value } else { f64::NAN };
    }

    /// The scale-free features of an indicator row; `close` is the
    /// split-adjusted close the row was computed on. The cross-sectional
    /// features stay undefined until [`fill_cross_section`] sees the
    /// date's other symbols.
    pub fn from_row(row: &IndicatorRow, close: f64) -> Features {
        let n = &row.numeric;
        let per_close = |x: Option<f64>| x.filter(|_| close != 0.0).map(|v| v / close);
        let mut numeric = [None; N_NUMERIC];
        numeric[..N_BASE_NUMERIC].copy_from_slice(&[
            n.rsi_14,
            per_close(n.macd_hist),
            n.bb_pctb,
            n.bb_width,
            per_close(n.atr_14),
            n.adx_14,
            n.plus_di_14.zip(n.minus_di_14).map(|(p, m)| p - m),
            n.volume_ratio_20,
            n.ret_1d,
            n.ret_5d,
            n.ret_20d,
            n.volatility_20d,
            n.dist_52w_high,
            n.dist_52w_low,
            n.price_over_ema20,
            n.price_over_sma50,
            n.sma20_over_sma50,
        ]);
        Features::new(numeric, row.categoricals())
    }

    /// The first feature of the symbol's own row that is not defined: a
    /// row without one cannot join its date's cross-section.
    pub fn first_missing_base(&self) -> Option<&'static str> {
        self.first_missing_of(N_BASE_NUMERIC)
    }

    /// The first feature that is not defined, if any.
    pub fn first_missing(&self) -> Option<&'static str> {
        self.first_missing_of(N_NUMERIC)
    }

    fn first_missing_of(&self, numerics: usize) -> Option<&'static str> {
        let numeric = (0..numerics)
            .find(|&i| self.numeric(i).is_none())
            .map(|i| NUMERIC_FEATURES[i]);
        let categorical = (0..N_CATEGORICAL)
            .find(|&i| self.categorical(i).is_none())
            .map(|i| CATEGORICAL_FEATURES[i]);
        numeric.or(categorical)
    }
}

/// Fill the cross-sectional features of snapshots sorted by date (every
/// base feature defined): each date's rows are one cross-section.
pub fn fill_cross_section(rows: &mut [Snapshot], families: Families) {
    let mut start = 0;
    while start < rows.len() {
        let date = rows[start].date;
        let end = start + rows[start..].partition_point(|r| r.date == date);
        let mut day: Vec<&mut Features> = rows[start..end].iter_mut().map(|r| &mut r.features).collect();
        cross_section_of_day(&mut day, families);
        start = end;
    }
}

/// The cross-sectional features of one date's rows, and the rank family
/// when `families` has it.
pub fn cross_section_of_day(day: &mut [&mut Features], families: Families) {
    cross_section::apply(day);
    if families.rank {
        families::rank_day(day);
    }
}

/// Fill the optional families' values of `snapshots` (of one symbol, in
/// date order) from `candles`, which hold each snapshot's bar and the
/// bars before it the families read (see [`families::values_at`]).
pub fn fill_families(candles: &[Candle], snapshots: &mut [Snapshot], families: Families) {
    if families.is_empty() {
        return;
    }
    let mut t = 0;
    let mut scratch = families::Scratch::default();
    for s in snapshots {
        t += candles[t..].partition_point(|c| c.date < s.date);
        s.features.extra = match candles.get(t) {
            Some(c) if c.date == s.date => scratch.values_at(candles, t, families),
            _ => vec![f32::NAN; families.width()].into_boxed_slice(),
        };
    }
}

/// A (symbol, scan date) with its features and, when labelable, its label.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub symbol: Symbol,
    pub date: NaiveDate,
    /// Close as stored (the entry price users see).
    pub close: f64,
    /// ATR(14) on the adjusted series, rescaled to stored prices.
    pub atr: Option<f64>,
    pub features: Features,
    pub label: Option<Label>,
    /// Date of the last bar of the label window.
    pub window_end: Option<NaiveDate>,
    /// The labeled trade's sessions, entry to exit, with each session's
    /// close on the label prices: what a book marks the position at.
    pub marks: Box<[(NaiveDate, f64)]>,
    /// In the tradeable universe on its date ([`crate::universe`]); the
    /// jobs that apply a rule set it, true otherwise.
    pub tradeable: bool,
}

/// Every snapshot of one symbol's candles (date order), labeled where the
/// horizon is complete within `candles`.
pub fn snapshots(candles: &[Candle], barrier: &Barrier) -> Vec<Snapshot> {
    snapshots_from(candles, barrier, NaiveDate::MIN, PriceAdjust::None)
}

/// The snapshots dated `from` or later; the indicators still run over the
/// whole history (their values depend on it), only the rows before `from`
/// are never built. Features come from split-adjusted prices (as the
/// stored indicators do); labels from the prices `label_prices` says.
pub fn snapshots_from(
    candles: &[Candle],
    barrier: &Barrier,
    from: NaiveDate,
    label_prices: PriceAdjust,
) -> Vec<Snapshot> {
    let adjusted = adjust(candles);
    let rows = compute(&bars_from(&adjusted));
    let first = candles.partition_point(|c| c.date < from);
    assemble(candles, &adjusted, &rows[first..], first, 1.0, barrier, label_prices)
}

/// The snapshots of the last candles of a symbol from indicator rows
/// computed before (read back from `ta_signals`): `rows[i]` is the row of
/// `candles[first + i]`. `candles` can be just the recent ones: a bar's
/// split adjustment depends only on the splits after it. `rows_scale` is
/// the product of the split ratios recorded after the last candle that the
/// rows were adjusted for (1 when they were computed through it). The
/// numbers equal [`snapshots_from`] over the whole history — the stored
/// rows are the ones it would compute (incremental equals full).
pub fn snapshots_from_rows(
    candles: &[Candle],
    rows: &[IndicatorRow],
    first: usize,
    rows_scale: f64,
    barrier: &Barrier,
    label_prices: PriceAdjust,
) -> Vec<Snapshot> {
    assemble(
        candles,
        &adjust(candles),
        rows,
        first,
        rows_scale,
        barrier,
        label_prices,
    )
}

/// Snapshots of `candles[first..first + rows.len()]` from their indicator
/// rows (computed on `adjusted` prices divided by `rows_scale`), labeled on
/// the prices `label_prices` says.
fn assemble(
    candles: &[Candle],
    adjusted: &AdjustedBars,
    rows: &[IndicatorRow],
    first: usize,
    rows_scale: f64,
    barrier: &Barrier,
    label_prices: PriceAdjust,
) -> Vec<Snapshot> {
    let total_return = total_return_bars(candles, label_prices);
    let priced = total_return.as_ref().unwrap_or(adjusted);
    let quoted: Vec<f64> = candles.iter().map(|c| c.close).collect();
    let bars = Bars {
        open: &priced.open,
        high: &priced.high,
        low: &priced.low,
        close: &priced.close,
        quoted_close: Some(&quoted),
    };
    let entry_offset = usize::from(barrier.entry == crate::labels::Entry::NextOpen);
    rows.iter()
        .enumerate()
        .map(|(i, row)| (first + i, row))
        .map(|(t, row)| {
            let close = adjusted.close[t] / rows_scale;
            // The ATR in the label prices' units.
            let label_atr = row.numeric.atr_14.map(|a| a * priced.close[t] / close);
            let label = label_at(&bars, t, label_atr, barrier);
            // Adjusted and stored prices differ by the later splits' ratio.
            let scale = candles[t].close / close;
            Snapshot {
                symbol: candles[t].symbol.clone(),
                date: candles[t].date,
                close: candles[t].close,
                atr: row.numeric.atr_14.map(|a| a * scale),
                features: Features::from_row(row, close),
                label,
                window_end: label.map(|_| candles[t + barrier.horizon].date),
                marks: label
                    .map(|l| {
                        (t + entry_offset..=t + l.bars_to_exit as usize)
                            .map(|i| (candles[i].date, priced.close[i]))
                            .collect()
                    })
                    .unwrap_or_default(),
                tradeable: true,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 400 noisy bars from 2020-01-01 with a 2:1 split on bar 150 and a
    /// 3:1 split on bar 385, an adj_close on every bar (a small dividend
    /// factor) and volumes that vary.
    fn history() -> Vec<Candle> {
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        let mut level = 100.0;
        (0..400u32)
            .map(|i| {
                let x = f64::from(i);
                if i == 150 {
                    level /= 2.0;
                }
                if i == 385 {
                    level /= 3.0;
                }
                level *= 1.0 + 0.02 * (x * 0.7).sin() + 0.001;
                let split_coef = match i {
                    150 => Some(2.0),
                    385 => Some(3.0),
                    _ => None,
                };
                Candle {
                    symbol: Symbol::parse("X").unwrap(),
                    date: start + chrono::Days::new(u64::from(i)),
                    open: level * (1.0 + 0.004 * (x * 1.3).cos()),
                    high: level * 1.015,
                    low: level * 0.985,
                    close: level,
                    adj_close: Some(level * (0.97 + 0.0001 * x)),
                    volume: 10_000 + i64::from(i % 13) * 700,
                    split_coef,
                }
            })
            .collect()
    }

    #[test]
    fn snapshots_from_stored_rows_of_recent_candles_equal_the_full_computation() {
        let candles = history();
        let rows = compute(&bars_from(&adjust(&candles)));
        let barrier = Barrier {
            sizing: crate::labels::BarrierSizing::Atr {
                k_target: 2.0,
                k_stop: 1.5,
            },
            cost_bps_per_side: 5.0,
            ..Barrier::fixed(5, 0.0, 0.0)
        };
        for label_prices in [PriceAdjust::AdjClose, PriceAdjust::None] {
            // Scan dates from bar 370 on; the window read starts 5 bars
            // earlier, the second split falls inside it.
            let from = candles[370].date;
            let full = snapshots_from(&candles, &barrier, from, label_prices);
            let window = &candles[365..];
            let recent = snapshots_from_rows(window, &rows[370..], 5, 1.0, &barrier, label_prices);
            assert_eq!(full.len(), 30);
            assert!(full.iter().filter(|s| s.label.is_some()).count() == 25);
            // Debug prints every f64 in its shortest round-trip form: equal
            // text is equal bits.
            assert_eq!(format!("{full:?}"), format!("{recent:?}"), "{label_prices:?}");
        }
    }

    #[test]
    fn stored_rows_adjusted_for_a_later_split_give_the_same_features() {
        // The rows were computed through bar 399 (after the 3:1 split on
        // bar 385); the scan runs as of bar 380.
        let candles = history();
        let rows = compute(&bars_from(&adjust(&candles)));
        let barrier = Barrier::fixed(5, 0.03, 0.02);
        let as_of = &candles[..=380];
        let full = snapshots_from(as_of, &barrier, candles[360].date, PriceAdjust::AdjClose);
        let recent = snapshots_from_rows(
            &as_of[350..],
            &rows[360..=380],
            10,
            3.0,
            &barrier,
            PriceAdjust::AdjClose,
        );
        assert_eq!(full.len(), recent.len());
        for (a, b) in full.iter().zip(&recent) {
            assert_eq!((a.date, a.close, a.label), (b.date, b.close, b.label));
            let (x, y) = (a.atr.unwrap(), b.atr.unwrap());
            assert!((x - y).abs() <= 1e-9 * x, "atr {x} vs {y}");
            for (i, name) in NUMERIC_FEATURES[..N_BASE_NUMERIC].iter().enumerate() {
                let (x, y) = (a.features.numeric(i).unwrap(), b.features.numeric(i).unwrap());
                assert!((x - y).abs() <= 1e-9 * x.abs().max(1e-6), "{name} {x} vs {y}");
            }
        }
    }

    #[test]
    fn labels_use_total_return_prices_where_every_bar_has_adj_close() {
        // A 2 % dividend goes ex on day 3: raw close 100 → 98, the vendor's
        // adj_close before it scaled by 0.98; opens 1 % above the close.
        let candles: Vec<Candle> = [(1, 100.0, 98.0), (2, 100.0, 98.0), (3, 98.0, 98.0), (4, 99.0, 99.0)]
            .iter()
            .map(|&(d, close, adj)| Candle {
                open: close * 1.01,
                adj_close: Some(adj),
                ..crate::candles::test_bar(d, close)
            })
            .collect();
        // Day 1's trade enters at day 2's open and times out at day 3's close.
        let barrier = Barrier::fixed(2, 0.05, 0.04);
        let with = snapshots_from(&candles, &barrier, NaiveDate::MIN, PriceAdjust::AdjClose);
        let without = snapshots_from(&candles, &barrier, NaiveDate::MIN, PriceAdjust::None);
        let (a, b) = (with[0].label.unwrap(), without[0].label.unwrap());
        // Total return: 98 / (101·0.98) − 1 = −1 %, the open's premium only;
        // raw prices book the dividend as a −2.97 % loss.
        assert!((a.gross_return - (98.0 / (101.0 * 0.98) - 1.0)).abs() < 1e-12, "{a:?}");
        assert!((b.gross_return - (98.0 / 101.0 - 1.0)).abs() < 1e-12, "{b:?}");
        for t in 0..candles.len() {
            for i in 0..N_NUMERIC {
                assert_eq!(
                    with[t].features.numeric(i),
                    without[t].features.numeric(i),
                    "features ignore adj_close"
                );
            }
        }
    }

    #[test]
    fn features_are_scale_free() {
        let make = |scale: f64| -> Vec<Candle> {
            (0..300)
                .map(|i| {
                    let c = scale * (100.0 + (i as f64 * 0.37).sin() * 5.0 + i as f64 * 0.05);
                    Candle {
                        symbol: Symbol::parse("X").unwrap(),
                        date: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(i),
                        open: c,
                        high: c * 1.01,
                        low: c * 0.99,
                        close: c,
                        adj_close: None,
                        volume: 1000 + (i as i64 % 7) * 10,
                        split_coef: None,
                    }
                })
                .collect()
        };
        let barrier = Barrier::fixed(5, 0.05, 0.04);
        let a = snapshots(&make(1.0), &barrier);
        let b = snapshots(&make(37.0), &barrier);
        for (x, y) in a[260..].iter().zip(&b[260..]) {
            for (i, name) in NUMERIC_FEATURES[..N_BASE_NUMERIC].iter().enumerate() {
                let (u, v) = (x.features.numeric(i).unwrap(), y.features.numeric(i).unwrap());
                assert!((u - v).abs() <= 1e-9 * u.abs().max(1.0), "{name} differs: {u} vs {v}");
            }
            assert_eq!(x.features.categorical, y.features.categorical);
            assert_eq!(x.label.map(|l| l.label), y.label.map(|l| l.label));
        }
        assert!(a[260].features.first_missing_base().is_none());
        assert_eq!(a[260].features.first_missing(), Some("xs_rank_ret_5d"));
        assert_eq!(a[10].features.first_missing(), Some("rsi_14"));
        assert!(a[299].label.is_none() && a[294].label.is_some());
    }
}
