//! What a trade costs besides the commission: the price tick.
//!
//! A per-side cost in basis points fits a liquid stock; a stock quoted in
//! cents cannot trade at 10 bp, because the spread is at least one tick
//! and crossing it costs half a tick per side. So the cost of a side is
//! `max(bps_per_side / 10⁴, tick(price) / (2·price))` on the price the
//! exchange quoted that day. The ticks are per exchange: a fixed size, or
//! a table of price bands ([`TickRule::Pse`], the Philippine Stock
//! Exchange's board-lot table). Plain values in, fractions out.

use serde::{Deserialize, Serialize};

/// The tick an exchange quotes a price in.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TickRule {
    /// No tick floor: costs are `bps_per_side` only (models trained before
    /// the floor existed).
    #[default]
    None,
    /// One tick size at every price (US equities 0.01, NSE 0.05).
    Fixed { size: f64 },
    /// The PSE's price-banded ticks.
    Pse,
}

/// The PSE's tick by price band: (lowest price of the band, tick), ascending.
/// From the exchange's published board-lot table; check it against the
/// rules in force before relying on it for a live book.
const PSE_BANDS: &[(f64, f64)] = &[
    (0.0, 0.0001),
    (0.01, 0.001),
    (0.25, 0.005),
    (0.5, 0.01),
    (10.0, 0.02),
    (20.0, 0.05),
    (100.0, 0.1),
    (200.0, 0.2),
    (500.0, 0.5),
    (1000.0, 1.0),
    (2000.0, 2.0),
    (5000.0, 5.0),
];

impl TickRule {
    /// The tick at `price`, if the rule has one.
    pub fn tick(self, price: f64) -> Option<f64> {
        match self {
            TickRule::None => None,
            TickRule::Fixed { size } => Some(size),
            TickRule::Pse => PSE_BANDS
                .iter()
                .rev()
                .find(|(from, _)| price >= *from)
                .map(|(_, tick)| *tick),
        }
    }

    /// Half a tick as a fraction of `price`: the least a side can cost.
    /// Zero without a tick or for a price that is not positive.
    pub fn half_tick_fraction(self, price: f64) -> f64 {
        match self.tick(price) {
            Some(tick) if price > 0.0 && price.is_finite() => 0.5 * tick / price,
            _ => 0.0,
        }
    }

    /// The cost of one side at `price`: the commission, or half a tick
    /// when that is more.
    pub fn side_cost(self, bps_per_side: f64, price: f64) -> f64 {
        (bps_per_side / 10_000.0).max(self.half_tick_fraction(price))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_floor_binds_only_on_cheap_quotes() {
        let us = TickRule::Fixed { size: 0.01 };
        // $100: half a cent is 0.5 bp, under 10 bp.
        assert_eq!(us.side_cost(10.0, 100.0), 0.001);
        // $2: 0.005 / 2 = 25 bp.
        assert!((us.side_cost(10.0, 2.0) - 0.0025).abs() < 1e-15);
        assert_eq!(TickRule::None.side_cost(10.0, 0.01), 0.001);
        assert_eq!(us.half_tick_fraction(0.0), 0.0);
    }

    #[test]
    fn pse_bands_by_hand() {
        let pse = TickRule::Pse;
        assert_eq!(pse.tick(0.0095), Some(0.0001));
        assert_eq!(pse.tick(0.01), Some(0.001));
        assert_eq!(pse.tick(0.30), Some(0.005));
        assert_eq!(pse.tick(4.99), Some(0.01));
        assert_eq!(pse.tick(15.0), Some(0.02));
        assert_eq!(pse.tick(150.0), Some(0.1));
        assert_eq!(pse.tick(9000.0), Some(5.0));
        // A 0.012-peso stock: half of 0.001 over 0.012 is 4.17 % a side.
        assert!((pse.side_cost(10.0, 0.012) - 0.0005 / 0.012).abs() < 1e-15);
    }
}
