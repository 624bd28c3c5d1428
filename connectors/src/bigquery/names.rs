//! Validation of BigQuery identifiers before they reach a URL, a SQL text or a table schema.
//!
//! Rules follow BigQuery's documentation:
//! - project ids: 6-30 characters, lowercase letters, digits and hyphens, starting with a
//!   letter and not ending with a hyphen; an optional `domain:` prefix (domain-scoped projects
//!   such as `example.com:my-project`).
//! - dataset ids: letters, digits and underscores, at most 1024 characters.
//! - table ids: Unicode letters, marks, numbers, connector punctuation (incl. `_`), dashes and
//!   spaces, at most 1024 UTF-8 bytes. `$` is rejected: partition decorators (`t$20260101`) are
//!   built by the code that writes partitions, never accepted as part of a table name.
//! - column names: the classic rules (letters, digits, underscore, starting with a letter or
//!   underscore, at most 300 characters, none of the reserved prefixes). BigQuery's newer
//!   "flexible column names" are deliberately not used: they need backtick quoting everywhere
//!   and are not accepted by every API (e.g. legacy SQL, some load formats).

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::error::{ConnectorError, NameKind};

pub const MAX_DATASET_ID_CHARS: usize = 1024;
pub const MAX_TABLE_ID_BYTES: usize = 1024;
pub const MAX_COLUMN_NAME_CHARS: usize = 300;

/// Column-name prefixes BigQuery reserves (compared case-insensitively, as column names are).
pub const RESERVED_COLUMN_PREFIXES: [&str; 6] = [
    "_TABLE_",
    "_FILE_",
    "_PARTITION",
    "_ROW_TIMESTAMP",
    "__ROOT__",
    "_COLUMN_",
];

/// The character classes BigQuery allows in table ids: L, M, N, Pc, Pd, Zs.
static TABLE_ID_CHARS: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern; `table_id_pattern_compiles` proves it in the tests.
    Regex::new(r"^[\p{L}\p{M}\p{N}\p{Pc}\p{Pd}\p{Zs}]+$").expect("constant regex compiles")
});

fn invalid(kind: NameKind, name: &str, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::InvalidName {
        kind,
        name: name.to_owned(),
        reason: reason.into(),
    }
}

pub fn validate_project_id(name: &str) -> Result<(), ConnectorError> {
    let kind = NameKind::Project;
    let (domain, project) = match name.split_once(':') {
        Some((domain, project)) => (Some(domain), project),
        None => (None, name),
    };
    if let Some(domain) = domain {
        let valid_domain = !domain.is_empty()
            && domain.len() <= 253
            && domain
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-']);
        if !valid_domain {
            return Err(invalid(
                kind,
                name,
                "the domain before `:` must be a lowercase domain name",
            ));
        }
    }
    let length = project.chars().count();
    if !(6..=30).contains(&length) {
        return Err(invalid(
            kind,
            name,
            format!("must be 6 to 30 characters long, got {length}"),
        ));
    }
    if let Some(c) = project
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(invalid(
            kind,
            name,
            format!("character {c:?} is not allowed (only lowercase letters, digits and `-`)"),
        ));
    }
    if !project.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(invalid(kind, name, "must start with a lowercase letter"));
    }
    if project.ends_with('-') {
        return Err(invalid(kind, name, "must not end with `-`"));
    }
    Ok(())
}

pub fn validate_dataset_id(name: &str) -> Result<(), ConnectorError> {
    let kind = NameKind::Dataset;
    if name.is_empty() {
        return Err(invalid(kind, name, "must not be empty"));
    }
    let length = name.chars().count();
    if length > MAX_DATASET_ID_CHARS {
        return Err(invalid(
            kind,
            name,
            format!("must be at most {MAX_DATASET_ID_CHARS} characters, got {length}"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(invalid(
            kind,
            name,
            format!("character {c:?} is not allowed (only letters, digits and `_`)"),
        ));
    }
    Ok(())
}

pub fn validate_table_id(name: &str) -> Result<(), ConnectorError> {
    let kind = NameKind::Table;
    if name.is_empty() {
        return Err(invalid(kind, name, "must not be empty"));
    }
    if name.len() > MAX_TABLE_ID_BYTES {
        return Err(invalid(
            kind,
            name,
            format!(
                "must be at most {MAX_TABLE_ID_BYTES} UTF-8 bytes, got {}",
                name.len()
            ),
        ));
    }
    if name.contains('$') {
        return Err(invalid(
            kind,
            name,
            "`$` is not allowed: partition decorators are added by the partition writer, not \
             given as part of the table name",
        ));
    }
    if !TABLE_ID_CHARS.is_match(name) {
        let offending = name
            .chars()
            .find(|c| !TABLE_ID_CHARS.is_match(c.encode_utf8(&mut [0; 4])));
        let reason = match offending {
            Some(c) => format!(
                "character {c:?} is not allowed (only Unicode letters, marks, numbers, \
                 connectors such as `_`, dashes and spaces)"
            ),
            None => "contains characters BigQuery does not allow in table ids".to_owned(),
        };
        return Err(invalid(kind, name, reason));
    }
    Ok(())
}

pub fn validate_column_name(name: &str) -> Result<(), ConnectorError> {
    let kind = NameKind::Column;
    let Some(first) = name.chars().next() else {
        return Err(invalid(kind, name, "must not be empty"));
    };
    let length = name.chars().count();
    if length > MAX_COLUMN_NAME_CHARS {
        return Err(invalid(
            kind,
            name,
            format!("must be at most {MAX_COLUMN_NAME_CHARS} characters, got {length}"),
        ));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(invalid(kind, name, "must start with a letter or `_`"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(invalid(
            kind,
            name,
            format!("character {c:?} is not allowed (only letters, digits and `_`)"),
        ));
    }
    if let Some(prefix) = RESERVED_COLUMN_PREFIXES.iter().find(|prefix| {
        name.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    }) {
        return Err(invalid(
            kind,
            name,
            format!("the prefix `{prefix}` is reserved by BigQuery"),
        ));
    }
    Ok(())
}

/// A validated, fully qualified table: `project.dataset.table`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    project: String,
    dataset: String,
    table: String,
}

impl TableRef {
    pub fn new(
        project: impl Into<String>,
        dataset: impl Into<String>,
        table: impl Into<String>,
    ) -> Result<Self, ConnectorError> {
        let (project, dataset, table) = (project.into(), dataset.into(), table.into());
        validate_project_id(&project)?;
        validate_dataset_id(&dataset)?;
        validate_table_id(&table)?;
        Ok(Self {
            project,
            dataset,
            table,
        })
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

/// GoogleSQL form: `` `project.dataset.table` ``. Validation guarantees no backtick, backslash
/// or newline can occur inside, so the quoting cannot be broken.
impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}.{}.{}`", self.project, self.dataset, self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_of(result: Result<(), ConnectorError>) -> (NameKind, String) {
        match result {
            Err(ConnectorError::InvalidName { kind, reason, .. }) => (kind, reason),
            other => panic!("expected InvalidName, got {other:?}"),
        }
    }

    #[test]
    fn table_id_pattern_compiles() {
        assert!(TABLE_ID_CHARS.is_match("a"));
    }

    #[test]
    fn project_ids() {
        for ok in [
            "test-proj",
            "my-project-123",
            "abcdef",
            "a23456789012345678901234567890",
            "example.com:my-project",
            "google.com:analytics-42",
        ] {
            validate_project_id(ok).unwrap();
        }
        let cases = [
            ("short", "6 to 30"),
            ("a234567890123456789012345678901", "6 to 30"),
            ("My-Project", "'M' is not allowed"),
            ("my_project", "'_' is not allowed"),
            ("1project", "start with a lowercase letter"),
            ("project-", "must not end with `-`"),
            (":my-project", "domain"),
            ("Example.com:my-project", "domain"),
            ("example.com.:my-project", "domain"),
            ("my project", "' ' is not allowed"),
            ("proj`ect", "'`' is not allowed"),
        ];
        for (name, expected) in cases {
            let (kind, reason) = reason_of(validate_project_id(name));
            assert_eq!(kind, NameKind::Project);
            assert!(reason.contains(expected), "{name}: {reason}");
        }
    }

    #[test]
    fn dataset_ids() {
        for ok in ["ds", "Sales_2026", "_staging", "9lives", &"d".repeat(1024)] {
            validate_dataset_id(ok).unwrap();
        }
        let cases = [
            ("", "must not be empty"),
            ("my-dataset", "'-' is not allowed"),
            ("my dataset", "' ' is not allowed"),
            ("dätaset", "'ä' is not allowed"),
            ("ds.t", "'.' is not allowed"),
        ];
        for (name, expected) in cases {
            let (kind, reason) = reason_of(validate_dataset_id(name));
            assert_eq!(kind, NameKind::Dataset);
            assert!(reason.contains(expected), "{name:?}: {reason}");
        }
        let (_, reason) = reason_of(validate_dataset_id(&"d".repeat(1025)));
        assert!(
            reason.contains("at most 1024 characters, got 1025"),
            "{reason}"
        );
    }

    #[test]
    fn table_ids() {
        for ok in [
            "orders",
            "orders-2026 copy",
            "ventes_été",
            "顧客",
            "naïve\u{0301}",     // combining acute accent: a mark (M)
            "table\u{3000}wide", // ideographic space: Zs
            "a\u{2014}b",        // em dash: Pd
            "a\u{203F}b",        // undertie: Pc
            "٣٤",                // Arabic-Indic digits: N
        ] {
            validate_table_id(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        let cases = [
            ("", "must not be empty"),
            ("orders$20260101", "partition decorators"),
            ("orders.copy", "'.' is not allowed"),
            ("a`b", "'`' is not allowed"),
            ("tab\tle", "'\\t' is not allowed"),
            ("new\nline", "'\\n' is not allowed"),
            ("emoji😀", "'😀' is not allowed"),
            ("ⓐb", "'ⓐ' is not allowed"), // So, although Unicode calls it alphabetic
        ];
        for (name, expected) in cases {
            let (kind, reason) = reason_of(validate_table_id(name));
            assert_eq!(kind, NameKind::Table);
            assert!(reason.contains(expected), "{name:?}: {reason}");
        }
        // The limit is in bytes: 512 two-byte characters fit, 513 do not.
        validate_table_id(&"é".repeat(512)).unwrap();
        let (_, reason) = reason_of(validate_table_id(&"é".repeat(513)));
        assert!(reason.contains("1024 UTF-8 bytes, got 1026"), "{reason}");
    }

    #[test]
    fn column_names() {
        for ok in [
            "id",
            "_hidden",
            "Order_Total_2",
            "x",
            &"c".repeat(300),
            "_TABLE",
            "file_",
        ] {
            validate_column_name(ok).unwrap();
        }
        let cases = [
            ("", "must not be empty"),
            ("2fast", "start with a letter or `_`"),
            ("order-id", "'-' is not allowed"),
            ("order id", "' ' is not allowed"),
            ("prix_é", "'é' is not allowed"),
            ("_TABLE_SUFFIX", "`_TABLE_` is reserved"),
            ("_file_name", "`_FILE_` is reserved"),
            ("_PARTITIONTIME", "`_PARTITION` is reserved"),
            ("_partitiondate", "`_PARTITION` is reserved"),
            ("_ROW_TIMESTAMP", "`_ROW_TIMESTAMP` is reserved"),
            ("__ROOT__x", "`__ROOT__` is reserved"),
            ("_Column_1", "`_COLUMN_` is reserved"),
        ];
        for (name, expected) in cases {
            let (kind, reason) = reason_of(validate_column_name(name));
            assert_eq!(kind, NameKind::Column);
            assert!(reason.contains(expected), "{name:?}: {reason}");
        }
        let (_, reason) = reason_of(validate_column_name(&"c".repeat(301)));
        assert!(
            reason.contains("at most 300 characters, got 301"),
            "{reason}"
        );
    }

    #[test]
    fn table_ref_validates_and_quotes() {
        let table = TableRef::new("test-proj", "sales", "orders 2026").unwrap();
        assert_eq!(table.to_string(), "`test-proj.sales.orders 2026`");
        assert_eq!(
            (table.project(), table.dataset(), table.table()),
            ("test-proj", "sales", "orders 2026")
        );
        assert!(matches!(
            TableRef::new("test-proj", "sales", "orders$2026"),
            Err(ConnectorError::InvalidName {
                kind: NameKind::Table,
                ..
            })
        ));
        assert!(matches!(
            TableRef::new("test-proj", "sa-les", "orders"),
            Err(ConnectorError::InvalidName {
                kind: NameKind::Dataset,
                ..
            })
        ));
        assert!(matches!(
            TableRef::new("Test", "sales", "orders"),
            Err(ConnectorError::InvalidName {
                kind: NameKind::Project,
                ..
            })
        ));
    }
}
