//! The command line: argument definitions and the commands behind them. `main.rs` only parses and reports.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::common::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{Config, TableFormat};
use crate::error::{Error, Result};
use crate::output::{self, OutputFormat};
use crate::session::{self, EngineOptions};
use crate::storage::StorageRoot;
use crate::tables::{self, TableDecl};

#[derive(Debug, Parser)]
#[command(
    name = "phygital",
    version,
    about = "Omnichannel retail analytics on Apache DataFusion: identity stitching and cross-channel \
             attribution in SQL over Parquet in object storage",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Project configuration file [default: ./phygital.toml when present]
    #[arg(long, global = true, env = "PHYGITAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Storage root: a local path, file://, s3://, gs://, az:// or abfss:// URL
    /// [default: PHYGITAL_STORAGE, phygital.toml's [storage] root, else ./phygital-data]
    #[arg(long, global = true)]
    pub storage: Option<String>,
    /// Memory pool size, e.g. 2GiB (sorts and aggregations spill beyond it)
    #[arg(long, global = true)]
    pub memory_limit: Option<String>,
    /// Parallelism of query execution [default: number of cores]
    #[arg(long, global = true)]
    pub target_partitions: Option<usize>,
    /// Directory for spill files [default: the OS temp dir]
    #[arg(long, global = true)]
    pub spill_dir: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More logging (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress bars
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a synthetic omnichannel data set (DESIGN §3 tables + ground truth) as Parquet
    Generate(GenerateArgs),
    /// Run SQL (one or more statements) against the tables of the storage root
    Sql(SqlArgs),
    /// List the tables of the storage root with row counts and schemas
    Tables(TablesArgs),
    /// Generate a small data set under the storage root and run the pipeline on it, printing the results
    Demo(DemoArgs),
    /// Run the SQL model project: each *.sql file becomes a Parquet table under the storage root
    Run(RunArgs),
    /// Copy tables of the storage root to a warehouse, verified by reading back
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Measure an identity map against ground truth: pairwise and B-cubed precision/recall/F1, cluster sizes,
    /// over-merged clusters and what glued them, churn against a previous map
    IdentityQuality(IdentityQualityArgs),
    /// Print the reference of every phygital SQL function (Markdown)
    Docs,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Sync tables into a BigQuery dataset (defaults from phygital.toml [bigquery])
    Bigquery(BigQueryArgs),
}

#[derive(Debug, Args)]
pub struct BigQueryArgs {
    /// Google Cloud project
    #[arg(long)]
    pub project: Option<String>,
    /// BigQuery dataset (created when missing, in --location)
    #[arg(long)]
    pub dataset: Option<String>,
    /// Dataset and job location, e.g. US, EU, europe-west3
    #[arg(long)]
    pub location: Option<String>,
    /// Table to sync, NAME or NAME=SOURCE (source table under the storage root); repeatable
    /// [default: every table of the storage root]
    #[arg(long = "table", value_name = "NAME[=SOURCE]")]
    pub tables: Vec<String>,
    /// How rows reach the table: replace | append | merge | replace-partitions [default: replace]
    #[arg(long)]
    pub mode: Option<String>,
    /// Merge key columns (comma-separated), for --mode merge
    #[arg(long, value_delimiter = ',')]
    pub key: Vec<String>,
    /// Day-partitioning column (DATE/TIMESTAMP) of created tables; the partitions replaced by
    /// --mode replace-partitions
    #[arg(long)]
    pub partition_by: Option<String>,
    /// Clustering columns of created tables (comma-separated, at most 4)
    #[arg(long, value_delimiter = ',')]
    pub cluster_by: Vec<String>,
    /// Service-account key file [default: application default credentials]
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// API endpoint of an emulator, e.g. http://127.0.0.1:9050 [env: BIGQUERY_EMULATOR_HOST]
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Fail instead of creating a missing dataset or table
    #[arg(long)]
    pub no_create: bool,
    /// Print tables, modes and BigQuery schemas without sending any request
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// Bytes of newline-delimited JSON per load job
    #[arg(long, hide = true)]
    pub chunk_bytes: Option<usize>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of customers (people) to simulate
    #[arg(long, default_value_t = 100_000)]
    pub customers: u64,
    /// Random seed: the same seed writes the same bytes
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write: local path or object-store URL [default: the storage root]
    #[arg(long)]
    pub out: Option<String>,
    /// First day of the simulated period (YYYY-MM-DD) [default: 2026-01-01]
    #[arg(long)]
    pub start: Option<String>,
    /// Length of the simulated period in days [default: 120]
    #[arg(long)]
    pub days: Option<u32>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// SQL text (several statements separated by ';')
    pub query: Option<String>,
    /// Read SQL from a file ('-' for stdin)
    #[arg(short = 'f', long = "file", conflicts_with = "query")]
    pub file: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Write the last statement's result to this local path or object-store URL instead of stdout
    /// (a URL ending in '/' is written as a folder of files)
    #[arg(long)]
    pub output: Option<String>,
}

#[derive(Debug, Args)]
pub struct TablesArgs {
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The model project: a folder of *.sql files, one SELECT each
    #[arg(long, default_value = "sql")]
    pub project: PathBuf,
    /// Run only these models: NAME, NAME+ (and everything downstream), +NAME (and everything upstream);
    /// repeatable
    #[arg(long, short = 's', value_name = "SEL")]
    pub select: Vec<String>,
    /// Print the run report as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Stop at a model's first failing data test (by default all its tests run before the run stops)
    #[arg(long)]
    pub fail_fast: bool,
}

#[derive(Debug, Args)]
pub struct IdentityQualityArgs {
    /// Ground truth (id_type, id_value, person_id): a table or a query
    #[arg(long)]
    pub truth: String,
    /// Identity map (id_type, id_value, customer_id): a table or a query
    #[arg(long)]
    pub map: String,
    /// A previous identity map: also report the churn between the two
    #[arg(long)]
    pub previous: Option<String>,
    /// The edges the map was built from (a_type, a_value, b_type, b_value): also report the evidence ceiling
    #[arg(long)]
    pub edges: Option<String>,
    /// Junk identifiers (id_type, id_value, kind) that name what glued over-merged clusters
    /// [default: truth_junk when it exists]
    #[arg(long)]
    pub junk: Option<String>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of customers to generate
    #[arg(long, default_value_t = 20_000)]
    pub customers: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The model project to run [default: ./sql, else the shipped project of the source tree]
    #[arg(long)]
    pub project: Option<PathBuf>,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let config = Config::load(cli.global.config.as_deref())?;
    let opts = engine_options(&config, &cli.global)?;
    let storage = config.storage_root(cli.global.storage.as_deref());
    let declared: Vec<TableDecl> = config
        .tables
        .iter()
        .map(|(name, spec)| TableDecl {
            name: name.clone(),
            location: spec.location.clone(),
            format: spec.format,
        })
        .collect();
    let progress = !cli.global.quiet && std::io::stderr().is_terminal();
    match cli.command {
        Command::Generate(args) => {
            let out = args.out.clone().unwrap_or(storage);
            generate(&out, &args, &opts, progress).await
        }
        Command::Sql(args) => run_sql(&storage, &declared, &opts, &args).await,
        Command::Tables(args) => list_tables(&storage, &declared, &opts, args.json).await,
        Command::Demo(args) => {
            let project = args
                .project
                .clone()
                .unwrap_or_else(crate::demo::default_project_dir);
            crate::demo::run(
                &storage,
                &opts,
                args.customers,
                args.seed,
                &project,
                progress,
            )
            .await
        }
        Command::Run(args) => run_models(&storage, &declared, &opts, &args, &cli.global).await,
        Command::Sync(SyncCommand::Bigquery(args)) => {
            sync_bigquery(&storage, &declared, &opts, &config, args, progress).await
        }
        Command::IdentityQuality(args) => {
            let options = crate::quality::QualityOptions {
                truth: args.truth,
                map: args.map,
                previous: args.previous,
                edges: args.edges,
                junk: args.junk,
            };
            crate::quality::run(&storage, &declared, &opts, &options, args.json).await
        }
        Command::Docs => {
            print_stdout(&phygital_udfs::documentation_markdown()?)?;
            Ok(())
        }
    }
}

fn engine_options(config: &Config, global: &GlobalArgs) -> Result<EngineOptions> {
    let mut opts = config.engine_options()?;
    if let Some(m) = &global.memory_limit {
        opts.memory_limit_bytes = crate::config::parse_size(m)?;
    }
    if let Some(p) = global.target_partitions {
        if p == 0 {
            return Err(Error::Usage(
                "--target-partitions must be at least 1".into(),
            ));
        }
        opts.target_partitions = p;
    }
    if let Some(dir) = &global.spill_dir {
        opts.spill_dir = Some(dir.clone());
    }
    Ok(opts)
}

/// Sets up logging on stderr: warnings by default, `-v` info, `-vv` debug; `RUST_LOG` wins.
pub fn init_logging(global: &GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let default = match global.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests calling twice) is harmless: keep the first subscriber.
    let _ = match global.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))
}

/// A progress bar on stderr, hidden when stderr is not a terminal or `--quiet`.
pub fn progress_bar(len: u64, unit: &str, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {unit} (eta {{eta}})"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        pb.set_style(style);
    }
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

async fn generate(
    out: &str,
    args: &GenerateArgs,
    opts: &EngineOptions,
    progress: bool,
) -> Result<()> {
    let root = StorageRoot::parse(out)?;
    let mut gopts = crate::generate::GenerateOptions {
        customers: args.customers,
        seed: args.seed,
        ..Default::default()
    };
    if let Some(days) = args.days {
        gopts.days = days;
    }
    if let Some(start) = &args.start {
        gopts.start_date = crate::generate::parse_start_date(start)?;
    }
    let report = generate_into(&root, &gopts, opts, progress).await?;
    if args.json {
        print_stdout(&format!("{}\n", report.to_json()))?;
    } else {
        print_stdout(&format!("{report}\nwritten to {root}\n"))?;
    }
    Ok(())
}

/// Generates a data set under `root` with a progress bar; shared by `generate` and `demo`.
pub async fn generate_into(
    root: &StorageRoot,
    gopts: &crate::generate::GenerateOptions,
    opts: &EngineOptions,
    progress: bool,
) -> Result<crate::generate::GenerateReport> {
    let ctx = session::build_context(opts)?;
    let store = root.object_store(&ctx)?;
    let pb = progress_bar(gopts.customers, "customers", progress);
    let report =
        crate::generate::generate(store, &root.prefix(), gopts, &|done| pb.set_position(done))
            .await
            .map_err(|e| e.context(format!("generating into {root}")))?;
    pb.finish_and_clear();
    Ok(report)
}

async fn run_models(
    storage: &str,
    declared: &[TableDecl],
    opts: &EngineOptions,
    args: &RunArgs,
    global: &GlobalArgs,
) -> Result<()> {
    // Project errors (syntax, headers, --select) come before any storage access.
    let project = crate::runner::Project::load(&args.project)?;
    let select = args
        .select
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<_>>>()?;
    let (ctx, root) = session::open_with_tables(storage, opts, declared).await?;
    let options = crate::runner::RunOptions {
        select,
        fail_fast: args.fail_fast,
        log_models: true,
        progress_bar: !global.quiet && std::io::stderr().is_terminal(),
    };
    let mut report = crate::runner::run_project(&ctx, &root, &project, &options).await?;
    if args.json {
        print_stdout(&format!("{}\n", report.to_json()?))?;
    }
    match report.take_failure() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn run_sql(
    storage: &str,
    declared: &[TableDecl],
    opts: &EngineOptions,
    args: &SqlArgs,
) -> Result<()> {
    let sql = match (&args.query, &args.file) {
        (Some(q), None) => q.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Error::io("reading SQL from stdin", e))?;
            s
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?,
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "give the SQL text or -f FILE, not both".into(),
            ));
        }
        (None, None) => return Err(Error::Usage("no SQL: give the SQL text or -f FILE".into())),
    };
    if args.format == OutputFormat::Parquet && args.output.is_none() {
        return Err(Error::Usage("--format parquet needs --output URL".into()));
    }
    let statements = DFParser::parse_sql(&sql)?;
    if statements.is_empty() {
        return Err(Error::Usage("no SQL statement found".into()));
    }
    let (ctx, _root) = session::open_with_tables(storage, opts, declared).await?;
    let total = statements.len();
    let mut stdout = std::io::stdout().lock();
    for (i, statement) in statements.into_iter().enumerate() {
        let label = |e: DataFusionError| {
            if total > 1 {
                e.context(format!("statement {} of {total}", i + 1))
            } else {
                e
            }
        };
        let plan = ctx
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(label)?;
        let df = ctx.execute_logical_plan(plan).await.map_err(label)?;
        let is_last = i + 1 == total;
        match (&args.output, is_last) {
            (Some(url), true) => {
                let rows = output::write_to_url(df, url, args.format)
                    .await
                    .map_err(label)?;
                eprintln!("wrote {rows} rows to {url}");
            }
            _ => {
                let has_columns = !df.schema().fields().is_empty();
                let batches = df.collect().await.map_err(label)?;
                if has_columns {
                    let format = if args.output.is_some() {
                        OutputFormat::Table
                    } else {
                        args.format
                    };
                    output::write_batches(&mut stdout, &batches, format)?;
                }
            }
        }
    }
    stdout
        .flush()
        .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(())
}

async fn sync_bigquery(
    storage: &str,
    declared: &[TableDecl],
    opts: &EngineOptions,
    config: &Config,
    args: BigQueryArgs,
    progress: bool,
) -> Result<()> {
    use crate::sync::{BigQueryFlags, BigQuerySyncOptions, SyncReport, format_report};
    let json = args.json;
    let flags = BigQueryFlags {
        project: args.project,
        dataset: args.dataset,
        location: args.location,
        tables: args.tables,
        mode: args.mode,
        key: args.key,
        partition_by: args.partition_by,
        cluster_by: args.cluster_by,
        credentials: args.credentials,
        endpoint: args.endpoint,
        no_create: args.no_create,
        dry_run: args.dry_run,
        chunk_bytes: args.chunk_bytes,
    };
    let options = BigQuerySyncOptions::resolve(
        flags,
        config.bigquery.as_ref(),
        opts.storage.allow_instance_credentials,
    )?;
    // One bar per table, created when the table starts.
    let bars = std::sync::Mutex::new(std::collections::HashMap::<String, ProgressBar>::new());
    let on_progress = |table: &str, done: u64, total: u64| {
        if !progress {
            return;
        }
        let Ok(mut bars) = bars.lock() else {
            return;
        };
        let bar = bars.entry(table.to_owned()).or_insert_with(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {msg:24} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows",
            ) {
                bar.set_style(style);
            }
            bar.set_message(table.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        bar.set_position(done);
        if done >= total {
            bar.finish_and_clear();
        }
    };
    let report =
        crate::sync::sync_bigquery(storage, opts, declared, &options, &on_progress).await?;
    if let Ok(bars) = bars.lock() {
        bars.values().for_each(ProgressBar::finish_and_clear);
    }
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Usage(format!("cannot render JSON: {e}")))?;
        print_stdout(&format!("{text}\n"))
    } else {
        if let SyncReport::Synced(tables) = &report {
            for table in tables {
                tracing::info!(
                    "{}: {} rows in {:.1} s ({:.1} s local, {:.1} s BigQuery, {} load jobs, {} bytes); manifest {}",
                    table.manifest.table,
                    table.manifest.rows,
                    table.seconds,
                    table.local_seconds,
                    table.bigquery_seconds,
                    table.load_jobs,
                    table.bytes_uploaded,
                    table.manifest_url
                );
            }
        }
        print_stdout(&format_report(&report))
    }
}

/// A table with its row count, as `phygital tables` reports it.
#[derive(Debug, serde::Serialize)]
pub struct TableSummary {
    pub name: String,
    pub rows: i64,
    pub format: String,
    pub location: String,
    pub columns: Vec<ColumnSummary>,
}

#[derive(Debug, serde::Serialize)]
pub struct ColumnSummary {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

/// Every table of a session with its row count (from Parquet metadata where possible).
pub async fn summarize_tables(ctx: &SessionContext) -> Result<Vec<TableSummary>> {
    let mut out = Vec::new();
    for info in tables::describe_tables(ctx).await? {
        let quoted = format!("\"{}\"", info.name.replace('"', "\"\""));
        let batches = ctx
            .sql(&format!("SELECT count(*) FROM {quoted}"))
            .await?
            .collect()
            .await
            .map_err(|e| e.context(format!("counting rows of table '{}'", info.name)))?;
        let rows = batches
            .first()
            .and_then(|b| {
                b.column(0)
                    .as_primitive_opt::<Int64Type>()
                    .map(|a| a.value(0))
            })
            .unwrap_or(0);
        out.push(TableSummary {
            name: info.name,
            rows,
            format: match info.format {
                TableFormat::Parquet => "parquet",
                TableFormat::Csv => "csv",
                TableFormat::Json => "json",
            }
            .to_string(),
            location: info.location,
            columns: info
                .schema
                .fields()
                .iter()
                .map(|f| ColumnSummary {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                    nullable: f.is_nullable(),
                })
                .collect(),
        });
    }
    Ok(out)
}

/// Renders table summaries for people.
pub fn format_table_summaries(tables: &[TableSummary]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if tables.is_empty() {
        s.push_str("(no tables)\n");
        return s;
    }
    let width = tables.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for t in tables {
        let _ = writeln!(
            s,
            "{:width$}  {:>12} rows  {}  {}",
            t.name, t.rows, t.format, t.location
        );
        for c in &t.columns {
            let null = if c.nullable { "" } else { " NOT NULL" };
            let _ = writeln!(s, "    {} {}{null}", c.name, c.data_type);
        }
    }
    s
}

async fn list_tables(
    storage: &str,
    declared: &[TableDecl],
    opts: &EngineOptions,
    json: bool,
) -> Result<()> {
    let started = Instant::now();
    let (ctx, root) = session::open_with_tables(storage, opts, declared).await?;
    let summaries = summarize_tables(&ctx).await?;
    if json {
        let text = serde_json::to_string_pretty(&summaries)
            .map_err(|e| Error::Usage(format!("cannot render JSON: {e}")))?;
        print_stdout(&format!("{text}\n"))
    } else {
        print_stdout(&format!(
            "{} tables under {root} ({:.1} s)\n{}",
            summaries.len(),
            started.elapsed().as_secs_f64(),
            format_table_summaries(&summaries)
        ))
    }
}
