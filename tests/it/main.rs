//! The one integration-test binary: each test gets its own temp folder,
//! SQLite file and artifact root, and runs the real binaries.

mod common;
mod import;
mod mysql;
mod store;
mod ta_run;
