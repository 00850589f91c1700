//! RSI and MACD, TA-Lib conventions.

use serde::{Deserialize, Serialize};

use super::average::Ema;
use super::is_zero;

/// RSI(n): changes from bar 1; first value at bar n from the mean gain and
/// mean loss of bars 1..n; then Wilder `(prev·(n−1) + x)/n`;
/// RSI = 100·G/(G+L), 0 when G+L is zero (a constant series).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rsi {
    n: usize,
    prev: Option<f64>,
    changes: usize,
    gain: f64,
    loss: f64,
}

impl Rsi {
    pub fn new(n: usize) -> Rsi {
        Rsi {
            n,
            prev: None,
            changes: 0,
            gain: 0.0,
            loss: 0.0,
        }
    }

    pub fn update(&mut self, close: f64) -> Option<f64> {
        let prev = self.prev.replace(close)?;
        let change = close - prev;
        let (up, down) = if change < 0.0 { (0.0, -change) } else { (change, 0.0) };
        let n = self.n as f64;
        self.changes += 1;
        if self.changes < self.n {
            self.gain += up;
            self.loss += down;
            return None;
        }
        if self.changes == self.n {
            self.gain = (self.gain + up) / n;
            self.loss = (self.loss + down) / n;
        } else {
            self.gain = (self.gain * (n - 1.0) + up) / n;
            self.loss = (self.loss * (n - 1.0) + down) / n;
        }
        let total = self.gain + self.loss;
        Some(if is_zero(total) {
            0.0
        } else {
            100.0 * (self.gain / total)
        })
    }
}

/// MACD line, signal and histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdValue {
    pub line: f64,
    pub signal: f64,
    pub hist: f64,
}

/// MACD(fast, slow, signal) as TA-Lib aligns it: the slow EMA is seeded on
/// bars 0..slow−1, the fast EMA on bars slow−fast..slow−1 (so both start at
/// bar slow−1), the signal EMA on the line from bar slow−1; line, signal
/// and histogram are all NULL before bar slow+signal−2 (33 for 12/26/9).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Macd {
    fast_start: usize,
    bar: usize,
    fast: Ema,
    slow: Ema,
    signal: Ema,
}

impl Macd {
    pub fn new(fast: usize, slow: usize, signal: usize) -> Macd {
        Macd {
            fast_start: slow - fast,
            bar: 0,
            fast: Ema::new(fast),
            slow: Ema::new(slow),
            signal: Ema::new(signal),
        }
    }

    pub fn update(&mut self, close: f64) -> Option<MacdValue> {
        let bar = self.bar;
        self.bar += 1;
        let slow = self.slow.update(close);
        let fast = if bar >= self.fast_start {
            self.fast.update(close)
        } else {
            None
        };
        let line = fast? - slow?;
        let signal = self.signal.update(line)?;
        Some(MacdValue {
            line,
            signal,
            hist: line - signal,
        })
    }
}

/// RSI over a whole series.
pub fn rsi(closes: &[f64], n: usize) -> Vec<Option<f64>> {
    let mut state = Rsi::new(n);
    closes.iter().map(|&x| state.update(x)).collect()
}

/// MACD over a whole series.
pub fn macd(closes: &[f64], fast: usize, slow: usize, signal: usize) -> Vec<Option<MacdValue>> {
    let mut state = Macd::new(fast, slow, signal);
    closes.iter().map(|&x| state.update(x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::assert_close_series;

    #[test]
    fn rsi_by_hand_with_period_2() {
        // changes: +1, −2, +3, 0
        // bar 2: G = (1+0)/2 = 0.5, L = (0+2)/2 = 1 → 100·0.5/1.5 = 33.33…
        // bar 3: G = (0.5·1 + 3)/2 = 1.75, L = (1·1 + 0)/2 = 0.5 → 100·1.75/2.25
        // bar 4: G = 1.75/2 = 0.875, L = 0.25 → 100·0.875/1.125
        let got = rsi(&[10.0, 11.0, 9.0, 12.0, 12.0], 2);
        let want = [
            None,
            None,
            Some(100.0 / 3.0),
            Some(100.0 * 1.75 / 2.25),
            Some(100.0 * 0.875 / 1.125),
        ];
        assert_close_series(&got, &want);
    }

    #[test]
    fn rsi_first_value_at_bar_14_and_zero_for_a_constant_series() {
        let got = rsi(&[5.0; 30], 14);
        assert!(got[..14].iter().all(Option::is_none));
        assert!(got[14..].iter().all(|v| *v == Some(0.0)));
    }

    #[test]
    fn macd_alignment_small_periods() {
        // fast 2, slow 3, signal 2: slow seeded on bars 0..2, fast on 1..2,
        // signal on the line of bars 2..3 → first output at bar 3.
        let closes = [1.0, 2.0, 4.0, 8.0, 16.0];
        let got = macd(&closes, 2, 3, 2);
        assert!(got[..3].iter().all(Option::is_none));
        // bar 2: slow = 7/3, fast = 3 → line 2/3
        // bar 3: slow = 7/3 + 0.5·(8 − 7/3) = 31/6; fast = 3 + (2/3)(8−3) = 19/3 → line 7/6
        //        signal = (2/3 + 7/6)/2 = 11/12; hist = 7/6 − 11/12 = 1/4
        let v = got[3].unwrap();
        assert!((v.line - 7.0 / 6.0).abs() < 1e-12 && (v.signal - 11.0 / 12.0).abs() < 1e-12);
        assert!((v.hist - 0.25).abs() < 1e-12);
    }
}
