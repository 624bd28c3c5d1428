//! phygital's warehouse connectors: Arrow record batches in, BigQuery tables out.
//!
//! This crate knows Arrow and BigQuery, not phygital's models. [`bigquery::schema`] maps Arrow
//! schemas to BigQuery table schemas, [`bigquery::names`] validates identifiers,
//! [`bigquery::values`] rejects values BigQuery cannot store, and [`bigquery::checksum`]
//! computes an order-independent checksum that a BigQuery query reproduces, so every sync can
//! be verified by reading back.

pub mod bigquery;
pub mod error;

pub use error::{ConnectorError, NameKind};
