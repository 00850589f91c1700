//! Ticker symbols and watchlist names: the strict patterns every input passes.
//!
//! A symbol is one or more parts of upper-case letters, digits and `&`,
//! joined by `.` or `-` (`AAPL`, `BRK-B`, `BRK.B`, `INFY.NS`, `M&M.NS`,
//! `BAJAJ-AUTO.NS`). Anything else — spaces, slashes, quotes, lower case,
//! empty parts — is rejected, so a symbol is always safe in a file name and a
//! log line.

use std::fmt;
use std::sync::Arc;

use crate::error::UsageError;

const MAX_SYMBOL_LEN: usize = 32;
const MAX_WATCHLIST_LEN: usize = 64;

/// A validated ticker symbol. Cheap to clone (shared text): millions of
/// candles carry one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol(Arc<str>);

impl Symbol {
    pub fn parse(raw: &str) -> Result<Symbol, UsageError> {
        if is_valid_symbol(raw) {
            Ok(Symbol(Arc::from(raw)))
        } else {
            Err(UsageError::InvalidSymbol(raw.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Exchange facts implied by the Yahoo-style suffix: `.NS` / `.BO` are
    /// Indian listings, `.PS` Philippine ones; a symbol without an exchange suffix (`AAPL`,
    /// `BRK.B` — a share class) is a US listing, as on Yahoo.
    pub fn listing(&self) -> Listing {
        match self.0.rsplit_once('.').map(|(_, s)| s) {
            Some("NS") => Listing::INDIA_NSE,
            Some("BO") => Listing::INDIA_BSE,
            Some("PS") => Listing::PHILIPPINES,
            _ => Listing::US,
        }
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Exchange, country, currency and time zone of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    pub exchange: &'static str,
    pub country: &'static str,
    pub currency: &'static str,
    pub timezone: &'static str,
}

impl Listing {
    /// Exchange left open: NYSE and Nasdaq share the calendar and zone.
    pub const US: Listing = Listing {
        exchange: "US",
        country: "US",
        currency: "USD",
        timezone: "America/New_York",
    };
    pub const INDIA_NSE: Listing = Listing {
        exchange: "NSE",
        country: "IN",
        currency: "INR",
        timezone: "Asia/Kolkata",
    };
    pub const PHILIPPINES: Listing = Listing {
        exchange: "PSE",
        country: "PH",
        currency: "PHP",
        timezone: "Asia/Manila",
    };
    pub const INDIA_BSE: Listing = Listing {
        exchange: "BSE",
        country: "IN",
        currency: "INR",
        timezone: "Asia/Kolkata",
    };
}

fn is_valid_symbol(raw: &str) -> bool {
    if raw.is_empty() || raw.len() > MAX_SYMBOL_LEN {
        return false;
    }
    let starts_alnum = raw.as_bytes()[0].is_ascii_alphanumeric();
    let parts_ok = raw.split(['.', '-']).all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'&')
    });
    starts_alnum && parts_ok
}

/// Validate a watchlist name: it becomes a folder under the artifact root,
/// so it must not be able to name anything outside it.
pub fn validate_watchlist(name: &str) -> Result<&str, UsageError> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_WATCHLIST_LEN {
        Some("longer than 64 characters")
    } else if !name.as_bytes()[0].is_ascii_alphanumeric() {
        Some("must start with a letter or digit")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        Some("only letters, digits, '_', '-' and '.' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(UsageError::InvalidWatchlist {
            name: name.to_string(),
            reason,
        }),
        None => Ok(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_ticker_shapes() {
        for ok in [
            "AAPL",
            "BRK-B",
            "BRK.B",
            "INFY.NS",
            "M&M.NS",
            "BAJAJ-AUTO.NS",
            "RELIANCE.BO",
            "3M",
        ] {
            assert!(Symbol::parse(ok).is_ok(), "{ok} should pass");
        }
    }

    #[test]
    fn rejects_paths_spaces_and_injection() {
        for bad in [
            "../x", "a b", ";drop", "", "aapl", "A..B", "A.", ".A", "A/B", "A'B", "&M",
        ] {
            assert!(Symbol::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn watchlist_names_cannot_escape_the_root() {
        for bad in ["../x", "a/b", "", ".", "..", "a\\b", "-x"] {
            assert!(validate_watchlist(bad).is_err(), "{bad:?} should fail");
        }
        for ok in ["default", "sp500", "nifty_50", "us-tech.v2"] {
            assert!(validate_watchlist(ok).is_ok(), "{ok} should pass");
        }
    }

    #[test]
    fn listing_from_suffix() {
        assert_eq!(Symbol::parse("INFY.NS").unwrap().listing(), Listing::INDIA_NSE);
        assert_eq!(Symbol::parse("RELIANCE.BO").unwrap().listing(), Listing::INDIA_BSE);
        assert_eq!(Symbol::parse("BRK.B").unwrap().listing(), Listing::US);
        assert_eq!(Symbol::parse("AAPL").unwrap().listing(), Listing::US);
    }
}
