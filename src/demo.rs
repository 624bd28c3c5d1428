//! `phygital demo`: generate a small omnichannel data set under the storage root and run what exists of the
//! pipeline on it, printing each result. Later features add their steps to [`DEMO_QUERIES`].

use std::io::Write;
use std::time::Instant;

use crate::cli::{generate_into, summarize_tables};
use crate::error::{Error, Result};
use crate::generate::GenerateOptions;
use crate::output::{OutputFormat, write_batches};
use crate::session::{self, EngineOptions};
use crate::storage::StorageRoot;

/// The shipped identity-edges model (`sql/identity_edges.sql`).
pub const IDENTITY_EDGES_SQL: &str = include_str!("../sql/identity_edges.sql");

/// Statements run before the demo's queries: the pipeline pieces that exist, as session views and tables.
pub fn setup_statements() -> Vec<String> {
    vec![
        format!("CREATE VIEW identity_edges AS {IDENTITY_EDGES_SQL}"),
        "CREATE TABLE identity_map AS SELECT * FROM identity_stitch('identity_edges')".to_string(),
    ]
}

/// The demo's steps: a title and the SQL whose result is printed.
pub const DEMO_QUERIES: &[(&str, &str)] = &[
    (
        "Conversions online and offline",
        "SELECT source, count(*) AS conversions,
                CAST(sum(amount) AS DECIMAL(14,2)) AS revenue,
                CAST(avg(amount) AS DECIMAL(12,2)) AS avg_basket
         FROM (
           SELECT 'web order' AS source, revenue AS amount FROM web_events WHERE order_id IS NOT NULL
           UNION ALL
           SELECT 'app order', revenue FROM app_events WHERE order_id IS NOT NULL
           UNION ALL
           SELECT 'store receipt', amount FROM pos_receipts
         ) GROUP BY source ORDER BY source",
    ),
    (
        "Marketing touches by channel",
        "SELECT channel, count(*) AS touches, CAST(sum(cost) AS DECIMAL(14,2)) AS cost,
                min(touch_ts) AS first_touch, max(touch_ts) AS last_touch
         FROM marketing_touches GROUP BY channel ORDER BY touches DESC, channel",
    ),
    (
        "Phones typed at the till, normalised to E.164 (identity normalisation)",
        "SELECT count(*) AS receipts_with_phone,
                count(normalize_phone(phone_raw)) AS valid_phones,
                count(DISTINCT phone_raw) AS distinct_raw,
                count(DISTINCT normalize_phone(phone_raw)) AS distinct_normalised,
                CAST(100.0 * count(normalize_phone(phone_raw)) / count(*) AS DECIMAL(5,1)) AS pct_valid
         FROM pos_receipts WHERE phone_raw IS NOT NULL",
    ),
    (
        "Most frequent phones at the till (the stores' own numbers and junk stand out)",
        "SELECT coalesce(normalize_phone(phone_raw), '(invalid)') AS phone, count(*) AS receipts,
                count(DISTINCT store_id) AS stores, min(phone_raw) AS one_raw_form
         FROM pos_receipts WHERE phone_raw IS NOT NULL
         GROUP BY 1 ORDER BY receipts DESC, phone NULLS FIRST LIMIT 5",
    ),
    (
        "E-mails on web events, raw vs normalised",
        "SELECT count(DISTINCT email) AS distinct_raw, count(DISTINCT normalize_email(email)) AS distinct_normalised,
                count(*) FILTER (WHERE email IS NOT NULL AND normalize_email(email) IS NULL) AS invalid
         FROM web_events",
    ),
    (
        "Identity stitching (sql/identity_edges.sql → identity_stitch): identifiers by status",
        "SELECT status, count(*) AS identifiers, count(DISTINCT customer_id) AS customers
         FROM identity_map GROUP BY status ORDER BY identifiers DESC, status",
    ),
    (
        "Stitched customers: identifiers per customer, online + offline",
        "SELECT count(*) AS customers, CAST(avg(n) AS DECIMAL(6,2)) AS avg_identifiers, max(n) AS max_identifiers,
                count(*) FILTER (WHERE online AND offline) AS seen_online_and_offline
         FROM (SELECT customer_id, count(*) AS n,
                      bool_or(id_type IN ('anonymous_id', 'user_id', 'device_id', 'app_account_id', 'email')) AS online,
                      bool_or(id_type IN ('loyalty_card', 'phone')) AS offline
               FROM identity_map WHERE customer_id IS NOT NULL GROUP BY customer_id)",
    ),
    (
        "Stitching quality against the generator's ground truth (identity_quality)",
        "SELECT metric, round(value, 4) AS value
         FROM identity_quality('identity_map', 'truth_identifiers')
         WHERE metric IN ('pairwise_precision', 'pairwise_recall', 'pairwise_f1', 'bcubed_precision',
                          'bcubed_recall', 'bcubed_f1', 'over_merged_clusters', 'largest_cluster')
         ORDER BY metric",
    ),
];

/// Runs the demo against `storage` (the embedded default is `./phygital-data`).
pub async fn run(
    storage: &str,
    opts: &EngineOptions,
    customers: u64,
    seed: u64,
    progress: bool,
) -> Result<()> {
    let started = Instant::now();
    let root = StorageRoot::parse(storage)?;
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

    let (ctx, _) = session::open(storage, opts).await?;
    for statement in setup_statements() {
        ctx.sql(&statement)
            .await?
            .collect()
            .await
            .map_err(|e| e.context("demo setup: identity edges and map"))?;
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
        "\nDone in {:.1} s. Parquet tables are under {root}; query them with\n  phygital sql --storage {} \"SELECT * FROM pos_receipts LIMIT 5\"\n  phygital tables --storage {}",
        started.elapsed().as_secs_f64(),
        storage,
        storage
    ))?;
    Ok(())
}
