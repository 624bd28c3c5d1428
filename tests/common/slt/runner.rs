//! Runs a parsed `.slt` script against a `SessionContext`, collecting every mismatch (the run goes on after
//! one), and in completion mode produces the script with the expected output replaced by the actual one.

use std::fmt;
use std::ops::Range;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, UInt64Type};
use datafusion::prelude::SessionContext;

use super::parser::{
    self, ExpectedError, ParseError, QueryExpect, RecordKind, SortMode, StatementExpect,
};
use super::temp_dir::TempDir;
use super::values;

pub struct RunSettings<'a> {
    /// Engine names matched by `skipif` / `onlyif`.
    pub labels: &'a [&'a str],
    /// Replaced by `WORKSPACE_ROOT` in results (paths in plans), like DataFusion's runner does.
    pub workspace_root: &'a str,
    /// Produce the script with actual results (`ScriptOutcome::completed`).
    pub complete: bool,
}

/// Why a script could not be run at all.
#[derive(Debug)]
pub enum ScriptError {
    Parse(ParseError),
    /// The folder for `$__TEST_DIR__` could not be created.
    ScratchDir(std::io::Error),
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::Parse(e) => write!(f, "parse error at {e}"),
            ScriptError::ScratchDir(e) => {
                write!(f, "cannot create a folder for $__TEST_DIR__: {e}")
            }
        }
    }
}

/// One record whose actual behaviour differs from the expected one.
#[derive(Debug)]
pub struct Failure {
    /// 1-based line of the record.
    pub line: usize,
    pub sql: String,
    pub problem: String,
    pub expected: String,
    pub actual: String,
}

impl Failure {
    /// The report printed for a file: `file:line: problem`, the SQL, expected and actual.
    pub fn report(&self, file: &str) -> String {
        format!(
            "{file}:{}: {}\n[SQL]\n{}\n[Expected]\n{}\n[Actual]\n{}\n",
            self.line, self.problem, self.sql, self.expected, self.actual
        )
    }
}

#[derive(Debug)]
pub struct ScriptOutcome {
    pub failures: Vec<Failure>,
    /// With `RunSettings::complete`: the script with every mismatching expectation rewritten
    /// (identical to the input when nothing mismatched).
    pub completed: Option<String>,
}

/// What a successful statement or query produced.
struct Output {
    /// One type letter per column (`I`, `R`, `T`, ...), for headers written by completion.
    types: String,
    rows: Vec<Vec<String>>,
    /// Rows affected, for DML (DataFusion returns them as a single `count` value).
    dml_count: Option<u64>,
}

impl Output {
    fn count(&self) -> u64 {
        self.dml_count.unwrap_or(self.rows.len() as u64)
    }
}

fn type_letter(data_type: &DataType) -> char {
    match data_type {
        DataType::Boolean => 'B',
        t if t.is_integer() => 'I',
        t if t.is_floating() || t.is_decimal() => 'R',
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => 'T',
        DataType::Date32 | DataType::Date64 | DataType::Time32(_) | DataType::Time64(_) => 'D',
        DataType::Timestamp(..) => 'P',
        DataType::Dictionary(_, values) => type_letter(values),
        _ => '?',
    }
}

/// Plans, runs and formats one statement. The error is the text that `error <regex>` is matched
/// against, prefixed like datafusion-sqllogictest prints it.
async fn execute(ctx: &SessionContext, sql: &str, workspace_root: &str) -> Result<Output, String> {
    let run = async {
        let frame = ctx.sql(sql).await?;
        let schema = frame.schema().as_arrow().clone();
        let batches = frame.collect().await?;
        let rows = values::result_rows(&batches, workspace_root)?;
        Ok::<_, datafusion::error::DataFusionError>((schema, batches, rows))
    };
    let (schema, batches, rows) = run
        .await
        .map_err(|e| format!("DataFusion error: {}", e.strip_backtrace()))?;
    let types = schema
        .fields()
        .iter()
        .map(|f| type_letter(f.data_type()))
        .collect();
    let dml_count = match (schema.fields().as_ref(), batches.as_slice()) {
        ([field], [batch]) if field.name() == "count" && batch.num_rows() == 1 => batch
            .column(0)
            .as_primitive_opt::<UInt64Type>()
            .map(|counts| counts.value(0)),
        _ => None,
    };
    Ok(Output {
        types,
        rows,
        dml_count,
    })
}

fn lines_block(lines: &[String]) -> String {
    if lines.is_empty() {
        "(no rows)".to_string()
    } else {
        lines.join("\n")
    }
}

/// The expected-error part of a rewritten header, and the `----` block it may need.
fn error_expectation(reference: &ExpectedError, message: &str) -> (String, Vec<String>) {
    let message = message.trim();
    if matches!(reference, ExpectedError::Exact(_)) || message.contains('\n') {
        let mut block = vec!["----".to_string()];
        block.extend(message.lines().map(str::to_string));
        if !matches!(reference, ExpectedError::Exact(_)) {
            // an exact message ends at two blank lines; the file has one after the record
            block.push(String::new());
        }
        ("error".to_string(), block)
    } else {
        (format!("error {}", parser::regex_escape(message)), vec![])
    }
}

/// The rows as the lines they are compared as: values joined by single spaces, sorted per the sort mode.
fn actual_lines(mut rows: Vec<Vec<String>>, sort: SortMode) -> Vec<String> {
    match sort {
        SortMode::Unsorted => {}
        SortMode::Rows => rows.sort(),
        SortMode::Values => {
            rows = rows
                .into_iter()
                .flatten()
                .map(|value| vec![value])
                .collect();
            rows.sort();
        }
    }
    rows.iter()
        .map(|row| row.join(" ").trim_end().to_string())
        .collect()
}

/// How a record's lines change in completion mode: a new header (or the original one) and what follows
/// the SQL.
struct Rewrite {
    header: Option<String>,
    tail: Vec<String>,
}

impl Rewrite {
    fn header(header: String) -> Rewrite {
        Rewrite {
            header: Some(header),
            tail: vec![],
        }
    }

    /// `<kind> error ...` from an actual error message, inline or as a `----` block like `reference`.
    fn error(kind: &str, reference: &ExpectedError, message: &str) -> Rewrite {
        let (header, tail) = error_expectation(reference, message);
        Rewrite {
            header: Some(format!("{kind} {header}")),
            tail,
        }
    }
}

struct RecordRewrite {
    /// The record's lines in the script.
    lines: Range<usize>,
    sql_lines: usize,
    rewrite: Rewrite,
}

/// What differs for one record, and how completion fixes it.
struct Mismatch {
    problem: String,
    expected: String,
    actual: String,
    rewrite: Rewrite,
}

fn check_statement(expect: &StatementExpect, outcome: Result<Output, String>) -> Option<Mismatch> {
    match (expect, outcome) {
        (StatementExpect::Ok, Ok(_)) => None,
        (StatementExpect::Count(expected), Ok(output)) => {
            (output.count() != *expected).then(|| Mismatch {
                problem: "statement row count mismatch".to_string(),
                expected: expected.to_string(),
                actual: output.count().to_string(),
                rewrite: Rewrite::header(format!("statement count {}", output.count())),
            })
        }
        (StatementExpect::Ok | StatementExpect::Count(_), Err(message)) => Some(Mismatch {
            problem: "statement failed".to_string(),
            expected: "success".to_string(),
            rewrite: Rewrite::error("statement", &ExpectedError::Any, &message),
            actual: message,
        }),
        (StatementExpect::Error(expected), Ok(_)) => Some(Mismatch {
            problem: "statement succeeded but an error was expected".to_string(),
            expected: expected.to_string(),
            actual: "success".to_string(),
            rewrite: Rewrite::header("statement ok".to_string()),
        }),
        (StatementExpect::Error(expected), Err(message)) => {
            (!expected.matches(&message)).then(|| Mismatch {
                problem: "error message mismatch".to_string(),
                expected: expected.to_string(),
                rewrite: Rewrite::error("statement", expected, &message),
                actual: message,
            })
        }
    }
}

fn check_query(expect: &QueryExpect, outcome: Result<Output, String>) -> Option<Mismatch> {
    match (expect, outcome) {
        (
            QueryExpect::Rows {
                types,
                sort,
                label,
                rows,
            },
            Ok(output),
        ) => {
            let expected_columns = types.chars().count();
            let columns = output.types.chars().count();
            let actual = actual_lines(output.rows, *sort);
            let expected: Vec<String> = rows.iter().map(|r| r.trim_end().to_string()).collect();
            let mut tail = vec!["----".to_string()];
            tail.extend(actual.iter().cloned());
            if columns != expected_columns {
                let mut header = format!("query {}", output.types);
                if *sort != SortMode::Unsorted || label.is_some() {
                    header.push(' ');
                    header.push_str(sort.as_str());
                }
                if let Some(label) = label {
                    header.push(' ');
                    header.push_str(label);
                }
                Some(Mismatch {
                    problem: format!(
                        "expected {expected_columns} column(s) (types `{types}`), got {columns} (`{}`)",
                        output.types
                    ),
                    expected: lines_block(&expected),
                    actual: lines_block(&actual),
                    rewrite: Rewrite {
                        header: Some(header),
                        tail,
                    },
                })
            } else {
                (actual != expected).then(|| Mismatch {
                    problem: "query result mismatch".to_string(),
                    expected: lines_block(&expected),
                    actual: lines_block(&actual),
                    rewrite: Rewrite { header: None, tail },
                })
            }
        }
        (QueryExpect::Rows { .. }, Err(message)) => Some(Mismatch {
            problem: "query failed".to_string(),
            expected: "rows".to_string(),
            rewrite: Rewrite::error("query", &ExpectedError::Any, &message),
            actual: message,
        }),
        (QueryExpect::Error(expected), Ok(output)) => {
            let actual = actual_lines(output.rows, SortMode::Unsorted);
            let mut tail = vec!["----".to_string()];
            tail.extend(actual.iter().cloned());
            Some(Mismatch {
                problem: "query succeeded but an error was expected".to_string(),
                expected: expected.to_string(),
                actual: lines_block(&actual),
                rewrite: Rewrite {
                    header: Some(format!("query {}", output.types)),
                    tail,
                },
            })
        }
        (QueryExpect::Error(expected), Err(message)) => {
            (!expected.matches(&message)).then(|| Mismatch {
                problem: "error message mismatch".to_string(),
                expected: expected.to_string(),
                rewrite: Rewrite::error("query", expected, &message),
                actual: message,
            })
        }
    }
}

pub async fn run_script(
    ctx: &SessionContext,
    script: &str,
    settings: &RunSettings<'_>,
) -> Result<ScriptOutcome, ScriptError> {
    let records = parser::parse(script).map_err(ScriptError::Parse)?;
    let mut failures = vec![];
    let mut rewrites: Vec<RecordRewrite> = vec![];
    let mut substitution = false;
    let mut scratch: Option<TempDir> = None; // for $__TEST_DIR__

    for record in &records {
        if record.conditions.iter().any(|c| c.skips(settings.labels)) {
            continue;
        }
        let (sql, mismatch) = match &record.kind {
            RecordKind::Halt => break,
            RecordKind::Substitution(on) => {
                substitution = *on;
                continue;
            }
            RecordKind::Statement { sql, expect } => {
                let sql_to_run = substitute_if(substitution, sql, &mut scratch)?;
                let outcome = execute(ctx, &sql_to_run, settings.workspace_root).await;
                (sql, check_statement(expect, outcome))
            }
            RecordKind::Query { sql, expect } => {
                let sql_to_run = substitute_if(substitution, sql, &mut scratch)?;
                let outcome = execute(ctx, &sql_to_run, settings.workspace_root).await;
                (sql, check_query(expect, outcome))
            }
        };
        if let Some(Mismatch {
            problem,
            expected,
            actual,
            rewrite,
        }) = mismatch
        {
            failures.push(Failure {
                line: record.line,
                sql: sql.clone(),
                problem,
                expected,
                actual,
            });
            rewrites.push(RecordRewrite {
                lines: record.lines.clone(),
                sql_lines: sql.lines().count(),
                rewrite,
            });
        }
    }

    let completed = settings.complete.then(|| apply_rewrites(script, rewrites));
    Ok(ScriptOutcome {
        failures,
        completed,
    })
}

/// `sql` with `$__TEST_DIR__` replaced (creating the folder on first use) when substitution is on.
fn substitute_if(
    substitution: bool,
    sql: &str,
    scratch: &mut Option<TempDir>,
) -> Result<String, ScriptError> {
    if !substitution {
        return Ok(sql.to_string());
    }
    let dir = match scratch {
        Some(dir) => dir,
        None => scratch.insert(TempDir::new("slt").map_err(ScriptError::ScratchDir)?),
    };
    let path = dir.path().display().to_string();
    Ok(sql
        .replace("${__TEST_DIR__}", &path)
        .replace("$__TEST_DIR__", &path))
}

/// Replaces each rewritten record's lines: header (new or original), the SQL as written, the new tail.
fn apply_rewrites(script: &str, rewrites: Vec<RecordRewrite>) -> String {
    let lines: Vec<&str> = script.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut next = 0;
    for RecordRewrite {
        lines: range,
        sql_lines,
        rewrite,
    } in rewrites
    {
        let sql_end = range.start + 1 + sql_lines;
        out.extend(lines[next..range.start].iter().map(|l| l.to_string()));
        out.push(
            rewrite
                .header
                .unwrap_or_else(|| lines[range.start].to_string()),
        );
        out.extend(
            lines[range.start + 1..sql_end]
                .iter()
                .map(|l| l.to_string()),
        );
        out.extend(rewrite.tail);
        next = range.end;
    }
    out.extend(lines[next..].iter().map(|l| l.to_string()));
    let mut text = out.join("\n");
    if script.ends_with('\n') {
        text.push('\n');
    }
    text
}
