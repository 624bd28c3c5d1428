//! A model project: a folder of `*.sql` files, each one model named after its file (`customer_360.sql` →
//! table `customer_360`) whose body is one query, with an optional [`Header`].

use std::path::{Path, PathBuf};

use datafusion::common::DataFusionError;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::Statement;

use super::dependencies::{TableRead, tables_read};
use super::header::Header;
use crate::error::{Error, Result};

/// One model: a query and what its header declares.
#[derive(Debug, Clone)]
pub struct Model {
    /// The table it produces: the file's stem.
    pub name: String,
    /// The file, as found under the project folder (`sql/customer_360.sql`).
    pub file: PathBuf,
    pub header: Header,
    /// The parsed query (the whole file; comments are not part of it).
    pub statement: DFStatement,
    /// Tables the query reads: models, source tables, or locations.
    pub reads: Vec<TableRead>,
}

impl Model {
    /// Parses one model file's text.
    pub fn parse(name: &str, file: &Path, text: &str) -> Result<Model> {
        if !is_model_name(name) {
            return Err(model_error(
                file,
                None,
                format!(
                    "'{name}' is not a valid model name: a model's file name must be a lower-case SQL identifier \
                     (a-z, 0-9, _; starting with a letter) so that queries can name its table unquoted"
                ),
            ));
        }
        let header = Header::parse(text)
            .map_err(|e| model_error(file, Some((e.line as u64, 0)), e.message))?;
        let mut statements = DFParser::parse_sql(text).map_err(|e| syntax_error(file, &e))?;
        let statement = match (statements.pop_front(), statements.len()) {
            (Some(statement), 0) => statement,
            (None, _) => {
                return Err(model_error(
                    file,
                    None,
                    "no query: a model file holds one SELECT (WITH allowed)",
                ));
            }
            (Some(_), more) => {
                return Err(model_error(
                    file,
                    None,
                    format!(
                        "{} statements: a model file holds exactly one SELECT (WITH allowed)",
                        more + 1
                    ),
                ));
            }
        };
        if !matches!(&statement, DFStatement::Statement(s) if matches!(**s, Statement::Query(_))) {
            let first_words: String = statement
                .to_string()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            return Err(model_error(
                file,
                None,
                format!(
                    "a model is one SELECT (WITH allowed), not '{first_words} …': the runner creates the table"
                ),
            ));
        }
        let reads = tables_read(&statement).map_err(|e| Error::in_model(display(file), &e))?;
        Ok(Model {
            name: name.to_string(),
            file: file.to_path_buf(),
            header,
            statement,
            reads,
        })
    }

    /// `sql/m.sql`, `sql/m.sql:LINE` or `sql/m.sql:LINE:COLUMN` for messages.
    pub fn location(&self, line: Option<usize>) -> String {
        location(&self.file, line.map(|l| (l as u64, 0)))
    }
}

/// The models of a project folder, sorted by name.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub models: Vec<Model>,
}

impl Project {
    /// Reads every `*.sql` file directly in `dir` (sub-folders and other files are not models).
    pub fn load(dir: impl AsRef<Path>) -> Result<Project> {
        let dir = dir.as_ref();
        let context = || format!("reading the model project {}", dir.display());
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(context(), e))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| Error::io(context(), e))?.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "sql") {
                files.push(path);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(Error::Project(format!(
                "no models in {}: a model project is a folder of *.sql files, one SELECT each",
                dir.display()
            )));
        }
        let mut models = Vec::with_capacity(files.len());
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
            let name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            models.push(Model::parse(&name, &file, &text)?);
        }
        Ok(Project {
            dir: dir.to_path_buf(),
            models,
        })
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Names of all models, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.name.as_str()).collect()
    }
}

fn is_model_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn display(file: &Path) -> String {
    file.display().to_string()
}

/// `file`, `file:line` or `file:line:column` (a column of 0 is left out).
pub(crate) fn location(file: &Path, at: Option<(u64, u64)>) -> String {
    match at {
        Some((line, 0)) => format!("{}:{line}", file.display()),
        Some((line, column)) => format!("{}:{line}:{column}", file.display()),
        None => display(file),
    }
}

pub(crate) fn model_error(
    file: &Path,
    at: Option<(u64, u64)>,
    message: impl Into<String>,
) -> Error {
    Error::Model {
        location: location(file, at),
        message: message.into(),
    }
}

/// The parser reports positions as a suffix of its message ("… at Line: 3, Column: 10"): move them into the
/// location so the line reads like a compiler's (`sql/m.sql:3:10: …`).
fn syntax_error(file: &Path, e: &DataFusionError) -> Error {
    let DataFusionError::SQL(parser_error, _) = e else {
        return Error::in_model(display(file), e);
    };
    let message = parser_error.to_string();
    let Some((text, position)) = message.rsplit_once(" at Line: ") else {
        return model_error(file, None, message);
    };
    let at = position
        .split_once(", Column: ")
        .and_then(|(line, column)| Some((line.trim().parse().ok()?, column.trim().parse().ok()?)));
    match at {
        Some(at) => model_error(file, Some(at), text),
        None => model_error(file, None, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Model> {
        Model::parse("m", Path::new("sql/m.sql"), text)
    }

    #[test]
    fn a_model_is_one_query() {
        let m =
            parse("-- description: x\nWITH a AS (SELECT 1) SELECT * FROM a JOIN src USING (id);\n")
                .unwrap();
        assert_eq!(m.header.description.as_deref(), Some("x"));
        let reads: Vec<String> = m.reads.iter().map(|r| r.table.to_string()).collect();
        assert_eq!(reads, ["src"]);
    }

    #[test]
    fn errors_name_file_and_position() {
        let cases = [
            (
                "-- c\nSELECT (1\nFROM t",
                "sql/m.sql:3:1: sql parser error: Expected: ), found: FROM",
            ),
            ("-- only a comment\n", "sql/m.sql: no query"),
            ("SELECT 1; SELECT 2", "sql/m.sql: 2 statements"),
            (
                "CREATE TABLE t AS SELECT 1",
                "sql/m.sql: a model is one SELECT",
            ),
            ("-- test: unique()\nSELECT 1", "sql/m.sql:1: malformed test"),
        ];
        for (text, expected) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(expected), "{text:?}: {e}");
        }
    }

    #[test]
    fn model_names_are_plain_identifiers() {
        for bad in ["Orders", "2024_sales", "_staging", "my-model"] {
            let e = Model::parse(bad, Path::new("x.sql"), "SELECT 1").unwrap_err();
            assert!(
                e.to_string().contains("not a valid model name"),
                "{bad}: {e}"
            );
        }
        assert!(Model::parse("stg_orders_2", Path::new("x.sql"), "SELECT 1").is_ok());
    }
}
