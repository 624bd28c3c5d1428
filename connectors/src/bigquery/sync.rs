//! One table's sync: Arrow batches in, a verified BigQuery table out (DESIGN §7).
//!
//! Every mode takes the same path up to the last step, so that BigQuery never sees a
//! half-written target:
//! 1. the dataset and the target exist (created, with location, day partitioning and
//!    clustering, unless creation is disabled); staging tables left by failed runs of this
//!    table are dropped;
//! 2. the rows are loaded into a fresh staging table `_phygital_stage_<table>_<run>` by load
//!    jobs (newline-delimited JSON media uploads of at most `chunk_bytes` each), while the local
//!    checksum is computed in the same pass;
//! 3. the staging table is verified: its row count and checksum, computed by a BigQuery
//!    query, must equal the local ones;
//! 4. one atomic BigQuery operation writes the target:
//!    - `replace`: a copy job staging → target with WRITE_TRUNCATE;
//!    - `append`: a copy job with WRITE_APPEND whose job id is derived from the target and the
//!      source snapshot. BigQuery refuses a second job with the same id, so a rerun over the same
//!      files (after a crash at any point) cannot append twice; the job is looked up first and,
//!      if an earlier run committed it, nothing is written;
//!    - `merge`: a MERGE of staging into target on the key columns (keys must be unique and
//!      non-NULL in the batch: checked first);
//!    - `replace-partitions`: one multi-statement transaction deleting the target's day
//!      partitions that occur in the batch and inserting the batch;
//! 5. the target is verified: the whole table (`replace`), the checksum difference before and
//!    after (`append`: checksums add up), or the rows with the batch's keys / in the batch's
//!    partitions (`merge`, `replace-partitions`) must equal the local count and checksum;
//! 6. the staging table is dropped.
//!
//! Every job has an id made of the run id and the step, so a retried request finds its job
//! instead of starting it twice; a new run (after a crash) starts over from step 1 and ends
//! in the same state, because steps 2–4 are idempotent per mode.

use std::time::{Duration, Instant, SystemTime};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use futures::{Stream, StreamExt};
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_schema::TableSchema;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::checksum::{ChecksumValue, ROW_ALIAS, TableChecksum, checksum_sql_where};
use super::client::BigQueryClient;
use super::manifest::hex;
use super::names::TableRef;
use super::ndjson::encode_batch;
use super::schema::{MODE_REPEATED, table_schema};
use crate::error::ConnectorError;

/// Prefix of staging tables; with the table id and the run id after it.
pub const STAGING_PREFIX: &str = "_phygital_stage_";
/// Staging tables expire on their own after this long, should cleanup never run again.
const STAGING_EXPIRATION: Duration = Duration::from_secs(24 * 3600);
/// Bytes of newline-delimited JSON per load job (one multipart upload each).
pub const DEFAULT_CHUNK_BYTES: usize = 16 << 20;

/// How the rows reach the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    Replace,
    Append,
    Merge { keys: Vec<String> },
    ReplacePartitions { column: String },
}

impl WriteMode {
    pub fn name(&self) -> &'static str {
        match self {
            WriteMode::Replace => "replace",
            WriteMode::Append => "append",
            WriteMode::Merge { .. } => "merge",
            WriteMode::ReplacePartitions { .. } => "replace-partitions",
        }
    }
}

/// What to sync where.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub target: TableRef,
    pub mode: WriteMode,
    /// Day partitioning of a table created by the sync (a DATE, DATETIME or TIMESTAMP column);
    /// `replace-partitions` needs it and defaults to its own column.
    pub partition_by: Option<String>,
    pub cluster_by: Vec<String>,
    /// Create the dataset and the target when missing; otherwise a missing one is an error.
    pub create: bool,
    /// [`new_run_id`]: names the staging table and the jobs of this run.
    pub run_id: String,
    /// Identifies the source rows (a hash of the files read): guards `append` reruns.
    pub snapshot_id: String,
    pub chunk_bytes: usize,
}

/// The result of a table sync.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    pub rows: u64,
    pub checksum: ChecksumValue,
    /// False when an earlier run had already appended this snapshot.
    pub written: bool,
    pub jobs: Vec<String>,
    pub load_jobs: usize,
    pub bytes_uploaded: u64,
    /// Time spent reading the source, checking, hashing and encoding rows.
    pub local_time: Duration,
    /// Time spent waiting for BigQuery.
    pub bigquery_time: Duration,
}

/// `YYYYMMDDHHMMSS-xxxxxxxx`: sortable, valid in table and job ids, and recognisable in a
/// staging table's name (see [`is_run_id`]).
pub fn new_run_id() -> String {
    let now = SystemTime::now();
    let stamp = super::manifest::rfc3339(now);
    let digits: String = stamp
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    format!("{digits}-{}", &hex(&hasher.finalize()[..4]))
}

pub fn is_run_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 23
        && bytes[..14].iter().all(u8::is_ascii_digit)
        && bytes[14] == b'-'
        && bytes[15..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// The staging table of `target` for `run_id`.
pub fn staging_table(target: &TableRef, run_id: &str) -> Result<TableRef, ConnectorError> {
    TableRef::new(
        target.project(),
        target.dataset(),
        format!("{STAGING_PREFIX}{}_{run_id}", target.table()),
    )
}

/// Checks the mode's columns against the schema before anything is sent, and returns the
/// BigQuery schema and the partitioning column.
pub fn plan_table(
    request: &SyncRequest,
    schema: &SchemaRef,
) -> Result<(TableSchema, Option<String>), ConnectorError> {
    let bq_schema = table_schema(schema)?;
    let partition = match (&request.mode, &request.partition_by) {
        (WriteMode::ReplacePartitions { column }, Some(other)) if other != column => {
            return Err(invalid(format!(
                "{}: --partition-by {other} and the replace-partitions column {column} differ",
                request.target
            )));
        }
        (WriteMode::ReplacePartitions { column }, _) => Some(column.clone()),
        (_, partition) => partition.clone(),
    };
    if let Some(column) = &partition {
        let field = top_level(&bq_schema, column, &request.target, "partition column")?;
        if !matches!(
            field.r#type,
            FieldType::Date | FieldType::Timestamp | FieldType::Datetime
        ) {
            return Err(invalid(format!(
                "{}: partition column `{column}` is {:?}; day partitioning needs DATE, DATETIME or TIMESTAMP",
                request.target, field.r#type
            )));
        }
    }
    if let WriteMode::Merge { keys } = &request.mode {
        if keys.is_empty() {
            return Err(invalid(format!(
                "{}: merge needs at least one key column (--key)",
                request.target
            )));
        }
        for key in keys {
            let field = top_level(&bq_schema, key, &request.target, "key column")?;
            if matches!(
                field.r#type,
                FieldType::Record
                    | FieldType::Struct
                    | FieldType::Float
                    | FieldType::Float64
                    | FieldType::Geography
                    | FieldType::Json
            ) {
                return Err(invalid(format!(
                    "{}: key column `{key}` is {:?}, which cannot be compared for equality in a MERGE",
                    request.target, field.r#type
                )));
            }
        }
    }
    if request.cluster_by.len() > 4 {
        return Err(invalid(format!(
            "{}: BigQuery clusters by at most 4 columns, {} given",
            request.target,
            request.cluster_by.len()
        )));
    }
    for column in &request.cluster_by {
        top_level(&bq_schema, column, &request.target, "clustering column")?;
    }
    Ok((bq_schema, partition))
}

fn invalid(reason: String) -> ConnectorError {
    ConnectorError::InvalidRequest { reason }
}

fn top_level<'a>(
    schema: &'a TableSchema,
    column: &str,
    table: &TableRef,
    what: &str,
) -> Result<&'a TableFieldSchema, ConnectorError> {
    let field = schema
        .fields
        .iter()
        .flatten()
        .find(|f| f.name == column)
        .ok_or_else(|| {
            invalid(format!(
                "{table}: {what} `{column}` is not a column of the source (columns: {})",
                schema
                    .fields
                    .iter()
                    .flatten()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    if field.mode.as_deref() == Some(MODE_REPEATED) {
        return Err(invalid(format!(
            "{table}: {what} `{column}` is a repeated column"
        )));
    }
    Ok(field)
}

/// Syncs the rows of `batches` (with schema `schema`) as `request` says; see the module docs.
pub async fn sync_table<S>(
    client: &BigQueryClient,
    request: &SyncRequest,
    schema: &SchemaRef,
    batches: S,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<SyncOutcome, ConnectorError>
where
    S: Stream<Item = Result<RecordBatch, ConnectorError>>,
{
    if !is_run_id(&request.run_id) {
        return Err(invalid(format!("invalid run id {:?}", request.run_id)));
    }
    let (bq_schema, partition) = plan_table(request, schema)?;
    let target = &request.target;
    let mut run = Run {
        client,
        request,
        jobs: Vec::new(),
        bigquery_time: Duration::ZERO,
    };

    // 1. dataset, target, leftovers
    let target_resource = run.prepare(&bq_schema, partition.as_deref()).await?;

    let append_job = match request.mode {
        WriteMode::Append => {
            let guard = run.append_guard().await?;
            if let AppendGuard::Committed(job_id) = &guard {
                // The rows are in the target already; count them through the local pass
                // only, so the report and manifest describe the snapshot.
                let (checksum, local_time) = local_checksum(schema, batches, progress).await?;
                return Ok(SyncOutcome {
                    rows: checksum.rows,
                    checksum,
                    written: false,
                    jobs: vec![job_id.clone()],
                    load_jobs: 0,
                    bytes_uploaded: 0,
                    local_time,
                    bigquery_time: run.bigquery_time,
                });
            }
            Some(guard)
        }
        _ => None,
    };

    // 2. staging
    let staging = staging_table(target, &request.run_id)?;
    run.create_staging(&staging, &bq_schema, &target_resource)
        .await?;
    let loaded = run
        .load(&staging, &bq_schema, schema, batches, progress)
        .await?;
    let local = loaded.checksum;

    // 3. verify staging
    let staged = run.checksum(&staging, &bq_schema, None).await?;
    ensure_equal(&staging, "loading the staging table", staged, local)?;

    // 4. + 5. write the target and verify it
    match &request.mode {
        WriteMode::Replace => {
            run.copy(
                &staging,
                "WRITE_TRUNCATE",
                &run.job_id("replace"),
                "replace",
            )
            .await?;
            let written = run.checksum(target, &bq_schema, None).await?;
            ensure_equal(target, "the replace", written, local)?;
        }
        WriteMode::Append => {
            let before = run.checksum(target, &bq_schema, None).await?;
            let Some(AppendGuard::Free(job_id)) = append_job else {
                return Err(ConnectorError::UnexpectedResponse {
                    reason: "append guard missing".to_owned(),
                });
            };
            run.copy(&staging, "WRITE_APPEND", &job_id, "append")
                .await?;
            let after = run.checksum(target, &bq_schema, None).await?;
            let appended = ChecksumValue {
                rows: after.rows.wrapping_sub(before.rows),
                sum: after.sum.wrapping_sub(before.sum),
            };
            ensure_equal(target, "the append", appended, local)?;
        }
        WriteMode::Merge { keys } => {
            run.check_keys(&staging, keys).await?;
            let sql = merge_sql(target, &staging, &bq_schema, keys)?;
            run.query_job(&sql, "merge").await?;
            let filter = key_filter(&staging, keys);
            let written = run.checksum(target, &bq_schema, Some(&filter)).await?;
            ensure_equal(
                target,
                "the merge (rows with the batch's keys)",
                written,
                local,
            )?;
        }
        WriteMode::ReplacePartitions { column } => {
            let field = top_level(&bq_schema, column, target, "partition column")?;
            let filter = partition_filter(&staging, column, &field.r#type);
            let sql = replace_partitions_sql(target, &staging, &bq_schema, &filter);
            run.query_job(&sql, "replace-partitions").await?;
            let written = run.checksum(target, &bq_schema, Some(&filter)).await?;
            ensure_equal(
                target,
                "the partition replace (the batch's partitions)",
                written,
                local,
            )?;
        }
    }

    // 6. cleanup
    run.timed(client.delete_table(&staging)).await?;
    Ok(SyncOutcome {
        rows: local.rows,
        checksum: local,
        written: true,
        jobs: run.jobs,
        load_jobs: loaded.jobs,
        bytes_uploaded: loaded.bytes,
        local_time: loaded.local_time,
        bigquery_time: run.bigquery_time,
    })
}

fn ensure_equal(
    table: &TableRef,
    step: &str,
    bigquery: ChecksumValue,
    local: ChecksumValue,
) -> Result<(), ConnectorError> {
    if bigquery == local {
        Ok(())
    } else {
        Err(ConnectorError::VerificationFailed {
            table: table.to_string(),
            step: step.to_owned(),
            bigquery: bigquery.to_string(),
            local: local.to_string(),
        })
    }
}

/// Only the local pass: for an append an earlier run committed.
async fn local_checksum<S>(
    schema: &SchemaRef,
    batches: S,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<(ChecksumValue, Duration), ConnectorError>
where
    S: Stream<Item = Result<RecordBatch, ConnectorError>>,
{
    let started = Instant::now();
    let mut checksum = TableChecksum::new();
    let mut batches = std::pin::pin!(batches);
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        ensure_schema(schema, &batch)?;
        checksum.update(&batch)?;
        progress(checksum.value().rows);
    }
    Ok((checksum.value(), started.elapsed()))
}

fn ensure_schema(schema: &SchemaRef, batch: &RecordBatch) -> Result<(), ConnectorError> {
    let same = schema.fields().len() == batch.num_columns()
        && schema
            .fields()
            .iter()
            .zip(batch.schema_ref().fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type().equals_datatype(b.data_type()));
    if same {
        Ok(())
    } else {
        Err(ConnectorError::InvalidSchema {
            column: String::new(),
            reason: "a batch's schema differs from the table's".to_owned(),
        })
    }
}

enum AppendGuard {
    /// Append with this job id.
    Free(String),
    /// An earlier run appended this snapshot with this job.
    Committed(String),
}

struct Loaded {
    checksum: ChecksumValue,
    jobs: usize,
    bytes: u64,
    local_time: Duration,
}

struct Run<'a> {
    client: &'a BigQueryClient,
    request: &'a SyncRequest,
    jobs: Vec<String>,
    bigquery_time: Duration,
}

impl Run<'_> {
    async fn timed<T>(&mut self, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let value = call.await;
        self.bigquery_time += started.elapsed();
        value
    }

    /// A job id unique to this run, table and step.
    fn job_id(&self, step: &str) -> String {
        format!(
            "phygital_{}_{}_{step}",
            self.request.run_id,
            table_hash(&self.request.target)
        )
    }

    /// Dataset and target exist; staging leftovers of earlier runs are gone. Returns the
    /// target's resource.
    async fn prepare(
        &mut self,
        schema: &TableSchema,
        partition: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        let client = self.client;
        let target = &self.request.target;
        if self
            .timed(client.get_dataset(target.dataset()))
            .await?
            .is_none()
        {
            if !self.request.create {
                return Err(invalid(format!(
                    "dataset {}.{} does not exist (creation is disabled by --no-create)",
                    target.project(),
                    target.dataset()
                )));
            }
            self.timed(client.create_dataset(target.dataset())).await?;
        }
        let prefix = format!("{STAGING_PREFIX}{}_", target.table());
        let leftovers = self
            .timed(client.list_tables(target.dataset(), &prefix))
            .await?;
        for table in leftovers {
            if is_run_id(&table[prefix.len()..]) {
                let stale = TableRef::new(target.project(), target.dataset(), table)?;
                tracing::info!("dropping {stale}, left by an earlier run");
                self.timed(client.delete_table(&stale)).await?;
            }
        }
        let existing = self.timed(client.get_table(target)).await?;
        match existing {
            Some(resource) => {
                if self.request.mode != WriteMode::Replace {
                    ensure_compatible(target, &resource, schema)?;
                }
                Ok(resource)
            }
            None if !self.request.create => Err(invalid(format!(
                "table {target} does not exist (creation is disabled by --no-create)"
            ))),
            None => {
                let resource =
                    table_resource(target, schema, partition, &self.request.cluster_by, None);
                self.timed(client.create_table(target, &resource)).await?;
                Ok(resource)
            }
        }
    }

    /// Whether an earlier run appended this snapshot already: the append job's id is
    /// derived from target and snapshot, with an attempt number after failed jobs.
    async fn append_guard(&mut self) -> Result<AppendGuard, ConnectorError> {
        let mut hasher = Sha256::new();
        hasher.update(self.request.target.to_string().as_bytes());
        hasher.update([0]);
        hasher.update(self.request.snapshot_id.as_bytes());
        let base = format!("phygital_append_{}", hex(&hasher.finalize()[..16]));
        for attempt in 0..100 {
            let job_id = format!("{base}_{attempt}");
            let Some(job) = self.timed(self.client.get_job(&job_id)).await? else {
                return Ok(AppendGuard::Free(job_id));
            };
            let mut job = job;
            while job.pointer("/status/state").and_then(Value::as_str) != Some("DONE") {
                tokio::time::sleep(Duration::from_millis(500)).await;
                job = self
                    .timed(self.client.get_job(&job_id))
                    .await?
                    .unwrap_or_else(|| json!({"status": {"state": "DONE"}}));
            }
            if job.pointer("/status/errorResult").is_none() {
                return Ok(AppendGuard::Committed(job_id));
            }
        }
        Err(invalid(format!(
            "{}: 100 append jobs of this source snapshot failed; inspect job {base}_99",
            self.request.target
        )))
    }

    async fn create_staging(
        &mut self,
        staging: &TableRef,
        schema: &TableSchema,
        target: &Value,
    ) -> Result<(), ConnectorError> {
        // Same partitioning and clustering as the target: copy jobs require it.
        let partition = target
            .pointer("/timePartitioning/field")
            .and_then(Value::as_str);
        let clustering: Vec<String> = target
            .pointer("/clustering/fields")
            .and_then(Value::as_array)
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let expires = SystemTime::now() + STAGING_EXPIRATION;
        let resource = table_resource(staging, schema, partition, &clustering, Some(expires));
        self.timed(self.client.create_table(staging, &resource))
            .await?;
        Ok(())
    }

    /// Loads the batches into `staging`, one load job per `chunk_bytes` of JSON.
    async fn load<S>(
        &mut self,
        staging: &TableRef,
        bq_schema: &TableSchema,
        schema: &SchemaRef,
        batches: S,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Loaded, ConnectorError>
    where
        S: Stream<Item = Result<RecordBatch, ConnectorError>>,
    {
        let chunk_bytes = self.request.chunk_bytes.max(1);
        let mut checksum = TableChecksum::new();
        let mut buffer: Vec<u8> = Vec::with_capacity(chunk_bytes.min(64 << 20) + (1 << 20));
        let mut local_time = Duration::ZERO;
        let mut jobs = 0;
        let mut bytes = 0u64;
        let mut batches = std::pin::pin!(batches);
        loop {
            let started = Instant::now();
            let Some(batch) = batches.next().await else {
                break;
            };
            let batch = batch?;
            ensure_schema(schema, &batch)?;
            checksum.update(&batch)?;
            encode_batch(&batch, &mut buffer)?;
            local_time += started.elapsed();
            if buffer.len() >= chunk_bytes {
                self.load_chunk(staging, bq_schema, &buffer, jobs).await?;
                jobs += 1;
                bytes += buffer.len() as u64;
                buffer.clear();
            }
            progress(checksum.value().rows);
        }
        if !buffer.is_empty() {
            self.load_chunk(staging, bq_schema, &buffer, jobs).await?;
            jobs += 1;
            bytes += buffer.len() as u64;
        }
        Ok(Loaded {
            checksum: checksum.value(),
            jobs,
            bytes,
            local_time,
        })
    }

    async fn load_chunk(
        &mut self,
        staging: &TableRef,
        bq_schema: &TableSchema,
        data: &[u8],
        index: usize,
    ) -> Result<(), ConnectorError> {
        let job_id = self.job_id(&format!("load{index}"));
        let configuration = json!({"load": {
            "destinationTable": table_reference(staging),
            "sourceFormat": "NEWLINE_DELIMITED_JSON",
            "writeDisposition": "WRITE_APPEND",
            "createDisposition": "CREATE_NEVER",
            "schema": bq_schema,
        }});
        let what = format!("load {} of {}", index + 1, self.request.target);
        let job = self
            .timed(
                self.client
                    .run_upload_job(&job_id, configuration, data, &what),
            )
            .await?;
        self.jobs.push(job.job_id);
        Ok(())
    }

    async fn copy(
        &mut self,
        staging: &TableRef,
        disposition: &str,
        job_id: &str,
        what: &str,
    ) -> Result<(), ConnectorError> {
        let configuration = json!({"copy": {
            "sourceTable": table_reference(staging),
            "destinationTable": table_reference(&self.request.target),
            "writeDisposition": disposition,
            "createDisposition": "CREATE_NEVER",
        }});
        let what = format!("{what} of {}", self.request.target);
        let job = self
            .timed(self.client.run_job(job_id, configuration, &what))
            .await?;
        self.jobs.push(job.job_id);
        Ok(())
    }

    /// A DML statement or script as a query job with this run's id for the step.
    async fn query_job(&mut self, sql: &str, step: &str) -> Result<(), ConnectorError> {
        let job_id = self.job_id(step);
        let configuration = json!({"query": {"query": sql, "useLegacySql": false}});
        let what = format!("{step} of {}", self.request.target);
        let job = self
            .timed(self.client.run_job(&job_id, configuration, &what))
            .await?;
        self.jobs.push(job.job_id);
        Ok(())
    }

    async fn checksum(
        &mut self,
        table: &TableRef,
        schema: &TableSchema,
        filter: Option<&str>,
    ) -> Result<ChecksumValue, ConnectorError> {
        let sql = checksum_sql_where(table, schema, filter)?;
        let what = format!("verifying {table}");
        let rows = self.timed(self.client.query(&sql, &what)).await?;
        let [row] = rows.rows.as_slice() else {
            return Err(ConnectorError::UnexpectedResponse {
                reason: format!(
                    "{what}: the checksum query returned {} rows",
                    rows.rows.len()
                ),
            });
        };
        let integer = |index: usize| -> Result<i64, ConnectorError> {
            row.get(index)
                .and_then(Value::as_str)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| ConnectorError::UnexpectedResponse {
                    reason: format!("{what}: the checksum query returned {row:?}"),
                })
        };
        ChecksumValue::from_query_result(integer(0)?, integer(1)?, integer(2)?)
    }

    /// MERGE needs each target row to match at most one batch row, and NULL keys never match.
    async fn check_keys(
        &mut self,
        staging: &TableRef,
        keys: &[String],
    ) -> Result<(), ConnectorError> {
        let columns = keys
            .iter()
            .map(|k| quoted(k))
            .collect::<Vec<_>>()
            .join(", ");
        let any_null = keys
            .iter()
            .map(|k| format!("{} IS NULL", quoted(k)))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM {staging} GROUP BY {columns} HAVING COUNT(*) > 1)) AS duplicated, \
             (SELECT COUNT(*) FROM {staging} WHERE {any_null}) AS null_keys"
        );
        let what = format!("checking the keys of {}", self.request.target);
        let rows = self.timed(self.client.query(&sql, &what)).await?;
        let counts: Vec<i64> = rows
            .rows
            .first()
            .map(|row| {
                row.iter()
                    .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()))
                    .collect()
            })
            .unwrap_or_default();
        match counts.as_slice() {
            [0, 0] => Ok(()),
            [duplicated, nulls] => Err(invalid(format!(
                "{}: merge key ({}) must be unique and non-NULL in the source: {duplicated} key values occur more than once, {nulls} rows have a NULL key",
                self.request.target,
                keys.join(", ")
            ))),
            _ => Err(ConnectorError::UnexpectedResponse {
                reason: format!("{what}: unexpected result {:?}", rows.rows),
            }),
        }
    }
}

/// A short stable hash of the target, for job ids (table names may hold any letter).
fn table_hash(table: &TableRef) -> String {
    hex(&Sha256::digest(table.to_string().as_bytes())[..6])
}

fn quoted(column: &str) -> String {
    format!("`{column}`")
}

fn table_reference(table: &TableRef) -> Value {
    json!({"projectId": table.project(), "datasetId": table.dataset(), "tableId": table.table()})
}

fn table_resource(
    table: &TableRef,
    schema: &TableSchema,
    partition: Option<&str>,
    clustering: &[String],
    expires: Option<SystemTime>,
) -> Value {
    let mut resource = json!({"tableReference": table_reference(table), "schema": schema});
    if let Some(column) = partition {
        resource["timePartitioning"] = json!({"type": "DAY", "field": column});
    }
    if !clustering.is_empty() {
        resource["clustering"] = json!({"fields": clustering});
    }
    if let Some(expires) = expires {
        let millis = expires
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        resource["expirationTime"] = json!(millis.to_string());
    }
    resource
}

/// An existing target must have the columns the source maps to (names, types, repetition);
/// BigQuery's aliases (INTEGER/INT64, FLOAT/FLOAT64, BOOLEAN/BOOL, RECORD/STRUCT) are equal.
fn ensure_compatible(
    table: &TableRef,
    resource: &Value,
    schema: &TableSchema,
) -> Result<(), ConnectorError> {
    let existing: Vec<TableFieldSchema> = resource
        .pointer("/schema/fields")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| ConnectorError::UnexpectedResponse {
            reason: format!("the schema of {table}: {e}"),
        })?
        .unwrap_or_default();
    let expected = schema.fields.as_deref().unwrap_or_default();
    if let Some(difference) = schema_difference(&existing, expected, "") {
        return Err(invalid(format!(
            "table {table} exists with a different schema ({difference}); replace it with --mode replace, or sync to another table"
        )));
    }
    Ok(())
}

fn schema_difference(
    existing: &[TableFieldSchema],
    expected: &[TableFieldSchema],
    parent: &str,
) -> Option<String> {
    if existing.len() != expected.len() {
        let names = |fields: &[TableFieldSchema]| {
            fields
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Some(format!(
            "{}columns ({}) in BigQuery, ({}) in the source",
            if parent.is_empty() {
                String::new()
            } else {
                format!("{parent}: ")
            },
            names(existing),
            names(expected)
        ));
    }
    for (have, want) in existing.iter().zip(expected) {
        let path = if parent.is_empty() {
            want.name.clone()
        } else {
            format!("{parent}.{}", want.name)
        };
        let repeated = |f: &TableFieldSchema| f.mode.as_deref() == Some(MODE_REPEATED);
        if !have.name.eq_ignore_ascii_case(&want.name)
            || format!("{:?}", canonical_type(&have.r#type))
                != format!("{:?}", canonical_type(&want.r#type))
            || repeated(have) != repeated(want)
        {
            return Some(format!(
                "`{}` {:?}{} in BigQuery, `{path}` {:?}{} in the source",
                have.name,
                have.r#type,
                if repeated(have) { " REPEATED" } else { "" },
                want.r#type,
                if repeated(want) { " REPEATED" } else { "" },
            ));
        }
        if let (Some(a), Some(b)) = (&have.fields, &want.fields)
            && let Some(difference) = schema_difference(a, b, &path)
        {
            return Some(difference);
        }
    }
    None
}

fn canonical_type(field_type: &FieldType) -> FieldType {
    match field_type {
        FieldType::Integer => FieldType::Int64,
        FieldType::Float => FieldType::Float64,
        FieldType::Boolean => FieldType::Bool,
        FieldType::Struct => FieldType::Record,
        other => other.clone(),
    }
}

fn column_list(schema: &TableSchema, prefix: &str) -> Vec<String> {
    schema
        .fields
        .iter()
        .flatten()
        .map(|f| format!("{prefix}{}", quoted(&f.name)))
        .collect()
}

fn merge_sql(
    target: &TableRef,
    staging: &TableRef,
    schema: &TableSchema,
    keys: &[String],
) -> Result<String, ConnectorError> {
    let on = keys
        .iter()
        .map(|k| format!("T.{0} = S.{0}", quoted(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let updates: Vec<String> = schema
        .fields
        .iter()
        .flatten()
        .filter(|f| !keys.contains(&f.name))
        .map(|f| format!("{0} = S.{0}", quoted(&f.name)))
        .collect();
    let matched = if updates.is_empty() {
        String::new()
    } else {
        format!(" WHEN MATCHED THEN UPDATE SET {}", updates.join(", "))
    };
    Ok(format!(
        "MERGE {target} AS T USING {staging} AS S ON {on}{matched} WHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
        column_list(schema, "").join(", "),
        column_list(schema, "S.").join(", ")
    ))
}

/// Target rows (as [`ROW_ALIAS`]) whose key occurs in the staging table.
fn key_filter(staging: &TableRef, keys: &[String]) -> String {
    let matches = keys
        .iter()
        .map(|k| format!("S.{0} = {ROW_ALIAS}.{0}", quoted(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    format!("EXISTS (SELECT 1 FROM {staging} AS S WHERE {matches})")
}

/// Target rows (as [`ROW_ALIAS`]) in a day partition that occurs in the staging table
/// (NULLs form their own partition).
fn partition_filter(staging: &TableRef, column: &str, field_type: &FieldType) -> String {
    let day = |reference: &str| match field_type {
        FieldType::Date => reference.to_owned(),
        _ => format!("DATE({reference})"),
    };
    let own = format!("{ROW_ALIAS}.{}", quoted(column));
    let theirs = quoted(column);
    format!(
        "({} IN (SELECT DISTINCT {} FROM {staging} WHERE {theirs} IS NOT NULL) \
         OR ({own} IS NULL AND EXISTS (SELECT 1 FROM {staging} WHERE {theirs} IS NULL)))",
        day(&own),
        day(&theirs),
    )
}

fn replace_partitions_sql(
    target: &TableRef,
    staging: &TableRef,
    schema: &TableSchema,
    filter: &str,
) -> String {
    let columns = column_list(schema, "").join(", ");
    format!(
        "BEGIN TRANSACTION;\n\
         DELETE FROM {target} AS {ROW_ALIAS} WHERE {filter};\n\
         INSERT INTO {target} ({columns}) SELECT {columns} FROM {staging};\n\
         COMMIT TRANSACTION;"
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("price", DataType::Float64, true),
            Field::new("tags", DataType::new_list(DataType::Utf8, true), true),
        ]))
    }

    fn request(mode: WriteMode) -> SyncRequest {
        SyncRequest {
            target: TableRef::new("test-proj", "d", "orders").unwrap(),
            mode,
            partition_by: None,
            cluster_by: vec![],
            create: true,
            run_id: new_run_id(),
            snapshot_id: "s".into(),
            chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }

    #[test]
    fn run_ids_are_recognisable_in_staging_names() {
        let id = new_run_id();
        assert!(is_run_id(&id), "{id}");
        assert!(!is_run_id("b_20261122143501-0123abcd"));
        let target = TableRef::new("test-proj", "d", "a").unwrap();
        let staging = staging_table(&target, &id).unwrap();
        let prefix = format!("{STAGING_PREFIX}a_");
        assert!(staging.table().starts_with(&prefix));
        assert!(is_run_id(&staging.table()[prefix.len()..]));
        // The staging table of table `a_b` is not mistaken for one of table `a`.
        let other = staging_table(&TableRef::new("test-proj", "d", "a_b").unwrap(), &id).unwrap();
        assert!(!is_run_id(&other.table()[prefix.len()..]));
    }

    #[test]
    fn plan_rejects_bad_keys_and_partition_columns_by_name() {
        let bad = |mode: WriteMode, partition: Option<&str>| {
            let mut r = request(mode);
            r.partition_by = partition.map(str::to_owned);
            plan_table(&r, &schema()).unwrap_err().to_string()
        };
        let e = bad(
            WriteMode::Merge {
                keys: vec!["nope".into()],
            },
            None,
        );
        assert!(
            e.contains("key column `nope` is not a column") && e.contains("id, ts"),
            "{e}"
        );
        let e = bad(
            WriteMode::Merge {
                keys: vec!["price".into()],
            },
            None,
        );
        assert!(e.contains("`price`") && e.contains("Float"), "{e}");
        let e = bad(WriteMode::Merge { keys: vec![] }, None);
        assert!(e.contains("at least one key"), "{e}");
        let e = bad(
            WriteMode::ReplacePartitions {
                column: "id".into(),
            },
            None,
        );
        assert!(e.contains("partition column `id`"), "{e}");
        let e = bad(
            WriteMode::ReplacePartitions {
                column: "tags".into(),
            },
            None,
        );
        assert!(e.contains("repeated"), "{e}");
        let e = bad(WriteMode::Replace, Some("price"));
        assert!(e.contains("day partitioning"), "{e}");
        let (_, partition) = plan_table(
            &request(WriteMode::ReplacePartitions {
                column: "ts".into(),
            }),
            &schema(),
        )
        .unwrap();
        assert_eq!(partition.as_deref(), Some("ts"));
    }

    #[test]
    fn merge_and_partition_sql() {
        let target = TableRef::new("test-proj", "d", "orders").unwrap();
        let staging = staging_table(&target, "20261122143501-0123abcd").unwrap();
        let bq = table_schema(&schema()).unwrap();
        let sql = merge_sql(&target, &staging, &bq, &["id".into()]).unwrap();
        assert_eq!(
            sql,
            "MERGE `test-proj.d.orders` AS T USING `test-proj.d._phygital_stage_orders_20261122143501-0123abcd` AS S \
             ON T.`id` = S.`id` WHEN MATCHED THEN UPDATE SET `ts` = S.`ts`, `price` = S.`price`, `tags` = S.`tags` \
             WHEN NOT MATCHED THEN INSERT (`id`, `ts`, `price`, `tags`) VALUES (S.`id`, S.`ts`, S.`price`, S.`tags`)"
        );
        let filter = partition_filter(&staging, "ts", &FieldType::Timestamp);
        assert!(
            filter.starts_with("(DATE(`phygital-row`.`ts`) IN (SELECT DISTINCT DATE(`ts`)"),
            "{filter}"
        );
        let script = replace_partitions_sql(&target, &staging, &bq, &filter);
        assert!(script.starts_with(
            "BEGIN TRANSACTION;\nDELETE FROM `test-proj.d.orders` AS `phygital-row` WHERE (DATE("
        ));
        assert!(script.ends_with("COMMIT TRANSACTION;"));
    }

    #[test]
    fn schema_differences_are_named() {
        let bq = table_schema(&schema()).unwrap();
        let same: Vec<TableFieldSchema> = serde_json::from_value(json!([
            {"name": "id", "type": "INTEGER", "mode": "NULLABLE"},
            {"name": "ts", "type": "TIMESTAMP"},
            {"name": "price", "type": "FLOAT"},
            {"name": "tags", "type": "STRING", "mode": "REPEATED"},
        ]))
        .unwrap();
        assert_eq!(
            schema_difference(&same, bq.fields.as_deref().unwrap(), ""),
            None
        );
        let mut changed = same.clone();
        changed[2].r#type = FieldType::String;
        let difference = schema_difference(&changed, bq.fields.as_deref().unwrap(), "").unwrap();
        assert!(difference.contains("`price`"), "{difference}");
    }
}
