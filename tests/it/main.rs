//! The one integration-test binary: each test gets its own temp folder,
//! SQLite file and artifact root, and runs the real binaries.

mod bootstrap;
mod common;
mod crash;
mod cron;
mod drift;
mod edge;
mod email;
mod faults;
mod fetch;
mod fuzz;
mod import;
mod incremental;
mod judge;
mod manifest_repair;
mod migrations;
mod monitor;
mod mysql;
mod mysql_bulk;
mod provider_server;
mod s3;
mod s3_faults;
mod score;
mod secrets;
mod shard;
mod shared;
mod store;
mod ta_run;
