//! Timing (warm-up runs, then the median of N), peak RSS, and the child-process protocol.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Map, Value};

use super::BenchResult;

/// The prefix of the one stdout line in which a child reports its measurement.
const REPORT_PREFIX: &str = "BENCH-REPORT ";

/// How often a case runs: `warmup` runs whose time is dropped, then `runs` timed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repetitions {
    pub warmup: usize,
    pub runs: usize,
}

impl Repetitions {
    pub fn args(self) -> [String; 2] {
        [self.warmup.to_string(), self.runs.to_string()]
    }

    pub fn parse(warmup: &str, runs: &str) -> BenchResult<Self> {
        let repetitions = Self {
            warmup: warmup.parse()?,
            runs: runs.parse()?,
        };
        if repetitions.runs == 0 {
            return Err("at least one timed run is needed".into());
        }
        Ok(repetitions)
    }
}

/// Runs `case` `warmup + runs` times; returns the seconds of the timed runs and the last result
/// (the caller checks that every run produced the same).
pub fn time_runs<T: PartialEq + std::fmt::Debug>(
    repetitions: Repetitions,
    mut case: impl FnMut() -> BenchResult<T>,
) -> BenchResult<(Vec<f64>, T)> {
    let mut seconds = Vec::with_capacity(repetitions.runs);
    let mut last: Option<T> = None;
    for run in 0..repetitions.warmup + repetitions.runs {
        let started = Instant::now();
        let result = case()?;
        let elapsed = started.elapsed().as_secs_f64();
        if run >= repetitions.warmup {
            seconds.push(elapsed);
        }
        if let Some(previous) = &last
            && *previous != result
        {
            return Err(format!("runs disagree: {previous:?} then {result:?}").into());
        }
        last = Some(result);
    }
    match last {
        Some(result) => Ok((seconds, result)),
        None => Err("no run".into()),
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// This process's peak resident set size (VmHWM of /proc/self/status), in bytes.
pub fn peak_rss_bytes() -> BenchResult<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .ok_or("/proc/self/status has no VmHWM line")?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

/// What a child measured: the seconds of its timed runs, its peak RSS and case-specific values.
#[derive(Debug, Clone)]
pub struct ChildReport {
    pub seconds: Vec<f64>,
    pub peak_rss_bytes: u64,
    pub values: Map<String, Value>,
}

impl ChildReport {
    pub fn median_seconds(&self) -> f64 {
        median(&self.seconds)
    }

    pub fn value_f64(&self, key: &str) -> BenchResult<f64> {
        self.values.get(key).and_then(Value::as_f64).ok_or_else(|| {
            format!(
                "the child's report has no number '{key}': {:?}",
                self.values
            )
            .into()
        })
    }

    pub fn value(&self, key: &str) -> BenchResult<&Value> {
        self.values.get(key).ok_or_else(|| {
            format!("the child's report has no value '{key}': {:?}", self.values).into()
        })
    }

    /// Parses a report line printed by [`print_report`] or by a Python peer (same format).
    pub fn parse(stdout: &str) -> BenchResult<Self> {
        let line = stdout
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix(REPORT_PREFIX))
            .ok_or_else(|| format!("no '{REPORT_PREFIX}' line in the output:\n{stdout}"))?;
        let Value::Object(mut values) = serde_json::from_str(line)? else {
            return Err(format!("the report is not a JSON object: {line}").into());
        };
        let seconds = match values.remove("seconds") {
            Some(Value::Array(seconds)) => seconds
                .iter()
                .map(|s| s.as_f64().ok_or("a non-numeric time in the report"))
                .collect::<Result<Vec<f64>, _>>()?,
            _ => return Err(format!("the report has no 'seconds' list: {line}").into()),
        };
        let peak_rss_bytes = values
            .remove("peak_rss_bytes")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| format!("the report has no 'peak_rss_bytes': {line}"))?;
        Ok(Self {
            seconds,
            peak_rss_bytes,
            values,
        })
    }
}

/// In a child: prints the report line (the peak RSS is read here, at the end of the case).
pub fn print_report(seconds: &[f64], values: Map<String, Value>) -> BenchResult<()> {
    let mut report = values;
    report.insert("seconds".into(), Value::from(seconds.to_vec()));
    report.insert("peak_rss_bytes".into(), Value::from(peak_rss_bytes()?));
    println!("{REPORT_PREFIX}{}", Value::Object(report));
    Ok(())
}

/// Runs this bench binary as a child with `--child <args>` and returns its report; stderr passes
/// through, so a child's error is shown where it happens.
pub fn run_child(args: &[String]) -> BenchResult<ChildReport> {
    let exe = std::env::current_exe()?;
    run_reporting(Command::new(exe).arg("--child").args(args), &args.join(" "))
}

/// Runs `command`, which prints a report line, and parses it.
pub fn run_reporting(command: &mut Command, what: &str) -> BenchResult<ChildReport> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("{what} failed ({}); its output:\n{stdout}", output.status).into());
    }
    ChildReport::parse(&stdout).map_err(|e| format!("{what}: {e}").into())
}

/// The cargo target directory this bench binary was built into (`<target>/release/deps/<bench>`):
/// generated data and the peers' virtualenv are cached there.
pub fn target_dir() -> BenchResult<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .nth(3)
        .map(PathBuf::from)
        .ok_or_else(|| format!("cannot find the target dir above {}", exe.display()).into())
}

/// The folder for this benchmark's generated data, created if missing.
pub fn data_dir(bench: &str) -> BenchResult<PathBuf> {
    let dir = target_dir()?.join("bench-data").join(bench);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
