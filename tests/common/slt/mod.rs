//! A self-contained sqllogictest (`.slt`) runner for phygital's SQL tests.
//!
//! It replaces the `sqllogictest` / `datafusion-sqllogictest` crates, which as dev-dependencies would change
//! the feature set of the DataFusion stack and force a second full build of it. Files stay compatible with
//! DataFusion's runner: same directives, same value normalisation, same error text (`DataFusion error: ...`).

pub mod parser;
pub mod runner;
#[path = "../temp_dir.rs"]
pub mod temp_dir;
pub mod values;
