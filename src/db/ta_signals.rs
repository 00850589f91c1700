//! The `ta_signals` and `ta_state` tables (filled by `ta-signals run`).
