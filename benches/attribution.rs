//! Attribution benchmark (issue 4): phygital against ChannelAttribution (Markov orders 1-3 and the
//! first/last/linear heuristics, on 1 M journeys over 10 channels) and against DuckDB running the
//! rule models as hand-written SQL (50 M touches), on the same generated Parquet.
//!
//! ```sh
//! cargo bench --bench attribution
//! cargo bench --bench attribution -- --journeys 200k --touches 5m --runs 3 --forms list
//! ```
//!
//! Markov runs twice per order: from the raw journeys (what users run: phygital reads and
//! aggregates 1 M journeys) and like-for-like, from the same aggregated paths table
//! ChannelAttribution is handed (distinct path, summed conversions, revenue and nulls; written once,
//! untimed). The ≥ 10× target is judged on the like-for-like run. The rule models run in both SQL
//! forms: the window form `attribution_weight(…) OVER (PARTITION BY conversion_id …)` over one row
//! per touch, and the list form, the aggregate `attribution_channel_credit(model, path, touch_ts,
//! conversion_ts)` over the same touches grouped into one row per conversion (one list of channel
//! credits, unnested); DuckDB runs its own SQL of each form.
//!
//! Prints, besides the times, the agreement check of issue 4: per channel, the relative difference
//! between phygital's exact Markov credit and ChannelAttribution's Monte-Carlo estimate at a tight
//! tolerance, next to ChannelAttribution's own spread over seeds (its noise); and how far the timed
//! run, at ChannelAttribution's default tolerance, is from the exact credit. Every case runs in its own child process
//! (warm-up, then the median of N timed runs). ChannelAttribution is GPL and runs only as a Python
//! process from the `bench` virtualenv of `tests/services/test-services.sh`.

mod common;
#[path = "attribution/journeys.rs"]
mod journeys;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use phygital::session::{EngineOptions, build_context};
use serde_json::{Map, Value};

use common::measure::{Repetitions, median, print_report, run_child, time_runs};
use common::peers::{bench_python, run_peer};
use common::report::{Table, count, ratio, seconds};
use common::{BenchResult, measure};

const RULE_MODELS: [&str; 4] = ["linear", "position_based", "time_decay", "last_non_direct"];
/// The SQL forms of the rule models: window function over touches, list function over paths.
const RULE_FORMS: [&str; 2] = ["window", "list"];
const HEURISTICS: [(&str, &str); 3] = [
    ("first_touch", "first_touch"),
    ("last_touch", "last_touch"),
    ("linear", "linear_touch"),
];

/// Targets of issue 4.
const TARGET_MARKOV_SECONDS: f64 = 0.5;
const TARGET_MARKOV_SPEEDUP: f64 = 10.0;
const TARGET_TOUCHES_PER_SECOND: f64 = 10e6;
const TARGET_RULE_SPEEDUP: f64 = 2.0;
/// phygital agrees with ChannelAttribution when its difference from ChannelAttribution's mean
/// over seeds is at most this multiple of ChannelAttribution's own spread over seeds.
const NOISE_MULTIPLE: f64 = 2.0;

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

#[derive(Debug)]
struct Options {
    journeys: usize,
    touches: usize,
    orders: Vec<usize>,
    seeds: Vec<u64>,
    repetitions: Repetitions,
    /// Rule models: how many times DuckDB's runs and phygital's alternate (see [`rule_models`]).
    rounds: usize,
    rule_models: bool,
    /// Rule-model forms to run: `window`, `list`.
    forms: Vec<String>,
    markov: bool,
}

impl Options {
    fn parse(args: &[String]) -> BenchResult<Self> {
        let mut options = Self {
            journeys: 1_000_000,
            touches: 50_000_000,
            orders: vec![1, 2, 3],
            seeds: vec![0, 1000, 2000],
            repetitions: Repetitions { warmup: 1, runs: 3 },
            rounds: 1,
            rule_models: true,
            forms: RULE_FORMS.iter().map(|f| f.to_string()).collect(),
            markov: true,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--journeys" => options.journeys = common::parse_size(value()?)?,
                "--touches" => options.touches = common::parse_size(value()?)?,
                "--orders" => options.orders = parse_list(value()?)?,
                "--seeds" => options.seeds = parse_list(value()?)?,
                "--runs" => options.repetitions.runs = value()?.parse()?,
                "--warmup" => options.repetitions.warmup = value()?.parse()?,
                "--rounds" => options.rounds = value()?.parse()?,
                "--no-rule-models" => options.rule_models = false,
                "--no-markov" => options.markov = false,
                "--forms" => options.forms = parse_list(value()?)?,
                other => {
                    return Err(format!(
                        "unknown argument '{other}'; usage: attribution [--journeys 1m] [--touches 50m] [--orders 1,2,3] [--seeds 0,1000,2000] [--runs N] [--warmup N] [--rounds N] [--no-markov] [--no-rule-models] [--forms window,list]"
                    )
                    .into());
                }
            }
        }
        if let Some(form) = options
            .forms
            .iter()
            .find(|f| !RULE_FORMS.contains(&f.as_str()))
        {
            return Err(format!(
                "unknown rule-model form '{form}'; valid forms: {}",
                RULE_FORMS.join(", ")
            )
            .into());
        }
        if options.repetitions.runs == 0 || options.rounds == 0 || options.seeds.len() < 2 {
            return Err("--runs and --rounds must be at least 1, and --seeds needs at least two seeds (the noise estimate)".into());
        }
        Ok(options)
    }
}

fn parse_list<T: std::str::FromStr>(text: &str) -> BenchResult<Vec<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(text
        .split(',')
        .map(|item| item.trim().parse::<T>())
        .collect::<Result<Vec<T>, _>>()?)
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
    println!("attribution, {}", common::report::machine());
    if options.markov {
        let path = cached(
            "journeys",
            journeys::GENERATOR_VERSION,
            options.journeys,
            journeys::write_journeys,
        )?;
        let aggregated = aggregated_paths(&path)?;
        markov_and_heuristics(&options, &python, &path, &aggregated)?;
    }
    if options.rule_models {
        let version = journeys::TOUCHES_VERSION;
        let touches = cached("touches", version, options.touches, journeys::write_touches)?;
        let lists = cached(
            "touch-lists",
            version,
            options.touches,
            journeys::write_touch_lists,
        )?;
        rule_models(&options, &python, &touches, &lists)?;
    }
    Ok(())
}

/// What ChannelAttribution is handed (see `peers/channel_attribution.py`): one row per distinct
/// non-empty path with its summed conversions, revenue and nulls, `path` kept a list of channels.
const AGGREGATE_PATHS_SQL: &str = "SELECT path, sum(conversions) AS conversions, \
     sum(revenue) AS revenue, sum(nulls) AS nulls FROM journeys WHERE cardinality(path) > 0 \
     GROUP BY path";

/// The journeys aggregated by path (the like-for-like Markov input), cached next to the
/// journeys as `<journeys>.paths.parquet`; written once, untimed.
fn aggregated_paths(journeys: &Path) -> BenchResult<PathBuf> {
    let path = journeys.with_extension("paths.parquet");
    if path.exists() {
        return Ok(path);
    }
    eprintln!("aggregating {} by path", journeys.display());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let file = path_arg(journeys)?;
    let batches = runtime.block_on(async {
        let ctx = SessionContext::new();
        ctx.register_parquet("journeys", &file, ParquetReadOptions::default())
            .await?;
        ctx.sql(AGGREGATE_PATHS_SQL).await?.collect().await
    })?;
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return Err(format!("{} has no non-empty path", journeys.display()).into());
    };
    let mut batches = batches.into_iter();
    journeys::write_parquet(&path, &schema, || Ok(batches.next()))?;
    Ok(path)
}

/// The cached data file `<name>-v<version>-<rows>.parquet`, generated if missing.
fn cached(
    name: &str,
    version: u32,
    rows: usize,
    write: fn(&Path, usize) -> BenchResult<()>,
) -> BenchResult<PathBuf> {
    let path = measure::data_dir("attribution")?.join(format!("{name}-v{version}-{rows}.parquet"));
    if !path.exists() {
        let started = Instant::now();
        eprintln!(
            "generating {} {name} into {}",
            count(rows as u64),
            path.display()
        );
        write(&path, rows)?;
        eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(path)
}

fn path_arg(path: &Path) -> BenchResult<String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("not a UTF-8 path: {}", path.display()).into())
}

/// Credit per channel, read from a JSON object `{channel: number}`.
type Credits = BTreeMap<String, f64>;

fn credits(value: &Value) -> BenchResult<Credits> {
    let Value::Object(map) = value else {
        return Err(format!("expected an object of credits, got {value}").into());
    };
    map.iter()
        .map(|(channel, v)| {
            v.as_f64()
                .map(|v| (channel.clone(), v))
                .ok_or_else(|| format!("non-numeric credit for {channel}: {v}").into())
        })
        .collect()
}

fn lookup<'a>(value: &'a Value, keys: &[&str]) -> BenchResult<&'a Value> {
    keys.iter().try_fold(value, |value, key| {
        value
            .get(key)
            .ok_or_else(|| format!("missing '{}' in the report", keys.join(".")).into())
    })
}

fn seconds_of(value: &Value) -> BenchResult<Vec<f64>> {
    value
        .as_array()
        .ok_or("expected a list of seconds")?
        .iter()
        .map(|s| s.as_f64().ok_or_else(|| "a non-numeric time".into()))
        .collect()
}

/// `|a − b| / |b|` (0 when both are 0).
fn relative_difference(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
    }
}

/// Per channel: (phygital's relative difference from ChannelAttribution's mean over seeds,
/// ChannelAttribution's relative spread over seeds).
fn agreement(ours: &Credits, theirs: &[Credits]) -> BenchResult<BTreeMap<String, (f64, f64)>> {
    let mut out = BTreeMap::new();
    for (channel, &value) in ours {
        let samples: Vec<f64> = theirs
            .iter()
            .map(|seed| {
                seed.get(channel)
                    .copied()
                    .ok_or_else(|| format!("ChannelAttribution has no channel '{channel}'"))
            })
            .collect::<Result<_, _>>()?;
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let spread = samples.iter().fold(f64::MIN, |a, &b| a.max(b))
            - samples.iter().fold(f64::MAX, |a, &b| a.min(b));
        out.insert(
            channel.clone(),
            (relative_difference(value, mean), spread / mean.abs()),
        );
    }
    Ok(out)
}

fn percent(value: f64) -> String {
    format!("{:.2} %", value * 100.0)
}

fn markov_and_heuristics(
    options: &Options,
    python: &Path,
    path: &Path,
    aggregated: &Path,
) -> BenchResult<()> {
    let file = path_arg(path)?;
    let [warmup, runs] = options.repetitions.args();
    let orders = options
        .orders
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let seeds = options
        .seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    eprintln!("ChannelAttribution: markov_model orders {orders}, seeds {seeds}; heuristic_models");
    let theirs = run_peer(
        python,
        "channel_attribution.py",
        &[
            file.clone(),
            orders,
            seeds,
            warmup.clone(),
            runs.clone(),
            threads.to_string(),
        ],
    )?;
    let model_column = format!(
        "model ({} journeys, 10 channels)",
        count(options.journeys as u64)
    );
    let mut speed = Table::new(&[
        &model_column,
        "phygital s",
        "ChannelAttribution s",
        "speedup",
        "CA (timed, defaults): max error",
        "max Δ conversions",
        "CA noise (seed spread)",
        "max Δ revenue",
        "agrees",
    ]);
    let mut per_channel: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut header = vec!["channel".to_string()];
    let mut all_agree = true;
    let mut target_lines = Vec::new();
    let distinct_paths = theirs.value_f64("distinct_paths")? as u64;
    // Raw journeys: what users run. Aggregated paths: exactly ChannelAttribution's input.
    let inputs = [
        (
            format!("{} raw journeys", count(options.journeys as u64)),
            file.clone(),
        ),
        (
            format!("{} aggregated paths (like-for-like)", count(distinct_paths)),
            path_arg(aggregated)?,
        ),
    ];
    for &order in &options.orders {
        let report = lookup(theirs.value("markov")?, &[&order.to_string()])?;
        let their_seconds = median(&seconds_of(lookup(report, &["seconds"])?)?);
        let mut conversions = Vec::new();
        let mut revenue = Vec::new();
        for seed in &options.seeds {
            let by_seed = lookup(report, &["seeds", &seed.to_string()])?;
            conversions.push(credits(lookup(by_seed, &["conversions"])?)?);
            revenue.push(credits(lookup(by_seed, &["revenue"])?)?);
        }
        let mut seconds_by_input = Vec::new();
        for (input, (label, input_file)) in inputs.iter().enumerate() {
            eprintln!("phygital markov_attribution order {order} from {label}");
            let ours = run_child(&[
                "markov".into(),
                input_file.clone(),
                order.to_string(),
                warmup.clone(),
                runs.clone(),
            ])?;
            let our_conversions = credits(ours.value("conversions")?)?;
            let our_revenue = credits(ours.value("revenue")?)?;
            let conversion_agreement = agreement(&our_conversions, &conversions)?;
            let revenue_agreement = agreement(&our_revenue, &revenue)?;
            // How far the timed run (ChannelAttribution's default tolerance) is from the exact credit.
            let default = lookup(report, &["default"])?;
            let mut default_error = 0.0f64;
            for (ours, measure) in [(&our_conversions, "conversions"), (&our_revenue, "revenue")] {
                let theirs = credits(lookup(default, &[measure])?)?;
                for (channel, value) in ours {
                    let other = theirs.get(channel).copied().unwrap_or(0.0);
                    default_error = default_error.max(relative_difference(other, *value));
                }
            }
            let max = |values: &BTreeMap<String, (f64, f64)>, pick: fn(&(f64, f64)) -> f64| {
                values.values().map(pick).fold(0.0, f64::max)
            };
            let difference = max(&conversion_agreement, |v| v.0);
            let noise = max(&conversion_agreement, |v| v.1);
            let revenue_difference = max(&revenue_agreement, |v| v.0);
            let revenue_noise = max(&revenue_agreement, |v| v.1);
            let agrees = difference <= NOISE_MULTIPLE * noise
                && revenue_difference <= NOISE_MULTIPLE * revenue_noise;
            all_agree &= agrees;
            let ours_seconds = ours.median_seconds();
            seconds_by_input.push(ours_seconds);
            speed.row(vec![
                format!("Markov order {order}, from {label}"),
                seconds(ours_seconds),
                seconds(their_seconds),
                ratio(their_seconds / ours_seconds),
                percent(default_error),
                percent(difference),
                percent(noise),
                percent(revenue_difference),
                if agrees { "yes".into() } else { "NO".into() },
            ]);
            if input == 0 {
                header.push(format!("order {order}: Δ / CA noise"));
                for (channel, (difference, noise)) in &conversion_agreement {
                    per_channel
                        .entry(channel.clone())
                        .or_insert_with(|| vec![channel.clone()])
                        .push(format!("{} / {}", percent(*difference), percent(*noise)));
                }
            }
        }
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let [raw_seconds, aggregated_seconds] = seconds_by_input[..] else {
            return Err("expected a raw and an aggregated Markov run".into());
        };
        target_lines.push(format!(
            "order {order}: ≤ {TARGET_MARKOV_SECONDS} s from raw journeys: {}; ≥ {TARGET_MARKOV_SPEEDUP}× ChannelAttribution like-for-like (both from the aggregated paths): {} ({}; from raw journeys {})",
            verdict(raw_seconds <= TARGET_MARKOV_SECONDS),
            verdict(their_seconds / aggregated_seconds >= TARGET_MARKOV_SPEEDUP),
            ratio(their_seconds / aggregated_seconds),
            ratio(their_seconds / raw_seconds),
        ));
    }

    eprintln!("phygital heuristics (attribution_weights)");
    let ours = run_child(&[
        "heuristics".into(),
        file.clone(),
        warmup.clone(),
        runs.clone(),
    ])?;
    let their_heuristics = theirs.value("heuristics")?;
    let their_seconds = median(&seconds_of(lookup(their_heuristics, &["seconds"])?)?);
    for (index, (ours_name, their_name)) in HEURISTICS.iter().enumerate() {
        let mine = ours.value(ours_name)?;
        let theirs_model = lookup(their_heuristics, &[their_name])?;
        let mut worst = [0.0f64; 2];
        for (slot, measure) in ["conversions", "revenue"].iter().enumerate() {
            let mine = credits(lookup(mine, &[measure])?)?;
            let theirs = credits(lookup(theirs_model, &[measure])?)?;
            for (channel, value) in &mine {
                let other = theirs.get(channel).copied().unwrap_or(0.0);
                worst[slot] = worst[slot].max(relative_difference(*value, other));
            }
        }
        // One timed query computes all three heuristics on each side.
        let (ours_cell, theirs_cell, speedup) = if index == 0 {
            let ours_seconds = ours.median_seconds();
            (
                seconds(ours_seconds),
                seconds(their_seconds),
                ratio(their_seconds / ours_seconds),
            )
        } else {
            ("〃".into(), "〃".into(), "〃".into())
        };
        speed.row(vec![
            format!("heuristic {ours_name}"),
            ours_cell,
            theirs_cell,
            speedup,
            "-".into(),
            format!("{:.1e}", worst[0]),
            "exact".into(),
            format!("{:.1e}", worst[1]),
            if worst[0] <= 1e-9 && worst[1] <= 1e-9 {
                "yes".into()
            } else {
                "NO".into()
            },
        ]);
    }
    println!();
    println!(
        "Markov and heuristics: {} journeys, {} distinct paths; ChannelAttribution gets the distinct paths aggregated (untimed); phygital reads either the raw journeys from Parquet and aggregates them (timed), or the same aggregated paths from Parquet (like-for-like); heuristics: phygital from the raw journeys",
        count(options.journeys as u64),
        count(distinct_paths)
    );
    println!("{}", speed.render());
    let mut channels = Table::new(&header.iter().map(String::as_str).collect::<Vec<_>>());
    for row in per_channel.into_values() {
        channels.row(row);
    }
    println!(
        "Markov conversions per channel (phygital from raw journeys): phygital's relative difference from ChannelAttribution's mean over seeds {:?} (tight tolerance) / ChannelAttribution's own spread over those seeds",
        options.seeds
    );
    println!("{}", channels.render());
    println!("targets: {}", target_lines.join("; "));
    if !all_agree {
        return Err(
            "phygital's Markov credit is outside ChannelAttribution's Monte-Carlo noise".into(),
        );
    }
    Ok(())
}

/// One rule model in one form: phygital's and DuckDB's median seconds, phygital's peak RSS and
/// phygital's credit per channel.
struct RuleRun {
    /// Every timed run of every round.
    ours_seconds: Vec<f64>,
    their_seconds: Vec<f64>,
    peak_rss_bytes: u64,
    credit: Credits,
    /// The largest relative difference from DuckDB's credit per channel.
    difference: f64,
}

fn rule_models(
    options: &Options,
    python: &Path,
    touches_path: &Path,
    lists_path: &Path,
) -> BenchResult<()> {
    let [warmup, runs] = options.repetitions.args();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let touches = options.touches as f64;
    // (form, runs by model), in the order of RULE_FORMS
    let mut by_form: Vec<(&str, BTreeMap<&str, RuleRun>)> = Vec::new();
    for form in RULE_FORMS {
        if !options.forms.iter().any(|f| f == form) {
            continue;
        }
        let file = path_arg(if form == "window" {
            touches_path
        } else {
            lists_path
        })?;
        // The engines alternate round by round: this VM has slow spells (the same binary took
        // 0.38 s and 0.53 s within one process), which would otherwise fall on whichever engine
        // ran then. Each engine's time is the median of all its runs.
        let mut by_model: BTreeMap<&str, RuleRun> = BTreeMap::new();
        for round in 1..=options.rounds {
            eprintln!(
                "DuckDB rule models, {form} form, round {round} of {}",
                options.rounds
            );
            let theirs = run_peer(
                python,
                "duckdb_rule_models.py",
                &[
                    form.to_string(),
                    file.clone(),
                    RULE_MODELS.join(","),
                    warmup.clone(),
                    runs.clone(),
                    threads.to_string(),
                ],
            )?;
            for model in RULE_MODELS {
                eprintln!("phygital {model}, {form} form");
                let ours = run_child(&[
                    format!("rule-{form}"),
                    file.clone(),
                    model.into(),
                    warmup.clone(),
                    runs.clone(),
                ])?;
                let report = lookup(theirs.value("models")?, &[model])?;
                let their_credit = credits(lookup(report, &["credit"])?)?;
                let credit = credits(ours.value("credit")?)?;
                let worst = max_difference(&credit, &their_credit);
                if worst > 1e-9 {
                    return Err(format!("{model} ({form} form): phygital and DuckDB credit differ by {worst:e}: {credit:?} vs {their_credit:?}").into());
                }
                let run = by_model.entry(model).or_insert_with(|| RuleRun {
                    ours_seconds: Vec::new(),
                    their_seconds: Vec::new(),
                    peak_rss_bytes: 0,
                    credit: credit.clone(),
                    difference: 0.0,
                });
                run.ours_seconds.extend(&ours.seconds);
                run.their_seconds
                    .extend(seconds_of(lookup(report, &["seconds"])?)?);
                run.peak_rss_bytes = run.peak_rss_bytes.max(ours.peak_rss_bytes);
                run.difference = run.difference.max(worst);
            }
        }
        by_form.push((form, by_model));
    }
    let forms: Vec<&str> = by_form.iter().map(|(form, _)| *form).collect();
    let mut header = vec!["rule model".to_string()];
    for form in &forms {
        for column in [
            "phygital s",
            "phygital touches/s",
            "peak RSS",
            "DuckDB s",
            "DuckDB touches/s",
            "speedup",
            "max Δ vs DuckDB",
        ] {
            header.push(format!("{form}: {column}"));
        }
    }
    if forms.len() == 2 {
        header.push("max Δ window vs list".into());
    }
    let mut table = Table::new(&header.iter().map(String::as_str).collect::<Vec<_>>());
    let mut target_lines = Vec::new();
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    for model in RULE_MODELS {
        let mut row = vec![model.to_string()];
        let mut verdicts = Vec::new();
        for (form, runs) in &by_form {
            let run = &runs[model];
            let (ours_seconds, their_seconds) =
                (median(&run.ours_seconds), median(&run.their_seconds));
            row.extend([
                seconds(ours_seconds),
                format!("{:.1} M", touches / ours_seconds / 1e6),
                common::report::mebibytes(run.peak_rss_bytes),
                seconds(their_seconds),
                format!("{:.1} M", touches / their_seconds / 1e6),
                ratio(their_seconds / ours_seconds),
                format!("{:.1e}", run.difference),
            ]);
            verdicts.push(format!(
                "{form} form ≥ 10 M touches/s: {}, ≥ {TARGET_RULE_SPEEDUP}× DuckDB: {}",
                verdict(touches / ours_seconds >= TARGET_TOUCHES_PER_SECOND),
                verdict(their_seconds / ours_seconds >= TARGET_RULE_SPEEDUP),
            ));
        }
        if let [(_, first), (_, second)] = &by_form[..] {
            let difference = max_difference(&first[model].credit, &second[model].credit);
            if difference > 1e-9 {
                return Err(format!(
                    "{model}: phygital's window and list forms differ by {difference:e}"
                )
                .into());
            }
            row.push(format!("{difference:.1e}"));
        }
        table.row(row);
        target_lines.push(format!("{model}: {}", verdicts.join("; ")));
    }
    println!();
    println!(
        "Rule models: credit per channel summed over all conversions of {} touches; window form: both engines read the same touches Parquet (one row per touch); list form: both read the same touches grouped into one row per conversion (path and touch_ts lists, channels dictionary-encoded, written once, untimed); only time_decay reads the times there, the other models read only path (attribution_channel_credit without touch_ts and conversion_ts)",
        count(options.touches as u64)
    );
    println!(
        "times: the median of {} runs per engine and model, in {} round(s) of DuckDB then phygital",
        options.rounds * options.repetitions.runs,
        options.rounds
    );
    println!("{}", table.render());
    println!("targets: {}", target_lines.join("; "));
    Ok(())
}

/// The largest relative difference between two credits per channel (a channel missing on one
/// side counts as 0 there).
fn max_difference(ours: &Credits, theirs: &Credits) -> f64 {
    ours.keys()
        .chain(theirs.keys())
        .map(|channel| {
            let a = ours.get(channel).copied().unwrap_or(0.0);
            let b = theirs.get(channel).copied().unwrap_or(0.0);
            relative_difference(a, b)
        })
        .fold(0.0, f64::max)
}

/// One case, in this child process.
fn child(args: &[String]) -> BenchResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let run = |sql: String,
               table: &str,
               path: &str,
               warmup: &str,
               runs: &str|
     -> BenchResult<(Vec<f64>, Vec<RecordBatch>)> {
        let repetitions = Repetitions::parse(warmup, runs)?;
        let ctx = runtime.block_on(session(table, path))?;
        // Result rows come in hash-aggregation order and float sums in any order: the runs are
        // compared by the caller (channel values), not batch by batch.
        let mut batches = Vec::new();
        let (seconds, ()) = time_runs(repetitions, || {
            batches = runtime.block_on(async { ctx.sql(&sql).await?.collect().await })?;
            Ok(())
        })?;
        Ok((seconds, batches))
    };
    match args {
        [case, path, order, warmup, runs] if case == "markov" => {
            let sql = format!(
                "SELECT channel, conversions, revenue FROM markov_attribution('SELECT path, conversions, revenue, nulls FROM journeys', {order})"
            );
            let (seconds, batches) = run(sql, "journeys", path, warmup, runs)?;
            let values = Map::from_iter([
                ("conversions".into(), channel_values(&batches, 1)?),
                ("revenue".into(), channel_values(&batches, 2)?),
            ]);
            print_report(&seconds, values)
        }
        [case, path, warmup, runs] if case == "heuristics" => {
            let weights = |model: &str| {
                format!(
                    "unnest(attribution_weights('{model}', path, touch_ts, conversion_ts)) AS {model}"
                )
            };
            let sql = format!(
                "SELECT channel, {sums} FROM (SELECT unnest(path) AS channel, {weights}, conversions, revenue \
                 FROM journeys WHERE conversions > 0) GROUP BY channel",
                sums = HEURISTICS
                    .iter()
                    .map(|(m, _)| format!("sum({m} * conversions), sum({m} * revenue)"))
                    .collect::<Vec<_>>()
                    .join(", "),
                weights = HEURISTICS
                    .iter()
                    .map(|(m, _)| weights(m))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            let (seconds, batches) = run(sql, "journeys", path, warmup, runs)?;
            let mut values = Map::new();
            for (index, (model, _)) in HEURISTICS.iter().enumerate() {
                let by_measure = Map::from_iter([
                    (
                        "conversions".into(),
                        channel_values(&batches, 1 + 2 * index)?,
                    ),
                    ("revenue".into(), channel_values(&batches, 2 + 2 * index)?),
                ]);
                values.insert((*model).into(), Value::Object(by_measure));
            }
            print_report(&seconds, values)
        }
        [case, path, model, warmup, runs] if case == "rule-window" => {
            let channel = if model == "last_non_direct" {
                ", channel"
            } else {
                ""
            };
            let sql = format!(
                "SELECT channel, sum(w) AS credit FROM (SELECT channel, \
                 attribution_weight('{model}', touch_ts, conversion_ts{channel}) \
                 OVER (PARTITION BY conversion_id ORDER BY touch_ts, touch_id) AS w FROM touches) \
                 GROUP BY channel"
            );
            let (seconds, batches) = run(sql, "touches", path, warmup, runs)?;
            print_report(
                &seconds,
                Map::from_iter([("credit".into(), channel_values(&batches, 1)?)]),
            )
        }
        [case, path, model, warmup, runs] if case == "rule-list" => {
            // The channel table straight from the lists: the aggregate sums each path's weights
            // per channel, so no row per touch is ever made (the unnest form of
            // `attribution_weights` makes 50 M and groups them by the channel string). Only
            // time_decay reads the times; the other models use the form without them, which
            // reads only `path`, as DuckDB's SQL for them does.
            let times = if model == "time_decay" {
                ", touch_ts, conversion_ts"
            } else {
                ""
            };
            let sql = format!(
                "SELECT c['channel'] AS channel, c['credit'] AS credit FROM (SELECT \
                 unnest(attribution_channel_credit('{model}', path{times})) AS c \
                 FROM touch_lists)"
            );
            let (seconds, batches) = run(sql, "touch_lists", path, warmup, runs)?;
            print_report(
                &seconds,
                Map::from_iter([("credit".into(), channel_values(&batches, 1)?)]),
            )
        }
        _ => Err(format!("bad child arguments: {args:?}").into()),
    }
}

/// The production session (memory pool, all cores) with the file as `table`.
async fn session(table: &str, path: &str) -> BenchResult<SessionContext> {
    let ctx = build_context(&EngineOptions::default())?;
    ctx.register_parquet(table, path, ParquetReadOptions::default())
        .await?;
    Ok(ctx)
}

/// `{channel: value}` from column 0 (channel) and column `column` (a number) of the batches.
fn channel_values(batches: &[RecordBatch], column: usize) -> BenchResult<Value> {
    let mut out = Map::new();
    for batch in batches {
        let channels = cast(batch.column(0), &DataType::Utf8)?;
        let channels = channels.as_string::<i32>();
        let values = cast(batch.column(column), &DataType::Float64)?;
        let values = values.as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            if channels.is_null(row) {
                return Err("a NULL channel in the result".into());
            }
            let channel = channels.value(row);
            if channel == "(unattributed)" {
                continue;
            }
            out.insert(channel.to_string(), Value::from(values.value(row)));
        }
    }
    Ok(Value::Object(out))
}
