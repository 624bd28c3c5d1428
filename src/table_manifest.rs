//! The pointer that publishes one version of a table written by `phygital run`.
//!
//! Object stores have no atomic rename of a folder, so a model's output is written to a fresh version folder
//! (`<root>/<model>/_v<run_id>/…`) and published by one PUT of `<root>/<model>/_phygital_table.json`, which a
//! store replaces atomically. Readers register only the version the manifest names: a run that dies while
//! writing leaves the previous version in place and readable.

use datafusion::common::{DataFusionError, Result};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

/// File name of the manifest inside a table's folder.
pub const MANIFEST_FILE: &str = "_phygital_table.json";

/// Prefix of version folders inside a table's folder.
pub const VERSION_PREFIX: &str = "_v";

/// Version of the manifest layout; readers refuse newer ones rather than misreading them.
pub const MANIFEST_FORMAT: u32 = 1;

/// A published table version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableManifest {
    pub format: u32,
    /// The table (model) name.
    pub table: String,
    pub run_id: String,
    /// The version folder, relative to the table's folder (`_v<run_id>`).
    pub version: String,
    /// The version this one replaced, kept until the next publish.
    pub previous_version: Option<String>,
    /// Every data file of the version, relative to the version folder.
    pub files: Vec<ManifestFile>,
    pub rows: u64,
    pub columns: Vec<ManifestColumn>,
    /// Hive-partition columns (`key=value/` folders), in order; also listed in `columns`.
    pub partition_by: Vec<String>,
    /// SHA-256 of the column names, types and nullability: equal hashes, same schema.
    pub schema_hash: String,
    pub description: Option<String>,
    /// The model file that produced it.
    pub source: Option<String>,
    /// RFC 3339 UTC times of the model's start and of the publish.
    pub started: String,
    pub finished: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestColumn {
    pub name: String,
    /// Arrow type as DataFusion prints it (`Utf8View`, `Timestamp(µs, "UTC")`, `Date32`).
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    pub doc: Option<String>,
}

impl TableManifest {
    /// Reads the manifest of the table folder `folder`; `None` when there is none (a plain folder of files).
    pub async fn read(store: &dyn ObjectStore, folder: &Path) -> Result<Option<TableManifest>> {
        let location = folder.clone().join(MANIFEST_FILE);
        let bytes = match store.get(&location).await {
            Ok(result) => result.bytes().await,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => Err(e),
        }
        .map_err(|e| {
            DataFusionError::ObjectStore(Box::new(e)).context(format!("reading {location}"))
        })?;
        let manifest: TableManifest = serde_json::from_slice(&bytes).map_err(|e| {
            DataFusionError::Execution(format!(
                "{location} is not a valid table manifest ({e}); delete it to read the folder's files as a plain table"
            ))
        })?;
        if manifest.format > MANIFEST_FORMAT {
            return Err(DataFusionError::Execution(format!(
                "{location} has manifest format {} but this phygital reads up to {MANIFEST_FORMAT}: upgrade phygital",
                manifest.format
            )));
        }
        Ok(Some(manifest))
    }

    /// Publishes this version: one PUT, atomic on every object store.
    pub async fn publish(&self, store: &dyn ObjectStore, folder: &Path) -> Result<()> {
        let location = folder.clone().join(MANIFEST_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| {
            DataFusionError::Internal(format!(
                "cannot serialise the manifest of '{}': {e}",
                self.table
            ))
        })?;
        store
            .put(&location, PutPayload::from(json))
            .await
            .map_err(|e| {
                DataFusionError::ObjectStore(Box::new(e)).context(format!("publishing {location}"))
            })?;
        Ok(())
    }
}
