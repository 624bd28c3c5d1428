//! Identity stitching benchmark (issue 3): phygital's `identity_stitch` from Parquet against DuckDB
//! running iterated min-label propagation SQL until convergence, and against a bare union-find over
//! pre-interned `u32` ids (the floor), on the same generated edges, 1 M and 16 M rows.
//!
//! ```sh
//! cargo bench --bench identity                       # both sizes
//! cargo bench --bench identity -- --sizes 1m --runs 5
//! ```
//!
//! Edges are generated once per size and cached under `<target>/bench-data/identity/`. Every
//! case runs in its own child process (warm-up, then the median of N timed runs) so that its
//! peak RSS is its own; DuckDB runs in Python from the `bench` virtualenv of
//! `tests/services/test-services.sh`. The components found by the three must agree (guards off),
//! or the benchmark fails.

mod common;
#[path = "identity/edges.rs"]
mod edges;

use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::HashMap;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::StreamExt;
use phygital::session::{EngineOptions, build_context};
use serde_json::{Map, Value};

use common::measure::{ChildReport, Repetitions, print_report, run_child, time_runs};
use common::peers::{bench_python, run_peer};
use common::report::{Table, count, mebibytes, ratio, seconds};
use common::{BenchResult, measure};

/// Guards off: the plain connected components, which every peer computes too.
const GUARDS_OFF: &str =
    r#"{"default_blocklist": false, "degree_limit": {}, "limits": {}, "max_component_size": null}"#;
/// The shipped defaults: blocklists, degree quarantine, per-type limits, component-size breaker.
const DEFAULT_GUARDS: &str = "{}";

/// Targets of issue 3 at 16 M edges.
const TARGET_SECONDS: f64 = 10.0;
const TARGET_RSS_BYTES: u64 = 4 << 30;
const TARGET_SPEEDUP_VS_DUCKDB: f64 = 15.0;
const TARGET_RATIO_TO_FLOOR: f64 = 3.0;

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> BenchResult<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child(&args[1..]);
    }
    let options = Options::parse(&args)?;
    let python = bench_python()?;
    println!("identity stitching, {}", common::report::machine());
    for &size in &options.sizes {
        let path = edges_file(size)?;
        bench_size(&options, &python, size, &path)?;
    }
    Ok(())
}

#[derive(Debug)]
struct Options {
    sizes: Vec<usize>,
    ours: Repetitions,
    /// `None`: warm-up 1 + 3 runs up to 1 M edges, a single run above (DuckDB takes minutes).
    peers: Option<Repetitions>,
}

impl Options {
    fn parse(args: &[String]) -> BenchResult<Self> {
        let mut options = Self {
            sizes: vec![1_000_000, 16_000_000],
            ours: Repetitions { warmup: 1, runs: 3 },
            peers: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--sizes" => {
                    options.sizes = value()?
                        .split(',')
                        .map(common::parse_size)
                        .collect::<BenchResult<_>>()?
                }
                "--runs" => options.ours.runs = value()?.parse()?,
                "--warmup" => options.ours.warmup = value()?.parse()?,
                "--peer-runs" => {
                    let runs = value()?.parse()?;
                    let warmup = options.peers.map_or(0, |p| p.warmup);
                    options.peers = Some(Repetitions { warmup, runs });
                }
                "--peer-warmup" => {
                    let warmup = value()?.parse()?;
                    let runs = options.peers.map_or(1, |p| p.runs);
                    options.peers = Some(Repetitions { warmup, runs });
                }
                other => {
                    return Err(format!(
                        "unknown argument '{other}'; usage: identity [--sizes 1m,16m] [--runs N] [--warmup N] [--peer-runs N] [--peer-warmup N]"
                    )
                    .into());
                }
            }
        }
        if options.ours.runs == 0 || options.peers.is_some_and(|p| p.runs == 0) {
            return Err("--runs and --peer-runs must be at least 1".into());
        }
        Ok(options)
    }

    fn peers(&self, size: usize) -> Repetitions {
        self.peers.unwrap_or(if size <= 1_000_000 {
            Repetitions { warmup: 1, runs: 3 }
        } else {
            Repetitions { warmup: 0, runs: 1 }
        })
    }
}

/// The cached edges file of `size` rows, generated if missing.
fn edges_file(size: usize) -> BenchResult<PathBuf> {
    let path = measure::data_dir("identity")?.join(format!(
        "edges-v{}-{size}.parquet",
        edges::GENERATOR_VERSION
    ));
    if !path.exists() {
        let started = Instant::now();
        eprintln!(
            "generating {} edges into {}",
            count(size as u64),
            path.display()
        );
        edges::write(&path, size)?;
        eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(path)
}

fn path_arg(path: &Path) -> BenchResult<String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("not a UTF-8 path: {}", path.display()).into())
}

fn bench_size(options: &Options, python: &Path, size: usize, path: &Path) -> BenchResult<()> {
    let file = path_arg(path)?;
    let [warmup, runs] = options.ours.args();
    let stitch = |guards: &str| -> BenchResult<ChildReport> {
        run_child(&[
            "stitch".into(),
            file.clone(),
            guards.into(),
            warmup.clone(),
            runs.clone(),
        ])
    };
    eprintln!(
        "{}: phygital identity_stitch, guards off",
        count(size as u64)
    );
    let ours = stitch(GUARDS_OFF)?;
    eprintln!(
        "{}: phygital identity_stitch, default guards",
        count(size as u64)
    );
    let ours_guarded = stitch(DEFAULT_GUARDS)?;
    eprintln!(
        "{}: customers per configuration (untimed)",
        count(size as u64)
    );
    let customers = run_child(&["customers".into(), file.clone(), GUARDS_OFF.into()])?;
    let customers_guarded = run_child(&["customers".into(), file.clone(), DEFAULT_GUARDS.into()])?;
    eprintln!("{}: union-find floor", count(size as u64));
    let floor = run_child(&["floor".into(), file.clone(), warmup.clone(), runs.clone()])?;
    let peers = options.peers(size);
    eprintln!(
        "{}: DuckDB min-label propagation ({peers:?})",
        count(size as u64)
    );
    let [peer_warmup, peer_runs] = peers.args();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let duckdb = run_peer(
        python,
        "duckdb_min_label.py",
        &[file.clone(), peer_warmup, peer_runs, threads.to_string()],
    )?;

    // The components must agree, or some engine is wrong and no timing means anything.
    let identifiers = floor.value_f64("identifiers")?;
    let components = floor.value_f64("components")?;
    let checks = [
        (
            "phygital identifiers (map rows)",
            ours.value_f64("rows")?,
            identifiers,
        ),
        (
            "phygital customers, guards off",
            customers.value_f64("customers")?,
            components,
        ),
        (
            "DuckDB components",
            duckdb.value_f64("components")?,
            components,
        ),
        (
            "DuckDB identifiers",
            duckdb.value_f64("identifiers")?,
            identifiers,
        ),
    ];
    for (what, got, expected) in checks {
        if got != expected {
            return Err(format!("{what}: {got}, but the union-find floor finds {expected}").into());
        }
    }

    let duck_seconds = duckdb.median_seconds();
    let floor_seconds = floor.median_seconds();
    let mut table = Table::new(&[
        "engine (edges from Parquet)",
        "edges",
        "seconds",
        "runs",
        "peak RSS",
        "vs DuckDB",
        "vs floor",
        "customers",
        "notes",
    ]);
    let row =
        |table: &mut Table, name: &str, report: &ChildReport, customers: f64, notes: String| {
            let median = report.median_seconds();
            table.row(vec![
                name.to_string(),
                count(size as u64),
                seconds(median),
                report.seconds.len().to_string(),
                mebibytes(report.peak_rss_bytes),
                ratio(duck_seconds / median),
                ratio(median / floor_seconds),
                count(customers as u64),
                notes,
            ]);
        };
    row(
        &mut table,
        "phygital identity_stitch, guards off",
        &ours,
        customers.value_f64("customers")?,
        format!("{} identifiers", count(identifiers as u64)),
    );
    row(
        &mut table,
        "phygital identity_stitch, default guards",
        &ours_guarded,
        customers_guarded.value_f64("customers")?,
        format!(
            "largest {}",
            count(customers_guarded.value_f64("largest")? as u64)
        ),
    );
    row(
        &mut table,
        "DuckDB min-label propagation SQL",
        &duckdb,
        duckdb.value_f64("components")?,
        format!(
            "{} iterations; interning {} s",
            duckdb.value_f64("iterations")?,
            seconds(duckdb.value_f64("intern_seconds")?)
        ),
    );
    row(
        &mut table,
        "union-find over u32 ids (floor)",
        &floor,
        components,
        format!(
            "interning excluded: {} s; largest {}",
            seconds(floor.value_f64("intern_seconds")?),
            count(customers.value_f64("largest")? as u64)
        ),
    );
    println!();
    println!("{}", table.render());
    if size >= 16_000_000 {
        let median = ours.median_seconds();
        let guarded = ours_guarded.median_seconds();
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "targets at {} edges (guards off / default guards): ≤ {TARGET_SECONDS} s: {} / {}; peak RSS ≤ 4 GiB: {} / {}; ≥ {TARGET_SPEEDUP_VS_DUCKDB}× DuckDB: {} / {}; ≤ {TARGET_RATIO_TO_FLOOR}× floor: {} / {}",
            count(size as u64),
            verdict(median <= TARGET_SECONDS),
            verdict(guarded <= TARGET_SECONDS),
            verdict(ours.peak_rss_bytes <= TARGET_RSS_BYTES),
            verdict(ours_guarded.peak_rss_bytes <= TARGET_RSS_BYTES),
            verdict(duck_seconds / median >= TARGET_SPEEDUP_VS_DUCKDB),
            verdict(duck_seconds / guarded >= TARGET_SPEEDUP_VS_DUCKDB),
            verdict(median / floor_seconds <= TARGET_RATIO_TO_FLOOR),
            verdict(guarded / floor_seconds <= TARGET_RATIO_TO_FLOOR),
        );
    }
    Ok(())
}

/// One case, in this child process.
fn child(args: &[String]) -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args {
        [case, path, guards, warmup, runs] if case == "stitch" => {
            let repetitions = Repetitions::parse(warmup, runs)?;
            let ctx = runtime.block_on(session(path))?;
            let sql = format!("SELECT count(*) FROM identity_stitch('edges', '{guards}')");
            let (seconds, rows) =
                time_runs(repetitions, || runtime.block_on(single_count(&ctx, &sql)))?;
            print_report(
                &seconds,
                Map::from_iter([("rows".into(), Value::from(rows))]),
            )
        }
        [case, path, guards] if case == "customers" => {
            let ctx = runtime.block_on(session(path))?;
            let sql = format!(
                "SELECT count(*) AS customers, max(n) AS largest FROM \
                 (SELECT customer_id, count(*) AS n FROM identity_stitch('edges', '{guards}') GROUP BY customer_id)"
            );
            let batches = runtime.block_on(async { ctx.sql(&sql).await?.collect().await })?;
            let batch = batches.first().ok_or("no result")?;
            let customers = cast(batch.column(0), &DataType::Int64)?;
            let largest = cast(batch.column(1), &DataType::Int64)?;
            let values = Map::from_iter([
                (
                    "customers".into(),
                    Value::from(
                        customers
                            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                            .value(0),
                    ),
                ),
                (
                    "largest".into(),
                    Value::from(
                        largest
                            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                            .value(0),
                    ),
                ),
            ]);
            print_report(&[], values)
        }
        [case, path, warmup, runs] if case == "floor" => {
            let repetitions = Repetitions::parse(warmup, runs)?;
            let started = Instant::now();
            let interned = runtime.block_on(intern_edges(path))?;
            let intern_seconds = started.elapsed().as_secs_f64();
            let (seconds, components) =
                time_runs(repetitions, || Ok(connected_components(&interned)))?;
            print_report(
                &seconds,
                Map::from_iter([
                    ("components".into(), Value::from(components)),
                    ("identifiers".into(), Value::from(interned.identifiers)),
                    ("intern_seconds".into(), Value::from(intern_seconds)),
                ]),
            )
        }
        _ => Err(format!("bad child arguments: {args:?}").into()),
    }
}

/// The production session (memory pool, all cores) with the edges file as table `edges`.
async fn session(path: &str) -> BenchResult<SessionContext> {
    let ctx = build_context(&EngineOptions::default())?;
    ctx.register_parquet("edges", path, ParquetReadOptions::default())
        .await?;
    Ok(ctx)
}

async fn single_count(ctx: &SessionContext, sql: &str) -> BenchResult<i64> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let batch = batches.first().ok_or("no result")?;
    let column = cast(batch.column(0), &DataType::Int64)?;
    Ok(column
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .value(0))
}

/// The edges as pairs of dense `u32` ids (a sighting row adds its identifier only).
struct InternedEdges {
    identifiers: u32,
    pairs: Vec<(u32, u32)>,
}

async fn intern_edges(path: &str) -> BenchResult<InternedEdges> {
    let ctx = session(path).await?;
    let mut stream = ctx
        .sql("SELECT a_type, a_value, b_type, b_value FROM edges")
        .await?
        .execute_stream()
        .await?;
    // One map per identifier type, so that lookups borrow the value instead of allocating a key.
    let mut ids: Vec<(String, HashMap<Box<str>, u32>)> = Vec::new();
    let mut identifiers = 0u32;
    let mut pairs = Vec::new();
    let mut intern = |kind: &str, value: &str| -> u32 {
        let index = match ids.iter().position(|(name, _)| name == kind) {
            Some(index) => index,
            None => {
                ids.push((kind.to_string(), HashMap::new()));
                ids.len() - 1
            }
        };
        let map = &mut ids[index].1;
        match map.get(value) {
            Some(&id) => id,
            None => {
                let id = identifiers;
                map.insert(Box::from(value), id);
                identifiers += 1;
                id
            }
        }
    };
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let column = |i: usize| cast(batch.column(i), &DataType::Utf8View);
        let (a_type, a_value, b_type, b_value) = (column(0)?, column(1)?, column(2)?, column(3)?);
        let (a_type, a_value) = (a_type.as_string_view(), a_value.as_string_view());
        let (b_type, b_value) = (b_type.as_string_view(), b_value.as_string_view());
        for row in 0..batch.num_rows() {
            let a = intern(a_type.value(row), a_value.value(row));
            if b_value.is_valid(row) && b_type.is_valid(row) {
                let b = intern(b_type.value(row), b_value.value(row));
                pairs.push((a, b));
            }
        }
    }
    Ok(InternedEdges { identifiers, pairs })
}

/// Union-find with union by size and path halving: the floor any stitcher pays.
fn connected_components(edges: &InternedEdges) -> u64 {
    let n = edges.identifiers as usize;
    let mut parent: Vec<u32> = (0..edges.identifiers).collect();
    let mut size: Vec<u32> = vec![1; n];
    let find = |parent: &mut [u32], mut x: u32| {
        while parent[x as usize] != x {
            let grandparent = parent[parent[x as usize] as usize];
            parent[x as usize] = grandparent;
            x = grandparent;
        }
        x
    };
    let mut components = n as u64;
    for &(a, b) in &edges.pairs {
        let (mut ra, mut rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra == rb {
            continue;
        }
        if size[ra as usize] < size[rb as usize] {
            std::mem::swap(&mut ra, &mut rb);
        }
        parent[rb as usize] = ra;
        size[ra as usize] += size[rb as usize];
        components -= 1;
    }
    std::hint::black_box(&parent);
    components
}
