//! The shipped SQL project (`sql/`) end to end: generate a small data set, run every model with the model
//! runner (its data tests, reconciliation included, must pass), then check the results independently of the
//! models' own tests and against the generator's ground truth, which never feeds the pipeline.

#[path = "common/temp_dir.rs"]
mod temp_dir;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use phygital::generate::{GenerateOptions, generate};
use phygital::runner::{Project, RunOptions, run_project};
use phygital::session::{self, EngineOptions};
use temp_dir::TempDir;

const CUSTOMERS: u64 = 3000;
const SEED: u64 = 11;

/// The identity map model, as the pipeline defines it until `sql/identity_map.sql` exists.
const IDENTITY_MAP_FALLBACK: &str = "SELECT * FROM identity_stitch('identity_edges')\n";

/// The models of `sql/`; when the project has no `identity_map.sql` yet, a copy with the default one.
fn project_dir(scratch: &Path) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    if shipped.join("identity_map.sql").exists() {
        return shipped;
    }
    let copy = scratch.join("project");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sql") {
            std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(copy.join("identity_map.sql"), IDENTITY_MAP_FALLBACK).unwrap();
    copy
}

fn engine() -> EngineOptions {
    engine_with(4)
}

fn engine_with(target_partitions: usize) -> EngineOptions {
    EngineOptions {
        target_partitions,
        memory_limit_bytes: 1 << 30,
        ..Default::default()
    }
}

/// One row of numbers: every column of the query's single row, as f64 (NULL → NaN).
async fn row(ctx: &SessionContext, sql: &str) -> Vec<f64> {
    let batches = match ctx.sql(sql).await {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    }
    .unwrap_or_else(|e| panic!("{sql}\n{e}"));
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 1, "expected one row from {sql}");
    let batch = batches.iter().find(|b| b.num_rows() == 1).unwrap();
    batch
        .columns()
        .iter()
        .map(|c| {
            let c = cast(c, &DataType::Float64).unwrap();
            let c = c.as_any().downcast_ref::<Float64Array>().unwrap();
            if c.is_null(0) { f64::NAN } else { c.value(0) }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_project_runs_reconciles_and_recovers_the_ground_truth() {
    let dir = TempDir::new("pipeline").unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&data).unwrap());
    let options = GenerateOptions {
        customers: CUSTOMERS,
        seed: SEED,
        ..Default::default()
    };
    generate(store, &StorePath::default(), &options, &|_| {})
        .await
        .unwrap();

    let project = Project::load(project_dir(dir.path())).unwrap();
    let (ctx, root) = session::open(data.to_str().unwrap(), &engine())
        .await
        .unwrap();
    let mut report = run_project(&ctx, &root, &project, &RunOptions::default())
        .await
        .unwrap();
    if let Some(e) = report.take_failure() {
        panic!("the shipped project failed: {e}\n{report}");
    }
    println!("{report}");

    // A fresh session over the storage root reads what the run published, like a BI tool or a later command.
    let (ctx, _) = session::open(data.to_str().unwrap(), &engine())
        .await
        .unwrap();
    every_conversion_is_kept(&ctx).await;
    credits_reconcile_per_conversion_and_in_total(&ctx).await;
    data_driven_models_reconcile_to_the_paths(&ctx).await;
    customer_360_adds_up(&ctx).await;
    crm_lift_interval_contains_the_true_effect(&ctx).await;
    hybrid_customers_are_worth_more(&ctx).await;
    cross_channel_shares_are_proportions(&ctx).await;
}

/// Orders and receipts of the sources = staged conversions = conversions of both journey variants.
async fn every_conversion_is_kept(ctx: &SessionContext) {
    let counts = row(
        ctx,
        "SELECT (SELECT count(*) FROM pos_receipts)
                + (SELECT count(*) FROM web_events WHERE event_name = 'order_completed')
                + (SELECT count(*) FROM app_events WHERE event_name = 'order_completed') AS sources,
                (SELECT count(*) FROM stg_conversions) AS staged,
                (SELECT count(DISTINCT conversion_id) FROM journeys) AS journeys,
                (SELECT count(DISTINCT conversion_id) FROM journeys_reset) AS journeys_reset,
                (SELECT count(*) FROM stg_conversions WHERE customer_id IS NULL) AS no_customer,
                (SELECT count(*) FROM journeys WHERE channel = '(unattributed)') AS unattributed",
    )
    .await;
    assert!(counts[0] > 0.0);
    assert_eq!(
        counts[1], counts[0],
        "stg_conversions vs sources: {counts:?}"
    );
    assert_eq!(counts[2], counts[0], "journeys vs sources: {counts:?}");
    assert_eq!(
        counts[3], counts[0],
        "journeys_reset vs sources: {counts:?}"
    );
    // conversions nobody could be resolved for are kept, as '(unattributed)'
    assert!(counts[4] > 0.0 && counts[5] >= counts[4], "{counts:?}");

    let revenue = row(
        ctx,
        "SELECT (SELECT sum(amount) FROM pos_receipts)
                + (SELECT sum(revenue) FROM web_events WHERE event_name = 'order_completed')
                + (SELECT sum(revenue) FROM app_events WHERE event_name = 'order_completed') AS sources,
                (SELECT sum(revenue) FROM stg_conversions) AS staged",
    )
    .await;
    assert_eq!(revenue[0], revenue[1]);
}

/// Σ credit = 1 and Σ revenue credit = revenue per conversion for every model but participation, and the
/// channel totals, '(unattributed)' included, equal the conversions and revenue.
async fn credits_reconcile_per_conversion_and_in_total(ctx: &SessionContext) {
    let per_conversion = row(
        ctx,
        "SELECT max(abs(credit - 1)), max(abs(revenue_credit - revenue)), count(*), count(DISTINCT model)
         FROM (SELECT conversion_id, model, sum(credit) AS credit, sum(revenue_credit) AS revenue_credit,
                      CAST(min(revenue) AS DOUBLE) AS revenue
               FROM attribution_touch_credit WHERE model <> 'participation'
               GROUP BY conversion_id, model)",
    )
    .await;
    let conversions = row(
        ctx,
        "SELECT count(*), CAST(sum(revenue) AS DOUBLE) FROM stg_conversions",
    )
    .await;
    assert!(per_conversion[0] <= 1e-9, "{per_conversion:?}");
    assert!(per_conversion[1] <= 1e-9, "{per_conversion:?}");
    assert_eq!(per_conversion[3], 10.0, "rule and data-driven models");
    assert_eq!(per_conversion[2], conversions[0] * 10.0);

    let totals = row(
        ctx,
        "SELECT max(abs(conversions - c)), max(abs(revenue - r) / r), min(unattributed), count(*)
         FROM (SELECT model, sum(conversions) AS conversions, sum(revenue) AS revenue,
                      sum(conversions) FILTER (WHERE channel = '(unattributed)') AS unattributed
               FROM attribution_channel_daily WHERE model <> 'participation' GROUP BY model)
         CROSS JOIN (SELECT CAST(count(*) AS DOUBLE) AS c, CAST(sum(revenue) AS DOUBLE) AS r
                     FROM stg_conversions)",
    )
    .await;
    assert!(totals[0] <= 1e-9 * conversions[0], "{totals:?}");
    assert!(totals[1] <= 1e-9, "{totals:?}");
    assert!(
        totals[2] > 0.0,
        "(unattributed) is part of every model's totals"
    );
    assert_eq!(totals[3], 10.0);

    // participation credits every channel of a path once: never less than one per conversion
    let participation = row(
        ctx,
        "SELECT min(credit) FROM (SELECT conversion_id, sum(credit) AS credit FROM attribution_touch_credit
                                  WHERE model = 'participation' GROUP BY conversion_id)",
    )
    .await;
    assert!(participation[0] >= 1.0, "{participation:?}");

    // the model comparison's shares add up to 1 per model
    let shares = row(
        ctx,
        "SELECT sum(last_touch_conversion_share), sum(markov_conversion_share), sum(shapley_revenue_share)
         FROM attribution_model_comparison",
    )
    .await;
    for share in shares {
        assert!((share - 1.0).abs() <= 1e-9, "{share}");
    }
}

/// The aggregated paths hold every conversion; Markov and Shapley credit exactly the paths' conversions; the
/// non-converting paths come from touches outside every journey.
async fn data_driven_models_reconcile_to_the_paths(ctx: &SessionContext) {
    let paths = row(
        ctx,
        "SELECT sum(conversions), sum(nulls), (SELECT count(*) FROM stg_conversions) AS staged,
                sum(conversions) FILTER (WHERE cardinality(path) = 0),
                (SELECT count(DISTINCT conversion_id) FROM journeys WHERE touch_id IS NULL) AS unattributed
         FROM attribution_paths",
    )
    .await;
    assert_eq!(paths[0], paths[2], "{paths:?}");
    assert!(paths[1] > 0.0, "non-converting paths: {paths:?}");
    assert_eq!(
        paths[3], paths[4],
        "empty paths are the unattributed conversions"
    );

    let weights = row(
        ctx,
        "SELECT max(abs(credited - total)), count(*)
         FROM (SELECT model, sum(conversions) AS credited FROM attribution_channel_weights GROUP BY model)
         CROSS JOIN (SELECT sum(conversions) AS total FROM attribution_paths)",
    )
    .await;
    assert!(weights[0] <= 1e-9 * paths[0], "{weights:?}");
    assert_eq!(weights[1], 2.0);
}

async fn customer_360_adds_up(ctx: &SessionContext) {
    let c = row(
        ctx,
        "SELECT count(*), count(DISTINCT customer_id),
                (SELECT count(DISTINCT customer_id) FROM identity_map WHERE status = 'linked') AS stitched,
                sum(total_revenue),
                (SELECT sum(revenue) FROM stg_conversions WHERE customer_id IS NOT NULL) AS resolved,
                count(*) FILTER (WHERE orders > 0 AND r_score IS NULL),
                count(*) FILTER (WHERE orders = 0 AND r_score IS NOT NULL),
                count(*) FILTER (WHERE channel_segment = 'hybrid' AND (online_orders = 0 OR offline_orders = 0))
         FROM customer_360",
    )
    .await;
    assert_eq!(c[0], c[1], "one row per customer");
    assert_eq!(c[0], c[2], "every stitched customer: {c:?}");
    assert_eq!(c[3], c[4], "revenue of resolved conversions: {c:?}");
    assert_eq!(&c[5..], &[0.0, 0.0, 0.0], "{c:?}");
}

/// The holdout's estimate of the relative revenue lift covers the generator's exact value. The relative lift is
/// the comparable figure: conversions the pipeline cannot resolve to a holdout customer lower both groups'
/// revenue by about the same factor, which shrinks the absolute lift but cancels in the ratio.
async fn crm_lift_interval_contains_the_true_effect(ctx: &SessionContext) {
    let truth = row(
        ctx,
        "SELECT (SELECT value FROM truth_crm_effect WHERE metric = 'relative_lift') AS relative,
                (SELECT value FROM truth_crm_effect WHERE metric = 'ate_revenue_per_customer') AS absolute",
    )
    .await;
    let estimate = row(
        ctx,
        "SELECT relative_lift, relative_lift_ci_low, relative_lift_ci_high, absolute_lift,
                absolute_lift_ci_low, absolute_lift_ci_high, control_customers, target_customers
         FROM crm_incrementality WHERE metric = 'revenue_per_customer'",
    )
    .await;
    println!(
        "CRM relative lift: truth {:.4}, estimate {:.4} [{:.4}, {:.4}]; absolute: truth {:.1}, estimate {:.1} [{:.1}, {:.1}]; control {}, target {}",
        truth[0],
        estimate[0],
        estimate[1],
        estimate[2],
        truth[1],
        estimate[3],
        estimate[4],
        estimate[5],
        estimate[6],
        estimate[7]
    );
    assert!(
        estimate[1] <= truth[0] && truth[0] <= estimate[2],
        "relative lift CI {:?} misses the true {}",
        &estimate[..3],
        truth[0]
    );
    // about 10 % of the reachable customers are held out
    let control_share = estimate[6] / (estimate[6] + estimate[7]);
    assert!((0.07..0.13).contains(&control_share), "{control_share}");
}

/// The generator gives hybrid customers higher expected revenue than single-channel ones (about 1.7×): the
/// behavioural segments of customer_360 must show it.
async fn hybrid_customers_are_worth_more(ctx: &SessionContext) {
    let truth = row(
        ctx,
        "SELECT count(*) FILTER (WHERE segment = 'hybrid'), count(*) FROM truth_people",
    )
    .await;
    assert!(truth[0] > 0.1 * truth[1], "the generator simulates hybrids");
    let value = row(
        ctx,
        "SELECT (SELECT revenue_per_customer FROM segment_value WHERE channel_segment = 'hybrid') AS h,
                (SELECT revenue_per_customer FROM segment_value WHERE channel_segment = 'online_only') AS on,
                (SELECT revenue_per_customer FROM segment_value WHERE channel_segment = 'offline_only') AS off,
                (SELECT uplift_vs_single_channel FROM segment_value WHERE channel_segment = 'hybrid') AS u",
    )
    .await;
    println!(
        "revenue per customer: hybrid {:.0}, online_only {:.0}, offline_only {:.0}; hybrid uplift {:.2}",
        value[0], value[1], value[2], value[3]
    );
    assert!(
        value[0] > value[1] && value[0] > value[2] && value[3] > 0.0,
        "{value:?}"
    );
}

async fn cross_channel_shares_are_proportions(ctx: &SessionContext) {
    let ropo = row(
        ctx,
        "SELECT sum(purchases), (SELECT count(*) FROM stg_conversions) AS staged,
                sum(cross_channel_purchases) FILTER (WHERE direction = 'online_to_offline'),
                sum(purchases_with_customer) FILTER (WHERE direction = 'online_to_offline'),
                min(cross_channel_share), max(cross_channel_share)
         FROM cross_channel_conversion",
    )
    .await;
    assert_eq!(ropo[0], ropo[1], "every purchase counted once: {ropo:?}");
    assert!(ropo[2] > 0.0 && ropo[2] < ropo[3], "{ropo:?}");
    assert!(ropo[4] >= 0.0 && ropo[5] <= 1.0, "{ropo:?}");
}

/// Writes `sql`'s result as the one Parquet file of table `name` under `data`.
async fn write_table(data: &Path, name: &str, sql: &str) {
    let ctx = session::build_context(&engine()).unwrap();
    let url = data.join(name).join("part-0.parquet");
    let copy = format!("COPY ({sql}) TO '{}' STORED AS PARQUET", url.display());
    ctx.sql(&copy).await.unwrap().collect().await.unwrap();
}

/// Rows of a query as text, one `a|b|c` string per row, in the query's order.
async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches = match ctx.sql(sql).await {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    }
    .unwrap_or_else(|e| panic!("{sql}\n{e}"));
    let mut out = Vec::new();
    phygital::output::write_batches(&mut out, &batches, phygital::output::OutputFormat::Csv)
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    text.lines().skip(1).map(|l| l.replace(',', "|")).collect()
}

/// Journeys and credits on a hand-made history, with expectations worked out by hand: the lookback boundary,
/// a touch at the conversion's instant, the reset variant, unattributed conversions with and without a
/// customer, non-converting paths, and the transaction-level Shapley split; on one and on four partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_and_credits_follow_the_documented_rules_on_one_partition() {
    journeys_and_credits_follow_the_documented_rules(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_and_credits_follow_the_documented_rules_on_four_partitions() {
    journeys_and_credits_follow_the_documented_rules(4).await;
}

async fn journeys_and_credits_follow_the_documented_rules(partitions: usize) {
    let dir = TempDir::new(&format!("pipeline-rules-{partitions}")).unwrap();
    let data = dir.path().join("data");
    // c1: t1 31 days and t2 exactly 30 days before conversion o1 (both outside its window), t3-t5 inside, t5
    // at o1's instant; t6 before receipt r2 (whose 30-day window also holds t3-t5); t7 long after everything.
    // c2: one conversion and no touch; one receipt without a customer; one touch without a customer.
    write_table(
        &data,
        "stg_touches",
        "SELECT touch_id, CAST(touch_ts AS TIMESTAMP) AS touch_ts, channel,
                CASE WHEN channel = 'store_visit' THEN 'in_store' ELSE 'online' END AS channel_group,
                CAST(NULL AS VARCHAR) AS campaign, CAST(0 AS DECIMAL(12,2)) AS cost, customer_id,
                'email' AS resolved_by
         FROM (VALUES ('t1', '2026-01-01T12:00:00', 'email', 'c1'),
                      ('t2', '2026-01-02T12:00:00', 'paid_search', 'c1'),
                      ('t3', '2026-01-20T12:00:00', 'store_visit', 'c1'),
                      ('t4', '2026-01-31T12:00:00', 'direct', 'c1'),
                      ('t5', '2026-02-01T12:00:00', 'sms', 'c1'),
                      ('t6', '2026-02-05T12:00:00', 'email', 'c1'),
                      ('t7', '2026-04-01T12:00:00', 'display', 'c1'),
                      ('t8', '2026-01-25T12:00:00', 'display', NULL))
              AS t(touch_id, touch_ts, channel, customer_id)",
    )
    .await;
    write_table(
        &data,
        "stg_conversions",
        "SELECT conversion_id, CAST(conversion_ts AS TIMESTAMP) AS conversion_ts, channel, source,
                CAST(NULL AS VARCHAR) AS store_id, CAST(revenue AS DECIMAL(12,2)) AS revenue, customer_id,
                'email' AS resolved_by
         FROM (VALUES ('o1', '2026-02-01T12:00:00', 'online', 'web', 100, 'c1'),
                      ('r2', '2026-02-10T12:00:00', 'offline', 'store', 50, 'c1'),
                      ('o3', '2026-03-01T12:00:00', 'online', 'app', 30, 'c2'),
                      ('r4', '2026-03-02T12:00:00', 'offline', 'store', 20, NULL))
              AS t(conversion_id, conversion_ts, channel, source, revenue, customer_id)",
    )
    .await;

    let project = Project::load(project_dir(dir.path())).unwrap();
    let (ctx, root) = session::open(data.to_str().unwrap(), &engine_with(partitions))
        .await
        .unwrap();
    let options = RunOptions {
        select: vec![
            "journeys+".parse().unwrap(),
            "journeys_reset".parse().unwrap(),
        ],
        ..Default::default()
    };
    let mut report = run_project(&ctx, &root, &project, &options).await.unwrap();
    if let Some(e) = report.take_failure() {
        panic!("the attribution models failed on the hand-made history: {e}\n{report}");
    }
    let (ctx, _) = session::open(data.to_str().unwrap(), &engine_with(partitions))
        .await
        .unwrap();

    let journeys =
        "SELECT conversion_id, coalesce(touch_id, '-'), channel, touch_position, path_length,
                           coalesce(unattributed_reason, '-')
                    FROM {} ORDER BY conversion_id, touch_position";
    assert_eq!(
        rows(&ctx, &journeys.replace("{}", "journeys")).await,
        [
            "o1|t3|store_visit|1|3|-",
            "o1|t4|direct|2|3|-",
            "o1|t5|sms|3|3|-",
            "o3|-|(unattributed)|1|0|no_touch_in_lookback",
            "r2|t3|store_visit|1|4|-",
            "r2|t4|direct|2|4|-",
            "r2|t5|sms|3|4|-",
            "r2|t6|email|4|4|-",
            "r4|-|(unattributed)|1|0|no_customer",
        ]
    );
    // reset: r2's path starts after o1, and t5 (at o1's instant) belongs to o1 only
    assert_eq!(
        rows(&ctx, &journeys.replace("{}", "journeys_reset")).await,
        [
            "o1|t3|store_visit|1|3|-",
            "o1|t4|direct|2|3|-",
            "o1|t5|sms|3|3|-",
            "o3|-|(unattributed)|1|0|no_touch_in_lookback",
            "r2|t6|email|1|1|-",
            "r4|-|(unattributed)|1|0|no_customer",
        ]
    );
    // t1 and t2 (a day apart) are one non-converting run, t7 (two months later) another; t8 has no customer
    assert_eq!(
        rows(
            &ctx,
            "SELECT array_to_string(path, '>'), conversions, revenue, nulls FROM attribution_paths
             ORDER BY 1"
        )
        .await,
        [
            "|2.0|50.0|0.0",
            "display|0.0|0.0|1.0",
            "email>paid_search|0.0|0.0|1.0",
            "store_visit>direct>sms|1.0|100.0|0.0",
            "store_visit>direct>sms>email|1.0|50.0|0.0",
        ]
    );
    let credit = |model: &str| {
        format!(
            "SELECT conversion_id, channel, round(credit, 6), round(revenue_credit, 6)
             FROM attribution_touch_credit WHERE model = '{model}' ORDER BY conversion_id, touch_ts"
        )
    };
    assert_eq!(
        rows(&ctx, &credit("position_based")).await,
        [
            "o1|store_visit|0.4|40.0",
            "o1|direct|0.2|20.0",
            "o1|sms|0.4|40.0",
            "o3|(unattributed)|1.0|30.0",
            "r2|store_visit|0.4|20.0",
            "r2|direct|0.1|5.0",
            "r2|sms|0.1|5.0",
            "r2|email|0.4|20.0",
            "r4|(unattributed)|1.0|20.0",
        ]
    );
    assert_eq!(
        rows(&ctx, &credit("last_non_direct")).await[..3],
        [
            "o1|store_visit|0.0|0.0",
            "o1|direct|0.0|0.0",
            "o1|sms|1.0|100.0"
        ]
    );
    // Shapley (simplified): store_visit, direct and sms each earn 1/3 + 1/4 = 7/12 conversions, email 1/4; r2
    // is split 7:7:7:3 over its channels, o1 equally
    assert_eq!(
        rows(&ctx, &credit("shapley")).await,
        [
            "o1|store_visit|0.333333|33.333333",
            "o1|direct|0.333333|33.333333",
            "o1|sms|0.333333|33.333333",
            "o3|(unattributed)|1.0|30.0",
            "r2|store_visit|0.291667|14.583333",
            "r2|direct|0.291667|14.583333",
            "r2|sms|0.291667|14.583333",
            "r2|email|0.125|6.25",
            "r4|(unattributed)|1.0|20.0",
        ]
    );
    // Markov: each conversion in proportion to its channels' removal effects
    let markov = row(
        &ctx,
        "SELECT max(abs(credit - expected)) FROM (
           SELECT c.credit, w.weight / sum(w.weight) OVER (PARTITION BY c.conversion_id) AS expected
           FROM attribution_touch_credit c
           JOIN attribution_channel_weights w ON w.model = 'markov' AND w.channel = c.channel
           WHERE c.model = 'markov' AND c.touch_id IS NOT NULL)",
    )
    .await;
    assert!(markov[0] <= 1e-12, "{markov:?}");
    assert_eq!(
        rows(
            &ctx,
            "SELECT channel, conversions, revenue FROM attribution_channel_daily
             WHERE model = 'last_touch' AND conversions > 0 ORDER BY conversion_date, channel"
        )
        .await,
        [
            "sms|1.0|100.0",
            "email|1.0|50.0",
            "(unattributed)|1.0|30.0",
            "(unattributed)|1.0|20.0",
        ]
    );
}
