//! The error type at the `phygital` crate boundary (CLI, library callers).
//!
//! Inside the engine everything is a [`DataFusionError`]; this type adds the cases that only exist at the
//! edge (configuration files, terminal I/O) and renders any of them as one readable line.

use datafusion::error::DataFusionError;

/// Everything that can go wrong in a phygital command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A query, a table, a function or an object store failed.
    #[error("{}", one_line_datafusion(.0))]
    Engine(#[from] DataFusionError),
    /// `phygital.toml` (or an environment override) is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// Bad command-line usage that clap cannot check (e.g. two SQL sources).
    #[error("{0}")]
    Usage(String),
    /// A connector (BigQuery) failed.
    #[error(transparent)]
    Connector(#[from] phygital_connectors::ConnectorError),
    /// A model of a `phygital run` project is invalid or failed: where (`sql/m.sql`, `sql/m.sql:3` or
    /// `sql/m.sql:3:10`) and what.
    #[error("{location}: {message}")]
    Model { location: String, message: String },
    /// A model project as a whole is invalid (a dependency cycle, a model without materialised output).
    #[error("{0}")]
    Project(String),
    /// Reading or writing a local file or the terminal failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::Engine(DataFusionError::ObjectStore(Box::new(e)))
    }
}

impl Error {
    /// A failure of the model at `location`, the engine's error rendered as one line.
    pub fn in_model(location: impl Into<String>, e: &DataFusionError) -> Self {
        Error::Model {
            location: location.into(),
            message: one_line_datafusion(e),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// DataFusion renders contexts and nested errors over several lines and prefixes wrapped errors with
/// their kind ("External error: ..."); a scheduler's log wants one line that starts with what the user did wrong.
fn one_line_datafusion(e: &DataFusionError) -> String {
    let text = match e.find_root() {
        // The parser error's Debug form ("ParserError(\"…\")") is what DataFusion shows; its Display is cleaner.
        DataFusionError::SQL(parser_error, _) if !matches!(e, DataFusionError::Context(..)) => {
            parser_error.to_string()
        }
        _ if matches!(e, DataFusionError::Context(..)) => e.to_string(),
        root => root.to_string(),
    };
    let mut out = String::with_capacity(text.len());
    for part in text.split('\n').map(str::trim).filter(|p| !p.is_empty()) {
        let part = part
            .strip_prefix("caused by")
            .map(str::trim)
            .unwrap_or(part);
        if part.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(strip_kind_prefix(part));
    }
    condense_xml_error_body(&out)
}

/// S3 and Azure answer errors with an XML document (request ids, host ids…); keep its code and message.
fn condense_xml_error_body(text: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = start + text[start..].find(&format!("</{name}>"))?;
        Some(&text[start..end])
    };
    let (Some(xml_start), Some(code)) = (
        text.find("<?xml").or_else(|| text.find("<Error>")),
        tag("Code"),
    ) else {
        return text.to_string();
    };
    let xml_end = text
        .rfind("</Error>")
        .map_or(text.len(), |i| i + "</Error>".len());
    let summary = match tag("Message") {
        Some(message) => format!("{code}: {message}"),
        None => code.to_string(),
    };
    format!("{}{summary}{}", &text[..xml_start], &text[xml_end..])
}

fn strip_kind_prefix(s: &str) -> &str {
    const PREFIXES: &[&str] = &[
        "External error: ",
        "Execution error: ",
        "Error during planning: ",
        "Object Store error: ",
        "IO error: ",
        "Parquet error: ",
        "Arrow error: ",
    ];
    let mut s = s;
    while let Some(rest) = PREFIXES.iter().find_map(|p| s.strip_prefix(p)) {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::{exec_datafusion_err, plan_datafusion_err};

    #[test]
    fn context_is_kept_and_flattened() {
        let e = exec_datafusion_err!("corrupt footer").context("table 'pos_receipts'");
        let line = Error::from(e).to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("table 'pos_receipts'"), "{line}");
        assert!(line.contains("corrupt footer"), "{line}");
    }

    #[test]
    fn syntax_errors_read_well() {
        let e = datafusion::sql::parser::DFParser::parse_sql("SELEC 1").unwrap_err();
        let line = Error::from(e).to_string();
        assert!(
            line.starts_with("sql parser error: Expected: an SQL statement, found: SELEC"),
            "{line}"
        );
    }

    #[test]
    fn cloud_xml_errors_are_condensed() {
        let raw = "listing s3://b/x/: 404 Not Found: <?xml version=\"1.0\"?>: <Error><Code>NoSuchBucket</Code>\
                   <Message>The specified bucket does not exist</Message><RequestId>abc</RequestId></Error>";
        assert_eq!(
            condense_xml_error_body(raw),
            "listing s3://b/x/: 404 Not Found: NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(condense_xml_error_body("plain <text>"), "plain <text>");
    }

    #[test]
    fn kind_prefixes_are_removed() {
        let e = plan_datafusion_err!("table 'nope' not found");
        assert_eq!(Error::from(e).to_string(), "table 'nope' not found");
    }
}
