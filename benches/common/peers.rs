//! The Python peers (DuckDB, ChannelAttribution), run as separate processes from the `bench`
//! virtualenv of `tests/services/test-services.sh`. ChannelAttribution is GPL: it is only ever an
//! external process here, never linked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::BenchResult;
use super::measure::{ChildReport, run_reporting, target_dir};

const INSTALL_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/services/test-services.sh"
);
const PEERS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers");

/// The Python of the `bench` virtualenv, installed (once, cached under the target dir) if missing.
pub fn bench_python() -> BenchResult<PathBuf> {
    let output = Command::new("bash")
        .arg(INSTALL_SCRIPT)
        .args(["install", "bench"])
        .env("CARGO_TARGET_DIR", target_dir()?)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {INSTALL_SCRIPT}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "installing the benchmark peers failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = stdout
        .lines()
        .last()
        .ok_or("test-services.sh printed no folder")?;
    let python = PathBuf::from(dir).join("bin/python");
    if !python.is_file() {
        return Err(format!("{} is missing", python.display()).into());
    }
    Ok(python)
}

/// Runs `benches/peers/<script>` with `args`; the script prints one report line.
pub fn run_peer(python: &Path, script: &str, args: &[String]) -> BenchResult<ChildReport> {
    let path = format!("{PEERS_DIR}/{script}");
    run_reporting(
        Command::new(python).arg(&path).args(args),
        &format!("{script} {}", args.join(" ")),
    )
}
