//! The one clock the pipeline stamps its writes with: UTC, RFC 3339.
//! A leaf: the store, the database and the jobs all use it.

use chrono::{SecondsFormat, Utc};

/// Time stamps the pipeline writes: UTC, RFC 3339, milliseconds.
pub fn utc_now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}
