//! End-to-end checks of the `phygital` binary: bad input gives one clear error line and a non-zero exit,
//! never a panic or a backtrace.

#[path = "common/temp_dir.rs"]
mod temp_dir;

use std::process::{Command, Output};

use temp_dir::TempDir;

fn scratch(label: &str) -> (TempDir, String) {
    let dir = TempDir::new(label).unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    (dir, path)
}

/// Runs the binary with a clean cloud environment (no credentials leak in from the developer's shell).
fn phygital(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phygital"));
    for (k, _) in std::env::vars() {
        if ["AWS_", "GOOGLE_", "AZURE_", "PHYGITAL_", "RUST_LOG"]
            .iter()
            .any(|p| k.starts_with(p))
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_BACKTRACE", "0").args(args).output().unwrap()
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs one query against `root` and returns its CSV output.
fn sql_csv(root: &str, sql: &str) -> String {
    let out = phygital(&["sql", "--storage", root, "--format", "csv", sql]);
    assert_success(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a failed run: exit 1, stderr is exactly one `error: …` line containing every `needle`.
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    for n in needles {
        assert!(lines[0].contains(n), "'{n}' not in: {}", lines[0]);
    }
}

#[test]
fn query_without_tables_works_on_a_missing_folder() {
    let (_dir, root) = scratch("missing");
    let missing = format!("{root}/does-not-exist");
    let out = phygital(&["sql", "--storage", &missing, "SELECT 1 + 1 AS two"]);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| two |") && stdout.contains("| 2   |"),
        "{stdout}"
    );
}

#[test]
fn bad_sql_is_one_line() {
    let (_dir, root) = scratch("badsql");
    assert_one_line_error(
        &phygital(&["sql", "--storage", &root, "SELEC 1"]),
        &["SELEC"],
    );
    assert_one_line_error(
        &phygital(&["sql", "--storage", &root, "SELECT * FROM nowhere"]),
        &["nowhere"],
    );
    // the failing statement of several is named
    assert_one_line_error(
        &phygital(&["sql", "--storage", &root, "SELECT 1; SELECT nope()"]),
        &["statement 2 of 2", "nope"],
    );
}

#[test]
fn unknown_storage_scheme_is_one_line() {
    assert_one_line_error(
        &phygital(&["sql", "--storage", "ftp://host/x", "SELECT 1"]),
        &["ftp"],
    );
    assert_one_line_error(
        &phygital(&["tables", "--storage", "s3:///nobucket"]),
        &["bucket"],
    );
}

#[test]
fn missing_credentials_are_named_without_network() {
    for (url, needle) in [
        ("s3://some-bucket/prefix", "AWS_ACCESS_KEY_ID"),
        ("gs://some-bucket/prefix", "GOOGLE_APPLICATION_CREDENTIALS"),
        ("az://container/prefix", "AZURE_STORAGE_ACCOUNT_KEY"),
    ] {
        let started = std::time::Instant::now();
        let out = phygital(&["sql", "--storage", url, "SELECT 1"]);
        assert_one_line_error(&out, &["credentials", needle]);
        // no silent retries against an instance-metadata endpoint
        assert!(
            started.elapsed().as_secs() < 20,
            "{url} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn corrupt_parquet_names_table_and_file() {
    let (dir, root) = scratch("corrupt");
    let good = format!("{root}/good/");
    let out = phygital(&[
        "sql",
        "--storage",
        &root,
        &format!("COPY (SELECT 1 AS x) TO '{good}' STORED AS PARQUET"),
    ]);
    assert_success(&out);
    std::fs::create_dir_all(dir.path().join("broken")).unwrap();
    std::fs::write(
        dir.path().join("broken/part-0.parquet"),
        b"this is not parquet at all",
    )
    .unwrap();
    let out = phygital(&["sql", "--storage", &root, "SELECT count(*) FROM good"]);
    assert_one_line_error(&out, &["table 'broken'", "part-0.parquet"]);
}

#[test]
fn tables_lists_folders_with_rows_and_schema() {
    let (dir, root) = scratch("tables");
    let sql = format!(
        "COPY (SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'a')) AS t(id, kind)) TO '{}/items/' \
         STORED AS PARQUET PARTITIONED BY (kind)",
        &root
    );
    let out = phygital(&["sql", "--storage", &root, &sql]);
    assert_success(&out);
    std::fs::create_dir_all(dir.path().join("_staging")).unwrap();
    let out = phygital(&["tables", "--storage", &root, "--json"]);
    assert_success(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tables = json.as_array().unwrap();
    assert_eq!(tables.len(), 1, "{json}");
    assert_eq!(tables[0]["name"], "items");
    assert_eq!(tables[0]["rows"], 3);
    let columns: Vec<_> = tables[0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(
        columns,
        ["id", "kind"],
        "hive partition column is a column: {json}"
    );
    // the partition column filters like any other
    assert_eq!(
        sql_csv(&root, "SELECT sum(id) AS s FROM items WHERE kind = 'a'"),
        "s\n4\n"
    );
}

#[test]
fn sql_file_and_output_formats() {
    let (dir, root) = scratch("formats");
    let file = dir.path().join("q.sql");
    std::fs::write(
        &file,
        "CREATE TABLE t AS VALUES (1, 'x'), (2, NULL);\nSELECT * FROM t ORDER BY column1;\n",
    )
    .unwrap();
    let out = phygital(&[
        "sql",
        "--storage",
        &root,
        "-f",
        file.to_str().unwrap(),
        "--format",
        "ndjson",
    ]);
    assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"column1\":1,\"column2\":\"x\"}\n{\"column1\":2}\n"
    );
    let target = format!("{root}/export/out.parquet");
    let out = phygital(&[
        "sql",
        "--storage",
        &root,
        "--format",
        "parquet",
        "--output",
        &target,
        "SELECT 42 AS answer",
    ]);
    assert_success(&out);
    assert_eq!(
        sql_csv(&root, &format!("SELECT answer FROM '{target}'")),
        "answer\n42\n"
    );
    let out = phygital(&["sql", "--storage", &root, "--format", "parquet", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output"));
}

#[test]
fn demo_runs_end_to_end() {
    let (_dir, root) = scratch("demo");
    let out = phygital(&[
        "demo",
        "--storage",
        &root,
        "--customers",
        "1500",
        "--seed",
        "7",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (title, _) in phygital::demo::DEMO_QUERIES {
        assert!(
            stdout.contains(&format!("== {title}")),
            "missing step '{title}' in:\n{stdout}"
        );
    }
    // the whole shipped project ran: its marts are among the tables and in the printed results
    for table in [
        "customer_360",
        "attribution_channel_daily",
        "segment_value",
        "crm_incrementality",
    ] {
        assert!(
            stdout.contains(&format!("{table} (")),
            "no table {table} in:\n{stdout}"
        );
    }
    for value in [
        "| store ",
        "| web ",
        "| hybrid ",
        "| markov ",
        "| revenue_per_customer ",
    ] {
        assert!(stdout.contains(value), "no '{value}' in:\n{stdout}");
    }
    assert!(
        stdout.contains("Parquet tables (sources and models) are under"),
        "{stdout}"
    );
}

#[test]
fn config_file_adds_and_overrides_tables() {
    let (dir, root) = scratch("config");
    // a discovered Parquet table, and a CSV file elsewhere that the config declares under the same name
    let out = phygital(&[
        "sql",
        "--storage",
        &root,
        &format!("COPY (SELECT 1 AS id) TO '{root}/stores/' STORED AS PARQUET"),
    ]);
    assert_success(&out);
    std::fs::create_dir_all(dir.path().join("dim")).unwrap();
    std::fs::write(
        dir.path().join("dim/stores.csv"),
        "id,city\n7,Kazan\n8,Perm\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("dim/regions.csv"), "region\nVolga\n").unwrap();
    let config = dir.path().join("phygital.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{root}\"\n\n[tables.stores]\nlocation = \"dim/stores.csv\"\nformat = \"csv\"\n\n\
             [tables.regions]\nlocation = \"{root}/dim/regions.csv\"\nformat = \"csv\"\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    // the root comes from the config file: no --storage
    let out = phygital(&[
        "--config",
        config,
        "sql",
        "--format",
        "csv",
        "SELECT city FROM stores ORDER BY id",
    ]);
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "city\nKazan\nPerm\n");
    let out = phygital(&["--config", config, "tables", "--json"]);
    assert_success(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<(&str, &str)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["format"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("regions", "csv"), ("stores", "csv")], "{json}");
    // a typo in the config is one clear error naming the key and line
    std::fs::write(dir.path().join("bad.toml"), "[storage]\nrooot = \"x\"\n").unwrap();
    let bad = dir.path().join("bad.toml");
    assert_one_line_error(
        &phygital(&["--config", bad.to_str().unwrap(), "tables"]),
        &["rooot", "line 2"],
    );
}
