//! One module per binary's job. A job takes a [`crate::context::Context`]
//! and the job's own options, does the work, logs one summary line and
//! records itself in `job_runs`.

pub mod artifacts;
pub mod bootstrap;
pub mod dataset;
pub mod import;
pub mod production;
pub mod score;
pub mod ta_run;
