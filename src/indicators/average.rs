//! Simple and exponential moving averages, TA-Lib conventions.

use serde::{Deserialize, Serialize};

use super::window::Window;

/// SMA(n): first value at bar n−1; a running sum as TA-Lib keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sma {
    window: Window,
    sum: f64,
}

impl Sma {
    pub fn new(n: usize) -> Sma {
        Sma {
            window: Window::new(n),
            sum: 0.0,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        // Same operation order as TA-Lib: drop the oldest, add the newest.
        if let Some(evicted) = self.window.push(x) {
            self.sum -= evicted;
        }
        self.sum += x;
        self.window.is_full().then(|| self.sum / self.window.capacity() as f64)
    }
}

/// EMA(n): first value at bar n−1 = SMA of the first n inputs, then
/// `prev + k·(x − prev)` with k = 2/(n+1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ema {
    n: usize,
    k: f64,
    seen: usize,
    seed_sum: f64,
    value: Option<f64>,
}

impl Ema {
    pub fn new(n: usize) -> Ema {
        Ema {
            n,
            k: 2.0 / (n as f64 + 1.0),
            seen: 0,
            seed_sum: 0.0,
            value: None,
        }
    }

    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.seen += 1;
        self.value = match self.value {
            Some(prev) => Some((x - prev) * self.k + prev),
            None => {
                self.seed_sum += x;
                (self.seen == self.n).then(|| self.seed_sum / self.n as f64)
            }
        };
        self.value
    }
}

/// SMA over a whole series.
pub fn sma(values: &[f64], n: usize) -> Vec<Option<f64>> {
    let mut state = Sma::new(n);
    values.iter().map(|&x| state.update(x)).collect()
}

/// EMA over a whole series.
pub fn ema(values: &[f64], n: usize) -> Vec<Option<f64>> {
    let mut state = Ema::new(n);
    values.iter().map(|&x| state.update(x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::testing::assert_close_series;

    #[test]
    fn sma_by_hand() {
        // (1+2+3)/3 = 2, (2+3+4)/3 = 3, (3+4+8)/3 = 5
        assert_close_series(
            &sma(&[1.0, 2.0, 3.0, 4.0, 8.0], 3),
            &[None, None, Some(2.0), Some(3.0), Some(5.0)],
        );
    }

    #[test]
    fn ema_seeded_with_sma_by_hand() {
        // n = 3, k = 0.5: seed (1+2+3)/3 = 2; then 2 + 0.5·(4−2) = 3; 3 + 0.5·(8−3) = 5.5
        assert_close_series(
            &ema(&[1.0, 2.0, 3.0, 4.0, 8.0], 3),
            &[None, None, Some(2.0), Some(3.0), Some(5.5)],
        );
    }
}
