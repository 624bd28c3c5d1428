//! `phygital sync bigquery` against a real BigQuery emulator (local-bigquery on 127.0.0.1, installed and started by
//! the test): every mode round-trips generated tables (nested `items`, NULLs, Unicode, µs timestamps, decimals,
//! floats) with the read-back row count and checksum equal to the source's, reruns are idempotent, bad input is
//! one clear error, and a fault proxy between the CLI and the emulator (connection resets, 500, 429, a killed
//! process) never leaves a lost or duplicated row.
//!
//! One emulator and one generated data set are shared by the whole binary; every test syncs into its own dataset.

#[path = "common/fault_proxy.rs"]
mod fault_proxy;
#[path = "common/services.rs"]
mod services;
#[path = "common/temp_dir.rs"]
mod temp_dir;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::SchemaRef;
use fault_proxy::{Fault, FaultProxy, Request};
use phygital::session::{EngineOptions, open};
use phygital_connectors::bigquery::{
    ChecksumValue, TableRef, checksum_batches, checksum_sql, table_schema,
};
use serde_json::{Value, json};
use services::{BIGQUERY_PROJECT, BigQueryServer};
use temp_dir::TempDir;

const PHYGITAL: &str = env!("CARGO_BIN_EXE_phygital");

fn emulator() -> &'static BigQueryServer {
    static SERVER: OnceLock<BigQueryServer> = OnceLock::new();
    SERVER.get_or_init(|| match BigQueryServer::start() {
        Ok(server) => {
            eprintln!(
                "BigQuery emulator at {} ready in {:.1} s",
                server.endpoint,
                server.startup.as_secs_f64()
            );
            server
        }
        Err(e) => panic!("cannot start the BigQuery emulator: {e}"),
    })
}

/// A small generated data set: every column type of the generator, nested receipt lines included.
fn data() -> &'static TempDir {
    static DATA: OnceLock<TempDir> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = TempDir::new("bigquery-data").expect("temp dir");
        let out = dir.path().to_string_lossy().into_owned();
        let result = run(
            &[
                "generate",
                "--customers",
                "150",
                "--seed",
                "11",
                "--out",
                &out,
                "--quiet",
            ],
            &[],
        );
        assert!(result.success, "generate failed: {}", result.stderr);
        dir
    })
}

fn storage() -> String {
    data().path().to_string_lossy().into_owned()
}

/// A dataset name no other test uses.
fn dataset(label: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{label}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(PHYGITAL);
    command
        .args(args)
        .env_remove("BIGQUERY_EMULATOR_HOST")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env("HOME", std::env::temp_dir()) // no gcloud credentials of the developer
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = command(args, env)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PHYGITAL}: {e}"));
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `phygital sync bigquery --json` into `dataset` through `endpoint`; the per-table reports.
fn sync(endpoint: &str, dataset: &str, extra: &[&str]) -> Result<Vec<Value>, Run> {
    let storage = storage();
    let mut args = vec![
        "sync",
        "bigquery",
        "--storage",
        &storage,
        "--project",
        BIGQUERY_PROJECT,
        "--dataset",
        dataset,
        "--endpoint",
        endpoint,
        "--json",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let result = run(&args, &[]);
    if !result.success {
        return Err(result);
    }
    match serde_json::from_str::<Value>(&result.stdout) {
        Ok(Value::Array(tables)) => Ok(tables),
        _ => panic!(
            "sync printed no JSON report:\n{}\n{}",
            result.stdout, result.stderr
        ),
    }
}

fn sync_ok(endpoint: &str, dataset: &str, extra: &[&str]) -> Vec<Value> {
    sync(endpoint, dataset, extra).unwrap_or_else(|r| {
        panic!(
            "sync {extra:?} into {dataset} failed:\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        )
    })
}

/// One HTTP/1.0 request to the emulator; the JSON answer.
fn emulator_request(method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let server = emulator();
    let mut stream =
        TcpStream::connect((Ipv4Addr::LOCALHOST, server.port)).expect("connect to the emulator");
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .expect("send to the emulator");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("read from the emulator");
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Runs a query on the emulator; the rows as cell values.
fn query(sql: &str) -> Vec<Vec<Value>> {
    let (status, response) = emulator_request(
        "POST",
        &format!("/bigquery/v2/projects/{BIGQUERY_PROJECT}/queries"),
        Some(
            &json!({"query": sql, "useLegacySql": false, "formatOptions": {"useInt64Timestamp": true}}),
        ),
    );
    assert_eq!(status, 200, "query failed: {response}\n{sql}");
    response["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row["f"]
                        .as_array()
                        .map(|cells| cells.iter().map(|c| c["v"].clone()).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn count(dataset: &str, table: &str) -> u64 {
    let rows = query(&format!(
        "SELECT COUNT(*) FROM `{BIGQUERY_PROJECT}.{dataset}.{table}`"
    ));
    rows[0][0]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a count")
}

fn table_ids(dataset: &str) -> Vec<String> {
    let (status, response) = emulator_request(
        "GET",
        &format!(
            "/bigquery/v2/projects/{BIGQUERY_PROJECT}/datasets/{dataset}/tables?maxResults=1000"
        ),
        None,
    );
    assert_eq!(status, 200, "{response}");
    response["tables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["tableReference"]["tableId"].as_str().map(str::to_owned))
        .collect()
}

/// The source table's schema and checksum, computed here with the engine and the connector's checksum.
fn local_checksum(table: &str) -> (SchemaRef, ChecksumValue) {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<String, (SchemaRef, ChecksumValue)>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().expect("cache").get(table) {
        return hit.clone();
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let value = runtime.block_on(async {
        let options = EngineOptions {
            target_partitions: 3,
            ..EngineOptions::default()
        };
        let (ctx, _) = open(&storage(), &options).await.expect("open the data set");
        let frame = ctx.table(table).await.expect("source table");
        let schema: SchemaRef = std::sync::Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.expect("read the source");
        (schema, checksum_batches(&batches).expect("local checksum"))
    });
    cache
        .lock()
        .expect("cache")
        .insert(table.to_owned(), value.clone());
    value
}

/// The BigQuery table's row count and checksum, read back with the checksum query, equal the source's.
fn assert_equals_source(dataset: &str, table: &str, source: &str) {
    let (schema, local) = local_checksum(source);
    let target = TableRef::new(BIGQUERY_PROJECT, dataset, table).expect("table ref");
    let sql = checksum_sql(&target, &table_schema(&schema).expect("schema")).expect("checksum sql");
    let rows = query(&sql);
    let cell = |i: usize| {
        rows[0][i]
            .as_str()
            .and_then(|v| v.parse::<i64>().ok())
            .expect("an integer")
    };
    let remote = ChecksumValue::from_query_result(cell(0), cell(1), cell(2)).expect("checksum");
    assert_eq!(
        remote, local,
        "{dataset}.{table} differs from source {source}"
    );
    let staging: Vec<String> = table_ids(dataset)
        .into_iter()
        .filter(|t| t.starts_with("_phygital_stage_"))
        .collect();
    assert!(
        staging.is_empty(),
        "staging tables left in {dataset}: {staging:?}"
    );
}

/// Rows of `sql` run by the engine over the data set, as JSON objects' values in `columns` order.
fn local_rows(sql: &str, columns: &[&str]) -> Vec<Vec<Value>> {
    let storage = storage();
    let result = run(
        &["sql", "--storage", &storage, "--format", "ndjson", sql],
        &[],
    );
    assert!(result.success, "{}", result.stderr);
    result
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let object: Value = serde_json::from_str(line).expect("ndjson");
            columns
                .iter()
                .map(|c| object.get(*c).cloned().unwrap_or(Value::Null))
                .collect()
        })
        .collect()
}

/// Cells as text, so that the emulator's strings and the engine's numbers compare.
fn texts(rows: Vec<Vec<Value>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|row| {
            row.into_iter()
                .map(|v| match v {
                    Value::Null => "NULL".to_owned(),
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn replace_round_trips_every_generated_table_and_reruns_cleanly() {
    let endpoint = &emulator().endpoint;
    let dataset = dataset("replace");
    let reports = sync_ok(endpoint, &dataset, &["--location", "US"]);
    let tables: Vec<String> = reports
        .iter()
        .map(|r| r["manifest"]["source"].as_str().unwrap_or("").to_owned())
        .collect();
    for expected in [
        "pos_receipts",
        "web_events",
        "marketing_touches",
        "stores",
        "truth_channel_effects",
    ] {
        assert!(
            tables.iter().any(|t| t == expected),
            "{expected} not synced: {tables:?}"
        );
    }
    for table in &tables {
        assert_equals_source(&dataset, table, table);
    }
    // A rerun replaces: same rows, no duplicates, no staging left.
    let again = sync_ok(
        endpoint,
        &dataset,
        &["--table", "pos_receipts", "--table", "stores"],
    );
    assert_eq!(again.len(), 2);
    assert_equals_source(&dataset, "pos_receipts", "pos_receipts");
    assert_equals_source(&dataset, "stores", "stores");

    // Actual rows, not only their checksum: every column of stores, and receipts with their nested lines.
    let remote = query(&format!(
        "SELECT store_id, store_name, city, phone_raw, CAST(opened_date AS STRING) AS opened_date \
         FROM `{BIGQUERY_PROJECT}.{dataset}.stores` ORDER BY store_id"
    ));
    let columns = ["store_id", "store_name", "city", "phone_raw", "opened_date"];
    let local = local_rows(
        "SELECT store_id, store_name, city, phone_raw, CAST(opened_date AS VARCHAR) AS opened_date FROM stores ORDER BY store_id",
        &columns,
    );
    assert!(!local.is_empty());
    assert_eq!(texts(remote), texts(local));
    let remote = query(&format!(
        "SELECT receipt_id, UNIX_MICROS(receipt_ts), store_id, loyalty_card, phone_raw, CAST(amount * 100 AS INT64), \
         currency, ARRAY_LENGTH(items) FROM `{BIGQUERY_PROJECT}.{dataset}.pos_receipts` ORDER BY receipt_id"
    ));
    let local = local_rows(
        "SELECT receipt_id, CAST(receipt_ts AS BIGINT) AS ts, store_id, loyalty_card, phone_raw, \
         CAST(amount * 100 AS BIGINT) AS cents, currency, CAST(array_length(items) AS BIGINT) AS lines \
         FROM pos_receipts ORDER BY receipt_id",
        &[
            "receipt_id",
            "ts",
            "store_id",
            "loyalty_card",
            "phone_raw",
            "cents",
            "currency",
            "lines",
        ],
    );
    assert!(
        local.iter().any(|row| row[3].is_null()),
        "no NULL loyalty card in the sample"
    );
    assert_eq!(texts(remote), texts(local));
    // The nested receipt lines, flattened.
    let remote = query(&format!(
        "SELECT receipt_id, l.sku, l.qty, CAST(l.unit_price * 100 AS INT64) \
         FROM `{BIGQUERY_PROJECT}.{dataset}.pos_receipts`, UNNEST(items) AS l ORDER BY receipt_id, l.sku, l.qty"
    ));
    let local = local_rows(
        "SELECT receipt_id, l['sku'] AS sku, l['qty'] AS qty, CAST(l['unit_price'] * 100 AS BIGINT) AS cents \
         FROM (SELECT receipt_id, unnest(items) AS l FROM pos_receipts) ORDER BY receipt_id, sku, qty",
        &["receipt_id", "sku", "qty", "cents"],
    );
    assert!(local.len() > 73 / 2);
    assert_eq!(texts(remote), texts(local));
}

#[test]
fn append_is_exactly_once_per_source_snapshot() {
    let endpoint = &emulator().endpoint;
    let dataset = dataset("append");
    let first = sync_ok(
        endpoint,
        &dataset,
        &["--table", "events=web_events", "--mode", "append"],
    );
    assert_eq!(first[0]["manifest"]["status"], "synced");
    assert_equals_source(&dataset, "events", "web_events");
    // The same files again: nothing appended, reported as such.
    let second = sync_ok(
        endpoint,
        &dataset,
        &["--table", "events=web_events", "--mode", "append"],
    );
    assert_eq!(second[0]["manifest"]["status"], "already-applied");
    assert_equals_source(&dataset, "events", "web_events");
    // New files (another snapshot) are appended, once: a slice of the events written to a second root.
    let (_, web) = local_checksum("web_events");
    assert_eq!(count(&dataset, "events"), web.rows);
    let other = TempDir::new("bigquery-append").expect("temp dir");
    let other_root = other.path().to_string_lossy().into_owned();
    let slice = "SELECT * FROM web_events WHERE event_name = 'login'";
    let write = run(
        &[
            "sql",
            "--storage",
            &storage(),
            "--format",
            "parquet",
            "--output",
            &format!("{other_root}/web_events/part-0.parquet"),
            slice,
        ],
        &[],
    );
    assert!(write.success, "{}", write.stderr);
    let slice_rows = local_rows(&format!("SELECT count(*) AS n FROM ({slice})"), &["n"])[0][0]
        .as_u64()
        .expect("a count");
    assert!(slice_rows > 0);
    let append_slice = || {
        run(
            &[
                "sync",
                "bigquery",
                "--storage",
                &other_root,
                "--project",
                BIGQUERY_PROJECT,
                "--dataset",
                &dataset,
                "--endpoint",
                endpoint,
                "--table",
                "events=web_events",
                "--mode",
                "append",
                "--quiet",
            ],
            &[],
        )
    };
    for expected_status in ["synced", "already-applied"] {
        let result = append_slice();
        assert!(result.success, "{}", result.stderr);
        assert!(result.stdout.contains(expected_status), "{}", result.stdout);
        assert_eq!(count(&dataset, "events"), web.rows + slice_rows);
    }
}

#[test]
fn merge_upserts_by_key_and_a_rerun_changes_nothing() {
    let endpoint = &emulator().endpoint;
    let dataset = dataset("merge");
    for _ in 0..2 {
        let reports = sync_ok(
            endpoint,
            &dataset,
            &[
                "--table",
                "receipts=pos_receipts",
                "--mode",
                "merge",
                "--key",
                "receipt_id",
            ],
        );
        assert_eq!(reports[0]["manifest"]["key"], json!(["receipt_id"]));
        assert_equals_source(&dataset, "receipts", "pos_receipts");
    }
    let distinct = query(&format!(
        "SELECT COUNT(DISTINCT receipt_id) FROM `{BIGQUERY_PROJECT}.{dataset}.receipts`"
    ));
    assert_eq!(
        distinct[0][0].as_str(),
        Some(count(&dataset, "receipts").to_string().as_str())
    );
    // Rows of the target whose key is not in the batch are kept; matching ones are updated.
    query(&format!(
        "INSERT INTO `{BIGQUERY_PROJECT}.{dataset}.receipts` (receipt_id, receipt_ts, store_id, amount, currency) \
         VALUES ('not-in-source', TIMESTAMP '2020-01-01 00:00:00+00', 'S0', 1.5, 'EUR')"
    ));
    query(&format!(
        "UPDATE `{BIGQUERY_PROJECT}.{dataset}.receipts` SET currency = 'XXX' WHERE receipt_id != 'not-in-source'"
    ));
    sync_ok(
        endpoint,
        &dataset,
        &[
            "--table",
            "receipts=pos_receipts",
            "--mode",
            "merge",
            "--key",
            "receipt_id",
        ],
    );
    let (_, receipts) = local_checksum("pos_receipts");
    assert_eq!(count(&dataset, "receipts"), receipts.rows + 1);
    let stale = query(&format!(
        "SELECT COUNT(*) FROM `{BIGQUERY_PROJECT}.{dataset}.receipts` WHERE currency = 'XXX'"
    ));
    assert_eq!(
        stale[0][0].as_str(),
        Some("0"),
        "matched rows were not updated"
    );
}

#[test]
fn replace_partitions_touches_only_the_batch_days() {
    let endpoint = &emulator().endpoint;
    let dataset = dataset("partitions");
    let args = [
        "--table",
        "touches=marketing_touches",
        "--mode",
        "replace-partitions",
        "--partition-by",
        "touch_ts",
    ];
    sync_ok(endpoint, &dataset, &args);
    assert_equals_source(&dataset, "touches", "marketing_touches");
    let (status, table) = emulator_request(
        "GET",
        &format!("/bigquery/v2/projects/{BIGQUERY_PROJECT}/datasets/{dataset}/tables/touches"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(table["timePartitioning"]["field"], "touch_ts");
    // A row on a day outside the batch survives; a rerun does not duplicate the batch.
    query(&format!(
        "INSERT INTO `{BIGQUERY_PROJECT}.{dataset}.touches` (touch_id, touch_ts, channel, cost) VALUES ('old', TIMESTAMP '2020-01-01 10:00:00+00', 'sms', 0)"
    ));
    sync_ok(endpoint, &dataset, &args);
    let (_, touches) = local_checksum("marketing_touches");
    assert_eq!(count(&dataset, "touches"), touches.rows + 1);
    let old = query(&format!(
        "SELECT COUNT(*) FROM `{BIGQUERY_PROJECT}.{dataset}.touches` WHERE touch_id = 'old'"
    ));
    assert_eq!(old[0][0].as_str(), Some("1"));
}

#[test]
fn dry_run_prints_the_plan_without_any_request() {
    // Nothing listens on port 1: any request would fail the command.
    let storage = storage();
    let result = run(
        &[
            "sync",
            "bigquery",
            "--storage",
            &storage,
            "--project",
            BIGQUERY_PROJECT,
            "--dataset",
            "never_created",
            "--endpoint",
            "http://127.0.0.1:1",
            "--table",
            "pos_receipts",
            "--table",
            "t2=stores",
            "--mode",
            "merge",
            "--key",
            "receipt_id",
            "--dry-run",
        ],
        &[],
    );
    // stores has no receipt_id: the plan is checked for every table before anything else.
    assert!(!result.success);
    assert!(
        result
            .stderr
            .contains("key column `receipt_id` is not a column"),
        "{}",
        result.stderr
    );
    let result = run(
        &[
            "sync",
            "bigquery",
            "--storage",
            &storage,
            "--project",
            BIGQUERY_PROJECT,
            "--dataset",
            "never_created",
            "--endpoint",
            "http://127.0.0.1:1",
            "--table",
            "pos_receipts",
            "--dry-run",
        ],
        &[],
    );
    assert!(result.success, "{}", result.stderr);
    for expected in [
        "test-proj.never_created.pos_receipts  <-  pos_receipts  (replace)",
        "receipt_ts TIMESTAMP",
        "amount NUMERIC",
        "items RECORD REPEATED",
        "        sku STRING",
        "dry run: nothing was sent to BigQuery",
    ] {
        assert!(
            result.stdout.contains(expected),
            "missing {expected:?} in\n{}",
            result.stdout
        );
    }
}

fn assert_one_line_error(result: &Run, expected: &[&str]) {
    assert!(
        !result.success,
        "expected a failure, got:\n{}",
        result.stdout
    );
    let lines: Vec<&str> = result
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one error line:\n{}",
        result.stderr
    );
    for e in expected {
        assert!(lines[0].contains(e), "missing {e:?} in {:?}", lines[0]);
    }
}

#[test]
fn bad_input_is_one_clear_error_and_leaves_the_target_untouched() {
    let endpoint = emulator().endpoint.clone();
    let storage = storage();
    let dataset = dataset("bad");
    let base = |extra: &[&str]| {
        let mut args = vec![
            "sync",
            "bigquery",
            "--storage",
            storage.as_str(),
            "--project",
            BIGQUERY_PROJECT,
            "--dataset",
            dataset.as_str(),
            "--endpoint",
            endpoint.as_str(),
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run_args =
        |args: Vec<String>| run(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_one_line_error(
        &run_args(base(&["--table", "bad`name=stores"])),
        &["table id", "bad`name"],
    );
    assert_one_line_error(
        &run_args(base(&["--table", "a.b=stores"])),
        &["table id", "a.b"],
    );
    assert_one_line_error(
        &run_args(base(&["--table", "stores", "--no-create"])),
        &[
            &format!("dataset {BIGQUERY_PROJECT}.{dataset} does not exist"),
            "--no-create",
        ],
    );
    let (status, _) = emulator_request(
        "GET",
        &format!("/bigquery/v2/projects/{BIGQUERY_PROJECT}/datasets/{dataset}"),
        None,
    );
    assert_eq!(status, 404, "--no-create created the dataset");

    // An unsupported type (a list of lists) is named with its table and column before any request.
    let nested = TempDir::new("bigquery-nested").expect("temp dir");
    let nested_root = nested.path().to_string_lossy().into_owned();
    let write = run(
        &[
            "sql",
            "--storage",
            &nested_root,
            "--format",
            "parquet",
            "--output",
            &format!("{nested_root}/grid/part-0.parquet"),
            "SELECT 1 AS id, [[1, 2], [3]] AS grid",
        ],
        &[],
    );
    assert!(write.success, "{}", write.stderr);
    let result = run(
        &[
            "sync",
            "bigquery",
            "--storage",
            &nested_root,
            "--project",
            BIGQUERY_PROJECT,
            "--dataset",
            &dataset,
            "--endpoint",
            "http://127.0.0.1:1",
        ],
        &[],
    );
    assert_one_line_error(&result, &["grid.grid", "a list of lists"]);

    // A credentials file that is not a service-account key: one line naming the file, no content.
    let key = nested.path().join("key.json");
    std::fs::write(
        &key,
        r#"{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----TOPSECRET"#,
    )
    .expect("write key");
    let key_arg = key.to_string_lossy().into_owned();
    let result = run(
        &[
            "sync",
            "bigquery",
            "--storage",
            &storage,
            "--project",
            BIGQUERY_PROJECT,
            "--dataset",
            &dataset,
            "--table",
            "stores",
            "--credentials",
            &key_arg,
        ],
        &[],
    );
    assert_one_line_error(&result, &["credentials", "key.json"]);
    assert!(!result.stderr.contains("TOPSECRET"), "{}", result.stderr);
    // No credentials at all (and no emulator): says what to set.
    let result = run(
        &[
            "sync",
            "bigquery",
            "--storage",
            &storage,
            "--project",
            BIGQUERY_PROJECT,
            "--dataset",
            &dataset,
            "--table",
            "stores",
        ],
        &[],
    );
    assert_one_line_error(
        &result,
        &["no BigQuery credentials", "GOOGLE_APPLICATION_CREDENTIALS"],
    );
    // Nothing of this created the dataset.
    let (status, _) = emulator_request(
        "GET",
        &format!("/bigquery/v2/projects/{BIGQUERY_PROJECT}/datasets/{dataset}"),
        None,
    );
    assert_eq!(status, 404);
}

/// A step of the sync, as the requests that carry it.
#[derive(Debug, Clone, Copy)]
enum Step {
    CreateDataset,
    CreateTable,
    CreateStaging,
    Upload,
    Copy,
    Merge,
    PartitionScript,
    VerifyQuery,
}

impl Step {
    fn matches(self, request: &Request<'_>) -> bool {
        let post = request.method == "POST";
        let job = post && request.path_ends_with("/jobs") && !request.path.starts_with("/upload/");
        match self {
            Step::CreateDataset => post && request.path_ends_with("/datasets"),
            Step::CreateTable | Step::CreateStaging => post && request.path_ends_with("/tables"),
            Step::Upload => post && request.path.starts_with("/upload/"),
            Step::Copy => job && request.body_contains("\"copy\""),
            Step::Merge => job && request.body_contains("MERGE "),
            Step::PartitionScript => job && request.body_contains("BEGIN TRANSACTION"),
            Step::VerifyQuery => {
                post && request.path_ends_with("/queries") && request.body_contains("row_hashes")
            }
        }
    }

    fn occurrence(self) -> usize {
        match self {
            // the target first, then the staging table
            Step::CreateStaging => 2,
            // the staging table first, then the target
            Step::VerifyQuery => 2,
            _ => 1,
        }
    }
}

/// One cell of the fault matrix: sync `stores` in `mode` with `fault` on `step`; the table must end equal to the
/// source after retries, or after a rerun when the process was killed.
fn fault_case(step: Step, mode: &[&str], fault: Fault) -> Result<(), String> {
    let proxy = FaultProxy::start(emulator().port);
    let dataset = dataset("fault");
    let mut args = vec!["--table", "stores"];
    if matches!(step, Step::Upload) {
        // Several load jobs, so that the fault hits one of a series (the emulator is slow per job: only here).
        args.extend_from_slice(&["--chunk-bytes", "300"]);
    }
    args.extend_from_slice(mode);
    proxy.inject(fault, step.occurrence(), move |request| {
        step.matches(request)
    });
    let label = format!("{step:?} × {fault:?} ({mode:?})");
    if matches!(fault, Fault::Hold | Fault::ForwardThenHold) {
        let storage = storage();
        let endpoint = proxy.endpoint();
        let mut full = vec![
            "sync",
            "bigquery",
            "--storage",
            &storage,
            "--project",
            BIGQUERY_PROJECT,
            "--dataset",
            &dataset,
            "--endpoint",
            &endpoint,
            "--quiet",
        ];
        full.extend_from_slice(&args);
        let mut child = command(&full, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let fired = proxy.wait_fired(Duration::from_secs(60));
        let _ = child.kill();
        let _ = child.wait();
        if !fired {
            return Err(format!(
                "{label}: the step was never reached; requests: {:?}",
                proxy.log()
            ));
        }
        proxy.clear();
        // The rerun, through the same proxy without faults, converges.
        sync(&proxy.endpoint(), &dataset, &args)
            .map_err(|r| format!("{label}: the rerun failed: {}", r.stderr))?;
    } else {
        let result = sync(&proxy.endpoint(), &dataset, &args);
        if proxy.fired().is_empty() {
            return Err(format!(
                "{label}: the fault never fired; requests: {:?}",
                proxy.log()
            ));
        }
        result.map_err(|r| format!("{label}: the sync did not recover: {}", r.stderr))?;
    }
    // Equal row count and checksum: nothing lost, nothing duplicated (a duplicate adds a row and its hash).
    let check = std::panic::catch_unwind(|| assert_equals_source(&dataset, "stores", "stores"));
    check.map_err(|_| format!("{label}: the table differs from the source after recovery"))
}

#[test]
fn fault_matrix_every_step_recovers_without_lost_or_duplicated_rows() {
    let started = Instant::now();
    let replace: &[&str] = &["--mode", "replace"];
    let append: &[&str] = &["--mode", "append"];
    let merge: &[&str] = &["--mode", "merge", "--key", "store_id"];
    let partitions: &[&str] = &[
        "--mode",
        "replace-partitions",
        "--partition-by",
        "opened_date",
    ];
    let steps: [(Step, &[&str]); 9] = [
        (Step::CreateDataset, replace),
        (Step::CreateTable, replace),
        (Step::CreateStaging, replace),
        (Step::Upload, replace),
        (Step::Copy, replace),
        (Step::Copy, append),
        (Step::Merge, merge),
        (Step::PartitionScript, partitions),
        (Step::VerifyQuery, replace),
    ];
    let mut cases = Vec::new();
    for (step, mode) in steps {
        // The reset comes after BigQuery did the work (the harder case: a retry finds it done); the kill
        // while the request is in flight, before BigQuery saw it, and (for the writes that commit) after
        // BigQuery did it but before the client heard back.
        for fault in [
            Fault::ResetAfter,
            Fault::Status(500),
            Fault::Status(429),
            Fault::Hold,
        ] {
            cases.push((step, mode, fault));
        }
        if matches!(
            step,
            Step::Copy | Step::Merge | Step::PartitionScript | Step::Upload
        ) {
            cases.push((step, mode, Fault::ForwardThenHold));
        }
    }
    // A connection that fails before the request reaches BigQuery, once for a job and once for a query.
    for (step, mode) in [(Step::Upload, replace), (Step::VerifyQuery, replace)] {
        cases.push((step, mode, Fault::ResetBefore));
    }
    let total = cases.len();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let chunks: Vec<_> = cases.chunks(total.div_ceil(4)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|(step, mode, fault)| fault_case(*step, mode, *fault).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["a fault case panicked".into()])
            })
            .collect()
    });
    eprintln!(
        "fault matrix: {total} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} fault cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Values at the edges of every type the generated tables do not reach: NaN, infinities, -0.0 in a list, 1e300,
/// Unicode with quotes, backslashes and tabs, the first day BigQuery can store, the last µs of a day
/// (nanosecond TIME), a wall-clock DATETIME, a TIMESTAMP before the epoch, a BIGNUMERIC, NULLs and empty lists.
#[test]
fn edge_values_of_every_type_round_trip_exactly() {
    let endpoint = &emulator().endpoint;
    let root = TempDir::new("bigquery-edges").expect("temp dir");
    let root_text = root.path().to_string_lossy().into_owned();
    let sql = r#"SELECT id, s, f, d, t, arrow_cast(ts, 'Timestamp(Microsecond, None)') AS ts,
          arrow_cast(tz, 'Timestamp(Microsecond, Some("UTC"))') AS tz, b, n, l
        FROM (VALUES
          (1, 'ünï 😀 "q" \\ tab	end', CAST('NaN' AS DOUBLE), DATE '0001-01-01', CAST('23:59:59.999999' AS TIME),
           '2262-01-01T23:59:59.999999', '1900-01-01T00:00:00.000001Z', true,
           CAST(-12345678901234567.891 AS DECIMAL(38, 3)), [1.5, -0.0]),
          (2, NULL, CAST('-inf' AS DOUBLE), NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          (3, '', 1e300, DATE '1970-01-01', TIME '00:00:00', '1970-01-01T00:00:00', '1969-12-31T23:59:59.999999Z',
           false, 0.5, [])
        ) AS t(id, s, f, d, t, ts, tz, b, n, l)"#;
    let write = run(
        &[
            "sql",
            "--storage",
            &root_text,
            "--format",
            "parquet",
            "--output",
            &format!("{root_text}/edges/part-0.parquet"),
            sql,
        ],
        &[],
    );
    assert!(write.success, "{}", write.stderr);
    let dataset = dataset("edges");
    let result = run(
        &[
            "sync",
            "bigquery",
            "--storage",
            &root_text,
            "--project",
            BIGQUERY_PROJECT,
            "--dataset",
            &dataset,
            "--endpoint",
            endpoint,
            "--json",
            "--quiet",
        ],
        &[],
    );
    // The sync verified its own checksum; read back a few values as BigQuery shows them.
    assert!(result.success, "{}", result.stderr);
    let rows = query(&format!(
        "SELECT id, s, CAST(f AS STRING), CAST(d AS STRING), CAST(t AS STRING), UNIX_MICROS(tz), ARRAY_LENGTH(l) \
         FROM `{BIGQUERY_PROJECT}.{dataset}.edges` ORDER BY id"
    ));
    let texts = texts(rows);
    assert_eq!(texts[0][1], "ünï 😀 \"q\" \\\\ tab\tend");
    assert_eq!(texts[0][2].to_ascii_lowercase(), "nan");
    assert_eq!(texts[0][3], "0001-01-01");
    assert_eq!(texts[0][4], "23:59:59.999999");
    assert_eq!(texts[0][5], "-2208988799999999");
    assert_eq!(texts[1][1], "NULL");
    assert_eq!(texts[1][2].to_ascii_lowercase(), "-inf");
    assert_eq!(texts[2][5], "-1");
    assert_eq!(texts[2][6], "0");
}
