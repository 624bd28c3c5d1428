//! `phygital identity-quality`: an identity map measured against ground truth — the `identity_quality` metrics
//! (with `--edges`, also the evidence ceiling: how much recall the stitcher lost vs how much the data never links),
//! the over-merged clusters with the identifiers that glued them (named by kind when a junk table lists them)
//! and, given a previous map, the churn between the two (`identity_churn`).

use std::fmt;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::TableReference;
use datafusion::common::{DataFusionError, Result as DFResult, plan_err};
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};

/// The junk table `phygital generate` writes, used to name what glued an over-merged cluster when present.
pub const DEFAULT_JUNK_TABLE: &str = "truth_junk";
/// Over-merged clusters listed in a report (the count covers all of them).
pub const OVER_MERGED_LISTED: usize = 20;

/// What to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityOptions {
    /// Ground truth `(id_type, id_value, person_id)`: a table name or a query.
    pub truth: String,
    /// Identity map `(id_type, id_value, customer_id[, status])`: a table name or a query.
    pub map: String,
    /// An earlier identity map, for churn.
    pub previous: Option<String>,
    /// The edges the map was built from `(a_type, a_value, b_type, b_value)`, for the evidence ceiling.
    pub edges: Option<String>,
    /// Junk identifiers `(id_type, id_value, kind)`; `None` uses [`DEFAULT_JUNK_TABLE`] when it exists.
    pub junk: Option<String>,
}

/// A predicted cluster holding identifiers of several true persons.
#[derive(Debug, Clone, PartialEq)]
pub struct OverMergedCluster {
    pub customer_id: String,
    /// Identifiers of the cluster known to the truth.
    pub identifiers: i64,
    pub persons: i64,
    /// Identifiers of the cluster that belong to no person (the likely bridges), as `type value (kind)`.
    pub junk: Vec<String>,
}

/// Everything `identity-quality` prints.
#[derive(Debug, Clone)]
pub struct QualityReport {
    pub options: QualityOptions,
    /// `identity_quality` rows, in its order.
    pub metrics: Vec<(String, Option<f64>)>,
    /// The largest over-merged clusters (at most [`OVER_MERGED_LISTED`]).
    pub over_merged: Vec<OverMergedCluster>,
    /// `identity_churn(previous, map)` rows when a previous map was given.
    pub churn: Option<Vec<RecordBatch>>,
}

impl QualityReport {
    /// The value of `metric`; `None` when absent or NULL.
    pub fn metric(&self, metric: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(name, _)| name == metric)
            .and_then(|(_, value)| *value)
    }

    pub fn to_json(&self) -> Result<serde_json::Value> {
        let metrics: serde_json::Map<String, serde_json::Value> = self
            .metrics
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::json!(value)))
            .collect();
        let over_merged: Vec<serde_json::Value> = self
            .over_merged
            .iter()
            .map(|c| {
                serde_json::json!({
                    "customer_id": c.customer_id,
                    "identifiers": c.identifiers,
                    "persons": c.persons,
                    "junk": c.junk,
                })
            })
            .collect();
        let churn = match &self.churn {
            Some(batches) => batches_to_json(batches)?,
            None => serde_json::Value::Null,
        };
        Ok(serde_json::json!({
            "map": self.options.map,
            "truth": self.options.truth,
            "previous": self.options.previous,
            "edges": self.options.edges,
            "metrics": metrics,
            "over_merged": over_merged,
            "churn": churn,
        }))
    }
}

impl fmt::Display for QualityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ratios with four decimals, counts as integers; an undefined metric as n/a.
        let value = |name: &str| match self.metric(name) {
            Some(v)
                if name.ends_with("precision")
                    || name.ends_with("recall")
                    || name.ends_with("f1")
                    || name.ends_with("_vs_ceiling") =>
            {
                format!("{v:.4}")
            }
            Some(v) => format!("{v:.0}"),
            None => "n/a".to_string(),
        };
        writeln!(
            f,
            "identity map {} vs truth {}",
            self.options.map, self.options.truth
        )?;
        for (label, prefix) in [("pairwise", "pairwise"), ("B-cubed ", "bcubed")] {
            writeln!(
                f,
                "  {label}  precision {}  recall {}  F1 {}",
                value(&format!("{prefix}_precision")),
                value(&format!("{prefix}_recall")),
                value(&format!("{prefix}_f1"))
            )?;
        }
        // With the edges: the best map the evidence allows, and how much of its recall the map reaches.
        if self.metric("ceiling_pairwise_recall").is_some()
            || self.metric("ceiling_bcubed_recall").is_some()
        {
            writeln!(
                f,
                "  evidence ceiling (stitching only the edges whose two ends are one true person):"
            )?;
            for (label, prefix) in [("pairwise", "pairwise"), ("B-cubed ", "bcubed")] {
                writeln!(
                    f,
                    "    {label}  precision {}  recall {}  F1 {}  (map recall / ceiling recall {})",
                    value(&format!("ceiling_{prefix}_precision")),
                    value(&format!("ceiling_{prefix}_recall")),
                    value(&format!("ceiling_{prefix}_f1")),
                    value(&format!("{prefix}_recall_vs_ceiling"))
                )?;
            }
        }
        writeln!(
            f,
            "  identifiers evaluated {} (only in the map {}, only in the truth {})",
            value("identifiers_evaluated"),
            value("identifiers_only_in_map"),
            value("identifiers_only_in_truth")
        )?;
        writeln!(
            f,
            "  clusters predicted {}, true {}; largest cluster {} identifiers of {} person(s)",
            value("clusters_predicted"),
            value("clusters_true"),
            value("largest_cluster"),
            value("largest_cluster_true_persons")
        )?;
        let listed = |prefix: &str| -> Vec<String> {
            self.metrics
                .iter()
                .filter_map(|(name, _)| {
                    let key = name.strip_prefix(prefix)?;
                    Some(format!("{key} {}", value(name)))
                })
                .collect()
        };
        writeln!(
            f,
            "  singletons {}: {}",
            value("singletons"),
            listed("singletons:").join(", ")
        )?;
        writeln!(
            f,
            "  clusters by size: {}",
            listed("cluster_size:").join(", ")
        )?;
        write!(
            f,
            "  over-merged clusters {}",
            value("over_merged_clusters")
        )?;
        for c in &self.over_merged {
            let junk = if c.junk.is_empty() {
                "no identifier outside the truth".to_string()
            } else {
                c.junk.join(", ")
            };
            write!(
                f,
                "\n    {}  {} identifiers of {} persons; bridged by: {junk}",
                c.customer_id, c.identifiers, c.persons
            )?;
        }
        Ok(())
    }
}

/// Measures `options.map` against `options.truth` in `ctx`.
pub async fn measure(ctx: &SessionContext, options: &QualityOptions) -> Result<QualityReport> {
    let metrics = quality_metrics(ctx, options)
        .await
        .map_err(|e| e.context("identity-quality: measuring the map"))?;
    let junk = match &options.junk {
        Some(junk) => Some(junk.clone()),
        None => ctx
            .table_exist(TableReference::bare(DEFAULT_JUNK_TABLE))?
            .then(|| DEFAULT_JUNK_TABLE.to_string()),
    };
    let over_merged = over_merged_clusters(ctx, options, junk.as_deref())
        .await
        .map_err(|e| e.context("identity-quality: listing over-merged clusters"))?;
    let churn = match &options.previous {
        Some(previous) => Some(
            churn(ctx, previous, &options.map)
                .await
                .map_err(|e| e.context("identity-quality: churn against the previous map"))?,
        ),
        None => None,
    };
    Ok(QualityReport {
        options: options.clone(),
        metrics,
        over_merged,
        churn,
    })
}

/// The `identity-quality` command: opens the storage root, measures and prints the report (text or JSON).
pub async fn run(
    storage: &str,
    declared: &[crate::tables::TableDecl],
    opts: &crate::session::EngineOptions,
    options: &QualityOptions,
    json: bool,
) -> Result<()> {
    use std::io::Write;
    let (ctx, _root) = crate::session::open_with_tables(storage, opts, declared).await?;
    let report = measure(&ctx, options).await?;
    let mut text = Vec::new();
    if json {
        writeln!(text, "{}", report.to_json()?).map_err(|e| Error::io("formatting", e))?;
    } else {
        writeln!(text, "{report}").map_err(|e| Error::io("formatting", e))?;
        if let Some(churn) = &report.churn {
            writeln!(
                text,
                "churn against {}:",
                options.previous.as_deref().unwrap_or_default()
            )
            .map_err(|e| Error::io("formatting", e))?;
            crate::output::write_batches(&mut text, churn, crate::output::OutputFormat::Table)?;
        }
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&text)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))
}

/// A table name or query as a string literal argument of a table function.
fn literal(relation: &str) -> String {
    format!("'{}'", relation.replace('\'', "''"))
}

/// A table name or query as a relation in a FROM clause.
fn relation(text: &str) -> String {
    let trimmed = text.trim();
    let keyword = trimmed
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if matches!(keyword.as_str(), "SELECT" | "WITH" | "VALUES") {
        format!("({trimmed})")
    } else {
        trimmed.to_string()
    }
}

async fn collect(ctx: &SessionContext, sql: &str) -> DFResult<Vec<RecordBatch>> {
    ctx.sql(sql).await?.collect().await
}

async fn quality_metrics(
    ctx: &SessionContext,
    options: &QualityOptions,
) -> DFResult<Vec<(String, Option<f64>)>> {
    let edges = match &options.edges {
        Some(edges) => format!(", {}", literal(edges)),
        None => String::new(),
    };
    let sql = format!(
        "SELECT metric, value FROM identity_quality({}, {}{edges})",
        literal(&options.map),
        literal(&options.truth)
    );
    let mut rows = Vec::new();
    for batch in collect(ctx, &sql).await? {
        let names = strings(batch.column(0))?;
        let values = cast(batch.column(1), &DataType::Float64)?;
        let values = values.as_primitive::<Float64Type>();
        for (row, name) in names.into_iter().enumerate() {
            let value = values.is_valid(row).then(|| values.value(row));
            rows.push((name.unwrap_or_default(), value));
        }
    }
    Ok(rows)
}

/// The largest clusters holding several persons, with the identifiers in them that belong to nobody.
async fn over_merged_clusters(
    ctx: &SessionContext,
    options: &QualityOptions,
    junk: Option<&str>,
) -> DFResult<Vec<OverMergedCluster>> {
    let (map, truth) = (relation(&options.map), relation(&options.truth));
    let (junk_join, kind) = match junk {
        Some(junk) => (
            format!(
                "LEFT JOIN {} j ON j.id_type = m.id_type AND j.id_value = m.id_value",
                relation(junk)
            ),
            "coalesce(' (' || j.kind || ')', '')",
        ),
        None => (String::new(), "''"),
    };
    let sql = format!(
        "WITH m AS (SELECT id_type, id_value, customer_id FROM {map} WHERE customer_id IS NOT NULL),
              t AS (SELECT id_type, id_value, person_id FROM {truth}),
              over AS (
                SELECT m.customer_id, count(*) AS identifiers, count(DISTINCT t.person_id) AS persons
                FROM m JOIN t ON t.id_type = m.id_type AND t.id_value = m.id_value
                GROUP BY m.customer_id HAVING count(DISTINCT t.person_id) > 1
                ORDER BY identifiers DESC, m.customer_id LIMIT {OVER_MERGED_LISTED})
         SELECT CAST(o.customer_id AS VARCHAR) AS customer_id, o.identifiers, o.persons,
                string_agg(m.id_type || ' ' || m.id_value || {kind}, ', ' ORDER BY m.id_type, m.id_value)
                  FILTER (WHERE t.person_id IS NULL) AS junk
         FROM over o
         JOIN m ON m.customer_id = o.customer_id
         LEFT JOIN t ON t.id_type = m.id_type AND t.id_value = m.id_value
         {junk_join}
         GROUP BY o.customer_id, o.identifiers, o.persons
         ORDER BY o.identifiers DESC, customer_id"
    );
    let mut clusters = Vec::new();
    for batch in collect(ctx, &sql).await? {
        let ids = strings(batch.column(0))?;
        let identifiers = integers(batch.column(1))?;
        let persons = integers(batch.column(2))?;
        let junk = strings(batch.column(3))?;
        for row in 0..batch.num_rows() {
            clusters.push(OverMergedCluster {
                customer_id: ids[row].clone().unwrap_or_default(),
                identifiers: identifiers[row].unwrap_or_default(),
                persons: persons[row].unwrap_or_default(),
                junk: junk[row]
                    .as_deref()
                    .map(|j| j.split(", ").map(str::to_string).collect())
                    .unwrap_or_default(),
            });
        }
    }
    Ok(clusters)
}

/// `identity_churn(previous, current)`, when the function is registered.
async fn churn(ctx: &SessionContext, previous: &str, current: &str) -> DFResult<Vec<RecordBatch>> {
    if !ctx.state().table_functions().contains_key("identity_churn") {
        return plan_err!(
            "--previous needs the identity_churn table function, which this build does not register"
        );
    }
    collect(
        ctx,
        &format!(
            "SELECT * FROM identity_churn({}, {})",
            literal(previous),
            literal(current)
        ),
    )
    .await
}

fn strings(column: &ArrayRef) -> DFResult<Vec<Option<String>>> {
    let column = cast(column, &DataType::Utf8)?;
    let column = column.as_string::<i32>();
    Ok((0..column.len())
        .map(|i| column.is_valid(i).then(|| column.value(i).to_string()))
        .collect())
}

fn integers(column: &ArrayRef) -> DFResult<Vec<Option<i64>>> {
    let column = cast(column, &DataType::Int64)?;
    let column = column.as_primitive::<Int64Type>();
    Ok((0..column.len())
        .map(|i| column.is_valid(i).then(|| column.value(i)))
        .collect())
}

fn batches_to_json(batches: &[RecordBatch]) -> Result<serde_json::Value> {
    let mut buffer = Vec::new();
    crate::output::write_batches(&mut buffer, batches, crate::output::OutputFormat::Json)?;
    serde_json::from_slice(&buffer).map_err(|e| {
        DataFusionError::Execution(format!("identity-quality: churn rows as JSON: {e}")).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_and_literals() {
        assert_eq!(relation(" identity_map "), "identity_map");
        assert_eq!(relation("select * from m"), "(select * from m)");
        assert_eq!(
            relation("WITH x AS (SELECT 1) SELECT * FROM x"),
            "(WITH x AS (SELECT 1) SELECT * FROM x)"
        );
        assert_eq!(literal("SELECT 'a'"), "'SELECT ''a'''");
    }
}
