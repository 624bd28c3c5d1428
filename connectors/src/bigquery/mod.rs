//! BigQuery: schema mapping, identifier validation, value checks and verification checksums.

pub mod checksum;
pub mod names;
pub mod schema;
pub mod values;

pub use checksum::{ChecksumValue, TableChecksum, checksum_batches, checksum_sql};
pub use names::{
    TableRef, validate_column_name, validate_dataset_id, validate_project_id, validate_table_id,
};
pub use schema::table_schema;
pub use values::check_batch_values;
