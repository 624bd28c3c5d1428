//! Identity stitching on generated data, end to end: the shipped models (sql/identity_edges.sql,
//! sql/identity_map.sql) against the generator's ground truth, the guards against its junk, and the
//! `phygital identity-quality` command.

#[path = "common/temp_dir.rs"]
mod temp_dir;

use std::process::{Command, Output};
use std::sync::Arc;

use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use phygital::demo::{IDENTITY_EDGES_SQL, IDENTITY_MAP_SQL};
use phygital::generate::{GenerateOptions, generate};
use phygital::quality::{QualityOptions, QualityReport, measure};
use temp_dir::TempDir;

const CUSTOMERS: u64 = 3000;

/// Quality floors on generated data with the shipped guards (measured here: pairwise F1 0.881, B-cubed F1 0.911):
/// a change to the generator, the models or the stitching that loses linking evidence or lets junk merge people
/// fails here. They sit below the targets (0.97 / 0.98) because the generated truth keeps identifiers no
/// row links to the rest of their person (bounced private-window cookies, guests' cookies, SMS-only phones, the
/// till phones of hard-to-link customers); the stitching itself reaches the bound of the evidence (checked below: the
/// evidence ceiling of `identity_quality` scores the same).
const MIN_PAIRWISE_F1: f64 = 0.87;
const MIN_BCUBED_F1: f64 = 0.90;
const MIN_PRECISION: f64 = 0.999;

/// Generates `CUSTOMERS` people into a fresh folder and materialises the identity models there as tables.
async fn generated_and_stitched(label: &str) -> (TempDir, SessionContext) {
    let dir = TempDir::new(label).unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let opts = GenerateOptions {
        customers: CUSTOMERS,
        seed: 5,
        ..Default::default()
    };
    generate(store, &Path::default(), &opts, &|_| {})
        .await
        .unwrap();
    let root = dir.path().to_string_lossy().into_owned();
    let (ctx, _) = phygital::session::open(&root, &Default::default())
        .await
        .unwrap();
    for (table, sql) in [
        ("identity_edges", IDENTITY_EDGES_SQL),
        ("identity_map", IDENTITY_MAP_SQL),
    ] {
        let folder = format!("{root}/{table}/");
        ctx.sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"))
            .write_parquet(&folder, DataFrameWriteOptions::new(), None)
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        ctx.register_parquet(table, &folder, Default::default())
            .await
            .unwrap();
    }
    (dir, ctx)
}

fn options(map: &str) -> QualityOptions {
    QualityOptions {
        truth: "truth_identifiers".into(),
        map: map.into(),
        previous: None,
        edges: None,
        junk: None,
    }
}

fn metric(report: &QualityReport, name: &str) -> f64 {
    report
        .metric(name)
        .unwrap_or_else(|| panic!("no metric {name} in {report}"))
}

async fn count(ctx: &SessionContext, sql: &str) -> usize {
    ctx.sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .count()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_models_recover_the_generated_people_and_catch_the_junk() {
    let (_dir, ctx) = generated_and_stitched("id-quality").await;
    let report = measure(&ctx, &options("identity_map")).await.unwrap();
    println!("{report}");

    // Precision: nobody merged with somebody else, and in particular not through the junk.
    assert_eq!(metric(&report, "over_merged_clusters"), 0.0, "{report}");
    assert!(report.over_merged.is_empty(), "{report}");
    assert!(
        metric(&report, "pairwise_precision") >= MIN_PRECISION,
        "{report}"
    );
    assert!(
        metric(&report, "bcubed_precision") >= MIN_PRECISION,
        "{report}"
    );
    // Recall: the evidence in the data is used.
    assert!(
        metric(&report, "pairwise_f1") >= MIN_PAIRWISE_F1,
        "{report}"
    );
    assert!(metric(&report, "bcubed_f1") >= MIN_BCUBED_F1, "{report}");
    // Every truth identifier reached the map; what only the map has is junk the generator injected.
    assert_eq!(metric(&report, "identifiers_only_in_truth"), 0.0);
    assert_eq!(
        count(
            &ctx,
            "SELECT id_type, id_value FROM identity_map EXCEPT SELECT id_type, id_value FROM truth_identifiers \
             EXCEPT SELECT id_type, id_value FROM truth_junk"
        )
        .await,
        0,
        "identifiers in the map that are neither someone's nor known junk"
    );
    // The stores' phones and tablets are blocked by the model's block_query, each by its rule.
    for (kind, rule) in [
        ("store_phone", "blocked:store_phone"),
        ("shared_tablet_cookie", "blocked:store_tablet"),
    ] {
        let unblocked = count(
            &ctx,
            &format!(
                "SELECT * FROM truth_junk j JOIN identity_map m USING (id_type, id_value) \
                 WHERE j.kind = '{kind}' AND m.status <> '{rule}'"
            ),
        )
        .await;
        assert_eq!(unblocked, 0, "{kind} not {rule}");
        let seen = count(
            &ctx,
            &format!(
                "SELECT * FROM truth_junk j JOIN identity_map m USING (id_type, id_value) WHERE j.kind = '{kind}'"
            ),
        )
        .await;
        assert!(seen > 0, "the data has no {kind} to guard against");
    }
    // The histogram covers every cluster.
    let histogram: f64 = report
        .metrics
        .iter()
        .filter(|(name, _)| name.starts_with("cluster_size:"))
        .filter_map(|(_, value)| *value)
        .sum();
    assert_eq!(histogram, metric(&report, "clusters_predicted"));

    // The evidence ceiling: stitching only the edges the truth confirms recovers exactly the map's pairs, so the
    // recall the map lacks is evidence the data does not contain, not links the stitcher lost.
    let with_edges = measure(
        &ctx,
        &QualityOptions {
            edges: Some("identity_edges".into()),
            ..options("identity_map")
        },
    )
    .await
    .unwrap();
    println!("{with_edges}");
    assert_eq!(
        with_edges.metrics[..15],
        report.metrics[..15],
        "the edges change none of the map's own figures"
    );
    for name in [
        "ceiling_pairwise_precision",
        "ceiling_pairwise_recall",
        "ceiling_pairwise_f1",
        "ceiling_bcubed_precision",
        "ceiling_bcubed_recall",
        "ceiling_bcubed_f1",
        "pairwise_recall_vs_ceiling",
        "bcubed_recall_vs_ceiling",
    ] {
        metric(&with_edges, name);
    }
    for name in ["ceiling_pairwise_precision", "ceiling_bcubed_precision"] {
        assert_eq!(metric(&with_edges, name), 1.0, "{with_edges}");
    }
    let vs_ceiling = metric(&with_edges, "pairwise_recall_vs_ceiling");
    assert!((vs_ceiling - 1.0).abs() < 1e-9, "{with_edges}");
    // ... and the ceiling itself is below 1: identifiers no row links to the rest of their person.
    assert!(
        metric(&with_edges, "ceiling_pairwise_recall") < 1.0,
        "{with_edges}"
    );
    assert!(with_edges.to_string().contains("evidence ceiling"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_guards_the_junk_merges_people_and_is_named() {
    let (_dir, ctx) = generated_and_stitched("id-quality-unguarded").await;
    let unguarded = "SELECT * FROM identity_stitch('identity_edges', \
        '{\"default_blocklist\": false, \"degree_limit\": {}, \"limits\": {}, \"max_component_size\": null}')";
    let report = measure(&ctx, &options(unguarded)).await.unwrap();
    assert!(metric(&report, "over_merged_clusters") > 0.0, "{report}");
    assert!(
        metric(&report, "largest_cluster_true_persons") > 10.0,
        "{report}"
    );
    let causes: Vec<&String> = report.over_merged.iter().flat_map(|c| &c.junk).collect();
    for kind in ["(store_phone)", "(shared_tablet_cookie)"] {
        assert!(
            causes.iter().any(|c| c.ends_with(kind)),
            "{kind} not named among {causes:?}"
        );
    }
    let text = report.to_string();
    assert!(text.contains("bridged by: "), "{text}");
}

fn phygital<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phygital"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PHYGITAL_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_BACKTRACE", "0").args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_quality_command() {
    let (dir, _ctx) = generated_and_stitched("id-quality-cli").await;
    let root = dir.path().to_str().unwrap();
    let args = |extra: &[&'static str]| -> Vec<String> {
        [
            "identity-quality",
            "--storage",
            root,
            "--truth",
            "truth_identifiers",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
    };

    let out = phygital(&args(&[
        "--map",
        "identity_map",
        "--edges",
        "identity_edges",
        "--json",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let metrics = &json["metrics"];
    for name in [
        "pairwise_precision",
        "pairwise_recall",
        "pairwise_f1",
        "bcubed_f1",
        "largest_cluster",
        "singletons:anonymous_id",
        "singletons:phone",
        "cluster_size:1",
        "ceiling_pairwise_recall",
        "ceiling_bcubed_f1",
        "pairwise_recall_vs_ceiling",
        "bcubed_recall_vs_ceiling",
    ] {
        assert!(metrics[name].is_number(), "{name} missing in {json}");
    }
    assert_eq!(json["edges"], "identity_edges");
    assert!(metrics["pairwise_f1"].as_f64().unwrap() >= MIN_PAIRWISE_F1);
    assert_eq!(json["over_merged"], serde_json::json!([]));
    assert_eq!(json["map"], "identity_map");

    // Text: the figures for people, and a query as the map (here: no block_query, so the tablets merge people).
    let out = phygital(&args(&[
        "--map",
        "SELECT * FROM identity_stitch('identity_edges')",
        "--edges",
        "identity_edges",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "pairwise  precision",
        "B-cubed   precision",
        "clusters by size: 1 ",
        "singletons ",
        "over-merged clusters ",
        "(shared_tablet_cookie)",
        "evidence ceiling (",
        "(map recall / ceiling recall ",
    ] {
        assert!(text.contains(needle), "'{needle}' not in:\n{text}");
    }

    // Churn: a map against itself is all unchanged; against the unguarded map, the people the tablets had
    // merged come apart.
    let churn = |previous: &'static str| -> Vec<(String, i64)> {
        let out = phygital(&args(&[
            "--map",
            "identity_map",
            "--previous",
            previous,
            "--json",
        ]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["churn"]
            .as_array()
            .unwrap_or_else(|| panic!("no churn in {json}"))
            .iter()
            .map(|row| {
                (
                    row["category"].as_str().unwrap_or_default().to_string(),
                    row["customers"].as_i64().unwrap_or_default(),
                )
            })
            .collect()
    };
    let same = churn("identity_map");
    assert!(
        same.iter().any(|(c, n)| c == "unchanged" && *n > 0),
        "{same:?}"
    );
    assert!(
        same.iter().all(|(c, n)| c == "unchanged" || *n == 0),
        "{same:?}"
    );
    let guarded = churn("SELECT * FROM identity_stitch('identity_edges')");
    assert!(
        guarded.iter().any(|(c, n)| c == "split" && *n > 0),
        "{guarded:?}"
    );

    // A table that does not exist: one error line naming it, exit 1.
    let out = phygital(&args(&["--map", "no_such_map"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("no_such_map"),
        "{stderr}"
    );
    // Missing required arguments are usage errors.
    let out = phygital(&[
        "identity-quality",
        "--storage",
        root,
        "--map",
        "identity_map",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--truth"));
}
