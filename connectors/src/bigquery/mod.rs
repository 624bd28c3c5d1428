//! BigQuery: schema mapping, identifier validation, value checks, verification checksums, and
//! the sync itself (REST client, retries, load jobs, write modes, manifests).

pub mod auth;
pub mod checksum;
pub mod client;
pub mod manifest;
pub mod names;
pub mod ndjson;
pub mod retry;
pub mod schema;
pub mod sync;
pub mod values;

pub use checksum::{ChecksumValue, TableChecksum, checksum_batches, checksum_sql};
pub use names::{
    TableRef, validate_column_name, validate_dataset_id, validate_project_id, validate_table_id,
};
pub use schema::table_schema;
pub use values::check_batch_values;
