//! Directional movement: +DI, −DI and ADX, TA-Lib conventions.
//!
//! +DM/−DM and TR from bar 1. The Wilder running sums `S = S − S/n + x`
//! are seeded with the sum of n−1 values (bars 1..n−1); the first
//! smoothing step is at bar n, where +DI and −DI start (0 when the smoothed
//! TR is zero). DX from bar n; the first ADX at bar 2n−1 is the mean DX of
//! bars n..2n−1; then Wilder. Like TA-Lib, a bar whose DX is undefined
//! (smoothed TR or +DI + −DI zero) adds 0 to the seed and leaves the
//! smoothed ADX unchanged afterwards.

use serde::{Deserialize, Serialize};

use super::is_zero;
use super::volatility::true_range;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DmiValue {
    pub plus_di: f64,
    pub minus_di: f64,
    /// From bar 2n−1.
    pub adx: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dmi {
    n: usize,
    prev: Option<(f64, f64, f64)>,
    moves: usize,
    plus_dm: f64,
    minus_dm: f64,
    tr: f64,
    dx_seen: usize,
    dx_sum: f64,
    adx: Option<f64>,
}

impl Dmi {
    pub fn new(n: usize) -> Dmi {
        Dmi {
            n,
            prev: None,
            moves: 0,
            plus_dm: 0.0,
            minus_dm: 0.0,
            tr: 0.0,
            dx_seen: 0,
            dx_sum: 0.0,
            adx: None,
        }
    }

    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<DmiValue> {
        let (prev_high, prev_low, prev_close) = self.prev.replace((high, low, close))?;
        let up = high - prev_high;
        let down = prev_low - low;
        let (plus, minus) = if down > 0.0 && up < down {
            (0.0, down)
        } else if up > 0.0 && up > down {
            (up, 0.0)
        } else {
            (0.0, 0.0)
        };
        let tr = true_range(high, low, prev_close);
        self.moves += 1;
        if self.moves < self.n {
            self.plus_dm += plus;
            self.minus_dm += minus;
            self.tr += tr;
            return None;
        }
        let n = self.n as f64;
        self.plus_dm = self.plus_dm - self.plus_dm / n + plus;
        self.minus_dm = self.minus_dm - self.minus_dm / n + minus;
        self.tr = self.tr - self.tr / n + tr;
        let (plus_di, minus_di) = if is_zero(self.tr) {
            (0.0, 0.0)
        } else {
            (100.0 * (self.plus_dm / self.tr), 100.0 * (self.minus_dm / self.tr))
        };
        let dx = (!is_zero(self.tr) && !is_zero(plus_di + minus_di))
            .then(|| 100.0 * ((minus_di - plus_di).abs() / (minus_di + plus_di)));
        self.update_adx(dx);
        Some(DmiValue {
            plus_di,
            minus_di,
            adx: self.adx,
        })
    }

    fn update_adx(&mut self, dx: Option<f64>) {
        let n = self.n as f64;
        if self.dx_seen < self.n {
            self.dx_seen += 1;
            self.dx_sum += dx.unwrap_or(0.0);
            if self.dx_seen == self.n {
                self.adx = Some(self.dx_sum / n);
            }
        } else if let (Some(adx), Some(dx)) = (self.adx, dx) {
            self.adx = Some((adx * (n - 1.0) + dx) / n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_series_gives_zero_not_null() {
        let mut dmi = Dmi::new(14);
        let out: Vec<_> = (0..40).map(|_| dmi.update(10.0, 10.0, 10.0)).collect();
        assert!(out[..14].iter().all(Option::is_none));
        assert!(
            out[14..27]
                .iter()
                .all(|v| v.unwrap().adx.is_none() && v.unwrap().plus_di == 0.0)
        );
        for v in &out[27..] {
            let v = v.unwrap();
            assert_eq!((v.plus_di, v.minus_di, v.adx), (0.0, 0.0, Some(0.0)));
        }
    }

    #[test]
    fn dmi_by_hand_with_period_2() {
        // n = 2: seed with 1 value (bar 1), first smoothing at bar 2, ADX at bar 3.
        let h = [10.0, 11.0, 12.0, 11.5];
        let l = [9.0, 10.0, 10.5, 10.0];
        let c = [9.5, 10.5, 11.5, 10.2];
        // bar1: up 1, down −1 → +DM 1; TR max(1, 1.5, 0.5) = 1.5
        // bar2: up 1, down −0.5 → +DM 1; TR max(1.5, 1.5, 0) = 1.5
        //       S+ = 1 − 0.5 + 1 = 1.5; S− = 0; Str = 1.5 − 0.75 + 1.5 = 2.25
        //       +DI = 100·1.5/2.25 = 66.67, −DI = 0, DX = 100
        // bar3: up −0.5, down 0.5 → −DM 0.5; TR max(1.5, 0, 1.5) = 1.5
        //       S+ = 0.75; S− = 0.5; Str = 1.125 + 1.5 = 2.625
        //       +DI = 28.571…, −DI = 19.047…, DX = 100·9.5238/47.619 = 20
        //       ADX = (100 + 20)/2 = 60
        let mut dmi = Dmi::new(2);
        let out: Vec<_> = (0..4).map(|i| dmi.update(h[i], l[i], c[i])).collect();
        assert!(out[1].is_none());
        let b2 = out[2].unwrap();
        assert!((b2.plus_di - 200.0 / 3.0).abs() < 1e-12 && b2.minus_di == 0.0 && b2.adx.is_none());
        let b3 = out[3].unwrap();
        assert!((b3.plus_di - 75.0 / 2.625).abs() < 1e-12);
        assert!((b3.minus_di - 50.0 / 2.625).abs() < 1e-12);
        assert!((b3.adx.unwrap() - 60.0).abs() < 1e-9);
    }
}
