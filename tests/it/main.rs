//! The one integration-test binary: each test gets its own temp folder,
//! SQLite file and artifact root, and runs the real binaries.

mod bootstrap;
mod common;
mod cron;
mod fetch;
mod import;
mod incremental;
mod migrations;
mod monitor;
mod mysql;
mod provider_server;
mod score;
mod store;
mod ta_run;
