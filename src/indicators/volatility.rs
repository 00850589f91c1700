//! True range, ATR and Bollinger bands, TA-Lib conventions.

use serde::{Deserialize, Serialize};

use super::average::Sma;
use super::window::Window;

/// True range of a bar given the previous close.
pub fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    (high - low)
        .max((prev_close - high).abs())
        .max((prev_close - low).abs())
}

/// ATR(n): true range from bar 1 (bar 0 has no previous close); first
/// value at bar n = mean TR of bars 1..n; then Wilder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Atr {
    n: usize,
    prev_close: Option<f64>,
    ranges: usize,
    value: f64,
}

impl Atr {
    pub fn new(n: usize) -> Atr {
        Atr {
            n,
            prev_close: None,
            ranges: 0,
            value: 0.0,
        }
    }

    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let prev_close = self.prev_close.replace(close)?;
        let tr = true_range(high, low, prev_close);
        let n = self.n as f64;
        self.ranges += 1;
        if self.ranges < self.n {
            self.value += tr;
            return None;
        }
        self.value = if self.ranges == self.n {
            (self.value + tr) / n
        } else {
            (self.value * (n - 1.0) + tr) / n
        };
        Some(self.value)
    }
}

/// Bollinger bands: upper, middle, lower.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bands {
    pub upper: f64,
    pub middle: f64,
    pub lower: f64,
}

/// Bollinger(n, k): SMA(n) ± k·population stdev of the same window, the
/// deviation computed in two passes so a flat window gives exactly 0.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bollinger {
    k: f64,
    sma: Sma,
    window: Window,
}

impl Bollinger {
    pub fn new(n: usize, k: f64) -> Bollinger {
        Bollinger {
            k,
            sma: Sma::new(n),
            window: Window::new(n),
        }
    }

    pub fn update(&mut self, close: f64) -> Option<Bands> {
        self.window.push(close);
        let middle = self.sma.update(close)?;
        let width = self.k * self.window.stdev(0)?;
        Some(Bands {
            upper: middle + width,
            middle,
            lower: middle - width,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::assert_close_series;

    #[test]
    fn atr_by_hand_with_period_2() {
        let (h, l, c) = (
            [10.0, 12.0, 11.0, 15.0],
            [8.0, 9.0, 10.0, 11.0],
            [9.0, 11.0, 10.5, 14.0],
        );
        // TR: bar1 max(3, |9−12|, |9−9|) = 3; bar2 max(1, |11−11|, |11−10|) = 1; bar3 max(4, |10.5−15|, |10.5−11|) = 4.5
        // ATR: bar2 (3+1)/2 = 2; bar3 (2·1 + 4.5)/2 = 3.25
        let mut atr = Atr::new(2);
        let got: Vec<_> = (0..4).map(|i| atr.update(h[i], l[i], c[i])).collect();
        assert_close_series(&got, &[None, None, Some(2.0), Some(3.25)]);
    }

    #[test]
    fn bollinger_by_hand_and_flat_window() {
        let mut bb = Bollinger::new(4, 2.0);
        let got: Vec<_> = [2.0, 4.0, 4.0, 6.0].iter().map(|&x| bb.update(x)).collect();
        // mean 4, population stdev sqrt(2)
        let b = got[3].unwrap();
        assert_eq!(b.middle, 4.0);
        assert!((b.upper - (4.0 + 2.0 * 2f64.sqrt())).abs() < 1e-12);
        let mut flat = Bollinger::new(20, 2.0);
        let last = (0..30).map(|_| flat.update(101.37)).last().unwrap().unwrap();
        assert_eq!(last.upper - last.lower, 0.0);
    }
}
