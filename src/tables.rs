//! Tables of a storage root: every folder of Parquet files directly under the root is a table named after the
//! folder (hive partitions `key=value/` understood); `[tables]` in `phygital.toml` adds or overrides tables.
//! A folder with a [`TableManifest`] (written by `phygital run`) is the version the manifest publishes, and
//! nothing else in it.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference, plan_err};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::config::TableFormat;
use crate::storage::StorageRoot;
use crate::table_manifest::TableManifest;

/// A table declared in configuration: `location` is a URL, an absolute path, or a path relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDecl {
    pub name: String,
    pub location: String,
    pub format: TableFormat,
}

/// A registered table, as `phygital tables` shows it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    pub location: String,
    pub format: TableFormat,
    pub schema: SchemaRef,
}

/// Names of the folders directly under `root` that hold a table, sorted: a published manifest, or Parquet files
/// that a listing reads (directly or in `key=value/` folders). Folders starting with `_` or `.` (manifests,
/// staging, Spark's `_temporary`) are not tables, nor is a folder whose only files are unpublished versions.
pub async fn discover_tables(store: &dyn ObjectStore, root: &StorageRoot) -> Result<Vec<String>> {
    Ok(discover(store, root)
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// The tables under `root`, sorted by name, each with its manifest when it has one.
async fn discover(
    store: &dyn ObjectStore,
    root: &StorageRoot,
) -> Result<Vec<(String, Option<TableManifest>)>> {
    if root.is_missing_local_dir() {
        return Ok(vec![]);
    }
    let prefix = root.prefix();
    let listing = store
        .list_with_delimiter((!prefix.as_ref().is_empty()).then_some(&prefix))
        .await
        .map_err(|e| {
            DataFusionError::ObjectStore(Box::new(e)).context(format!("listing {root}"))
        })?;
    let mut tables = Vec::new();
    for folder in listing.common_prefixes {
        let Some(name) = folder.filename() else {
            continue;
        };
        if name.starts_with(['_', '.']) {
            continue;
        }
        let manifest = TableManifest::read(store, &folder)
            .await
            .map_err(|e| e.context(format!("table '{name}'")))?;
        if manifest.is_some() || has_listed_parquet_file(store, &folder).await? {
            tables.push((name.to_string(), manifest));
        } else {
            tracing::debug!(folder = %folder, "no Parquet files: not a table");
        }
    }
    tables.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(tables)
}

/// Whether DataFusion's listing of `folder` reads a Parquet file: one directly in it or in `key=value/` folders
/// (`listing_table_ignore_subdirectory`), not hidden (`_`, `.`).
async fn has_listed_parquet_file(store: &dyn ObjectStore, folder: &Path) -> Result<bool> {
    let mut files = store.list(Some(folder));
    while let Some(meta) = files
        .try_next()
        .await
        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?
    {
        let Some(relative) = meta.location.prefix_match(folder) else {
            continue;
        };
        let segments: Vec<_> = relative.collect();
        let Some((file, folders)) = segments.split_last() else {
            continue;
        };
        let file = file.as_ref();
        if file.ends_with(".parquet")
            && !file.starts_with(['_', '.'])
            && folders.iter().all(|s| s.as_ref().contains('='))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Registers the tables found under `root` plus `declared` (which win on a name clash). Returns all table names,
/// sorted.
pub async fn register_storage_tables(
    ctx: &SessionContext,
    root: &StorageRoot,
    declared: &[TableDecl],
) -> Result<Vec<String>> {
    let store = root.object_store(ctx)?;
    let mut names = Vec::new();
    for (name, manifest) in discover(store.as_ref(), root).await? {
        if declared.iter().any(|d| d.name == name) {
            continue;
        }
        match manifest {
            Some(manifest) => {
                register_published_table(ctx, root, &manifest).await?;
            }
            None => {
                let decl = TableDecl {
                    location: root.child_url(&name),
                    name: name.clone(),
                    format: TableFormat::Parquet,
                };
                register_table(ctx, &decl).await?;
            }
        }
        names.push(name);
    }
    for d in declared {
        let decl = TableDecl {
            location: resolve_location(root, &d.location),
            ..d.clone()
        };
        register_table(ctx, &decl).await?;
        names.push(decl.name.clone());
    }
    names.sort();
    Ok(names)
}

/// Registers (or replaces) table `manifest.table` as the version the manifest names: only that version's files,
/// with its partition columns typed as they were written (a `Date32` partition reads back as `Date32`).
pub async fn register_published_table(
    ctx: &SessionContext,
    root: &StorageRoot,
    manifest: &TableManifest,
) -> Result<Arc<ListingTable>> {
    let decl = TableDecl {
        name: manifest.table.clone(),
        location: root.child_url(&format!("{}/{}", manifest.table, manifest.version)),
        format: TableFormat::Parquet,
    };
    let partitions = manifest
        .partition_by
        .iter()
        .map(|name| {
            let data_type = manifest
                .columns
                .iter()
                .find(|c| &c.name == name)
                .and_then(|c| c.data_type.parse::<DataType>().ok())
                .unwrap_or(DataType::Utf8);
            (name.clone(), data_type)
        })
        .collect();
    ctx.deregister_table(TableReference::bare(decl.name.as_str()))?;
    register_listing(ctx, &decl, Some(partitions)).await
}

/// Registers one table; a table that cannot be read (corrupt file, bad location) is an error naming it.
pub async fn register_table(ctx: &SessionContext, decl: &TableDecl) -> Result<Arc<ListingTable>> {
    register_listing(ctx, decl, None).await
}

/// `partitions`: the hive-partition columns with their types; inferred from the folders (as Utf8) when `None`.
async fn register_listing(
    ctx: &SessionContext,
    decl: &TableDecl,
    partitions: Option<Vec<(String, DataType)>>,
) -> Result<Arc<ListingTable>> {
    if decl.name.is_empty() {
        return plan_err!("table with location '{}' has an empty name", decl.location);
    }
    let describe =
        |e: DataFusionError| e.context(format!("table '{}' at {}", decl.name, decl.location));
    let table = listing_table(ctx, decl, partitions)
        .await
        .map_err(describe)?;
    ctx.register_table(
        TableReference::bare(decl.name.as_str()),
        Arc::clone(&table) as Arc<dyn TableProvider>,
    )?;
    Ok(table)
}

async fn listing_table(
    ctx: &SessionContext,
    decl: &TableDecl,
    partitions: Option<Vec<(String, DataType)>>,
) -> Result<Arc<ListingTable>> {
    let url = ListingTableUrl::parse(&decl.location)?;
    let (format, ext): (Arc<dyn FileFormat>, &str) = match decl.format {
        TableFormat::Parquet => (Arc::new(ParquetFormat::default()), ".parquet"),
        TableFormat::Csv => (Arc::new(CsvFormat::default().with_has_header(true)), ".csv"),
        TableFormat::Json => (Arc::new(JsonFormat::default()), ".json"),
    };
    let state = ctx.state();
    let mut options = ListingOptions::new(Arc::clone(&format)).with_file_extension(ext);
    // Declared as Utf8 rather than the inferred Dictionary(UInt16, Utf8): partition values are short strings and
    // functions/joins then see the same type as ordinary string columns.
    let partitions = match partitions {
        Some(typed) => typed,
        None => options
            .infer_partitions(&state, &url)
            .await?
            .into_iter()
            .map(|p| (p, DataType::Utf8))
            .collect(),
    };
    options = options.with_table_partition_cols(partitions);
    let config = ListingTableConfig::new(url.clone()).with_listing_options(options);
    let config = match config.infer_schema(&state).await {
        Ok(c) => c,
        Err(e) => {
            return Err(pinpoint_unreadable_file(ctx, &url, format.as_ref(), ext)
                .await
                .unwrap_or(e));
        }
    };
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// Schema inference reads every file's footer but its error does not say which file failed: retry file by
/// file (only on this error path) so the user learns which object to delete or rewrite.
async fn pinpoint_unreadable_file(
    ctx: &SessionContext,
    url: &ListingTableUrl,
    format: &dyn FileFormat,
    ext: &str,
) -> Option<DataFusionError> {
    let state = ctx.state();
    let store = state.runtime_env().object_store(url).ok()?;
    let files: Vec<_> = url
        .list_all_files(&state, store.as_ref(), ext)
        .await
        .ok()?
        .try_collect()
        .await
        .ok()?;
    for meta in files {
        let location = meta.location.clone();
        if let Err(e) = format.infer_schema(&state, &store, &[meta]).await {
            return Some(e.context(format!("unreadable file {location}")));
        }
    }
    None
}

fn resolve_location(root: &StorageRoot, location: &str) -> String {
    let is_absolute = location.contains("://") || location.starts_with('/');
    if is_absolute {
        location.to_string()
    } else {
        format!("{}{}", root.url(), location.trim_start_matches("./"))
    }
}

/// Describes every registered table of the default schema, sorted by name.
pub async fn describe_tables(ctx: &SessionContext) -> Result<Vec<TableInfo>> {
    let catalog = ctx.state().config_options().catalog.clone();
    let Some(schema) = ctx
        .catalog(&catalog.default_catalog)
        .and_then(|c| c.schema(&catalog.default_schema))
    else {
        return Ok(vec![]);
    };
    let mut names = schema.table_names();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let Some(provider) = schema.table(&name).await? else {
            continue;
        };
        let (location, format) = match provider.downcast_ref::<ListingTable>() {
            Some(t) => (
                t.table_paths()
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                format_of(t.options().format.as_ref()),
            ),
            None => (String::from("(in memory)"), TableFormat::Parquet),
        };
        out.push(TableInfo {
            name,
            location,
            format,
            schema: provider.schema(),
        });
    }
    Ok(out)
}

fn format_of(format: &dyn FileFormat) -> TableFormat {
    match format.get_ext().as_str() {
        "csv" => TableFormat::Csv,
        "json" => TableFormat::Json,
        _ => TableFormat::Parquet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_locations_resolve_against_root() {
        let root = StorageRoot::parse("s3://b/p").unwrap();
        assert_eq!(
            resolve_location(&root, "dim/stores/"),
            "s3://b/p/dim/stores/"
        );
        assert_eq!(resolve_location(&root, "./x.csv"), "s3://b/p/x.csv");
        assert_eq!(resolve_location(&root, "gs://o/t/"), "gs://o/t/");
        assert_eq!(resolve_location(&root, "/data/t/"), "/data/t/");
    }
}
