//! `[universe]` (which symbols are tradeable) and `[costs]` (commission
//! and the price tick), with defaults per exchange and currency.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::costs::TickRule;
use crate::error::UsageError;
use crate::universe::UniverseRule;

/// `[universe]`: a number applies to every exchange; unset, the
/// watchlist's exchange's default (see [`exchange_defaults`]).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UniverseConfig {
    /// Lowest close, in the exchange's currency.
    pub min_price: Option<f64>,
    /// Lowest median traded value (close × volume) of the last 20 sessions.
    pub min_traded_value: Option<f64>,
    /// Train on untradeable symbols' labels too (they are never picked nor
    /// counted in a baseline either way).
    pub train_on_untradeable: bool,
}

/// (exchange, min_price, min_traded_value, tick) defaults: a price and a
/// daily turnover under which a retail swing trade moves the price or
/// pays a spread far above the modelled cost, in the exchange's currency.
/// US: $5 (sub-$5 stocks are "penny stocks" under SEC rules, excluded by
/// most brokers' margin rules) and $1 M a day; NSE/BSE: ₹10 and ₹1 crore;
/// PSE: ₱1 and ₱1 M. Exchanges not listed have no filter and no tick floor.
const EXCHANGE_DEFAULTS: &[(&str, f64, f64, TickRule)] = &[
    ("US", 5.0, 1_000_000.0, TickRule::Fixed { size: 0.01 }),
    ("NSE", 10.0, 10_000_000.0, TickRule::Fixed { size: 0.05 }),
    ("BSE", 10.0, 10_000_000.0, TickRule::Fixed { size: 0.05 }),
    ("PSE", 1.0, 1_000_000.0, TickRule::Pse),
];

/// The shipped defaults of an exchange, if it has some.
pub fn exchange_defaults(exchange: &str) -> Option<(UniverseRule, TickRule)> {
    EXCHANGE_DEFAULTS
        .iter()
        .find(|(name, ..)| *name == exchange)
        .map(|&(_, min_price, min_traded_value, tick)| {
            (
                UniverseRule {
                    min_price,
                    min_traded_value,
                },
                tick,
            )
        })
}

impl UniverseConfig {
    /// The rule for a watchlist on `exchange`.
    pub fn rule_for(&self, exchange: &str) -> UniverseRule {
        let shipped = exchange_defaults(exchange).map_or(UniverseRule::ALL, |d| d.0);
        UniverseRule {
            min_price: self.min_price.unwrap_or(shipped.min_price),
            min_traded_value: self.min_traded_value.unwrap_or(shipped.min_traded_value),
        }
    }

    pub fn validate(&self) -> Result<(), UsageError> {
        for (name, value) in [
            ("universe.min_price", self.min_price),
            ("universe.min_traded_value", self.min_traded_value),
        ] {
            if let Some(v) = value.filter(|v| !(*v >= 0.0 && v.is_finite())) {
                return Err(UsageError::InvalidSetting {
                    name,
                    message: format!("must be a number ≥ 0 in the exchange's currency, got {v}"),
                });
            }
        }
        Ok(())
    }
}

/// A tick as written in `[costs] tick_size`: a size, `"pse"` (the PSE's
/// price bands) or `"none"`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum TickSetting {
    Size(f64),
    Named(String),
}

impl TickSetting {
    fn rule(&self, exchange: &str) -> Result<TickRule, UsageError> {
        let bad = |message: String| UsageError::InvalidSetting {
            name: "costs.tick_size",
            message,
        };
        match self {
            TickSetting::Size(size) if *size > 0.0 && size.is_finite() => Ok(TickRule::Fixed { size: *size }),
            TickSetting::Size(size) => Err(bad(format!("{exchange}: a tick must be a positive price, got {size}"))),
            TickSetting::Named(name) if name == "pse" => Ok(TickRule::Pse),
            TickSetting::Named(name) if name == "none" => Ok(TickRule::None),
            TickSetting::Named(name) => Err(bad(format!(
                "{exchange}: {name:?} is not a tick: give a price, \"pse\" (price bands) or \"none\""
            ))),
        }
    }
}

/// `[costs]`: trading costs charged to every labeled trade and backtest.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostConfig {
    /// Commission + half spread + slippage per side, in basis points.
    pub bps_per_side: f64,
    /// The tick per exchange (`{ US = 0.01, PSE = "pse" }`); half a tick is
    /// the least a side costs. Unset exchanges keep the shipped default.
    pub tick_size: BTreeMap<String, TickSetting>,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            bps_per_side: 10.0,
            tick_size: BTreeMap::new(),
        }
    }
}

impl CostConfig {
    /// The tick rule of `exchange`: configured, else shipped, else none.
    pub fn tick_for(&self, exchange: &str) -> TickRule {
        match self.tick_size.get(exchange) {
            // Validated at load.
            Some(setting) => setting.rule(exchange).unwrap_or_default(),
            None => exchange_defaults(exchange).map_or(TickRule::None, |d| d.1),
        }
    }

    pub fn validate(&self) -> Result<(), UsageError> {
        let bps = self.bps_per_side;
        if !(0.0..10_000.0).contains(&bps) {
            return Err(UsageError::InvalidSetting {
                name: "costs.bps_per_side",
                message: format!("must be between 0 and 10000 basis points, got {bps}"),
            });
        }
        for (exchange, setting) in &self.tick_size {
            setting.rule(exchange)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_exchange_and_the_file_wins() {
        let u = UniverseConfig::default();
        assert_eq!(u.rule_for("US").min_price, 5.0);
        assert_eq!(u.rule_for("XYZ"), UniverseRule::ALL);
        let u = UniverseConfig {
            min_price: Some(0.5),
            ..UniverseConfig::default()
        };
        assert_eq!(u.rule_for("PSE").min_price, 0.5);
        assert_eq!(u.rule_for("PSE").min_traded_value, 1_000_000.0);
        let c = CostConfig::default();
        assert_eq!(c.tick_for("PSE"), TickRule::Pse);
        assert_eq!(c.tick_for("XYZ"), TickRule::None);
        let mut c = CostConfig::default();
        c.tick_size.insert("US".into(), TickSetting::Named("none".into()));
        assert_eq!(c.tick_for("US"), TickRule::None);
        c.tick_size.insert("US".into(), TickSetting::Size(-0.01));
        assert!(c.validate().is_err());
    }
}
