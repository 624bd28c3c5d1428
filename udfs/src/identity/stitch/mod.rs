//! `identity_stitch`: identity stitching as a native DataFusion operator.
//!
//! `SELECT * FROM identity_stitch('<edges query or table>' [, '<options JSON>'])` plans the
//! edges query lazily and runs it under [`IdentityStitchExec`], which reads the edges into flat
//! vectors, applies the guards of DESIGN.md §4, runs union-find and streams the identity map (or
//! the audit).
//!
//! Layout: `options` (the JSON options), `input` (the edges, block query and previous map
//! planned as one input, and read back), `interner` (string columns of any encoding, names → ids),
//! `node_table` (the graph's identifiers → dense ids, by hash partition on several threads),
//! `graph` (the edges input read into flat vectors), `parallel` (edge sorts and per-node values
//! on several threads), `distinct_pairs` (each linked pair once, with its earliest evidence),
//! `guards` (blocklists, degree quarantine, per-type limits), `union_find`,
//! `anchor` (stable customer ids), `resolve` (the pipeline), `incremental` (previous ids and the
//! change log), `output` (map, audit and changes batches), `exec` (the operator, run by
//! `QueryInputExec`) and `table_function` (the SQL surface).

mod anchor;
mod distinct_pairs;
mod exec;
mod graph;
mod guards;
mod id_table;
mod incremental;
mod input;
mod interner;
mod node_table;
mod options;
mod output;
mod parallel;
mod resolve;
mod table_function;
mod union_find;

pub use exec::{IdentityStitch, IdentityStitchExec};
pub use graph::EDGE_COLUMNS;
pub use options::{BlockMatcher, BlockRule, OutputSelector, StitchOptions};
pub use output::{AUDIT_SCHEMA, CHANGES_SCHEMA, MAP_SCHEMA};
pub use table_function::IdentityStitchFunc;
// Shared with `identity_quality` and `identity_churn`, which read identifiers the same way.
pub(crate) use interner::{IdentifierInterner, NameInterner, StringColumn};
// Shared with `identity_quality`, which joins the edges the truth confirms into its evidence ceiling.
pub(crate) use graph::is_blank;
pub(crate) use union_find::UnionFind;
// Shared with `identity_explain`, which searches the graph the guards leave.
pub(crate) use graph::{Edge, EdgeColumns, Graph, NO_SOURCE, NO_TS};
pub(crate) use input::{StitchInputs, StitchQueries, is_tagged, over_memory_limit, read_inputs};
#[cfg(test)]
pub(crate) use resolve::tests as test_graphs;
pub(crate) use resolve::{NodeStatus, Resolution, resolve_keeping_edges};
