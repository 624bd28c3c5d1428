//! The model runner (`phygital run`) on fixture projects written into temp folders: dependency order, cycles,
//! failing data tests, atomic materialisation (a run killed mid-model), `--select`, error messages that name
//! the file, partitioned output, and the same results at 1 and 4 target partitions.

#[path = "common/temp_dir.rs"]
mod temp_dir;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use phygital::output::{OutputFormat, write_batches};
use phygital::runner::{ModelStatus, Project, RunOptions, RunReport, TestStatus, run_project};
use phygital::session::{self, EngineOptions, build_context};
use phygital::table_manifest::{MANIFEST_FILE, TableManifest};
use temp_dir::TempDir;

/// A project folder and a storage root inside one temp folder.
struct Fixture {
    _dir: TempDir,
    project: PathBuf,
    storage: String,
}

impl Fixture {
    fn new(label: &str) -> Fixture {
        let dir = TempDir::new(label).unwrap();
        let project = dir.path().join("models");
        std::fs::create_dir_all(&project).unwrap();
        let storage = dir.path().join("data").to_str().unwrap().to_string();
        Fixture {
            _dir: dir,
            project,
            storage,
        }
    }

    fn model(&self, name: &str, sql: &str) -> &Fixture {
        std::fs::write(self.project.join(format!("{name}.sql")), sql).unwrap();
        self
    }

    fn file(&self, name: &str) -> String {
        self.project
            .join(format!("{name}.sql"))
            .display()
            .to_string()
    }

    fn project_arg(&self) -> &str {
        self.project.to_str().unwrap()
    }

    /// Writes a source table (one Parquet file) from a query.
    async fn source(&self, name: &str, sql: &str) {
        let ctx = build_context(&engine(2)).unwrap();
        let url = format!("{}/{name}/part-0.parquet", self.storage);
        ctx.sql(&format!("COPY ({sql}) TO '{url}' STORED AS PARQUET"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
    }

    /// Runs the project through the library, as `phygital demo` does.
    async fn run(&self, select: &[&str], partitions: usize) -> phygital::Result<RunReport> {
        let project = Project::load(&self.project)?;
        let (ctx, root) = session::open(&self.storage, &engine(partitions)).await?;
        let options = RunOptions {
            select: select
                .iter()
                .map(|s| s.parse())
                .collect::<phygital::Result<_>>()?,
            ..Default::default()
        };
        run_project(&ctx, &root, &project, &options).await
    }

    /// Runs and expects every model to succeed; returns the models in run order.
    async fn run_ok(&self, select: &[&str]) -> Vec<String> {
        let mut report = match self.run(select, 4).await {
            Ok(report) => report,
            Err(e) => panic!("run failed before starting: {e}"),
        };
        if let Some(e) = report.take_failure() {
            panic!("run failed: {e}");
        }
        report.models.iter().map(|m| m.name.clone()).collect()
    }

    /// A query's result as CSV, from a fresh session over the storage root (what a later command sees).
    async fn query(&self, sql: &str) -> String {
        let (ctx, _) = session::open(&self.storage, &engine(2)).await.unwrap();
        let batches = match ctx.sql(sql).await {
            Ok(df) => df.collect().await,
            Err(e) => Err(e),
        };
        let batches = batches.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let mut out = Vec::new();
        write_batches(&mut out, &batches, OutputFormat::Csv).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn manifest(&self, table: &str) -> TableManifest {
        let path = Path::new(&self.storage).join(table).join(MANIFEST_FILE);
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    /// Version folders (`_v…`) of a table, sorted.
    fn versions(&self, table: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(Path::new(&self.storage).join(table))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("_v"))
            .collect();
        names.sort();
        names
    }
}

fn engine(target_partitions: usize) -> EngineOptions {
    EngineOptions {
        target_partitions,
        memory_limit_bytes: 512 << 20,
        ..Default::default()
    }
}

/// `phygital ARGS` with a clean cloud environment.
fn phygital(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phygital"));
    for (k, _) in std::env::vars() {
        if ["AWS_", "GOOGLE_", "AZURE_", "PHYGITAL_", "RUST_LOG"]
            .iter()
            .any(|p| k.starts_with(p))
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_BACKTRACE", "0").args(args);
    cmd
}

fn output(args: &[&str]) -> Output {
    phygital(args).output().unwrap()
}

/// The `error: …` line of a failed run (exactly one, the last line of stderr), checked for `code`.
fn error_line(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "stderr:\n{stderr}");
    assert_eq!(stderr.lines().last(), Some(errors[0]), "stderr:\n{stderr}");
    errors[0].to_string()
}

const ORDERS: &str = "SELECT * FROM (VALUES (1, 'c1', 10.0, 'web'), (2, 'c1', 20.0, 'store'), \
                      (3, 'c2', 5.0, 'web'), (4, 'c3', 7.5, 'app')) AS t(order_id, customer, amount, channel)";

#[tokio::test]
async fn models_run_after_the_models_they_read() {
    let f = Fixture::new("runner-order");
    f.source("orders", ORDERS).await;
    f.model(
        "a_report",
        "-- description: reads two models; first by name, last in order\n\
         SELECT t.customer, t.total, s.orders FROM top_customers t\n\
         JOIN (SELECT customer, count(*) AS orders FROM stg_orders GROUP BY customer) s USING (customer)",
    )
    .model(
        "customer_totals",
        "WITH o AS (SELECT * FROM stg_orders) SELECT customer, sum(amount) AS total FROM o GROUP BY customer",
    )
    .model(
        "stg_orders",
        "-- test: unique(order_id)\n-- test: not_null(customer)\nSELECT order_id, upper(customer) AS customer, amount FROM orders",
    )
    .model(
        "top_customers",
        "SELECT * FROM customer_totals WHERE total > 6",
    )
    .model("constant", "SELECT 1 AS one");

    let mut report = f.run(&[], 4).await.unwrap();
    assert!(report.take_failure().is_none());
    let order: Vec<&str> = report.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        order,
        [
            "constant",
            "stg_orders",
            "customer_totals",
            "top_customers",
            "a_report"
        ]
    );
    let stg = report.model("stg_orders").unwrap();
    assert_eq!(
        (stg.rows, stg.tests_passed, stg.tests_failed),
        (Some(4), 2, 0)
    );
    assert!(
        report
            .models
            .iter()
            .all(|m| m.status == ModelStatus::Success)
    );

    assert_eq!(
        f.query("SELECT * FROM a_report ORDER BY customer").await,
        "customer,total,orders\nC1,30.0,2\nC3,7.5,1\n"
    );
    let manifest = f.manifest("a_report");
    assert_eq!(manifest.rows, 2);
    assert_eq!(manifest.previous_version, None);
    assert_eq!(
        manifest.description.as_deref(),
        Some("reads two models; first by name, last in order")
    );

    // Reruns publish new versions; the immediately previous one is kept, older ones are deleted.
    let first = f.versions("stg_orders");
    f.run_ok(&[]).await;
    f.run_ok(&[]).await;
    let versions = f.versions("stg_orders");
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(!versions.contains(&first[0]));
    let manifest = f.manifest("stg_orders");
    assert_eq!(
        manifest.previous_version.as_deref(),
        Some(versions[0].as_str())
    );
    assert_eq!(manifest.version, versions[1]);
}

#[test]
fn a_cycle_is_an_error_listing_its_files() {
    let f = Fixture::new("runner-cycle");
    f.model("a", "SELECT * FROM c")
        .model("b", "SELECT * FROM a")
        .model("c", "WITH x AS (SELECT * FROM b) SELECT * FROM x")
        .model("d", "SELECT 1 AS one");
    let line = error_line(
        &output(&["run", "--project", f.project_arg(), "--storage", &f.storage]),
        1,
    );
    assert_eq!(
        line,
        format!(
            "error: dependency cycle: {} → {} → {} → {} (each model reads the next)",
            f.file("a"),
            f.file("c"),
            f.file("b"),
            f.file("a")
        )
    );
    // nothing ran
    assert!(!Path::new(&f.storage).join("d").exists());
}

#[tokio::test]
async fn a_failing_data_test_stops_the_run_and_keeps_earlier_outputs() {
    let f = Fixture::new("runner-test");
    f.source("orders", ORDERS).await;
    f.model("a_base", "SELECT order_id, customer FROM orders")
        .model(
            "b_checked",
            "-- description: one row per customer\n\
             -- test: not_null(customer)\n\
             -- test: unique(customer)\n\
             -- test: accepted_values(customer, 'c1', 'c2', 'c3')\n\
             SELECT DISTINCT customer FROM a_base",
        )
        .model("c_after", "SELECT count(*) AS n FROM b_checked");
    f.run_ok(&[]).await;
    let base_before = f.manifest("a_base");
    let checked_before = f.query("SELECT * FROM b_checked ORDER BY customer").await;

    // Now b_checked has duplicates and an unexpected value; a_base changes too and must be published.
    f.model(
        "a_base",
        "SELECT order_id, customer FROM orders WHERE order_id > 1",
    );
    f.model(
        "b_checked",
        "-- description: one row per customer\n\
         -- test: not_null(customer)\n\
         -- test: unique(customer)\n\
         -- test: accepted_values(customer, 'c1', 'c2', 'c3')\n\
         SELECT customer FROM a_base UNION ALL SELECT 'c2' UNION ALL SELECT 'zz'",
    );
    let out = output(&[
        "run",
        "--project",
        f.project_arg(),
        "--storage",
        &f.storage,
        "--json",
    ]);
    let line = error_line(&out, 1);
    assert_eq!(
        line,
        format!(
            "error: {}:3: data test 'unique(customer)' failed: 1 offending rows; the new output of \
             'b_checked' is not published",
            f.file("b_checked")
        )
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // both failing tests are shown with their rows, the passing one is not
    assert!(
        stderr.contains(&format!(
            "data test unique(customer) ({}:3) failed: 1 offending rows:",
            f.file("b_checked")
        )),
        "{stderr}"
    );
    assert!(stderr.contains("| c2       | 2              |"), "{stderr}");
    assert!(
        stderr.contains("data test accepted_values(customer, 'c1', 'c2', 'c3')"),
        "{stderr}"
    );
    assert!(stderr.contains("| zz       |"), "{stderr}");
    assert!(!stderr.contains("data test not_null"), "{stderr}");

    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "failed");
    let statuses: Vec<(&str, &str)> = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("a_base", "success"),
            ("b_checked", "failed"),
            ("c_after", "skipped")
        ]
    );
    let checked = &report["models"][1];
    assert_eq!(
        (
            checked["tests_passed"].as_u64(),
            checked["tests_failed"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(checked["tests"][1]["sample"][0]["customer"], "c2");
    assert_eq!(checked["tests"][1]["sample"][0]["duplicate_rows"], 2);

    // The earlier model's new output is published, the failed one keeps its previous version.
    assert_ne!(f.manifest("a_base").run_id, base_before.run_id);
    assert_eq!(f.query("SELECT count(*) AS n FROM a_base").await, "n\n3\n");
    assert_eq!(
        f.query("SELECT * FROM b_checked ORDER BY customer").await,
        checked_before
    );

    // --fail-fast stops at the first failing test
    let f2 = Fixture::new("runner-failfast");
    f2.model(
        "m",
        "-- test: not_null(x)\n-- test: unique(x)\nSELECT CAST(NULL AS INT) AS x UNION ALL SELECT NULL",
    );
    let mut report = match f2.run(&[], 2).await {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert!(report.take_failure().is_some());
    assert_eq!(report.models[0].tests.len(), 2, "all tests run by default");
    let project = Project::load(&f2.project).unwrap();
    let (ctx, root) = session::open(&f2.storage, &engine(2)).await.unwrap();
    let options = RunOptions {
        fail_fast: true,
        ..Default::default()
    };
    let report = run_project(&ctx, &root, &project, &options).await.unwrap();
    assert_eq!(report.models[0].tests.len(), 1);
    assert_eq!(report.models[0].tests[0].status, TestStatus::Failed);
    assert_eq!(report.models[0].tests[0].offending_rows, 2);
}

/// Kills the child on drop, so a failing assertion does not leave a busy process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn has_file_below(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            has_file_below(&path)
        } else {
            true
        }
    })
}

#[test]
fn a_run_killed_mid_model_leaves_the_previous_version_readable() {
    let f = Fixture::new("runner-kill");
    f.model("numbers", "SELECT value AS v FROM generate_series(1, 1000)");
    let run = ["run", "--project", f.project_arg(), "--storage", &f.storage];
    let out = output(&run);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sql = |q: &str| {
        let out = output(&["sql", "--storage", &f.storage, "--format", "csv", q]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let check = "SELECT count(*) AS n, sum(v) AS total FROM numbers";
    let before = sql(check);
    assert_eq!(before, "n,total\n1000,500500\n");
    let published = f.manifest("numbers");

    // 400 M rows: far longer than the test waits.
    f.model(
        "numbers",
        "SELECT a.value * 100000 + b.value AS v FROM generate_series(1, 20000) a CROSS JOIN generate_series(1, 20000) b",
    );
    let child = phygital(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let table = Path::new(&f.storage).join("numbers");
    let deadline = Instant::now() + Duration::from_secs(120);
    let writing = loop {
        let new_version = f
            .versions("numbers")
            .into_iter()
            .find(|v| *v != published.version);
        if let Some(v) = new_version.filter(|v| has_file_below(&table.join(v))) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "the slow model wrote nothing in 120 s"
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "the slow model finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // let it write for a moment, then kill it hard (no cleanup code runs)
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.0.try_wait().unwrap().is_none(), "finished early");
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    drop(child);

    assert!(
        has_file_below(&table.join(&writing)),
        "the killed run wrote files"
    );
    assert_eq!(f.manifest("numbers"), published);
    assert_eq!(sql(check), before);

    // The next successful run cleans the killed version up.
    f.model("numbers", "SELECT value AS v FROM generate_series(1, 10)");
    let out = output(&run);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sql(check), "n,total\n10,55\n");
    let versions = f.versions("numbers");
    assert!(!versions.contains(&writing), "{versions:?}");
    assert!(versions.contains(&published.version), "{versions:?}");
}

#[tokio::test]
async fn select_forms() {
    let f = Fixture::new("runner-select");
    f.source("orders", ORDERS).await;
    f.model("a", "SELECT order_id, amount FROM orders")
        .model("b", "SELECT order_id, amount * 2 AS amount FROM a")
        .model("c", "SELECT sum(amount) AS total FROM b")
        .model("d", "SELECT 1 AS one");

    // b needs a's output, which does not exist yet
    let e = f.run(&["b"], 2).await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{} reads model 'a', which is not selected and has no materialised output under file://{}/: \
             run it first or select it too (--select +b)",
            f.file("b"),
            f.storage
        )
    );
    assert_eq!(f.run_ok(&["+b"]).await, ["a", "b"]);
    assert_eq!(f.run_ok(&["b"]).await, ["b"]);
    assert_eq!(f.run_ok(&["b+"]).await, ["b", "c"]);
    assert_eq!(f.run_ok(&["a+", "d"]).await, ["a", "b", "c", "d"]);
    assert_eq!(f.run_ok(&["+c+"]).await, ["a", "b", "c"]);
    assert_eq!(f.query("SELECT total FROM c").await, "total\n85.0\n");

    let line = error_line(
        &output(&[
            "run",
            "--project",
            f.project_arg(),
            "--storage",
            &f.storage,
            "--select",
            "b+",
            "--select",
            "nope",
        ]),
        2,
    );
    assert_eq!(
        line,
        "error: --select nope: no model named 'nope'; the models are: a, b, c, d"
    );
}

#[tokio::test]
async fn errors_name_the_file_and_position() {
    let f = Fixture::new("runner-errors");
    f.source("orders", ORDERS).await;
    let run = ["run", "--project", f.project_arg(), "--storage", &f.storage];

    f.model("bad", "-- description: x\nSELECT (order_id\nFROM orders");
    assert_eq!(
        error_line(&output(&run), 1),
        format!(
            "error: {}:3:1: sql parser error: Expected: ), found: FROM",
            f.file("bad")
        )
    );

    f.model(
        "bad",
        "-- tests: unique(order_id)\nSELECT order_id FROM orders",
    );
    let line = error_line(&output(&run), 1);
    assert!(
        line.starts_with(&format!(
            "error: {}:1: unknown header key 'tests:'",
            f.file("bad")
        )),
        "{line}"
    );

    f.model(
        "bad",
        "SELECT o.order_id\nFROM orders o JOIN nowhere n USING (order_id)",
    );
    assert_eq!(
        error_line(&output(&run), 1),
        format!(
            "error: {}:2:20: table 'nowhere' not found: there is no model {} and no table under file://{}/",
            f.file("bad"),
            f.file("nowhere"),
            f.storage
        )
    );

    f.model(
        "bad",
        "-- column nope: documented\nSELECT order_id FROM orders",
    );
    assert_eq!(
        error_line(&output(&run), 1),
        format!(
            "error: {}:1: column documentation names column 'nope', which the query does not return (columns: order_id)",
            f.file("bad")
        )
    );

    f.model("bad", "SELECT no_such_column FROM orders");
    let line = error_line(&output(&run), 1);
    assert!(
        line.starts_with(&format!("error: {}: ", f.file("bad"))),
        "{line}"
    );
    assert!(line.contains("no_such_column"), "{line}");
}

#[tokio::test]
async fn same_results_with_one_and_four_partitions() {
    let f1 = Fixture::new("runner-p1");
    let f4 = Fixture::new("runner-p4");
    let events = "SELECT value AS id, value % 7 AS k, CAST(value AS DOUBLE) / 3 AS x FROM generate_series(1, 20000)";
    for f in [&f1, &f4] {
        f.source("events", events).await;
        f.model(
            "by_key",
            "-- test: unique(k)\nSELECT k, count(*) AS n, sum(x) AS total FROM events GROUP BY k",
        )
        .model(
            "ranked",
            "SELECT e.id, e.k, b.n, row_number() OVER (PARTITION BY e.k ORDER BY e.id) AS r \
             FROM events e JOIN by_key b USING (k)",
        );
    }
    for (f, partitions) in [(&f1, 1), (&f4, 4)] {
        let mut report = f.run(&[], partitions).await.unwrap();
        assert!(report.take_failure().is_none());
        assert_eq!(report.model("ranked").unwrap().rows, Some(20000));
    }
    for q in [
        "SELECT k, n, round(total, 6) AS total FROM by_key ORDER BY k",
        "SELECT k, count(*), sum(r), min(id), max(id) FROM ranked GROUP BY k ORDER BY k",
    ] {
        assert_eq!(f1.query(q).await, f4.query(q).await, "{q}");
    }
    assert!(!f4.manifest("ranked").files.is_empty());
}

#[tokio::test]
async fn partitioned_output_reads_back_with_its_partition_columns() {
    let f = Fixture::new("runner-partitions");
    f.source("orders", ORDERS).await;
    f.model(
        "orders_by_day",
        "-- partition_by: channel, day\n\
         -- column day: the order's day\n\
         SELECT order_id, amount, channel,\n\
                CASE WHEN order_id % 2 = 0 THEN DATE '2026-01-01' ELSE DATE '2026-01-02' END AS day FROM orders",
    );
    f.run_ok(&[]).await;
    let manifest = f.manifest("orders_by_day");
    assert_eq!(manifest.partition_by, ["channel", "day"]);
    let names: Vec<&str> = manifest.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["order_id", "amount", "channel", "day"]);
    assert_eq!(manifest.columns[3].doc.as_deref(), Some("the order's day"));
    assert!(
        manifest
            .files
            .iter()
            .any(|file| file.path.starts_with("channel=web/day=2026-01-02/")),
        "{:?}",
        manifest.files
    );
    assert_eq!(
        f.query(
            "SELECT channel, day, arrow_typeof(day) AS t, count(*) AS n, sum(amount) AS amount \
             FROM orders_by_day GROUP BY channel, day ORDER BY channel, day"
        )
        .await,
        "channel,day,t,n,amount\napp,2026-01-01,Date32,1,7.5\nstore,2026-01-01,Date32,1,20.0\n\
         web,2026-01-02,Date32,2,15.0\n"
    );
    assert_eq!(
        f.query("SELECT count(*) AS n FROM orders_by_day WHERE channel = 'web'")
            .await,
        "n\n2\n"
    );

    // an empty result is still a readable table, with its partition columns
    f.model(
        "orders_by_day",
        "-- partition_by: channel\nSELECT order_id, channel FROM orders WHERE false",
    );
    f.run_ok(&[]).await;
    assert_eq!(
        f.query("SELECT count(*) AS n, count(channel) AS c FROM orders_by_day")
            .await,
        "n,c\n0,0\n"
    );
}

#[tokio::test]
async fn column_docs_become_bigquery_column_descriptions() {
    let f = Fixture::new("runner-docs");
    f.source("orders", ORDERS).await;
    f.model(
        "revenue_by_channel",
        "-- description: Revenue per channel.\n\
         -- column channel: where the order was placed\n\
         SELECT channel, sum(amount) AS revenue FROM orders GROUP BY channel",
    );
    f.run_ok(&[]).await;
    // The dry run plans the BigQuery tables without any request (nothing listens on port 1).
    let out = output(&[
        "sync",
        "bigquery",
        "--storage",
        &f.storage,
        "--project",
        "test-proj",
        "--dataset",
        "d",
        "--endpoint",
        "http://127.0.0.1:1",
        "--table",
        "revenue_by_channel",
        "--table",
        "orders",
        "--dry-run",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("channel STRING REQUIRED  -- where the order was placed"),
        "{stdout}"
    );
    // a documented model's undocumented column, and a plain source table, have no description
    assert!(stdout.contains("revenue FLOAT64 NULLABLE\n"), "{stdout}");
    assert!(stdout.contains("order_id INT64 REQUIRED\n"), "{stdout}");
}
