//! The header of a model file: its leading `--` comment lines.
//!
//! Recognised lines are `-- key: value`; a value continues on the following `--` lines indented by at least three
//! spaces. Any other comment line is free text, except one that starts like a key (`-- word:`) with a word that is
//! not a key: that is almost always a typo (`-- tests:`), so it is an error rather than silently ignored.
//!
//! ```sql
//! -- description: One row per customer,
//! --   with identifiers and revenue.
//! -- partition_by: segment
//! -- column customer_id: stable id from identity_stitch
//! -- test: not_null(customer_id)
//! -- test: unique(customer_id)
//! -- test: accepted_values(segment, 'online-only', 'offline-only', 'hybrid')
//! -- test: relationships(customer_id, identity_map.customer_id)
//! -- test: sql: SELECT * FROM customer_360
//! --   WHERE total_revenue < 0
//! SELECT …
//! ```

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Statement, UnaryOperator,
};

/// The keys a header line may have (`column <name>` is written with the column's name).
const KEYS: &str = "description, partition_by, column <name>, test";

/// Continuation lines are indented by at least this many spaces after `--`.
const CONTINUATION_INDENT: usize = 3;

/// What the header of one model file declares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    pub description: Option<String>,
    /// Hive-partition the Parquet output by these columns (`-- partition_by:`), with the line declaring them.
    pub partition_by: Vec<ColumnName>,
    /// `-- column <name>: <doc>` lines, in file order.
    pub columns: Vec<ColumnDoc>,
    /// Data tests, in file order.
    pub tests: Vec<DataTest>,
}

/// A column named in the header, with the 1-based line that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnName {
    /// As written: an unquoted name is lower-cased like DataFusion does, a `"Quoted"` one kept as is.
    pub ident: Ident,
    pub line: usize,
}

impl ColumnName {
    /// The name as the planner resolves it.
    pub fn normalized(&self) -> String {
        normalize(&self.ident)
    }
}

/// Documentation of one output column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDoc {
    pub column: ColumnName,
    pub doc: String,
}

/// One `-- test:` line.
#[derive(Debug, Clone, PartialEq)]
pub struct DataTest {
    /// The test as written after `test:` (continuation lines joined), for messages and reports.
    pub text: String,
    /// 1-based line of `-- test:` in the file.
    pub line: usize,
    pub kind: DataTestKind,
}

/// What a data test checks; each kind is a query returning the offending rows.
#[derive(Debug, Clone, PartialEq)]
pub enum DataTestKind {
    /// No NULL in any of the columns.
    NotNull(Vec<Ident>),
    /// The combination of the columns is unique (NULLs compare equal, as in GROUP BY).
    Unique(Vec<Ident>),
    /// Every non-NULL value of the column is one of the values (SQL literals, rendered).
    AcceptedValues { column: Ident, values: Vec<String> },
    /// Every non-NULL value of the column exists in `model.column` of another model or table.
    Relationships {
        column: Ident,
        to_table: Ident,
        to_column: Ident,
    },
    /// A query that returns the offending rows; passes when it returns none.
    Sql(String),
}

/// A header line that cannot be understood: its 1-based line number and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    pub line: usize,
    pub message: String,
}

impl HeaderError {
    fn new(line: usize, message: impl Into<String>) -> Self {
        HeaderError {
            line,
            message: message.into(),
        }
    }
}

/// A `key: value` entry being collected (its value may continue on the next lines).
struct Entry {
    key: String,
    line: usize,
    value: String,
}

impl Header {
    /// Parses the leading comment lines of `text` (blank lines between them included) up to the first line of SQL.
    pub fn parse(text: &str) -> Result<Header, HeaderError> {
        let mut header = Header::default();
        let mut open: Option<Entry> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim_start();
            if trimmed.is_empty() {
                continue;
            }
            let Some(comment) = trimmed.strip_prefix("--") else {
                break;
            };
            let indent = comment.len() - comment.trim_start_matches(' ').len();
            if indent >= CONTINUATION_INDENT
                && let Some(entry) = open.as_mut()
            {
                entry.value.push('\n');
                entry.value.push_str(comment.trim());
                continue;
            }
            if let Some(entry) = open.take() {
                header.add(entry)?;
            }
            open = key_line(comment.trim(), line)?;
        }
        if let Some(entry) = open.take() {
            header.add(entry)?;
        }
        Ok(header)
    }

    fn add(&mut self, entry: Entry) -> Result<(), HeaderError> {
        let Entry { key, line, value } = entry;
        let value = value.trim();
        if key == "description" {
            if self.description.is_some() {
                return Err(HeaderError::new(line, "a second 'description:' line"));
            }
            if value.is_empty() {
                return Err(HeaderError::new(line, "empty 'description:'"));
            }
            // Prose: continuation lines are the same paragraph.
            self.description = Some(value.split('\n').collect::<Vec<_>>().join(" "));
        } else if key == "partition_by" {
            if !self.partition_by.is_empty() {
                return Err(HeaderError::new(line, "a second 'partition_by:' line"));
            }
            self.partition_by = parse_column_list(value, line)?;
            if self.partition_by.is_empty() {
                return Err(HeaderError::new(
                    line,
                    "'partition_by:' needs at least one column",
                ));
            }
        } else if let Some(name) = key.strip_prefix("column ") {
            let ident = parse_ident(name.trim())
                .ok_or_else(|| HeaderError::new(line, format!("invalid column name '{name}'")))?;
            let column = ColumnName { ident, line };
            if self
                .columns
                .iter()
                .any(|c| c.column.normalized() == column.normalized())
            {
                return Err(HeaderError::new(
                    line,
                    format!("column '{}' is documented twice", column.normalized()),
                ));
            }
            if value.is_empty() {
                return Err(HeaderError::new(
                    line,
                    format!("empty documentation for column '{}'", column.normalized()),
                ));
            }
            self.columns.push(ColumnDoc {
                column,
                doc: value.split('\n').collect::<Vec<_>>().join(" "),
            });
        } else {
            // the only other key key_line returns
            self.tests.push(parse_test(value, line)?);
        }
        Ok(())
    }
}

/// Recognises `key: value` at the start of a comment's text; `None` for free text.
fn key_line(comment: &str, line: usize) -> Result<Option<Entry>, HeaderError> {
    let Some((head, value)) = comment.split_once(':') else {
        return Ok(None);
    };
    let entry = |key: String| {
        Ok(Some(Entry {
            key,
            line,
            value: value.trim().to_string(),
        }))
    };
    let head = head.trim_end();
    match head {
        "description" | "partition_by" | "test" => entry(head.to_string()),
        _ if head.starts_with("column ") => {
            let name = head["column ".len()..].trim();
            entry(format!("column {name}"))
        }
        _ if is_key_like(head) => Err(HeaderError::new(
            line,
            format!(
                "unknown header key '{head}:' (known: {KEYS}); write free-text comments without a leading 'word:'"
            ),
        )),
        _ => Ok(None),
    }
}

/// `word` or `word_word`: what a mistyped key looks like. Prose ("Grain: …", "Note that: …") is not.
fn is_key_like(head: &str) -> bool {
    head.starts_with(|c: char| c.is_ascii_lowercase())
        && head
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn parse_ident(text: &str) -> Option<Ident> {
    match DFParser::parse_sql_into_expr(text).ok()?.expr {
        Expr::Identifier(ident) => Some(ident),
        _ => None,
    }
}

fn parse_column_list(value: &str, line: usize) -> Result<Vec<ColumnName>, HeaderError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            parse_ident(name)
                .map(|ident| ColumnName { ident, line })
                .ok_or_else(|| HeaderError::new(line, format!("invalid column name '{name}'")))
        })
        .collect()
}

/// The name DataFusion resolves an identifier to: unquoted names are lower-cased.
pub fn normalize(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

const TEST_FORMS: &str = "not_null(col[, col…]), unique(col[, col…]), accepted_values(col, 'a', 'b', …), \
                          relationships(col, other_model.col) or sql: <SELECT returning offending rows>";

fn parse_test(value: &str, line: usize) -> Result<DataTest, HeaderError> {
    let malformed = |why: &str| {
        HeaderError::new(
            line,
            format!(
                "malformed test '{}': {why}; tests are {TEST_FORMS}",
                one_line(value)
            ),
        )
    };
    if let Some(sql) = value.strip_prefix("sql:") {
        let sql = sql.trim();
        let statements = DFParser::parse_sql(sql).map_err(|e| malformed(&e.to_string()))?;
        let is_one_query = statements.len() == 1
            && matches!(statements.front(), Some(DFStatement::Statement(s)) if matches!(**s, Statement::Query(_)));
        if !is_one_query {
            return Err(malformed("'sql:' needs one SELECT query"));
        }
        return Ok(DataTest {
            text: one_line(value),
            line,
            kind: DataTestKind::Sql(sql.to_string()),
        });
    }
    let expr = DFParser::parse_sql_into_expr(value)
        .map_err(|e| malformed(&e.to_string()))?
        .expr;
    let Expr::Function(function) = expr else {
        return Err(malformed("not a test call"));
    };
    let name = function.name.to_string().to_ascii_lowercase();
    let FunctionArguments::List(list) = &function.args else {
        return Err(malformed("missing arguments"));
    };
    let args: Vec<&Expr> = list
        .args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            _ => Err(malformed("arguments are columns and values, without names")),
        })
        .collect::<Result<_, _>>()?;
    let column = |e: &Expr| match e {
        Expr::Identifier(ident) => Ok(ident.clone()),
        other => Err(malformed(&format!("'{other}' is not a column name"))),
    };
    let kind = match (name.as_str(), args.as_slice()) {
        ("not_null", [_, ..]) => {
            DataTestKind::NotNull(args.iter().map(|e| column(e)).collect::<Result<_, _>>()?)
        }
        ("unique", [_, ..]) => {
            DataTestKind::Unique(args.iter().map(|e| column(e)).collect::<Result<_, _>>()?)
        }
        ("accepted_values", [first, values @ ..]) if !values.is_empty() => {
            DataTestKind::AcceptedValues {
                column: column(first)?,
                values: values
                    .iter()
                    .map(|v| match v {
                        Expr::Value(_) => Ok(v.to_string()),
                        Expr::UnaryOp {
                            op: UnaryOperator::Minus,
                            expr,
                        } if matches!(**expr, Expr::Value(_)) => Ok(v.to_string()),
                        other => Err(malformed(&format!("'{other}' is not a literal value"))),
                    })
                    .collect::<Result<_, _>>()?,
            }
        }
        ("relationships", [first, Expr::CompoundIdentifier(parts)]) if parts.len() == 2 => {
            DataTestKind::Relationships {
                column: column(first)?,
                to_table: parts[0].clone(),
                to_column: parts[1].clone(),
            }
        }
        ("not_null" | "unique", _) => return Err(malformed("give at least one column")),
        ("accepted_values", _) => {
            return Err(malformed("give the column and at least one accepted value"));
        }
        ("relationships", _) => {
            return Err(malformed(
                "give the column and the referenced other_model.column",
            ));
        }
        (other, _) => return Err(malformed(&format!("unknown test '{other}'"))),
    };
    Ok(DataTest {
        text: one_line(value),
        line,
        kind,
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(columns: &[ColumnName]) -> Vec<String> {
        columns.iter().map(ColumnName::normalized).collect()
    }

    #[test]
    fn parses_every_key() {
        let text = "\
-- description: One row per customer,
--   with identifiers.
-- Grain: customer. Free text like this line is ignored.
-- partition_by: segment, Day
-- column customer_id: stable id
-- column \"Mixed\": kept as written
-- test: not_null(customer_id, segment)
-- test: unique(customer_id)

-- test: accepted_values(segment, 'online-only', 'hybrid', -1)
-- test: relationships(customer_id, identity_map.customer_id)
-- test: sql: SELECT * FROM c
--   WHERE revenue < 0
SELECT 1 AS x
-- test: not_null(ignored_after_sql)
";
        let h = Header::parse(text).unwrap();
        assert_eq!(
            h.description.as_deref(),
            Some("One row per customer, with identifiers.")
        );
        assert_eq!(names(&h.partition_by), ["segment", "day"]);
        assert_eq!(h.partition_by[0].line, 4);
        assert_eq!(h.columns.len(), 2);
        assert_eq!(h.columns[1].column.normalized(), "Mixed");
        assert_eq!(h.columns[0].doc, "stable id");
        let lines: Vec<usize> = h.tests.iter().map(|t| t.line).collect();
        assert_eq!(lines, [7, 8, 10, 11, 12]);
        assert_eq!(
            h.tests[0].kind,
            DataTestKind::NotNull(vec![Ident::new("customer_id"), Ident::new("segment")])
        );
        assert_eq!(
            h.tests[2].kind,
            DataTestKind::AcceptedValues {
                column: Ident::new("segment"),
                values: vec!["'online-only'".into(), "'hybrid'".into(), "-1".into()],
            }
        );
        assert!(matches!(
            &h.tests[3].kind,
            DataTestKind::Relationships { to_table, to_column, .. }
                if to_table.value == "identity_map" && to_column.value == "customer_id"
        ));
        assert_eq!(
            h.tests[4].kind,
            DataTestKind::Sql("SELECT * FROM c\nWHERE revenue < 0".into())
        );
        assert_eq!(h.tests[4].text, "sql: SELECT * FROM c WHERE revenue < 0");
    }

    #[test]
    fn no_header_is_empty() {
        assert_eq!(Header::parse("SELECT 1").unwrap(), Header::default());
        assert_eq!(
            Header::parse("-- just prose\n--    indented prose\nSELECT 1").unwrap(),
            Header::default()
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            (
                "-- ok prose\n-- tests: unique(a)\nSELECT 1",
                2,
                "unknown header key 'tests:'",
            ),
            ("-- identity_edges: what it is\n", 1, "unknown header key"),
            ("\n\n-- test: unique()\n", 3, "give at least one column"),
            ("-- test: uniq(a)\n", 1, "unknown test 'uniq'"),
            ("-- test: unique(a + 1)\n", 1, "is not a column name"),
            (
                "-- test: accepted_values(a)\n",
                1,
                "at least one accepted value",
            ),
            (
                "-- test: accepted_values(a, b)\n",
                1,
                "'b' is not a literal",
            ),
            ("-- test: relationships(a, b)\n", 1, "other_model.column"),
            (
                "-- test: sql: SELEC 1\n",
                1,
                "malformed test 'sql: SELEC 1'",
            ),
            ("-- test: sql: SELECT 1; SELECT 2\n", 1, "one SELECT query"),
            ("-- test: not_null(a\n", 1, "malformed test"),
            ("-- partition_by:\n", 1, "at least one column"),
            ("-- partition_by: a + b\n", 1, "invalid column name 'a + b'"),
            (
                "-- description: a\n-- description: b\n",
                2,
                "second 'description:'",
            ),
            ("-- column a: x\n-- column A: y\n", 2, "documented twice"),
            ("-- column a:\n", 1, "empty documentation"),
        ];
        for (text, line, needle) in cases {
            let e = Header::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.message.contains(needle), "{text:?}: {}", e.message);
        }
    }

    #[test]
    fn continuation_needs_three_spaces_and_an_open_key() {
        let h = Header::parse("-- description: a\n--  b is prose\n--   c\nSELECT 1").unwrap();
        assert_eq!(h.description.as_deref(), Some("a"));
        let h = Header::parse("-- description: a\n--     b\n--\tc\nSELECT 1").unwrap();
        assert_eq!(h.description.as_deref(), Some("a b"));
    }
}
