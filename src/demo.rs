//! `phygital demo`: generate a small omnichannel data set under the storage root, run the shipped model
//! project (`sql/`) on it with the model runner, and print the key tables: identity quality against the
//! generator's ground truth, attribution by channel × model, segment value, ROPO and CRM lift vs the true effect.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::{generate_into, summarize_tables};
use crate::error::{Error, Result};
use crate::generate::GenerateOptions;
use crate::output::{OutputFormat, write_batches};
use crate::runner::{Project, RunOptions, run_project};
use crate::session::{self, EngineOptions};
use crate::storage::StorageRoot;

/// The shipped identity models, for tests that stitch without running the whole project.
pub const IDENTITY_EDGES_SQL: &str = include_str!("../sql/identity_edges.sql");
pub const IDENTITY_MAP_SQL: &str = include_str!("../sql/identity_map.sql");

/// The shipped model project: `sql/` of the working directory, else of the source tree the binary was built from.
pub fn default_project_dir() -> PathBuf {
    let local = Path::new("sql");
    if local.is_dir() {
        local.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sql")
    }
}

/// The demo's result tables: a title and the SQL whose result is printed. Every table read here is a model
/// of the shipped project except the ground truth (`truth_*`), which only the comparisons read.
pub const DEMO_QUERIES: &[(&str, &str)] = &[
    (
        "Conversions online and offline (stg_conversions)",
        "SELECT source, channel, count(*) AS conversions, count(customer_id) AS with_customer,
                CAST(sum(revenue) AS DECIMAL(14,2)) AS revenue
         FROM stg_conversions GROUP BY source, channel ORDER BY source",
    ),
    (
        "Identity stitching (identity_map): identifiers by status",
        "SELECT status, count(*) AS identifiers, count(DISTINCT customer_id) AS customers
         FROM identity_map GROUP BY status ORDER BY identifiers DESC, status",
    ),
    (
        "Identity quality against the generator's ground truth (identity_quality)",
        "SELECT replace(metric, 'ceiling_', '') AS measure,
                round(max(value) FILTER (WHERE NOT starts_with(metric, 'ceiling_')), 4) AS map,
                round(max(value) FILTER (WHERE starts_with(metric, 'ceiling_')), 4) AS evidence_ceiling
         FROM identity_quality('identity_map', 'truth_identifiers', 'identity_edges')
         WHERE replace(metric, 'ceiling_', '') IN ('pairwise_precision', 'pairwise_recall', 'pairwise_f1',
                   'bcubed_precision', 'bcubed_recall', 'bcubed_f1', 'over_merged_clusters', 'largest_cluster')
            OR metric LIKE '%_vs_ceiling'
         GROUP BY 1 ORDER BY 1",
    ),
    (
        "Attribution: share of conversions by channel and model (attribution_model_comparison)",
        "SELECT channel,
                round(last_touch_conversion_share, 3) AS last_touch,
                round(first_touch_conversion_share, 3) AS first_touch,
                round(linear_conversion_share, 3) AS linear,
                round(position_based_conversion_share, 3) AS position_based,
                round(time_decay_conversion_share, 3) AS time_decay,
                round(markov_conversion_share, 3) AS markov,
                round(shapley_conversion_share, 3) AS shapley
         FROM attribution_model_comparison ORDER BY last_touch DESC, channel",
    ),
    (
        "Attribution reconciles: credited conversions and revenue per model = the conversions (attribution_channel_daily)",
        "SELECT d.model, round(sum(d.conversions), 6) AS conversions,
                CAST(sum(d.revenue) AS DECIMAL(16,2)) AS revenue,
                max(c.conversions) AS expected_conversions, max(c.revenue) AS expected_revenue
         FROM attribution_channel_daily d
         CROSS JOIN (SELECT count(*) AS conversions, CAST(sum(revenue) AS DECIMAL(16,2)) AS revenue
                     FROM stg_conversions) c
         GROUP BY d.model ORDER BY d.model",
    ),
    (
        "Customer value by channel segment (segment_value)",
        "SELECT channel_segment, customers, orders, CAST(revenue AS DECIMAL(16,2)) AS revenue,
                round(revenue_per_customer, 2) AS revenue_per_customer,
                round(uplift_vs_single_channel, 3) AS uplift_vs_single_channel
         FROM segment_value ORDER BY revenue_per_customer DESC",
    ),
    (
        "Cross-channel conversion, all weeks (cross_channel_conversion)",
        "SELECT direction, sum(purchases) AS purchases, sum(purchases_with_customer) AS with_customer,
                sum(cross_channel_purchases) AS cross_channel,
                round(CAST(sum(cross_channel_purchases) AS DOUBLE) / sum(purchases_with_customer), 3) AS share
         FROM cross_channel_conversion GROUP BY direction ORDER BY direction",
    ),
    (
        "CRM incrementality from the holdout vs the generator's true effect (crm_incrementality)",
        "WITH truth AS (
           SELECT max(value) FILTER (WHERE metric = 'target_revenue_per_customer')
                    / max(value) FILTER (WHERE metric = 'control_revenue_per_customer') - 1 AS revenue_per_customer,
                  max(value) FILTER (WHERE metric = 'target_orders_per_customer')
                    / max(value) FILTER (WHERE metric = 'control_orders_per_customer') - 1 AS orders_per_customer
           FROM truth_crm_effect)
         SELECT c.metric, round(c.control_mean, 3) AS control, round(c.target_mean, 3) AS target,
                round(c.relative_lift, 3) AS relative_lift,
                '[' || CAST(round(c.relative_lift_ci_low, 3) AS VARCHAR) || ', '
                    || CAST(round(c.relative_lift_ci_high, 3) AS VARCHAR) || ']' AS ci_95,
                round(t.true_lift, 3) AS true_relative_lift,
                t.true_lift BETWEEN c.relative_lift_ci_low AND c.relative_lift_ci_high AS truth_in_ci
         FROM crm_incrementality c
         LEFT JOIN (SELECT 'revenue_per_customer' AS metric, revenue_per_customer AS true_lift FROM truth
                    UNION ALL
                    SELECT 'orders_per_customer', orders_per_customer FROM truth) t ON t.metric = c.metric
         ORDER BY c.metric",
    ),
];

/// Runs the demo against `storage` (the embedded default is `./phygital-data`) with the model project in
/// `project_dir`.
pub async fn run(
    storage: &str,
    opts: &EngineOptions,
    customers: u64,
    seed: u64,
    project_dir: &Path,
    progress: bool,
) -> Result<()> {
    let started = Instant::now();
    let root = StorageRoot::parse(storage)?;
    // Project errors come before anything is written.
    let project = Project::load(project_dir)?;
    let mut out = std::io::stdout().lock();
    let mut say = |text: &str| -> Result<()> {
        writeln!(out, "{text}").map_err(|e| Error::io("writing to stdout", e))
    };
    say(&format!(
        "== phygital demo: {customers} customers, seed {seed}, into {root}"
    ))?;
    let gopts = GenerateOptions {
        customers,
        seed,
        ..Default::default()
    };
    let report = generate_into(&root, &gopts, opts, progress).await?;
    say(&report.to_string())?;

    say(&format!(
        "\n== phygital run: {} models of {}",
        project.models.len(),
        project.dir.display()
    ))?;
    let (ctx, _) = session::open(storage, opts).await?;
    let options = RunOptions {
        log_models: true,
        progress_bar: progress,
        ..Default::default()
    };
    let mut run = run_project(&ctx, &root, &project, &options).await?;
    if let Some(error) = run.take_failure() {
        return Err(error);
    }

    say("\n== Tables")?;
    let tables = summarize_tables(&ctx).await?;
    let names: Vec<_> = tables
        .iter()
        .map(|t| format!("{} ({} rows)", t.name, t.rows))
        .collect();
    say(&names.join(", "))?;

    for (title, sql) in DEMO_QUERIES {
        say(&format!("\n== {title}"))?;
        let step =
            |e: datafusion::error::DataFusionError| e.context(format!("demo step '{title}'"));
        let batches = ctx
            .sql(sql)
            .await
            .map_err(step)?
            .collect()
            .await
            .map_err(step)?;
        let mut text = Vec::new();
        write_batches(&mut text, &batches, OutputFormat::Table)?;
        say(String::from_utf8_lossy(&text).trim_end())?;
    }
    say(&format!(
        "\nDone in {:.1} s. Parquet tables (sources and models) are under {root}; query them with\n  phygital sql --storage {storage} \"SELECT * FROM customer_360 LIMIT 5\"\n  phygital tables --storage {storage}",
        started.elapsed().as_secs_f64(),
    ))?;
    Ok(())
}
