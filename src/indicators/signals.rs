//! The categorical signals and the rule-based recommendation.
//!
//! - `adx_strength`: `weak` (ADX < 20), `moderate` (20 ≤ ADX < 25),
//!   `strong` (25 ≤ ADX < 50), `very_strong` (ADX ≥ 50).
//! - `di_strength`: `bullish` (+DI − −DI > 5), `bearish` (< −5), `neutral`.
//! - `madi_trend`: `up` (close > SMA50 and +DI > −DI), `down` (close < SMA50
//!   and −DI > +DI), `sideways` otherwise.
//! - `trend_reversal`: `bullish` when MACD crossed above its signal on this
//!   bar (line ≤ signal on the previous bar, > now) and RSI was below 35 on
//!   any of the last 5 bars; `bearish` when it crossed below and RSI was
//!   above 65 on any of the last 5 bars; `none` otherwise.
//!
//! `ta_recommendation` adds up votes:
//!
//! | signal | +1 (or +2) | −1 (or −2) |
//! |---|---|---|
//! | RSI(14) | < 30 (oversold) | > 70 (overbought) |
//! | MACD histogram | > 0 | < 0 |
//! | `madi_trend` | `up` | `down` |
//! | `di_strength`, only when ADX ≥ 20 (a trend worth trusting) | `bullish` | `bearish` |
//! | `trend_reversal` (weight 2) | `bullish` | `bearish` |
//! | Bollinger %b | < 0 (below the lower band) | > 1 (above the upper band) |
//!
//! A score ≥ 2 is `BUY`, ≤ −2 `SELL`, otherwise `HOLD`; NULL until every
//! input is defined (bar 49, when SMA50 starts). `ta_stop_loss = close −
//! 2·ATR` and `ta_take_profit = close + 3·ATR`.

pub fn adx_strength(adx: f64) -> &'static str {
    if adx < 20.0 {
        "weak"
    } else if adx < 25.0 {
        "moderate"
    } else if adx < 50.0 {
        "strong"
    } else {
        "very_strong"
    }
}

pub fn di_strength(plus_di: f64, minus_di: f64) -> &'static str {
    let spread = plus_di - minus_di;
    if spread > 5.0 {
        "bullish"
    } else if spread < -5.0 {
        "bearish"
    } else {
        "neutral"
    }
}

pub fn madi_trend(close: f64, sma_50: f64, plus_di: f64, minus_di: f64) -> &'static str {
    if close > sma_50 && plus_di > minus_di {
        "up"
    } else if close < sma_50 && minus_di > plus_di {
        "down"
    } else {
        "sideways"
    }
}

/// MACD (line, signal) on the previous and this bar, and the RSI values of
/// the last 5 bars.
pub fn trend_reversal(prev: (f64, f64), now: (f64, f64), recent_rsi: &[f64]) -> &'static str {
    let crossed_up = prev.0 <= prev.1 && now.0 > now.1;
    let crossed_down = prev.0 >= prev.1 && now.0 < now.1;
    if crossed_up && recent_rsi.iter().any(|&r| r < 35.0) {
        "bullish"
    } else if crossed_down && recent_rsi.iter().any(|&r| r > 65.0) {
        "bearish"
    } else {
        "none"
    }
}

/// Inputs of the recommendation score.
pub struct Votes<'a> {
    pub rsi: f64,
    pub macd_hist: f64,
    pub madi_trend: &'a str,
    pub di_strength: &'a str,
    pub adx: f64,
    pub trend_reversal: &'a str,
    pub bb_pctb: Option<f64>,
}

pub fn score(v: &Votes) -> i32 {
    let sign = |good: bool, bad: bool| i32::from(good) - i32::from(bad);
    let mut score = sign(v.rsi < 30.0, v.rsi > 70.0);
    score += sign(v.macd_hist > 0.0, v.macd_hist < 0.0);
    score += sign(v.madi_trend == "up", v.madi_trend == "down");
    if v.adx >= 20.0 {
        score += sign(v.di_strength == "bullish", v.di_strength == "bearish");
    }
    score += 2 * sign(v.trend_reversal == "bullish", v.trend_reversal == "bearish");
    if let Some(b) = v.bb_pctb {
        score += sign(b < 0.0, b > 1.0);
    }
    score
}

pub fn recommendation(score: i32) -> &'static str {
    if score >= 2 {
        "BUY"
    } else if score <= -2 {
        "SELL"
    } else {
        "HOLD"
    }
}

/// Every label the signals produce; a label's position is its compact code.
pub const LABELS: [&str; 14] = [
    "weak",
    "moderate",
    "strong",
    "very_strong",
    "bullish",
    "bearish",
    "neutral",
    "up",
    "down",
    "sideways",
    "none",
    "BUY",
    "SELL",
    "HOLD",
];

/// The static label for a stored one (labels come back from the database
/// as text); `None` for anything this version does not produce.
pub fn intern(label: &str) -> Option<&'static str> {
    LABELS.iter().copied().find(|l| *l == label)
}

/// A label as a one-byte code: 0 = none, k = `LABELS[k − 1]`.
pub fn code(label: Option<&str>) -> u8 {
    label
        .and_then(|l| LABELS.iter().position(|x| *x == l))
        .map(|i| i as u8 + 1)
        .unwrap_or(0)
}

/// The label of a code from [`code`].
pub fn label_of(code: u8) -> Option<&'static str> {
    code.checked_sub(1).and_then(|i| LABELS.get(i as usize).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(adx_strength(19.99), "weak");
        assert_eq!(adx_strength(20.0), "moderate");
        assert_eq!(adx_strength(25.0), "strong");
        assert_eq!(adx_strength(50.0), "very_strong");
        assert_eq!(di_strength(30.0, 24.0), "bullish");
        assert_eq!(di_strength(24.0, 30.0), "bearish");
        assert_eq!(di_strength(25.0, 30.0), "neutral");
        assert_eq!(madi_trend(11.0, 10.0, 30.0, 20.0), "up");
        assert_eq!(madi_trend(9.0, 10.0, 20.0, 30.0), "down");
        assert_eq!(madi_trend(11.0, 10.0, 20.0, 30.0), "sideways");
    }

    #[test]
    fn reversal_needs_a_cross_and_an_extreme_rsi() {
        assert_eq!(trend_reversal((-1.0, 0.0), (1.0, 0.0), &[50.0, 34.0, 40.0]), "bullish");
        assert_eq!(trend_reversal((-1.0, 0.0), (1.0, 0.0), &[50.0, 36.0]), "none");
        assert_eq!(trend_reversal((1.0, 0.0), (2.0, 0.0), &[20.0]), "none", "no cross");
        assert_eq!(trend_reversal((1.0, 0.0), (-1.0, 0.0), &[70.0]), "bearish");
    }

    #[test]
    fn score_adds_votes() {
        let v = Votes {
            rsi: 25.0,
            macd_hist: 0.1,
            madi_trend: "up",
            di_strength: "bullish",
            adx: 30.0,
            trend_reversal: "bullish",
            bb_pctb: Some(-0.1),
        };
        assert_eq!(score(&v), 7);
        assert_eq!(recommendation(score(&v)), "BUY");
        let weak_trend = Votes {
            adx: 10.0,
            trend_reversal: "none",
            rsi: 50.0,
            bb_pctb: Some(0.5),
            ..v
        };
        assert_eq!(score(&weak_trend), 2, "DI vote ignored below ADX 20");
        assert_eq!(recommendation(-2), "SELL");
        assert_eq!(recommendation(1), "HOLD");
    }
}
