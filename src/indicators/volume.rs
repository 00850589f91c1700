//! On-balance volume: first value = volume of bar 0; an unchanged close adds 0.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Obv {
    prev_close: Option<f64>,
    value: f64,
}

impl Obv {
    pub fn update(&mut self, close: f64, volume: f64) -> f64 {
        match self.prev_close.replace(close) {
            None => self.value = volume,
            Some(prev) if close > prev => self.value += volume,
            Some(prev) if close < prev => self.value -= volume,
            Some(_) => {}
        }
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obv_by_hand() {
        let mut obv = Obv::default();
        let got: Vec<f64> = [(10.0, 100.0), (11.0, 50.0), (11.0, 70.0), (9.0, 30.0)]
            .iter()
            .map(|&(c, v)| obv.update(c, v))
            .collect();
        assert_eq!(got, vec![100.0, 150.0, 150.0, 120.0]);
    }
}
