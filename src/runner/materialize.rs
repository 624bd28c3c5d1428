//! Writing a model's result as a new table version and publishing it (see [`crate::table_manifest`]).
//!
//! `<root>/<model>/_v<run_id>/…parquet` is written first (hive-partitioned below that when the model says so);
//! the caller tests it, then [`publish`] PUTs `<root>/<model>/_phygital_table.json` naming it and deletes the
//! versions before the one it replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::{DataFusionError, Result};
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::path::Path;
use sha2::{Digest, Sha256};

use crate::storage::{StorageRoot, StoreKind};
use crate::table_manifest::{
    MANIFEST_FORMAT, ManifestColumn, ManifestFile, TableManifest, VERSION_PREFIX,
};

/// A run id that sorts by start time: `20261122T141306123Z-<pid>-<n>` (UTC, milliseconds).
pub fn new_run_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let stamp = format_utc(now_millis(), "%Y%m%dT%H%M%S%3fZ");
    format!(
        "{stamp}-{:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Now as RFC 3339 in UTC with milliseconds.
pub fn now_rfc3339() -> String {
    format_utc(now_millis(), "%Y-%m-%dT%H:%M:%S%.3fZ")
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn format_utc(millis: i64, format: &str) -> String {
    datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(millis)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

/// A version written but not yet published.
#[derive(Debug)]
pub struct WrittenVersion {
    pub manifest: TableManifest,
    /// URL of the version folder (ends with '/').
    pub url: String,
}

/// Where a model's table lives in the store.
pub fn table_folder(root: &StorageRoot, table: &str) -> Path {
    root.prefix().join(table)
}

/// Executes `df` into a new version folder of `table`. An empty result still gets one (empty) file so the
/// version has a schema to read.
pub async fn write_version(
    ctx: &SessionContext,
    root: &StorageRoot,
    table: &str,
    run_id: &str,
    df: DataFrame,
    partition_by: &[String],
) -> Result<WrittenVersion> {
    let version = format!("{VERSION_PREFIX}{run_id}");
    let url = root.child_url(&format!("{table}/{version}"));
    let schema = Arc::new(df.schema().as_arrow().clone());
    let options = DataFrameWriteOptions::new()
        .with_single_file_output(false)
        .with_partition_by(partition_by.to_vec());
    let result = df.write_parquet(&url, options, None).await?;
    let rows = count_written(&result);

    let store = root.object_store(ctx)?;
    let folder = table_folder(root, table).join(version.as_str());
    let mut files = list_files(store.as_ref(), &folder).await?;
    if files.is_empty() {
        // Partition columns live in folder names: an empty file of a partitioned table leaves them out.
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .filter(|f| !partition_by.contains(f.name()))
            .map(|f| f.as_ref().clone())
            .collect();
        let empty = RecordBatch::new_empty(Arc::new(Schema::new(fields)));
        ctx.read_batch(empty)?
            .write_parquet(
                &format!("{url}part-empty.parquet"),
                DataFrameWriteOptions::new().with_single_file_output(true),
                None,
            )
            .await?;
        files = list_files(store.as_ref(), &folder).await?;
    }

    // Column order as the table reads back: partition columns come last, from the folder names.
    let (partitions, data): (Vec<&Arc<Field>>, Vec<&Arc<Field>>) = schema
        .fields()
        .iter()
        .partition(|f| partition_by.contains(f.name()));
    let columns: Vec<ManifestColumn> = data
        .into_iter()
        .chain(partitions)
        .map(|f| ManifestColumn {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
            doc: None,
        })
        .collect();
    let now = now_rfc3339();
    Ok(WrittenVersion {
        manifest: TableManifest {
            format: MANIFEST_FORMAT,
            table: table.to_string(),
            run_id: run_id.to_string(),
            version,
            previous_version: None,
            files,
            rows,
            schema_hash: schema_hash(&columns),
            columns,
            partition_by: partition_by.to_vec(),
            description: None,
            source: None,
            started: now.clone(),
            finished: now,
        },
        url,
    })
}

/// Publishes `manifest` (one atomic PUT) and deletes the table's versions other than it and the one it replaces.
pub async fn publish(
    store: &dyn ObjectStore,
    root: &StorageRoot,
    manifest: &TableManifest,
) -> Result<()> {
    let folder = table_folder(root, &manifest.table);
    manifest.publish(store, &folder).await?;
    let keep = [
        Some(manifest.version.as_str()),
        manifest.previous_version.as_deref(),
    ];
    let listing = store
        .list_with_delimiter(Some(&folder))
        .await
        .map_err(|e| {
            DataFusionError::ObjectStore(Box::new(e)).context(format!("listing {folder}"))
        })?;
    for stale in listing.common_prefixes {
        let Some(name) = stale.filename() else {
            continue;
        };
        if !name.starts_with(VERSION_PREFIX) || keep.contains(&Some(name)) {
            continue;
        }
        // Best effort: a version left behind costs space, not correctness; the next publish retries.
        if let Err(e) = delete_folder(store, root, &stale).await {
            tracing::warn!(folder = %stale, error = %e, "could not delete an old table version");
        }
    }
    Ok(())
}

async fn delete_folder(store: &dyn ObjectStore, root: &StorageRoot, folder: &Path) -> Result<()> {
    let locations = store
        .list(Some(folder))
        .map_ok(|meta| meta.location)
        .boxed();
    store
        .delete_stream(locations)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
    if root.kind() == StoreKind::Local {
        // A local store leaves the emptied directories behind.
        let dir = std::path::Path::new("/").join(folder.as_ref());
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
    }
    Ok(())
}

/// The data files under `folder`, relative to it, sorted.
async fn list_files(store: &dyn ObjectStore, folder: &Path) -> Result<Vec<ManifestFile>> {
    let mut files: Vec<ManifestFile> = store
        .list(Some(folder))
        .try_filter_map(|meta| async move {
            let relative = meta.location.prefix_match(folder).map(|parts| {
                parts
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            });
            Ok(relative
                .filter(|r| r.ends_with(".parquet"))
                .map(|path| ManifestFile {
                    path,
                    size: meta.size,
                }))
        })
        .try_collect()
        .await
        .map_err(|e| {
            DataFusionError::ObjectStore(Box::new(e)).context(format!("listing {folder}"))
        })?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Writes answer with one `count` row per partition of the plan.
fn count_written(batches: &[RecordBatch]) -> u64 {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::UInt64Type;
    batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .filter_map(|c| c.as_primitive_opt::<UInt64Type>())
        .flat_map(|a| a.iter().flatten())
        .sum()
}

/// SHA-256 (hex, first 16 bytes) of `name type nullable` per column, in order.
fn schema_hash(columns: &[ManifestColumn]) -> String {
    let mut hasher = Sha256::new();
    for c in columns {
        hasher.update(c.name.as_bytes());
        hasher.update([0]);
        hasher.update(c.data_type.as_bytes());
        hasher.update([u8::from(c.nullable), b'\n']);
    }
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time_and_are_unique() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert!(a.starts_with("20") && a.as_bytes()[8] == b'T', "{a}");
        let t = now_rfc3339();
        assert!(
            t.ends_with('Z') && t.len() == "2026-11-22T14:13:06.123Z".len(),
            "{t}"
        );
    }

    #[test]
    fn schema_hash_changes_with_the_schema() {
        let column = |name: &str, t: &str| ManifestColumn {
            name: name.into(),
            data_type: t.into(),
            nullable: true,
            doc: None,
        };
        let a = schema_hash(&[column("a", "Int64"), column("b", "Utf8View")]);
        assert_eq!(a.len(), 32);
        assert_eq!(
            a,
            schema_hash(&[column("a", "Int64"), column("b", "Utf8View")])
        );
        assert_ne!(a, schema_hash(&[column("a", "Int64"), column("b", "Utf8")]));
        assert_ne!(
            a,
            schema_hash(&[column("b", "Utf8View"), column("a", "Int64")])
        );
    }
}
