//! phygital's warehouse connectors: Arrow record batches in, BigQuery tables out.
//!
//! This crate knows Arrow and BigQuery, not phygital's models. [`bigquery::schema`] maps Arrow
//! schemas to BigQuery table schemas, [`bigquery::names`] validates identifiers,
//! [`bigquery::values`] rejects values BigQuery cannot store, and [`bigquery::checksum`]
//! computes an order-independent checksum that a BigQuery query reproduces, so every sync can
//! be verified by reading back. [`bigquery::sync`] is the sync itself (staging load jobs
//! encoded by [`bigquery::ndjson`], then an atomic copy, MERGE or transaction per mode), over
//! the REST client of [`bigquery::client`] with the retries of [`bigquery::retry`] and the
//! credentials of [`bigquery::auth`]; [`bigquery::manifest`] records what a sync wrote.

pub mod bigquery;
pub mod error;

pub use error::{ConnectorError, NameKind};
