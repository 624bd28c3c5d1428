//! phygital against a real S3-compatible server (moto on 127.0.0.1, installed and started by the test):
//! generating into `s3://`, querying and listing it, failing cleanly on a missing bucket or wrong credentials,
//! and the library's `session::open` on an `s3://` root.

#[path = "common/services.rs"]
mod services;
#[path = "common/temp_dir.rs"]
mod temp_dir;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use phygital::session::{EngineOptions, open};
use services::S3Server;
use temp_dir::TempDir;

const PHYGITAL: &str = env!("CARGO_BIN_EXE_phygital");

fn start_s3() -> S3Server {
    match S3Server::start() {
        Ok(server) => {
            eprintln!(
                "S3 test server at {} ready in {:.1} s",
                server.endpoint,
                server.startup.as_secs_f64()
            );
            server
        }
        Err(e) => panic!("cannot start the S3 test server: {e}"),
    }
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

fn run(mut command: Command, args: &[&str]) -> Run {
    let output = match command.args(args).output() {
        Ok(output) => output,
        Err(e) => panic!("cannot run {PHYGITAL}: {e}"),
    };
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `phygital ARGS` with the server's AWS environment (and no other AWS_* variable); must succeed.
fn phygital_ok(server: &S3Server, args: &[&str]) -> String {
    let result = run(server.command(PHYGITAL), args);
    assert!(
        result.success,
        "phygital {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        result.stdout, result.stderr
    );
    result.stdout
}

/// The single value of a one-row, one-column `sql --format csv` result.
fn single_value(csv: &str) -> String {
    let lines: Vec<&str> = csv.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.as_slice() {
        [_header, value] => value.to_string(),
        _ => panic!("expected a header and one row, got:\n{csv}"),
    }
}

/// `phygital generate` into `out` (a local path or an `s3://` URL).
fn generate(server: &S3Server, customers: u32, seed: u32, out: &str) {
    let (customers, seed) = (customers.to_string(), seed.to_string());
    phygital_ok(
        server,
        &[
            "generate",
            "--customers",
            &customers,
            "--seed",
            &seed,
            "--out",
            out,
            "--quiet",
        ],
    );
}

/// `phygital sql --format csv` over the tables under `storage`.
fn sql_csv(server: &S3Server, storage: &str, sql: &str) -> String {
    phygital_ok(
        server,
        &["sql", "--storage", storage, "--format", "csv", sql],
    )
}

/// Table name → row count, from `phygital tables --json`.
fn table_rows(tables_json: &str) -> BTreeMap<String, i64> {
    let tables: serde_json::Value = match serde_json::from_str(tables_json) {
        Ok(value) => value,
        Err(e) => panic!("`tables --json` printed invalid JSON ({e}):\n{tables_json}"),
    };
    let Some(tables) = tables.as_array() else {
        panic!("`tables --json` did not print an array:\n{tables_json}");
    };
    tables
        .iter()
        .map(|t| match (t["name"].as_str(), t["rows"].as_i64()) {
            (Some(name), Some(rows)) => (name.to_string(), rows),
            _ => panic!("table entry without name/rows: {t}"),
        })
        .collect()
}

#[test]
fn generated_data_on_s3_matches_a_local_generation() {
    let server = start_s3();
    let local = match TempDir::new("s3-test") {
        Ok(dir) => dir,
        Err(e) => panic!("cannot create a temp dir: {e}"),
    };
    let local_root = local.path().join("gen").display().to_string();
    let s3_root = server.url("gen");

    generate(&server, 2000, 1, &s3_root);
    generate(&server, 2000, 1, &local_root);

    let count = "SELECT count(*) AS n FROM pos_receipts";
    let on_s3 = single_value(&sql_csv(&server, &s3_root, count));
    let on_disk = single_value(&sql_csv(&server, &local_root, count));
    let receipts: u64 = match on_s3.parse() {
        Ok(n) => n,
        Err(e) => panic!("count {on_s3:?} is not a number: {e}"),
    };
    assert!(receipts > 0, "no receipts generated on S3");
    assert_eq!(on_s3, on_disk, "receipt count on S3 vs on disk");

    // the same content, not only the same count
    let fingerprint = "SELECT count(DISTINCT receipt_id) AS receipts, count(DISTINCT store_id) AS stores, \
                       sum(amount) AS amount, min(receipt_ts) AS first, max(receipt_ts) AS last FROM pos_receipts";
    assert_eq!(
        sql_csv(&server, &s3_root, fingerprint),
        sql_csv(&server, &local_root, fingerprint),
    );

    // every table is listed on S3 with the same row count as on disk
    let s3_tables = table_rows(&phygital_ok(
        &server,
        &["tables", "--storage", &s3_root, "--json"],
    ));
    let disk_tables = table_rows(&phygital_ok(
        &server,
        &["tables", "--storage", &local_root, "--json"],
    ));
    assert!(s3_tables.contains_key("pos_receipts"), "{s3_tables:?}");
    assert_eq!(
        s3_tables.get("pos_receipts").copied(),
        Some(receipts as i64)
    );
    assert_eq!(s3_tables, disk_tables);

    // and the human-readable listing names them
    let listing = phygital_ok(&server, &["tables", "--storage", &s3_root]);
    for name in s3_tables.keys() {
        assert!(
            listing.contains(name.as_str()),
            "table {name} missing from:\n{listing}"
        );
    }
}

/// Exit code ≠ 0, and stderr is one line that names every one of `expected` (the location, the server's
/// error code) — no panic, no backtrace.
fn assert_clean_failure(result: &Run, what: &str, expected: &[&str]) {
    let lines: Vec<&str> = result
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(!result.success, "{what}: succeeded:\n{}", result.stdout);
    assert!(
        !result.stderr.contains("panicked") && !result.stderr.contains("backtrace"),
        "{what}: panicked:\n{}",
        result.stderr
    );
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one error line, got:\n{}",
        result.stderr
    );
    assert!(lines[0].starts_with("error: "), "{what}: {}", lines[0]);
    for word in expected {
        assert!(
            lines[0].contains(word),
            "{what}: the error does not say {word:?}: {}",
            lines[0]
        );
    }
}

#[test]
fn missing_bucket_and_wrong_credentials_fail_with_one_clear_line() {
    let server = start_s3();
    let query = "SELECT count(*) FROM pos_receipts";

    let missing = run(
        server.command(PHYGITAL),
        &["sql", "--storage", "s3://no-such-bucket/gen", query],
    );
    assert_clean_failure(
        &missing,
        "missing bucket",
        &["s3://no-such-bucket/gen", "NoSuchBucket"],
    );

    let mut wrong_secret = server.command(PHYGITAL);
    wrong_secret.env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let wrong_secret = run(
        wrong_secret,
        &["sql", "--storage", &server.url("gen"), query],
    );
    assert_clean_failure(
        &wrong_secret,
        "wrong secret",
        &[&server.url("gen"), "SignatureDoesNotMatch"],
    );

    let mut unknown_key = server.command(PHYGITAL);
    unknown_key.env("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000");
    let unknown_key = run(unknown_key, &["tables", "--storage", &server.url("gen")]);
    assert_clean_failure(
        &unknown_key,
        "unknown access key",
        &[&server.url("gen"), "InvalidAccessKeyId"],
    );
}

/// The S3 server whose settings are this test process's `AWS_*` environment. The library reads credentials
/// from the environment, which is process-wide: it is set once, here, and by no other test. The server
/// lives until the process exits (its watchdog then stops it).
fn process_s3_server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = start_s3();
        let inherited: Vec<_> = std::env::vars_os()
            .map(|(key, _)| key)
            .filter(|key| key.to_string_lossy().starts_with("AWS_"))
            .collect();
        // SAFETY: no other test of this binary reads or writes the environment outside `std` (they only
        // spawn commands, and std serialises its own environment access), and this runs before the first
        // store of this test is built.
        unsafe {
            for key in inherited {
                std::env::remove_var(key);
            }
            for (key, value) in server.env() {
                std::env::set_var(key, value);
            }
        }
        server
    })
}

#[tokio::test]
async fn library_opens_an_s3_root_and_queries_it() {
    let server = process_s3_server();
    let root = server.url("library");
    generate(server, 300, 7, &root);
    let expected = single_value(&sql_csv(
        server,
        &root,
        "SELECT count(*) AS n FROM pos_receipts",
    ));

    let (ctx, storage) = match open(&root, &EngineOptions::default()).await {
        Ok(opened) => opened,
        Err(e) => panic!("open({root}) failed: {e}"),
    };
    assert_eq!(storage.url().as_str(), format!("{root}/"));
    let batches = match ctx.sql("SELECT count(*) FROM pos_receipts").await {
        Ok(frame) => frame.collect().await,
        Err(e) => Err(e),
    };
    let count = match batches.as_deref() {
        Ok([batch]) => batch.column(0).as_primitive::<Int64Type>().value(0),
        other => panic!("unexpected result {other:?}"),
    };
    assert!(count > 0);
    assert_eq!(count.to_string(), expected);
}

#[test]
fn model_project_runs_and_republishes_on_s3() {
    let server = process_s3_server();
    let root = server.url("runner");
    generate(server, 300, 3, &root);
    let project = match TempDir::new("s3-runner") {
        Ok(dir) => dir,
        Err(e) => panic!("cannot create a temp dir: {e}"),
    };
    let write = |name: &str, sql: &str| {
        if let Err(e) = std::fs::write(project.path().join(format!("{name}.sql")), sql) {
            panic!("cannot write {name}.sql: {e}");
        }
    };
    write(
        "receipts_by_store",
        "-- partition_by: store_id\n-- test: not_null(receipts)\n\
         SELECT store_id, count(*) AS receipts FROM pos_receipts GROUP BY store_id",
    );
    write(
        "receipt_total",
        "-- test: sql: SELECT * FROM receipt_total WHERE receipts = 0\n\
         SELECT sum(receipts) AS receipts FROM receipts_by_store",
    );
    let project_dir = project.path().display().to_string();
    let run_args = ["run", "--project", project_dir.as_str(), "--storage", &root];
    let expected = single_value(&sql_csv(
        server,
        &root,
        "SELECT count(*) AS n FROM pos_receipts",
    ));
    let total = "SELECT receipts FROM receipt_total";
    // twice: the second run publishes over the first and deletes nothing it still needs
    for _ in 0..2 {
        phygital_ok(server, &run_args);
        assert_eq!(single_value(&sql_csv(server, &root, total)), expected);
    }
    let tables = table_rows(&phygital_ok(
        server,
        &["tables", "--storage", &root, "--json"],
    ));
    assert_eq!(tables.get("receipt_total"), Some(&1));

    // a failing data test leaves the published version in place
    write(
        "receipt_total",
        "-- test: sql: SELECT * FROM receipt_total WHERE receipts > 0\n\
         SELECT sum(receipts) + 1 AS receipts FROM receipts_by_store",
    );
    let failed = run(server.command(PHYGITAL), &run_args);
    assert!(!failed.success, "stdout:\n{}", failed.stdout);
    assert!(
        failed
            .stderr
            .contains("receipt_total.sql:1: data test 'sql: SELECT"),
        "{}",
        failed.stderr
    );
    assert_eq!(single_value(&sql_csv(server, &root, total)), expected);
}
