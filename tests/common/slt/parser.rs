//! Parser for the sqllogictest (`.slt`) format: the subset that DataFusion's own test files use.
//!
//! ```text
//! # a comment
//! statement ok | statement error [regex] | statement count N
//! <SQL, one or more lines, ends at a blank line>
//!
//! query <type letters> [rowsort|valuesort|nosort] [label]
//! <SQL>
//! ----
//! <expected rows, values separated by single spaces, ends at a blank line>
//!
//! query error [regex]          (or `statement error` / `query error` with no regex, then `----` and the
//! <SQL>                         exact message, ending at two blank lines)
//!
//! skipif <engine> | onlyif <engine>   (apply to the next statement, query or halt)
//! control substitution on|off         ($__TEST_DIR__ / ${__TEST_DIR__} become a per-run scratch folder)
//! halt                                (ignore the rest of the file)
//! ```

use std::fmt;
use std::ops::Range;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::compute::kernels::regexp::regexp_is_match_scalar;

/// Column type letters accepted after `query`; they are checked loosely (only their count matters).
pub const TYPE_LETTERS: &str = "TIRBDP?";

/// One directive of a script, with where it sits in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line of the directive (`statement`, `query`, ...), for messages.
    pub line: usize,
    /// 0-based line range the directive occupies (header, SQL, expected output), for `--complete`.
    pub lines: Range<usize>,
    /// `skipif` / `onlyif` lines directly before it.
    pub conditions: Vec<Condition>,
    pub kind: RecordKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecordKind {
    Statement {
        sql: String,
        expect: StatementExpect,
    },
    Query {
        sql: String,
        expect: QueryExpect,
    },
    /// `control substitution on|off`
    Substitution(bool),
    Halt,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StatementExpect {
    Ok,
    /// The number of rows the statement affected (a DML count) or returned.
    Count(u64),
    Error(ExpectedError),
}

#[derive(Debug, Clone, PartialEq)]
pub enum QueryExpect {
    Rows {
        /// The type letters as written, e.g. `TI`; one per column.
        types: String,
        sort: SortMode,
        /// Kept so that `--complete` writes the header back unchanged.
        label: Option<String>,
        /// Expected lines, exactly as written after `----`.
        rows: Vec<String>,
    },
    Error(ExpectedError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortMode {
    /// `nosort` (the default): rows in the order the engine returns them.
    Unsorted,
    /// `rowsort`: sort the actual rows (not the expected ones, which `--complete` writes sorted).
    Rows,
    /// `valuesort`: sort every value on its own; the expected output is then one value per line.
    Values,
}

impl SortMode {
    fn parse(word: &str) -> Option<SortMode> {
        match word {
            "nosort" => Some(SortMode::Unsorted),
            "rowsort" => Some(SortMode::Rows),
            "valuesort" => Some(SortMode::Values),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SortMode::Unsorted => "nosort",
            SortMode::Rows => "rowsort",
            SortMode::Values => "valuesort",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedError {
    /// `statement error` alone: any error.
    Any,
    /// `statement error <regex>`: the error message must contain a match (unanchored search).
    Regex(String),
    /// `----` block under an `error` record: the whole message, compared after trimming.
    Exact(String),
}

impl ExpectedError {
    pub fn matches(&self, message: &str) -> bool {
        match self {
            ExpectedError::Any => true,
            ExpectedError::Regex(pattern) => regex_search(pattern, message).unwrap_or(false),
            ExpectedError::Exact(expected) => expected.trim() == message.trim(),
        }
    }
}

impl fmt::Display for ExpectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedError::Any => write!(f, "(any error)"),
            ExpectedError::Regex(pattern) => write!(f, "(regex) {pattern}"),
            ExpectedError::Exact(message) => write!(f, "(exact) {message}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    OnlyIf(String),
    SkipIf(String),
}

impl Condition {
    /// Whether a record carrying this condition is skipped by an engine with these labels.
    pub fn skips(&self, labels: &[&str]) -> bool {
        match self {
            Condition::OnlyIf(label) => !labels.contains(&label.as_str()),
            Condition::SkipIf(label) => labels.contains(&label.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Unanchored regex search through Arrow's regexp kernel, so that no regex crate is needed.
pub fn regex_search(pattern: &str, haystack: &str) -> Result<bool, String> {
    let matched = regexp_is_match_scalar(&StringArray::from(vec![haystack]), pattern, None)
        .map_err(|e| e.to_string())?;
    Ok(matched.value(0))
}

/// Escapes every regex meta character, so that a message can be written back as an inline regex.
pub fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

struct Lines<'a> {
    lines: Vec<&'a str>,
    next: usize,
}

impl<'a> Lines<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.lines.get(self.next).copied()
    }

    fn take(&mut self) -> Option<&'a str> {
        let line = self.peek()?;
        self.next += 1;
        Some(line)
    }

    /// SQL after a header: at least one line, up to a blank line or `----`.
    /// Returns the SQL and whether `----` ended it.
    fn sql(&mut self, header_line: usize) -> Result<(String, bool), ParseError> {
        let mut sql: Vec<&str> = vec![];
        while let Some(line) = self.peek() {
            if is_blank(line) {
                break;
            }
            self.next += 1;
            if line.trim_end() == "----" {
                if sql.is_empty() {
                    break;
                }
                return Ok((sql.join("\n"), true));
            }
            sql.push(line);
        }
        if sql.is_empty() {
            return Err(ParseError {
                line: header_line,
                message: "expected SQL on the next line".to_string(),
            });
        }
        Ok((sql.join("\n"), false))
    }

    /// Expected rows after `----`: up to a blank line or the end of the file.
    fn rows(&mut self) -> Vec<String> {
        let mut rows = vec![];
        while let Some(line) = self.peek() {
            if is_blank(line) {
                break;
            }
            self.next += 1;
            rows.push(line.to_string());
        }
        rows
    }

    /// An exact error message after `----`: up to two consecutive blank lines or the end of the file.
    /// The two blank lines stay unconsumed; they belong to no record.
    fn error_message(&mut self) -> String {
        let mut message: Vec<&str> = vec![];
        while let Some(line) = self.peek() {
            let next_is_blank = self.lines.get(self.next + 1).is_none_or(|l| is_blank(l));
            if is_blank(line) && next_is_blank {
                break;
            }
            self.next += 1;
            message.push(line);
        }
        message.join("\n").trim().to_string()
    }
}

fn parse_expected_error(words: &[&str], line: usize) -> Result<ExpectedError, ParseError> {
    if words.is_empty() {
        return Ok(ExpectedError::Any);
    }
    let pattern = words.join(" ");
    regex_search(&pattern, "").map_err(|e| ParseError {
        line,
        message: format!("invalid error regex {pattern:?}: {e}"),
    })?;
    Ok(ExpectedError::Regex(pattern))
}

/// Parses a whole script. Errors name the 1-based line.
pub fn parse(script: &str) -> Result<Vec<Record>, ParseError> {
    let mut lines = Lines {
        lines: script.lines().collect(),
        next: 0,
    };
    let mut records = vec![];
    let mut conditions = vec![];
    while let Some(text) = lines.take() {
        let start = lines.next - 1;
        let line = start + 1;
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        let error = |message: String| ParseError { line, message };
        let kind = match words.as_slice() {
            ["skipif", label] => {
                conditions.push(Condition::SkipIf(label.to_string()));
                continue;
            }
            ["onlyif", label] => {
                conditions.push(Condition::OnlyIf(label.to_string()));
                continue;
            }
            ["halt"] => RecordKind::Halt,
            ["control", "substitution", "on"] => RecordKind::Substitution(true),
            ["control", "substitution", "off"] => RecordKind::Substitution(false),
            ["statement", rest @ ..] => {
                let mut expect = match rest {
                    ["ok"] => StatementExpect::Ok,
                    ["count", n] => StatementExpect::Count(
                        n.parse()
                            .map_err(|_| error(format!("invalid row count {n:?}")))?,
                    ),
                    ["error", regex @ ..] => {
                        StatementExpect::Error(parse_expected_error(regex, line)?)
                    }
                    _ => {
                        return Err(error(format!(
                            "expected `statement ok`, `statement error [regex]` or `statement count N`, got {trimmed:?}"
                        )));
                    }
                };
                let (sql, delimited) = lines.sql(line)?;
                if delimited {
                    match &mut expect {
                        StatementExpect::Error(expected @ ExpectedError::Any) => {
                            *expected = ExpectedError::Exact(lines.error_message());
                        }
                        StatementExpect::Error(_) => {
                            return Err(error(
                                "an error regex after `error` and a message under `----` at once"
                                    .to_string(),
                            ));
                        }
                        _ => {
                            return Err(error(
                                "a statement has no results; use `query`".to_string(),
                            ));
                        }
                    }
                }
                RecordKind::Statement { sql, expect }
            }
            ["query", rest @ ..] => {
                let mut expect = match rest {
                    ["error", regex @ ..] => QueryExpect::Error(parse_expected_error(regex, line)?),
                    [types, rest @ ..] if rest.len() <= 2 => {
                        if let Some(bad) = types.chars().find(|c| !TYPE_LETTERS.contains(*c)) {
                            return Err(error(format!(
                                "invalid column type letter {bad:?} in {types:?} (expected letters of {TYPE_LETTERS})"
                            )));
                        }
                        let sort = match rest.first() {
                            Some(word) => SortMode::parse(word).ok_or_else(|| {
                                error(format!("invalid sort mode {word:?} (expected rowsort, valuesort or nosort)"))
                            })?,
                            None => SortMode::Unsorted,
                        };
                        QueryExpect::Rows {
                            types: types.to_string(),
                            sort,
                            label: rest.get(1).map(|s| s.to_string()),
                            rows: vec![],
                        }
                    }
                    _ => {
                        return Err(error(format!(
                            "expected `query <types> [sort mode] [label]` or `query error [regex]`, got {trimmed:?}"
                        )));
                    }
                };
                let (sql, delimited) = lines.sql(line)?;
                if delimited {
                    match &mut expect {
                        QueryExpect::Rows { rows, .. } => *rows = lines.rows(),
                        QueryExpect::Error(expected @ ExpectedError::Any) => {
                            *expected = ExpectedError::Exact(lines.error_message());
                        }
                        QueryExpect::Error(_) => {
                            return Err(error(
                                "an error regex after `error` and a message under `----` at once"
                                    .to_string(),
                            ));
                        }
                    }
                }
                RecordKind::Query { sql, expect }
            }
            _ => return Err(error(format!("unknown directive {trimmed:?}"))),
        };
        records.push(Record {
            line,
            lines: start..lines.next,
            conditions: std::mem::take(&mut conditions),
            kind,
        });
    }
    if !conditions.is_empty() {
        return Err(ParseError {
            line: lines.lines.len(),
            message: "skipif/onlyif at the end of the file applies to nothing".to_string(),
        });
    }
    Ok(records)
}
