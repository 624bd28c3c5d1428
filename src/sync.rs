//! `phygital sync bigquery`: the tables of a storage root into a BigQuery dataset.
//!
//! Thin glue: configuration and flags → one [`SyncRequest`] per table, the source rows read by
//! the engine (DataFusion over the table's files), the connector's [`sync_table`] doing and
//! verifying the writes, and the manifest written next to the data
//! (`<root>/_sync/bigquery/<table>.json`; folders starting with `_` are not tables).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::datasource::listing::ListingTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use phygital_connectors::ConnectorError;
use phygital_connectors::bigquery::auth::{Credentials, TokenSource};
use phygital_connectors::bigquery::client::{BigQueryClient, ClientOptions, DEFAULT_ENDPOINT};
use phygital_connectors::bigquery::manifest::{SourceFile, SourceSnapshot, SyncManifest, rfc3339};
use phygital_connectors::bigquery::retry::RetryPolicy;
use phygital_connectors::bigquery::schema::DESCRIPTION_METADATA_KEYS;
use phygital_connectors::bigquery::sync::{
    DEFAULT_CHUNK_BYTES, SyncRequest, WriteMode, new_run_id, plan_table, sync_table,
};
use phygital_connectors::bigquery::{
    TableRef, table_schema, validate_dataset_id, validate_project_id,
};
use serde::Serialize;

use crate::config::BigQuerySection;
use crate::error::{Error, Result};
use crate::session::{self, EngineOptions};
use crate::storage::StorageRoot;
use crate::table_manifest::TableManifest;
use crate::tables::TableDecl;

/// Folder of the sync manifests under the storage root.
pub const MANIFEST_FOLDER: &str = "_sync/bigquery";

/// Everything `sync bigquery` needs, flags and `[bigquery]` merged (flags win).
#[derive(Debug, Clone)]
pub struct BigQuerySyncOptions {
    pub project: String,
    pub dataset: String,
    pub location: Option<String>,
    /// (BigQuery table, source table); every table of the root when empty.
    pub tables: Vec<(String, String)>,
    pub mode: String,
    pub key: Vec<String>,
    pub partition_by: Option<String>,
    pub cluster_by: Vec<String>,
    pub credentials: Option<PathBuf>,
    /// From `--endpoint`, `BIGQUERY_EMULATOR_HOST` or `[bigquery] endpoint`.
    pub endpoint: Option<String>,
    pub create: bool,
    pub dry_run: bool,
    pub chunk_bytes: usize,
    pub retry: RetryPolicy,
    /// Use the instance metadata server for credentials (GCE, GKE, Cloud Run).
    pub allow_instance_credentials: bool,
}

/// Flags of `phygital sync bigquery`, before merging with `[bigquery]`.
#[derive(Debug, Clone, Default)]
pub struct BigQueryFlags {
    pub project: Option<String>,
    pub dataset: Option<String>,
    pub location: Option<String>,
    pub tables: Vec<String>,
    pub mode: Option<String>,
    pub key: Vec<String>,
    pub partition_by: Option<String>,
    pub cluster_by: Vec<String>,
    pub credentials: Option<PathBuf>,
    pub endpoint: Option<String>,
    pub no_create: bool,
    pub dry_run: bool,
    pub chunk_bytes: Option<usize>,
}

impl BigQuerySyncOptions {
    /// Flags over `BIGQUERY_EMULATOR_HOST` (endpoint only) over `[bigquery]`.
    pub fn resolve(
        flags: BigQueryFlags,
        section: Option<&BigQuerySection>,
        allow_instance_credentials: bool,
    ) -> Result<Self> {
        let section = section.cloned().unwrap_or_default();
        let project = flags.project.or(section.project).ok_or_else(|| {
            Error::Usage("sync bigquery needs --project (or [bigquery] project)".into())
        })?;
        let dataset = flags.dataset.or(section.dataset).ok_or_else(|| {
            Error::Usage("sync bigquery needs --dataset (or [bigquery] dataset)".into())
        })?;
        validate_project_id(&project)?;
        validate_dataset_id(&dataset)?;
        let table_specs = if flags.tables.is_empty() {
            section.tables
        } else {
            flags.tables
        };
        let tables = table_specs
            .iter()
            .map(|spec| parse_table_spec(spec))
            .collect::<Result<Vec<_>>>()?;
        let endpoint = flags
            .endpoint
            .or_else(|| {
                std::env::var("BIGQUERY_EMULATOR_HOST")
                    .ok()
                    .filter(|v| !v.is_empty())
            })
            .or(section.endpoint);
        let key: Vec<String> = if flags.key.is_empty() {
            section.key
        } else {
            flags.key
        };
        let cluster_by = if flags.cluster_by.is_empty() {
            section.cluster_by
        } else {
            flags.cluster_by
        };
        let mode = flags
            .mode
            .or(section.mode)
            .unwrap_or_else(|| "replace".to_owned());
        let options = Self {
            project,
            dataset,
            location: flags.location.or(section.location),
            tables,
            mode,
            key: split_list(&key),
            partition_by: flags.partition_by.or(section.partition_by),
            cluster_by: split_list(&cluster_by),
            credentials: flags.credentials.or(section.credentials),
            endpoint,
            create: !flags.no_create && section.create.unwrap_or(true),
            dry_run: flags.dry_run,
            chunk_bytes: flags.chunk_bytes.unwrap_or(DEFAULT_CHUNK_BYTES),
            retry: RetryPolicy::default(),
            allow_instance_credentials,
        };
        options.write_mode()?;
        Ok(options)
    }

    /// The mode with its columns; a usage error names what is missing.
    pub fn write_mode(&self) -> Result<WriteMode> {
        match self.mode.as_str() {
            "replace" | "append" if !self.key.is_empty() => Err(Error::Usage(format!(
                "--key is only used by --mode merge, not {}",
                self.mode
            ))),
            "replace" => Ok(WriteMode::Replace),
            "append" => Ok(WriteMode::Append),
            "merge" if self.key.is_empty() => Err(Error::Usage(
                "--mode merge needs --key COLUMN[,COLUMN…]".into(),
            )),
            "merge" => Ok(WriteMode::Merge {
                keys: self.key.clone(),
            }),
            "replace-partitions" => match &self.partition_by {
                Some(column) => Ok(WriteMode::ReplacePartitions {
                    column: column.clone(),
                }),
                None => Err(Error::Usage(
                    "--mode replace-partitions needs --partition-by COLUMN".into(),
                )),
            },
            other => Err(Error::Usage(format!(
                "unknown sync mode '{other}': use replace, append, merge or replace-partitions"
            ))),
        }
    }

    fn credentials(&self) -> Credentials {
        match (&self.credentials, &self.endpoint) {
            (Some(path), _) => Credentials::ServiceAccountKeyFile(path.clone()),
            (None, Some(_)) => Credentials::Emulator,
            (None, None) => Credentials::ApplicationDefault {
                allow_instance_metadata: self.allow_instance_credentials,
            },
        }
    }
}

/// `NAME` or `NAME=SOURCE`.
fn parse_table_spec(spec: &str) -> Result<(String, String)> {
    let (name, source) = match spec.split_once('=') {
        Some((name, source)) => (name.trim(), source.trim()),
        None => (spec.trim(), spec.trim()),
    };
    if name.is_empty() || source.is_empty() {
        return Err(Error::Usage(format!(
            "invalid --table '{spec}': expected NAME or NAME=SOURCE"
        )));
    }
    Ok((name.to_owned(), source.to_owned()))
}

/// `a,b` and `["a", "b"]` alike.
fn split_list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The outcome of one table's sync, as printed and written to the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct TableSyncReport {
    pub manifest: SyncManifest,
    pub manifest_url: String,
    pub seconds: f64,
    /// Reading, hashing and encoding rows (ours) vs waiting for BigQuery.
    pub local_seconds: f64,
    pub bigquery_seconds: f64,
    pub load_jobs: usize,
    pub bytes_uploaded: u64,
}

/// A table as planned by `--dry-run`.
#[derive(Debug, Clone, Serialize)]
pub struct TablePlan {
    pub table: String,
    pub source: String,
    pub mode: String,
    pub schema: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SyncReport {
    Plan(Vec<TablePlan>),
    Synced(Vec<TableSyncReport>),
}

/// Runs the sync; `progress(table, rows_done, rows_total)` is called as rows are loaded.
pub async fn sync_bigquery(
    storage: &str,
    engine: &EngineOptions,
    declared: &[TableDecl],
    options: &BigQuerySyncOptions,
    progress: &(dyn Fn(&str, u64, u64) + Send + Sync),
) -> Result<SyncReport> {
    let mode = options.write_mode()?;
    let (ctx, root) = session::open_with_tables(storage, engine, declared).await?;
    let tables = if options.tables.is_empty() {
        let mut names: Vec<String> = ctx
            .catalog_names()
            .first()
            .and_then(|catalog| ctx.catalog(catalog))
            .and_then(|catalog| catalog.schema("public"))
            .map(|schema| schema.table_names())
            .unwrap_or_default();
        names.sort();
        if names.is_empty() {
            return Err(Error::Usage(format!(
                "no tables under {root} to sync; give --table NAME=SOURCE"
            )));
        }
        names.into_iter().map(|n| (n.clone(), n)).collect()
    } else {
        options.tables.clone()
    };

    // Everything that can be checked without BigQuery, for every table, before any request.
    let store = root.object_store(&ctx)?;
    let mut planned = Vec::with_capacity(tables.len());
    for (name, source) in &tables {
        let target = TableRef::new(&options.project, &options.dataset, name)?;
        let frame = ctx.table(source.as_str()).await.map_err(|e| {
            e.context(format!(
                "source table '{source}' of BigQuery table {target}"
            ))
        })?;
        let schema = with_model_docs(
            store.as_ref(),
            &root,
            source,
            Arc::new(frame.schema().as_arrow().clone()),
        )
        .await?;
        let request = SyncRequest {
            target,
            mode: mode.clone(),
            partition_by: options.partition_by.clone(),
            cluster_by: options.cluster_by.clone(),
            create: options.create,
            run_id: new_run_id(),
            snapshot_id: String::new(),
            chunk_bytes: options.chunk_bytes,
        };
        plan_table(&request, &schema).map_err(|e| source_context(e, source))?;
        planned.push((request, source.clone(), schema));
    }
    if options.dry_run {
        let plans = planned
            .iter()
            .map(|(request, source, schema)| {
                Ok(TablePlan {
                    table: request.target.to_string().trim_matches('`').to_owned(),
                    source: source.clone(),
                    mode: describe_mode(&request.mode),
                    schema: serde_json::to_value(table_schema(schema)?)
                        .map_err(|e| Error::Usage(format!("cannot render the schema: {e}")))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(SyncReport::Plan(plans));
    }

    let tokens = TokenSource::new(&options.credentials()).await?;
    let client_options = ClientOptions {
        endpoint: options
            .endpoint
            .clone()
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
        location: options.location.clone(),
        retry: options.retry,
        ..ClientOptions::new(&options.project)
    };
    let client = BigQueryClient::new(&client_options, tokens)?;
    let mut reports = Vec::with_capacity(planned.len());
    for (mut request, source, schema) in planned {
        let report = sync_one(
            &ctx,
            &root,
            store.as_ref(),
            &client,
            &mut request,
            &source,
            &schema,
            options,
            progress,
        )
        .await?;
        reports.push(report);
    }
    Ok(SyncReport::Synced(reports))
}

/// A table written by `phygital run` documents its columns in its manifest (the model's `-- column` lines):
/// they become the `description` field metadata that the BigQuery schema mapping turns into column
/// descriptions. Other tables keep their schema (and any description their files carry).
async fn with_model_docs(
    store: &dyn ObjectStore,
    root: &StorageRoot,
    source: &str,
    schema: SchemaRef,
) -> Result<SchemaRef> {
    let folder = root.prefix().join(source);
    let Some(manifest) = TableManifest::read(store, &folder).await? else {
        return Ok(schema);
    };
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let doc = manifest
                .columns
                .iter()
                .find(|c| &c.name == field.name())
                .and_then(|c| c.doc.as_deref());
            match doc {
                Some(doc) if !field.metadata().contains_key(DESCRIPTION_METADATA_KEYS[0]) => {
                    let mut metadata = field.metadata().clone();
                    metadata.insert(DESCRIPTION_METADATA_KEYS[0].to_owned(), doc.to_owned());
                    field.as_ref().clone().with_metadata(metadata)
                }
                _ => field.as_ref().clone(),
            }
        })
        .collect();
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

fn source_context(error: ConnectorError, source: &str) -> Error {
    Error::Connector(match error {
        ConnectorError::UnsupportedType {
            column,
            data_type,
            reason,
        } => ConnectorError::UnsupportedType {
            column: format!("{source}.{column}"),
            data_type,
            reason,
        },
        other => other,
    })
}

fn describe_mode(mode: &WriteMode) -> String {
    match mode {
        WriteMode::Merge { keys } => format!("merge on ({})", keys.join(", ")),
        WriteMode::ReplacePartitions { column } => {
            format!("replace-partitions by day of {column}")
        }
        other => other.name().to_owned(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn sync_one(
    ctx: &SessionContext,
    root: &StorageRoot,
    store: &dyn ObjectStore,
    client: &BigQueryClient,
    request: &mut SyncRequest,
    source: &str,
    schema: &SchemaRef,
    options: &BigQuerySyncOptions,
    progress: &(dyn Fn(&str, u64, u64) + Send + Sync),
) -> Result<TableSyncReport> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let snapshot = source_snapshot(ctx, source).await?;
    request.snapshot_id = snapshot.id();
    let frame = ctx.table(source).await?;
    let total = frame.clone().count().await? as u64;
    let stream = frame.execute_stream().await?;
    let table_name = request.target.table().to_owned();
    let batches = stream.map_err(|e: DataFusionError| ConnectorError::Source {
        table: source.to_owned(),
        message: e.to_string(),
    });
    progress(&table_name, 0, total);
    let on_rows = |rows: u64| progress(&table_name, rows, total);
    let outcome = sync_table(client, request, schema, batches, &on_rows).await?;
    let target = request.target.to_string().trim_matches('`').to_owned();
    let manifest = SyncManifest {
        table: target,
        source: source.to_owned(),
        mode: request.mode.name().to_owned(),
        key: match &request.mode {
            WriteMode::Merge { keys } => keys.clone(),
            _ => vec![],
        },
        partition_by: options.partition_by.clone(),
        rows: outcome.rows,
        checksum: format!("{:016x}", outcome.checksum.sum),
        source_snapshot_id: snapshot.id(),
        source_snapshot: snapshot,
        run_id: request.run_id.clone(),
        started: rfc3339(started),
        finished: rfc3339(SystemTime::now()),
        status: if outcome.written {
            "synced".to_owned()
        } else {
            "already-applied".to_owned()
        },
        jobs: outcome.jobs.clone(),
    };
    let manifest_url = write_manifest(root, store, request.target.table(), &manifest).await?;
    Ok(TableSyncReport {
        manifest,
        manifest_url,
        seconds: clock.elapsed().as_secs_f64(),
        local_seconds: outcome.local_time.as_secs_f64(),
        bigquery_seconds: outcome.bigquery_time.as_secs_f64(),
        load_jobs: outcome.load_jobs,
        bytes_uploaded: outcome.bytes_uploaded,
    })
}

/// The files the source table reads, with sizes, etags and modification times.
async fn source_snapshot(ctx: &SessionContext, source: &str) -> Result<SourceSnapshot> {
    let provider = ctx.table_provider(source).await?;
    let Some(listing) = provider.downcast_ref::<ListingTable>() else {
        return Ok(SourceSnapshot::default());
    };
    let state = ctx.state();
    let extension = listing.options().file_extension.clone();
    let mut files = Vec::new();
    for url in listing.table_paths() {
        let store = state.runtime_env().object_store(url)?;
        let listed: Vec<_> = url
            .list_all_files(&state, store.as_ref(), &extension)
            .await?
            .try_collect()
            .await?;
        for meta in listed {
            files.push(SourceFile {
                path: meta.location.to_string(),
                size: meta.size,
                e_tag: meta.e_tag,
                last_modified: meta.last_modified.to_rfc3339(),
            });
        }
    }
    Ok(SourceSnapshot::new(files))
}

async fn write_manifest(
    root: &StorageRoot,
    store: &dyn ObjectStore,
    table: &str,
    manifest: &SyncManifest,
) -> Result<String> {
    let text = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Usage(format!("cannot render the sync manifest: {e}")))?;
    let mut location = root.prefix();
    for part in MANIFEST_FOLDER.split('/') {
        location = location.join(part);
    }
    let location = location.join(format!("{table}.json").as_str());
    store
        .put(&location, PutPayload::from(text))
        .await
        .map_err(Error::from)?;
    Ok(format!("{}{MANIFEST_FOLDER}/{table}.json", root.url()))
}

/// The summary printed after a sync: one line per table.
pub fn format_report(report: &SyncReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    match report {
        SyncReport::Plan(plans) => {
            for plan in plans {
                let _ = writeln!(out, "{}  <-  {}  ({})", plan.table, plan.source, plan.mode);
                for field in plan.schema["fields"].as_array().into_iter().flatten() {
                    format_field(field, 1, &mut out);
                }
            }
            out.push_str("dry run: nothing was sent to BigQuery\n");
        }
        SyncReport::Synced(tables) => {
            let width = tables
                .iter()
                .map(|t| t.manifest.table.len())
                .max()
                .unwrap_or(5)
                .max(5);
            let _ = writeln!(
                out,
                "{:width$}  {:18}  {:>12}  {:16}  {:15}  {:>8}",
                "table", "mode", "rows", "checksum", "status", "seconds"
            );
            for t in tables {
                let m = &t.manifest;
                let _ = writeln!(
                    out,
                    "{:width$}  {:18}  {:>12}  {:16}  {:15}  {:>8.1}",
                    m.table, m.mode, m.rows, m.checksum, m.status, t.seconds
                );
            }
        }
    }
    out
}

fn format_field(field: &serde_json::Value, depth: usize, out: &mut String) {
    use std::fmt::Write as _;
    let text = |key: &str| field[key].as_str().unwrap_or("").to_owned();
    let description = match text("description") {
        d if d.is_empty() => d,
        d => format!("  -- {d}"),
    };
    let _ = writeln!(
        out,
        "{}{} {} {}{description}",
        "    ".repeat(depth),
        text("name"),
        text("type"),
        text("mode")
    );
    for child in field["fields"].as_array().into_iter().flatten() {
        format_field(child, depth + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> BigQueryFlags {
        BigQueryFlags {
            project: Some("test-proj".into()),
            dataset: Some("d".into()),
            ..BigQueryFlags::default()
        }
    }

    #[test]
    fn flags_win_over_the_config_section() {
        let section = BigQuerySection {
            project: Some("config-project".into()),
            dataset: Some("config_ds".into()),
            mode: Some("merge".into()),
            key: vec!["id".into()],
            tables: vec!["a=b".into()],
            ..BigQuerySection::default()
        };
        let options =
            BigQuerySyncOptions::resolve(BigQueryFlags::default(), Some(&section), false).unwrap();
        assert_eq!(options.project, "config-project");
        assert_eq!(options.tables, [("a".to_owned(), "b".to_owned())]);
        assert_eq!(
            options.write_mode().unwrap(),
            WriteMode::Merge {
                keys: vec!["id".into()]
            }
        );
        let options = BigQuerySyncOptions::resolve(flags(), Some(&section), false).unwrap();
        assert_eq!(
            (options.project.as_str(), options.dataset.as_str()),
            ("test-proj", "d")
        );
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let with = |f: fn(&mut BigQueryFlags)| {
            let mut flags = flags();
            f(&mut flags);
            BigQuerySyncOptions::resolve(flags, None, false)
                .unwrap_err()
                .to_string()
        };
        assert!(with(|f| f.mode = Some("merge".into())).contains("--key"));
        assert!(with(|f| f.mode = Some("replace-partitions".into())).contains("--partition-by"));
        assert!(with(|f| f.mode = Some("upsert".into())).contains("unknown sync mode"));
        assert!(with(|f| f.dataset = Some("a.b".into())).contains("dataset id"));
        assert!(with(|f| f.tables = vec!["=x".into()]).contains("NAME=SOURCE"));
        assert!(with(|f| f.project = None).contains("--project"));
    }

    #[test]
    fn lists_accept_commas() {
        assert_eq!(
            split_list(&["a,b".into(), " c ".into()]),
            ["a", "b", "c"].map(String::from)
        );
    }
}
