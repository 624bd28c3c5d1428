//! `phygital generate`: a synthetic omnichannel retail data set with its ground truth.
//!
//! Customers live a period (default 120 days from 2026-01-01): they browse the web shop under rotating cookies,
//! use the app, buy online and in stores, receive CRM messages (unless held out), see ads, scan QR codes. Source
//! systems record them the way real ones do — raw, messy identifiers, cashiers typing the store's own phone, test
//! e-mails, a shared in-store tablet. Each table goes to `<prefix>/<table>/part-NNNNN.parquet`; the `truth_*`
//! tables hold what the pipeline should recover (who owns which identifier, the channel effects, the true CRM
//! effect) and never feed it.
//!
//! Output is a pure function of the options: the same seed writes the same bytes whatever the chunk size, because
//! every customer draws from generators seeded by `(seed, customer index)` and rows are re-cut into fixed-size
//! batches before Parquet encoding. Memory is bounded: customers are simulated in chunks and each table streams
//! to its files.

mod journeys;
mod model;
mod population;
mod rng;
mod schema;
mod writer;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::compute::kernels::cast_utils::Parser;
use datafusion::arrow::datatypes::Date32Type;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result, exec_datafusion_err, plan_err};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::task::JoinHandle;

pub use schema::Table;

use journeys::{ChunkTables, DAY_US, World, emit_person};
use model::{Channel, Model};
use population::{
    IdKeys, IdType, JUNK_EMAILS, PLACEHOLDER_PHONES, canonical_phone, make_stores, store_count,
};
use schema::{
    StoreRow, StoresColumns, TruthChannelEffectRow, TruthChannelEffectsColumns,
    TruthCrmEffectColumns, TruthCrmEffectRow, TruthJunkColumns, TruthJunkRow,
};
use writer::{TableWriter, WrittenTable};

/// 2026-01-01 as days since the Unix epoch.
pub const DEFAULT_START_DATE: i32 = 20_454;
/// Largest population the identifier spaces hold without collisions.
pub const MAX_CUSTOMERS: u64 = population::MAX_CUSTOMERS;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Number of people to simulate (1 ..= [`MAX_CUSTOMERS`]).
    pub customers: u64,
    /// Same seed, same bytes.
    pub seed: u64,
    /// First day of the simulated period, as days since 1970-01-01 (Arrow `Date32`; see [`parse_start_date`]).
    pub start_date: i32,
    /// Length of the period in days (1 ..= 3660).
    pub days: u32,
    /// Customers simulated per step: bounds memory, never changes the output.
    pub chunk_customers: u64,
    /// Delete whatever the table folders already hold before writing (a rerun replaces the data set);
    /// when `false`, a non-empty table folder is an error.
    pub replace_existing: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            customers: 100_000,
            seed: 1,
            start_date: DEFAULT_START_DATE,
            days: 120,
            chunk_customers: 10_000,
            replace_existing: true,
        }
    }
}

impl GenerateOptions {
    pub fn validate(&self) -> Result<()> {
        if self.customers == 0 || self.customers > MAX_CUSTOMERS {
            return plan_err!(
                "generate: customers must be between 1 and {MAX_CUSTOMERS}, got {}",
                self.customers
            );
        }
        if self.days == 0 || self.days > 3660 {
            return plan_err!(
                "generate: days must be between 1 and 3660, got {}",
                self.days
            );
        }
        if self.chunk_customers == 0 {
            return plan_err!("generate: chunk_customers must be at least 1");
        }
        Ok(())
    }

    fn period_us(&self) -> (i64, i64) {
        let start = i64::from(self.start_date) * DAY_US;
        (start, start + i64::from(self.days) * DAY_US)
    }
}

/// Parses a period start like `2026-01-01` into days since the epoch.
pub fn parse_start_date(text: &str) -> Result<i32> {
    match Date32Type::parse(text.trim()) {
        Some(days) => Ok(days),
        None => plan_err!("generate: invalid start date '{text}', expected YYYY-MM-DD"),
    }
}

/// What was written for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub table: Table,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

/// Summary of a run; `Display` prints a table, [`GenerateReport::to_json`] a machine-readable form.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateReport {
    pub customers: u64,
    pub seed: u64,
    pub start_date: i32,
    pub days: u32,
    /// In [`Table::ALL`] order.
    pub tables: Vec<TableReport>,
    pub elapsed: Duration,
}

impl GenerateReport {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes).sum()
    }

    pub fn table(&self, table: Table) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.table == table)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "customers": self.customers,
            "seed": self.seed,
            "start_date": format_date(self.start_date),
            "days": self.days,
            "elapsed_seconds": self.elapsed.as_secs_f64(),
            "total_rows": self.total_rows(),
            "total_bytes": self.total_bytes(),
            "tables": self.tables.iter().map(|t| serde_json::json!({
                "table": t.table.name(),
                "ground_truth": t.table.is_ground_truth(),
                "rows": t.rows,
                "files": t.files,
                "bytes": t.bytes,
            })).collect::<Vec<_>>(),
        })
    }
}

impl fmt::Display for GenerateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "generated {} customers (seed {}, {} days from {}) in {:.1} s",
            self.customers,
            self.seed,
            self.days,
            format_date(self.start_date),
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "{:<30} {:>12} {:>6} {:>12}",
            "table", "rows", "files", "bytes"
        )?;
        for t in &self.tables {
            let name = if t.table.is_ground_truth() {
                format!("{} (truth)", t.table.name())
            } else {
                t.table.name().to_string()
            };
            writeln!(
                f,
                "{name:<30} {:>12} {:>6} {:>12}",
                t.rows, t.files, t.bytes
            )?;
        }
        write!(
            f,
            "{:<30} {:>12} {:>6} {:>12}",
            "total",
            self.total_rows(),
            "",
            self.total_bytes()
        )
    }
}

/// `YYYY-MM-DD` of days since the epoch (proleptic Gregorian, Howard Hinnant's civil-from-days).
fn format_date(days: i32) -> String {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Generates the data set under `prefix` in `store`, calling `progress` with the number of customers done.
pub async fn generate(
    store: Arc<dyn ObjectStore>,
    prefix: &Path,
    opts: &GenerateOptions,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<GenerateReport> {
    let started = Instant::now();
    opts.validate()?;
    let world = Arc::new(build_world(opts));
    prepare_folders(store.as_ref(), prefix, opts.replace_existing).await?;

    let mut sinks = TableSinks::spawn(&store, prefix)?;
    for (table, batch) in world_tables(&world)? {
        sinks.send(table, batch).await?;
    }

    progress(0);
    // One long-lived simulation thread, one chunk ahead of the writers: its allocations stay in one allocator
    // arena, and the bounded channel keeps at most two chunks alive besides the one being encoded.
    let (tx, mut chunks) = mpsc::channel::<Result<SimulatedChunk>>(0);
    let simulation = Arc::clone(&world);
    let (customers, chunk) = (opts.customers, opts.chunk_customers);
    std::thread::Builder::new()
        .name("phygital-generate".into())
        .spawn(move || simulate_all(&simulation, customers, chunk, tx))
        .map_err(|e| exec_datafusion_err!("generate: cannot start the simulation thread: {e}"))?;
    let mut done = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        for (table, batch) in chunk.batches {
            sinks.send(table, batch).await?;
        }
        done = chunk.customers_done;
        progress(done);
    }
    if done != opts.customers {
        return Err(exec_datafusion_err!(
            "generate: the simulation stopped after {done} of {} customers",
            opts.customers
        ));
    }
    let written = sinks.finish().await?;

    Ok(GenerateReport {
        customers: opts.customers,
        seed: opts.seed,
        start_date: opts.start_date,
        days: opts.days,
        tables: written
            .into_iter()
            .map(|(table, w)| TableReport {
                table,
                rows: w.rows,
                files: w.files,
                bytes: w.bytes,
            })
            .collect(),
        elapsed: started.elapsed(),
    })
}

fn build_world(opts: &GenerateOptions) -> World {
    let keys = IdKeys::new(opts.seed);
    let stores = make_stores(
        opts.seed,
        &keys,
        store_count(opts.customers),
        opts.start_date,
    );
    let (period_start_us, period_end_us) = opts.period_us();
    World {
        seed: opts.seed,
        model: Model::new(opts.seed),
        keys,
        stores,
        period_start_us,
        period_end_us,
    }
}

/// The rows of a run of consecutive customers.
struct SimulatedChunk {
    batches: Vec<(Table, RecordBatch)>,
    /// Customers simulated so far, this chunk included.
    customers_done: u64,
}

/// Simulates customers `0..customers` in chunks, sending each chunk's rows (or the first error) in order; stops
/// early when the receiver is gone.
fn simulate_all(
    world: &World,
    customers: u64,
    chunk: u64,
    mut tx: mpsc::Sender<Result<SimulatedChunk>>,
) {
    let mut start = 0;
    while start < customers {
        let end = (start + chunk).min(customers);
        let result = simulate_chunk(world, start..end).map(|batches| SimulatedChunk {
            batches,
            customers_done: end,
        });
        let failed = result.is_err();
        if futures::executor::block_on(tx.send(result)).is_err() || failed {
            return;
        }
        start = end;
    }
}

fn simulate_chunk(
    world: &World,
    customers: std::ops::Range<u64>,
) -> Result<Vec<(Table, RecordBatch)>> {
    let mut tables = ChunkTables::new();
    for customer in customers {
        emit_person(world, customer, &mut tables)?;
    }
    tables.finish()
}

/// Tables that describe the world rather than customers: stores and the model's truth.
fn world_tables(world: &World) -> Result<Vec<(Table, RecordBatch)>> {
    let mut stores = StoresColumns::new();
    let mut junk = TruthJunkColumns::new();
    for store in &world.stores {
        stores.push(StoreRow {
            store_id: &store.id,
            store_name: &store.name,
            city: store.city,
            phone_raw: &store.phone_raw,
            opened_date: store.opened_date,
        });
        junk.push(TruthJunkRow {
            id_type: IdType::Phone.name(),
            id_value: &canonical_phone(&store.phone_national),
            kind: "store_phone",
        });
        junk.push(TruthJunkRow {
            id_type: IdType::AnonymousId.name(),
            id_value: &store.tablet_cookie,
            kind: "shared_tablet_cookie",
        });
    }
    let mut placeholder_phones: Vec<&str> = PLACEHOLDER_PHONES.iter().map(|p| p.1).collect();
    placeholder_phones.sort_unstable();
    placeholder_phones.dedup();
    for phone in placeholder_phones {
        junk.push(TruthJunkRow {
            id_type: IdType::Phone.name(),
            id_value: phone,
            kind: "placeholder_phone",
        });
    }
    let mut junk_emails: Vec<(&str, &str)> = JUNK_EMAILS.iter().map(|j| (j.1, j.2)).collect();
    junk_emails.sort_unstable();
    junk_emails.dedup();
    for (email, kind) in junk_emails {
        junk.push(TruthJunkRow {
            id_type: IdType::Email.name(),
            id_value: email,
            kind,
        });
    }

    let mut effects = TruthChannelEffectsColumns::new();
    for channel in Channel::ALL {
        let p = world.model.channel(channel);
        effects.push(TruthChannelEffectRow {
            channel: channel.name(),
            effect: p.effect,
            exposure_probability: p.exposure,
            cost_per_touch: p.cost_cents,
        });
    }

    let truth = world.model.crm_truth();
    let mut crm = TruthCrmEffectColumns::new();
    for (metric, value) in [
        ("ate_revenue_per_customer", truth.ate_revenue_per_customer()),
        ("relative_lift", truth.relative_lift()),
        (
            "control_revenue_per_customer",
            truth.control_revenue_per_customer,
        ),
        (
            "target_revenue_per_customer",
            truth.target_revenue_per_customer,
        ),
        ("ate_orders_per_customer", truth.ate_orders_per_customer()),
        (
            "control_orders_per_customer",
            truth.control_orders_per_customer,
        ),
        (
            "target_orders_per_customer",
            truth.target_orders_per_customer,
        ),
        ("crm_reachable_share", truth.reachable_share),
        ("control_share", truth.control_share),
        ("logit_uplift", truth.logit_uplift),
    ] {
        crm.push(TruthCrmEffectRow { metric, value });
    }

    Ok(vec![
        (Table::Stores, stores.finish()?),
        (Table::TruthJunk, junk.finish()?),
        (Table::TruthChannelEffects, effects.finish()?),
        (Table::TruthCrmEffect, crm.finish()?),
    ])
}

/// Empties (or, without `replace`, checks empty) the folder of every table.
async fn prepare_folders(store: &dyn ObjectStore, prefix: &Path, replace: bool) -> Result<()> {
    for table in Table::ALL {
        let folder = prefix.clone().join(table.name());
        let existing: Vec<Path> = store
            .list(Some(&folder))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        if existing.is_empty() {
            continue;
        }
        if !replace {
            return plan_err!(
                "generate: {folder} already holds {} object(s); refusing to mix data sets (allow replacing to overwrite)",
                existing.len()
            );
        }
        for path in existing {
            store.delete(&path).await?;
        }
    }
    Ok(())
}

/// One writer task per table, fed through bounded channels: tables encode in parallel and a slow table
/// holds the simulation back instead of piling up batches.
struct TableSinks {
    senders: Vec<(Table, mpsc::Sender<RecordBatch>)>,
    tasks: Vec<(Table, JoinHandle<Result<WrittenTable>>)>,
}

impl TableSinks {
    fn spawn(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<TableSinks> {
        let mut senders = Vec::new();
        let mut tasks = Vec::new();
        for &table in Table::ALL {
            let (tx, mut rx) = mpsc::channel::<RecordBatch>(1);
            let mut writer = TableWriter::new(
                Arc::clone(store),
                prefix.clone().join(table.name()),
                table.name(),
                table.schema(),
            )?;
            let task = tokio::spawn(async move {
                while let Some(batch) = rx.next().await {
                    writer.push(batch).await?;
                }
                writer.finish().await
            });
            senders.push((table, tx));
            tasks.push((table, task));
        }
        Ok(TableSinks { senders, tasks })
    }

    async fn send(&mut self, table: Table, batch: RecordBatch) -> Result<()> {
        let Some(pos) = self.senders.iter().position(|(t, _)| *t == table) else {
            return Err(exec_datafusion_err!(
                "generate: no writer for table {}",
                table.name()
            ));
        };
        if self.senders[pos].1.send(batch).await.is_ok() {
            return Ok(());
        }
        // The writer stopped: its own error explains why.
        let (_, task) = self.tasks.swap_remove(pos);
        Err(match task.await {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => exec_datafusion_err!("generate: writer of {} stopped early", table.name()),
            Err(e) => exec_datafusion_err!("generate: writer of {} failed: {e}", table.name()),
        })
    }

    /// Closes every channel and waits for the writers to finish their last file.
    async fn finish(mut self) -> Result<Vec<(Table, WrittenTable)>> {
        self.senders.clear();
        let tasks = std::mem::take(&mut self.tasks);
        let mut written = Vec::with_capacity(tasks.len());
        let mut first_error: Option<DataFusionError> = None;
        for (table, task) in tasks {
            match task.await {
                Ok(Ok(w)) => written.push((table, w)),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(exec_datafusion_err!(
                        "generate: writer of {} failed: {e}",
                        table.name()
                    ));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }
}

impl Drop for TableSinks {
    /// A run that fails (or is cancelled) stops its writers instead of letting them complete files that would
    /// look like a finished, but truncated, data set.
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[test]
    fn dates_format_and_parse() {
        assert_eq!(format_date(DEFAULT_START_DATE), "2026-01-01");
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(-1), "1969-12-31");
        assert_eq!(parse_start_date("2026-01-01").unwrap(), DEFAULT_START_DATE);
        assert_eq!(parse_start_date(" 2024-02-29 ").unwrap(), 19_782);
        assert_eq!(format_date(19_782), "2024-02-29");
        assert!(parse_start_date("01/02/2026").is_err());
    }

    #[test]
    fn options_are_validated() {
        let ok = GenerateOptions::default();
        assert!(ok.validate().is_ok());
        for bad in [
            GenerateOptions {
                customers: 0,
                ..ok.clone()
            },
            GenerateOptions {
                customers: MAX_CUSTOMERS + 1,
                ..ok.clone()
            },
            GenerateOptions {
                days: 0,
                ..ok.clone()
            },
            GenerateOptions {
                chunk_customers: 0,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    async fn run(store: Arc<dyn ObjectStore>, opts: &GenerateOptions) -> Result<GenerateReport> {
        generate(store, &Path::from("data"), opts, &|_| {}).await
    }

    #[tokio::test]
    async fn writes_every_table_and_reports_progress() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let opts = GenerateOptions {
            customers: 300,
            chunk_customers: 128,
            ..Default::default()
        };
        let seen = std::sync::Mutex::new(Vec::new());
        let report = generate(Arc::clone(&store), &Path::from("data"), &opts, &|n| {
            if let Ok(mut v) = seen.lock() {
                v.push(n);
            }
        })
        .await
        .unwrap();
        assert_eq!(seen.into_inner().unwrap(), vec![0, 128, 256, 300]);
        assert_eq!(report.tables.len(), Table::ALL.len());
        assert_eq!(report.table(Table::TruthPeople).unwrap().rows, 300);
        assert_eq!(report.table(Table::TruthChannelEffects).unwrap().rows, 11);
        for t in Table::ALL {
            let path = Path::from(format!("data/{}/part-00000.parquet", t.name()));
            assert!(store.head(&path).await.is_ok(), "missing {path}");
        }
        let text = report.to_string();
        assert!(
            text.contains("web_events") && text.contains("truth_identifiers (truth)"),
            "{text}"
        );
        assert_eq!(
            report.to_json()["tables"].as_array().unwrap().len(),
            Table::ALL.len()
        );
    }

    #[tokio::test]
    async fn rerun_replaces_or_refuses() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let opts = GenerateOptions {
            customers: 50,
            ..Default::default()
        };
        run(Arc::clone(&store), &opts).await.unwrap();
        // A stale extra part from an earlier, bigger run must not survive a replacing run.
        let stale = Path::from("data/web_events/part-00007.parquet");
        store.put(&stale, bytes_of(b"stale")).await.unwrap();
        run(Arc::clone(&store), &opts).await.unwrap();
        assert!(store.head(&stale).await.is_err());
        let refuse = GenerateOptions {
            replace_existing: false,
            ..opts
        };
        let err = run(store, &refuse).await.unwrap_err().to_string();
        assert!(err.contains("already holds"), "{err}");
    }

    fn bytes_of(b: &'static [u8]) -> object_store::PutPayload {
        object_store::PutPayload::from_static(b)
    }
}
