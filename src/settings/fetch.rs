//! `[fetch]` and the provider API keys: what `ta-signals fetch` asks, how
//! fast, and with which keys (from the environment only).

use serde::Deserialize;

use crate::error::UsageError;

/// `[fetch]`: the data providers `ta-signals fetch` asks, in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// The fallback chain: a symbol goes to the next provider when one fails.
    pub providers: Vec<String>,
    /// Calendar days re-fetched before each symbol's last stored candle, so
    /// that a provider's revision of recent bars is picked up.
    pub overlap_days: u32,
    /// History fetched for a symbol with no stored candles.
    pub history_years: u32,
    pub timeout_secs: f64,
    /// Retries after a 429, a 5xx or a network error (per provider).
    pub retries: u32,
    /// First backoff; doubled per retry, with jitter, capped at `max_backoff_ms`.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Symbols per database write (a killed run keeps what was written).
    pub write_every: usize,
    pub yahoo: ProviderConfig,
    pub twelvedata: ProviderConfig,
    pub finnhub: ProviderConfig,
}

/// One provider's endpoint and rate limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// Base URL (tests and proxies); the public API when unset.
    pub base_url: Option<String>,
    /// Requests per minute (0 = no limit).
    pub requests_per_minute: f64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        let rate = |requests_per_minute| ProviderConfig {
            base_url: None,
            requests_per_minute,
        };
        FetchConfig {
            providers: vec!["yahoo".into()],
            overlap_days: 5,
            history_years: 10,
            timeout_secs: 20.0,
            retries: 3,
            backoff_ms: 500,
            max_backoff_ms: 30_000,
            concurrency: 4,
            write_every: 50,
            // Free tiers: TwelveData 8 and Finnhub 60 requests a minute;
            // Yahoo publishes none, 120 is polite.
            yahoo: rate(120.0),
            twelvedata: rate(8.0),
            finnhub: rate(60.0),
        }
    }
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            base_url: None,
            requests_per_minute: 60.0,
        }
    }
}

/// An API key: shown as `***` in every debug print.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Provider API keys, from the environment only.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    pub twelvedata: Option<Secret>,
    pub finnhub: Option<Secret>,
}

impl ApiKeys {
    /// The key of a provider that needs one, when set.
    pub fn get(&self, provider: crate::providers::ProviderName) -> Option<String> {
        use crate::providers::ProviderName;
        let key = match provider {
            ProviderName::Yahoo => return None,
            ProviderName::TwelveData => &self.twelvedata,
            ProviderName::Finnhub => &self.finnhub,
        };
        key.as_ref().map(|k| k.0.clone())
    }
}

pub use crate::providers::{FINNHUB_KEY_VAR, TWELVEDATA_KEY_VAR};
/// Overrides the clock (RFC 3339) for the session arithmetic of default
/// as-of dates: for tests and for replaying what a cron run did.
pub const NOW_VAR: &str = "SWINGML_NOW";

pub(super) fn validate_fetch(fetch: &FetchConfig) -> Result<(), UsageError> {
    let invalid = |name: &'static str, message: String| UsageError::InvalidSetting { name, message };
    if fetch.providers.is_empty() {
        return Err(invalid("fetch.providers", "name at least one provider".into()));
    }
    // Bounded: a larger number overflows a Duration (a panic, not an error).
    if !(fetch.timeout_secs > 0.0 && fetch.timeout_secs <= 3600.0) {
        return Err(invalid(
            "fetch.timeout_secs",
            format!("must be between 0 and 3600 seconds, got {}", fetch.timeout_secs),
        ));
    }
    if fetch.max_backoff_ms > 3_600_000 || fetch.backoff_ms > fetch.max_backoff_ms {
        return Err(invalid(
            "fetch.backoff_ms",
            format!(
                "backoff_ms ({}) must be at most max_backoff_ms ({}), itself at most an hour",
                fetch.backoff_ms, fetch.max_backoff_ms
            ),
        ));
    }
    if fetch.concurrency == 0 || fetch.write_every == 0 {
        return Err(invalid(
            "fetch.concurrency",
            "concurrency and write_every must be ≥ 1".into(),
        ));
    }
    for (name, p) in [
        ("fetch.yahoo", &fetch.yahoo),
        ("fetch.twelvedata", &fetch.twelvedata),
        ("fetch.finnhub", &fetch.finnhub),
    ] {
        // 0 is off; otherwise at least one request an hour (60 / rate
        // seconds between requests must fit a Duration).
        let rate = p.requests_per_minute;
        if !(rate == 0.0 || (1.0 / 60.0..=1e6).contains(&rate)) {
            return Err(invalid(
                name,
                format!("requests_per_minute must be 0 (off) or between 1/60 and 1000000, got {rate}"),
            ));
        }
    }
    Ok(())
}
