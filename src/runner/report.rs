//! What a run did, model by model: for people (one line per model) and machines (`--json`).

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Success,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelStatus {
    /// Written, tested and published.
    Success,
    /// Planning, writing or a data test failed; the previous version stays published.
    Failed,
    /// Selected, but not run because a model before it failed.
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Passed,
    Failed,
}

/// The report of one `phygital run`.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub project: String,
    pub storage: String,
    pub status: RunStatus,
    pub seconds: f64,
    /// The selected models in run order.
    pub models: Vec<ModelReport>,
    /// The error that stopped the run, for the caller to return.
    #[serde(skip)]
    pub(crate) failure: Option<Error>,
}

#[derive(Debug, Serialize)]
pub struct ModelReport {
    pub name: String,
    pub file: String,
    pub status: ModelStatus,
    pub rows: Option<u64>,
    pub seconds: Option<f64>,
    /// Of `seconds`, the time its data tests took.
    pub tests_seconds: Option<f64>,
    /// The published version folder's URL.
    pub location: Option<String>,
    pub tests_passed: usize,
    pub tests_failed: usize,
    pub tests: Vec<TestReport>,
    /// One line: where and what.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TestReport {
    pub test: String,
    pub line: usize,
    pub status: TestStatus,
    pub offending_rows: u64,
    /// Up to ten offending rows, as JSON objects.
    pub sample: Vec<serde_json::Value>,
    #[serde(skip)]
    pub sample_batches: Vec<RecordBatch>,
}

impl ModelReport {
    pub fn new(name: &str, file: &str) -> ModelReport {
        ModelReport {
            name: name.to_string(),
            file: file.to_string(),
            status: ModelStatus::Skipped,
            rows: None,
            seconds: None,
            tests_seconds: None,
            location: None,
            tests_passed: 0,
            tests_failed: 0,
            tests: Vec::new(),
            error: None,
        }
    }

    /// The line printed when the model finishes: `[2/5] customer_360  48 211 rows  1.3 s  4 tests passed`.
    pub fn progress_line(&self, position: usize, total: usize, name_width: usize) -> String {
        let head = format!(
            "[{position:>w$}/{total}] {:<name_width$}",
            self.name,
            w = total.to_string().len()
        );
        let seconds = self.seconds.map_or(String::new(), |s| format!("{s:.1} s"));
        match self.status {
            ModelStatus::Success => {
                let tests_seconds = self.tests_seconds.unwrap_or_default();
                let tests = match self.tests_passed {
                    0 => String::new(),
                    1 => format!("  1 test passed ({tests_seconds:.1} s)"),
                    n => format!("  {n} tests passed ({tests_seconds:.1} s)"),
                };
                format!(
                    "{head}  {:>12} rows  {seconds:>7}{tests}",
                    self.rows.map_or("?".into(), group_thousands)
                )
            }
            ModelStatus::Failed => format!(
                "{head}  FAILED after {seconds}: {}",
                self.error.as_deref().unwrap_or("unknown error")
            ),
            ModelStatus::Skipped => format!("{head}  skipped (an earlier model failed)"),
        }
    }

    /// The failed tests with their offending rows, for stderr.
    pub fn failed_tests_detail(&self) -> String {
        let mut out = String::new();
        for t in self.tests.iter().filter(|t| t.status == TestStatus::Failed) {
            let shown: usize = t.sample_batches.iter().map(RecordBatch::num_rows).sum();
            out.push_str(&format!(
                "data test {} ({}:{}) failed: {} offending rows{}\n",
                t.test,
                self.file,
                t.line,
                t.offending_rows,
                if (shown as u64) < t.offending_rows {
                    format!(", first {shown}:")
                } else {
                    ":".to_string()
                }
            ));
            match pretty_format_batches(&t.sample_batches) {
                Ok(table) => out.push_str(&format!("{table}\n")),
                Err(e) => out.push_str(&format!("(cannot show the rows: {e})\n")),
            }
        }
        out
    }
}

impl TestReport {
    pub fn sample_as_json(batches: &[RecordBatch]) -> Vec<serde_json::Value> {
        let mut buffer = Vec::new();
        let mut writer = datafusion::arrow::json::ArrayWriter::new(&mut buffer);
        let written = batches.iter().try_for_each(|b| writer.write(b));
        if written.and_then(|()| writer.finish()).is_err() {
            return Vec::new();
        }
        drop(writer);
        serde_json::from_slice(&buffer).unwrap_or_default()
    }
}

impl RunReport {
    /// The error that stopped the run, if any (taken: a second call returns `None`).
    pub fn take_failure(&mut self) -> Option<Error> {
        self.failure.take()
    }

    pub fn is_success(&self) -> bool {
        self.status == RunStatus::Success
    }

    pub fn model(&self, name: &str) -> Option<&ModelReport> {
        self.models.iter().find(|m| m.name == name)
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Project(format!("cannot render the run report as JSON: {e}")))
    }
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = |status| self.models.iter().filter(|m| m.status == status).count();
        let rows: u64 = self.models.iter().filter_map(|m| m.rows).sum();
        write!(
            f,
            "run {}: {} of {} models succeeded, {} failed, {} skipped; {} rows in {:.1} s",
            self.run_id,
            count(ModelStatus::Success),
            self.models.len(),
            count(ModelStatus::Failed),
            count(ModelStatus::Skipped),
            group_thousands(rows),
            self.seconds
        )
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_for_people() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(1234567), "1 234 567");
        let mut m = ModelReport::new("customer_360", "sql/customer_360.sql");
        m.status = ModelStatus::Success;
        m.rows = Some(48211);
        m.seconds = Some(1.25);
        m.tests_passed = 4;
        m.tests_seconds = Some(0.31);
        assert_eq!(
            m.progress_line(2, 12, 14),
            "[ 2/12] customer_360          48 211 rows    1.2 s  4 tests passed (0.3 s)"
        );
        m.status = ModelStatus::Failed;
        m.error = Some("sql/customer_360.sql:3: boom".into());
        assert_eq!(
            m.progress_line(2, 12, 12),
            "[ 2/12] customer_360  FAILED after 1.2 s: sql/customer_360.sql:3: boom"
        );
    }
}
