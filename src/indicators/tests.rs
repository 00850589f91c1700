//! The whole indicator set against TA-Lib's own numbers
//! (`fixtures/expected/talib_reference.csv`, made by
//! `fixtures/expected/make_talib_reference.py`), the NULL positions, the
//! constant series, and full pass = continuation from a saved state.

use std::collections::BTreeMap;
use std::path::Path;

use super::testing::{REL_TOL, close};
use super::*;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// (date, bar) of one symbol of the US fixture, raw prices.
fn load_bars(symbol: &str) -> Vec<(String, Bar)> {
    let mut reader = csv::Reader::from_path(fixture("us_daily_10sym_2018_2020.csv")).unwrap();
    let mut out = Vec::new();
    for record in reader.records() {
        let r = record.unwrap();
        if &r[0] != symbol {
            continue;
        }
        let f = |i: usize| r[i].parse::<f64>().unwrap();
        out.push((
            r[1].to_string(),
            Bar {
                open: f(2),
                high: f(3),
                low: f(4),
                close: f(5),
                volume: f(7),
            },
        ));
    }
    out
}

/// TA-Lib's values: column -> per-bar values for one symbol.
fn reference(symbol: &str) -> BTreeMap<String, Vec<Option<f64>>> {
    let mut reader = csv::Reader::from_path(fixture("expected/talib_reference.csv")).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    let mut columns: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for record in reader.records() {
        let r = record.unwrap();
        if &r[0] != symbol {
            continue;
        }
        for (i, name) in headers.iter().enumerate().skip(2) {
            let value = (!r[i].is_empty()).then(|| r[i].parse::<f64>().unwrap());
            columns.entry(name.clone()).or_default().push(value);
        }
    }
    columns
}

fn column(rows: &[IndicatorRow], name: &str) -> Vec<Option<f64>> {
    let index = NUMERIC_COLUMNS
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    rows.iter().map(|r| r.numeric.values()[index]).collect()
}

#[test]
fn every_talib_column_matches_talib_within_1e_9() {
    for symbol in ["BA", "KO"] {
        let bars: Vec<Bar> = load_bars(symbol).into_iter().map(|(_, b)| b).collect();
        assert_eq!(bars.len(), 756);
        let rows = compute(&bars);
        let expected = reference(symbol);
        assert_eq!(expected.len(), 22, "reference columns");
        for (name, want) in &expected {
            let got = column(&rows, name);
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                match (g, w) {
                    (None, None) => {}
                    (Some(g), Some(w)) => {
                        assert!(close(*g, *w, REL_TOL), "{symbol} {name} bar {i}: got {g}, TA-Lib {w}")
                    }
                    _ => panic!("{symbol} {name} bar {i}: got {g:?}, TA-Lib {w:?} (NULL position differs)"),
                }
            }
        }
    }
}

#[test]
fn first_defined_bar_of_each_indicator() {
    let bars: Vec<Bar> = load_bars("KO").into_iter().map(|(_, b)| b).collect();
    let rows = compute(&bars);
    let first = |name: &str| column(&rows, name).iter().position(Option::is_some).unwrap();
    let expected = [
        ("rsi_14", 14),
        ("atr_14", 14),
        ("adx_14", 27),
        ("macd", 33),
        ("macd_signal", 33),
        ("macd_hist", 33),
        ("ema_20", 19),
        ("sma_20", 19),
        ("bb_upper", 19),
        ("sma_50", 49),
        ("ema_50", 49),
        ("sma_200", 199),
        ("plus_di_14", 14),
        ("minus_di_14", 14),
        ("obv", 0),
        ("ret_1d", 1),
        ("ret_5d", 5),
        ("ret_20d", 20),
        ("volatility_20d", 20),
        ("high_52w", 251),
        ("support_20", 19),
    ];
    for (name, bar) in expected {
        assert_eq!(first(name), bar, "{name}");
    }
    let first_cat = |f: fn(&IndicatorRow) -> Option<&'static str>| rows.iter().position(|r| f(r).is_some()).unwrap();
    assert_eq!(first_cat(|r| r.adx_strength), 27);
    assert_eq!(first_cat(|r| r.di_strength), 14);
    assert_eq!(first_cat(|r| r.trend_reversal), 34);
    assert_eq!(first_cat(|r| r.madi_trend), 49);
    assert_eq!(first_cat(|r| r.ta_recommendation), 49);
}

#[test]
fn constant_series_gives_zeros_not_nulls() {
    let bar = Bar {
        open: 50.0,
        high: 50.0,
        low: 50.0,
        close: 50.0,
        volume: 1000.0,
    };
    let rows = compute(&vec![bar; 300]);
    let last = &rows[299].numeric;
    assert_eq!(last.rsi_14, Some(0.0));
    assert_eq!(
        (last.adx_14, last.plus_di_14, last.minus_di_14, last.atr_14),
        (Some(0.0), Some(0.0), Some(0.0), Some(0.0))
    );
    assert_eq!(last.bb_width, Some(0.0));
    assert_eq!(last.bb_upper, last.bb_lower);
    assert_eq!(last.bb_pctb, None, "0/0 band position is not made up");
    assert_eq!(last.volatility_20d, Some(0.0));
    assert_eq!(last.obv, Some(1000.0), "unchanged closes add nothing");
    assert_eq!((last.ret_1d, last.ret_20d), (Some(0.0), Some(0.0)));
    assert_eq!(rows[299].adx_strength, Some("weak"));
}

#[test]
fn derived_columns_by_hand() {
    let bars: Vec<Bar> = load_bars("KO").into_iter().map(|(_, b)| b).collect();
    let rows = compute(&bars);
    let i = 300;
    let n = &rows[i].numeric;
    let c = |k: usize| bars[k].close;
    assert!(close(n.ret_1d.unwrap(), c(i) / c(i - 1) - 1.0, 1e-15));
    assert!(close(n.ret_5d.unwrap(), c(i) / c(i - 5) - 1.0, 1e-15));
    assert!(close(n.ret_20d.unwrap(), c(i) / c(i - 20) - 1.0, 1e-15));
    let logs: Vec<f64> = (i - 19..=i).map(|k| (c(k) / c(k - 1)).ln()).collect();
    let mean = logs.iter().sum::<f64>() / 20.0;
    let var = logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 19.0;
    assert!(close(n.volatility_20d.unwrap(), var.sqrt(), 1e-12));
    let (upper, lower) = (n.bb_upper.unwrap(), n.bb_lower.unwrap());
    assert!(close(n.bb_pctb.unwrap(), (c(i) - lower) / (upper - lower), 1e-15));
    assert!(close(
        n.bb_width.unwrap(),
        (upper - lower) / n.bb_middle.unwrap(),
        1e-15
    ));
    assert!(close(
        n.volume_ratio_20.unwrap(),
        bars[i].volume / n.volume_sma_20.unwrap(),
        1e-15
    ));
    assert!(close(n.dist_52w_high.unwrap(), c(i) / n.high_52w.unwrap() - 1.0, 1e-15));
    assert!(close(n.price_over_sma50.unwrap(), c(i) / n.sma_50.unwrap(), 1e-15));
    assert!(close(
        n.sma20_over_sma50.unwrap(),
        n.sma_20.unwrap() / n.sma_50.unwrap(),
        1e-15
    ));
    assert!(close(n.ta_stop_loss.unwrap(), c(i) - 2.0 * n.atr_14.unwrap(), 1e-15));
    assert!(close(n.ta_take_profit.unwrap(), c(i) + 3.0 * n.atr_14.unwrap(), 1e-15));
}

#[test]
fn continuing_from_a_saved_state_equals_the_full_pass() {
    let bars: Vec<Bar> = load_bars("BA").into_iter().map(|(_, b)| b).collect();
    let full = compute(&bars);
    for cut in [1, 13, 33, 250, 500, 755] {
        let mut state = IndicatorState::new();
        let mut rows: Vec<IndicatorRow> = bars[..cut].iter().map(|b| state.update(b)).collect();
        let saved = serde_json::to_string(&state).unwrap();
        let mut resumed: IndicatorState = serde_json::from_str(&saved).unwrap();
        rows.extend(bars[cut..].iter().map(|b| resumed.update(b)));
        assert_eq!(rows, full, "cut at bar {cut}: continuation differs from the full pass");
    }
}

#[test]
fn recommendation_labels_are_all_reachable_on_real_data() {
    let mut seen = std::collections::BTreeSet::new();
    for symbol in ["BA", "KO", "TSLA", "XOM", "NVDA"] {
        let bars: Vec<Bar> = load_bars(symbol).into_iter().map(|(_, b)| b).collect();
        for row in compute(&bars) {
            if let Some(label) = row.ta_recommendation {
                seen.insert(label);
            }
            if let Some(r) = row.trend_reversal {
                seen.insert(r);
            }
        }
    }
    for label in ["BUY", "SELL", "HOLD", "bullish", "bearish", "none"] {
        assert!(seen.contains(label), "{label} never produced: {seen:?}");
    }
}
