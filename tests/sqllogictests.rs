//! Runs every `tests/slt/**/*.slt` file against a fresh phygital session (`session::build_context`, so the
//! production configuration and every phygital SQL function), with the runner in `tests/common/slt/`.
//!
//! ```text
//! cargo test --test sqllogictests                       # verify all files
//! cargo test --test sqllogictests -- identity attrib    # only files whose path contains one of the words
//! cargo test --test sqllogictests -- --complete         # rewrite expected results in place
//! SLT_TARGET_PARTITIONS=1,4 cargo test --test sqllogictests   # every file at each parallelism (default: 4)
//! ```
//!
//! Ends with the line `N passed, N failed` (N counts files) and exits 1 when a file failed.

#[path = "common/slt/mod.rs"]
mod slt;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use phygital::session::{EngineOptions, build_context};
use slt::runner::{RunSettings, run_script};

/// The engine name that `skipif` / `onlyif` match.
const ENGINE_LABEL: &str = "phygital";
const DEFAULT_TARGET_PARTITIONS: &[usize] = &[4];

struct Arguments {
    complete: bool,
    filters: Vec<String>,
}

fn parse_arguments() -> Arguments {
    let mut arguments = Arguments {
        complete: false,
        filters: vec![],
    };
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--complete" => arguments.complete = true,
            // `cargo test -- <libtest flags>` reaches every test binary; none of them changes what runs here
            flag if flag.starts_with('-') => eprintln!("note: ignoring option {flag}"),
            filter => arguments.filters.push(filter.to_string()),
        }
    }
    arguments
}

fn target_partitions() -> Result<Vec<usize>, String> {
    let Ok(text) = std::env::var("SLT_TARGET_PARTITIONS") else {
        return Ok(DEFAULT_TARGET_PARTITIONS.to_vec());
    };
    let values = text
        .split(',')
        .map(|v| v.trim().parse::<usize>().ok().filter(|n| *n > 0))
        .collect::<Option<Vec<usize>>>();
    match values {
        Some(values) if !values.is_empty() => Ok(values),
        _ => Err(format!(
            "SLT_TARGET_PARTITIONS must be a comma-separated list of positive numbers, got {text:?}"
        )),
    }
}

/// Every `.slt` file under `dir`, recursively, sorted by path.
fn slt_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = vec![];
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "slt") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Runs one file at every parallelism; returns whether it passed. Failures go to stderr.
async fn run_file(
    path: &Path,
    name: &str,
    partitions: &[usize],
    complete: bool,
) -> Result<bool, String> {
    let script = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    // completion rewrites the file from one run; the others would only repeat it
    let partitions = if complete {
        &partitions[..1]
    } else {
        partitions
    };
    let mut passed = true;
    for &target_partitions in partitions {
        let ctx = build_context(&EngineOptions {
            target_partitions,
            ..EngineOptions::default()
        })
        .map_err(|e| format!("cannot build a session: {e}"))?;
        let settings = RunSettings {
            labels: &[ENGINE_LABEL],
            workspace_root: env!("CARGO_MANIFEST_DIR"),
            complete,
        };
        let outcome = run_script(&ctx, &script, &settings)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(completed) = outcome.completed {
            if completed != script {
                std::fs::write(path, completed).map_err(|e| format!("cannot write it: {e}"))?;
                eprintln!("updated {name}");
            }
            continue;
        }
        for failure in &outcome.failures {
            eprintln!("{}", failure.report(name));
        }
        if !outcome.failures.is_empty() {
            println!(
                "FAILED {name} (target_partitions={target_partitions}): {} mismatch(es)",
                outcome.failures.len()
            );
            passed = false;
        }
    }
    Ok(passed)
}

#[tokio::main]
async fn main() -> ExitCode {
    let arguments = parse_arguments();
    let partitions = match target_partitions() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = match slt_files(&root.join("tests/slt")) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: cannot list tests/slt: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for path in files {
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        if !arguments.filters.is_empty()
            && !arguments.filters.iter().any(|f| name.contains(f.as_str()))
        {
            continue;
        }
        let started = Instant::now();
        match run_file(&path, &name, &partitions, arguments.complete).await {
            Ok(true) => {
                passed += 1;
                println!("ok     {name} ({:.2} s)", started.elapsed().as_secs_f64());
            }
            Ok(false) => failed += 1,
            Err(e) => {
                failed += 1;
                println!("FAILED {name}: {e}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
