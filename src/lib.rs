//! swingml: a cron-driven batch pipeline that turns daily stock candles into
//! ranked swing-trade buy candidates.
//!
//! The library does all the work; the binaries in `src/bin/` only parse flags,
//! build a [`context::Context`] and call one job from [`jobs`].
//!
//! Modules, by what they own:
//! - [`error`]: typed errors by failure class and the exit codes they map to.
//! - [`cli`], [`settings`], [`context`], [`logging`]: flags, configuration
//!   (flag > env > file > default), the per-run context, log output.
//! - [`symbols`]: the strict ticker pattern and watchlist names.
//! - [`candles`]: reading CSV / CSV.gz / Parquet, the data-quality rules,
//!   quarantine records, split adjustment.
//! - [`db`]: the SQLite / MySQL database (migrations, one file per table).
//! - [`indicators`]: TA-Lib-exact indicators as pure functions with a
//!   streaming state (no polars or sqlx types inside).
//! - [`store`]: the atomic, auditable artifact store.
//! - [`parquet_out`]: Parquet writing shared by the jobs.
//! - [`jobs`]: one module per binary's job.

pub mod calendar;
pub mod candles;
pub mod cli;
pub mod clock;
pub mod context;
pub mod costs;
pub mod crashpoint;
pub mod db;
pub mod error;
pub mod features;
pub mod indicators;
pub mod jobs;
pub mod labels;
pub mod logging;
pub mod models;
pub mod parquet_out;
pub mod providers;
pub mod settings;
pub mod shard;
pub mod store;
pub mod symbols;
pub mod universe;

/// The program version recorded in every artifact's sidecar and in `job_runs`.
pub const PROGRAM_VERSION: &str = env!("CARGO_PKG_VERSION");
