//! `identity_stitch`: identity stitching as a native DataFusion operator.
//!
//! `SELECT * FROM identity_stitch('<edges query or table>' [, '<options JSON>'])` plans the
//! edges query lazily and runs it under [`IdentityStitchExec`], which reads the edges into flat
//! vectors, applies the guards of DESIGN.md §4, runs union-find and streams the identity map (or
//! the audit).
//!
//! Layout: `options` (the JSON options), `interner` (identifiers → dense ids over Arrow arrays),
//! `graph` (the edges input read into flat vectors), `guards` (blocklists, degree quarantine,
//! per-type limits), `union_find`, `anchor` (stable customer ids), `resolve` (the pipeline),
//! `output` (map and audit batches), `exec` (the operator, run by `QueryInputExec`) and
//! `table_function` (the SQL surface).

mod anchor;
mod exec;
mod graph;
mod guards;
mod interner;
mod options;
mod output;
mod resolve;
mod table_function;
mod union_find;

pub use exec::{IdentityStitch, IdentityStitchExec};
pub use graph::EDGE_COLUMNS;
pub use options::{BlockMatcher, BlockRule, OutputSelector, StitchOptions};
pub use output::{AUDIT_SCHEMA, MAP_SCHEMA};
pub use table_function::IdentityStitchFunc;
// Shared with `identity_quality`, which reads identifiers the same way.
pub(crate) use interner::{IdentifierInterner, NameInterner, StringColumn};
