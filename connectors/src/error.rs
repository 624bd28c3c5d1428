//! The one error type at this crate's boundary.
//!
//! Messages name the column, row or identifier at fault. They never carry credentials: errors
//! from the BigQuery client are rendered once, with request URLs removed and anything that looks
//! like a token redacted, and the original error (whose `Display` may include the URL) is not
//! kept as a `source`.

use std::fmt;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use gcp_bigquery_client::error::BQError;

/// Which kind of BigQuery identifier failed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Project,
    Dataset,
    Table,
    Column,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Project => "project id",
            NameKind::Dataset => "dataset id",
            NameKind::Table => "table id",
            NameKind::Column => "column name",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// An Arrow type that has no faithful BigQuery equivalent. `column` is the dotted path of
    /// the column (`a.b.c` for a field nested in records).
    #[error("column `{column}`: Arrow type {data_type} cannot be stored in BigQuery: {reason}")]
    UnsupportedType {
        column: String,
        data_type: DataType,
        reason: String,
    },

    #[error("invalid BigQuery {kind} {name:?}: {reason}")]
    InvalidName {
        kind: NameKind,
        name: String,
        reason: String,
    },

    /// A schema-level rule that is not about one type: duplicate names, nesting depth, column
    /// count, description length, or batches whose schemas disagree.
    #[error("invalid schema at `{column}`: {reason}")]
    InvalidSchema { column: String, reason: String },

    /// A value that fits its Arrow type but not the BigQuery type the column maps to.
    #[error("column `{column}`, row {row}: {reason}")]
    UnrepresentableValue {
        column: String,
        row: usize,
        reason: String,
    },

    /// BigQuery answered with something this crate cannot interpret (a query result of the
    /// wrong shape, an impossible value).
    #[error("unexpected BigQuery response: {reason}")]
    UnexpectedResponse { reason: String },

    #[error("Arrow error: {0}")]
    Arrow(#[from] ArrowError),

    /// A failed BigQuery call. `http_status` is the HTTP status when the service answered, so
    /// callers can tell 429/5xx (retry) from 4xx (give up).
    #[error("BigQuery request failed{}: {message}", http_status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    BigQuery {
        http_status: Option<u16>,
        message: String,
    },

    /// Credentials could not be read or used. The reason names the file or source, never a
    /// key or token.
    #[error("BigQuery credentials: {reason}")]
    Credentials { reason: String },

    /// A sync that cannot be carried out as asked: a missing dataset with creation disabled,
    /// a key or partition column that does not exist or has the wrong type, an existing table
    /// whose schema differs.
    #[error("{reason}")]
    InvalidRequest { reason: String },

    /// The source rows could not be read.
    #[error("reading the source of {table}: {message}")]
    Source { table: String, message: String },

    /// A BigQuery job finished with an error.
    #[error("BigQuery job {job_id} ({what}) failed: {message}")]
    JobFailed {
        job_id: String,
        what: String,
        message: String,
    },

    /// The read-back check after a sync found BigQuery's table different from the source.
    #[error(
        "verification of {table} failed after {step}: BigQuery has {bigquery}, the source has {local}"
    )]
    VerificationFailed {
        table: String,
        step: String,
        bigquery: String,
        local: String,
    },
}

impl ConnectorError {
    /// Marks a retryable error as final after `attempts` attempts at `what`.
    pub fn after_attempts(self, what: &str, attempts: u32) -> Self {
        match self {
            ConnectorError::BigQuery {
                http_status,
                message,
            } => ConnectorError::BigQuery {
                http_status,
                message: format!("{what}: giving up after {attempts} attempts: {message}"),
            },
            other => other,
        }
    }
}

impl From<BQError> for ConnectorError {
    fn from(error: BQError) -> Self {
        let (http_status, message) = match error {
            // reqwest's Display includes the request URL; an endpoint URL may carry userinfo.
            BQError::RequestError(request_error) => {
                let status = request_error.status().map(|s| s.as_u16());
                (status, request_error.without_url().to_string())
            }
            BQError::ResponseError { error } => {
                let status = u16::try_from(error.error.code).ok();
                let reason = if error.error.status.is_empty() {
                    error.error.message
                } else {
                    format!("{}: {}", error.error.status, error.error.message)
                };
                (status, reason)
            }
            other => (None, other.to_string()),
        };
        ConnectorError::BigQuery {
            http_status,
            message: redact_credentials(&message),
        }
    }
}

/// Removes credential-shaped substrings from a message: bearer tokens, URL userinfo
/// (`scheme://user:secret@host`) and the values of query parameters that carry secrets.
/// Defence in depth: no code path of ours puts credentials into messages, but third-party
/// error texts are not under our control.
pub(crate) fn redact_credentials(message: &str) -> String {
    const SECRET_PARAMETERS: [&str; 8] = [
        "access_token=",
        "refresh_token=",
        "client_secret=",
        "password=",
        "secret=",
        "key=",
        "token=",
        "sig=",
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while !rest.is_empty() {
        if let Some(after) = strip_prefix_ignore_case(rest, "bearer ")
            && at_word_start(&out)
        {
            out.push_str(&rest[..rest.len() - after.len()]);
            out.push_str("[redacted]");
            rest = skip_token(after);
        } else if let Some(after) = rest.strip_prefix("://")
            && let Some(at) = userinfo_end(after)
        {
            out.push_str("://[redacted]@");
            rest = &after[at + 1..];
        } else if let Some((parameter, after)) = SECRET_PARAMETERS.iter().find_map(|parameter| {
            strip_prefix_ignore_case(rest, parameter).map(|after| (*parameter, after))
        }) && at_word_start(&out)
        {
            out.push_str(parameter);
            out.push_str("[redacted]");
            rest = skip_token(after);
        } else {
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
        }
    }
    out
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// A token ends at whitespace, quotes, `&` or closing brackets.
fn skip_token(text: &str) -> &str {
    let end = text
        .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\'' | ')' | ']' | '}' | ','))
        .unwrap_or(text.len());
    &text[end..]
}

/// Position of the `@` ending a URL's userinfo, if the authority has one.
fn userinfo_end(after_scheme: &str) -> Option<usize> {
    let authority_end = after_scheme
        .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
        .unwrap_or(after_scheme.len());
    after_scheme[..authority_end].rfind('@')
}

/// Keywords only count at the start of a word (`?key=`, `&api_key=`, `Bearer`), so that
/// words such as `monkey=` or `cupbearer` are left alone.
fn at_word_start(written: &str) -> bool {
    !written.ends_with(|c: char| c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_bearer_tokens_userinfo_and_secret_parameters() {
        assert_eq!(
            redact_credentials("header Authorization: Bearer ya29.abc-def_ghi was rejected"),
            "header Authorization: Bearer [redacted] was rejected"
        );
        assert_eq!(
            redact_credentials("connect to http://alice:s3cret@127.0.0.1:9050/bigquery/v2 failed"),
            "connect to http://[redacted]@127.0.0.1:9050/bigquery/v2 failed"
        );
        assert_eq!(
            redact_credentials("GET https://x.test/p?alt=json&access_token=abc123&x=1"),
            "GET https://x.test/p?alt=json&access_token=[redacted]&x=1"
        );
        assert_eq!(
            redact_credentials("url ?key=AIzaSyXYZ end"),
            "url ?key=[redacted] end"
        );
        assert_eq!(
            redact_credentials("{\"api_key=abc\", password=hunter2}"),
            "{\"api_key=[redacted]\", password=[redacted]}"
        );
    }

    #[test]
    fn leaves_ordinary_messages_alone() {
        for message in [
            "Not found: Table test-proj:ds.t was not found in location US",
            "monkey=banana is not a parameter",
            "http://127.0.0.1:9050/bigquery/v2 refused",
            "Ünïcödé text with an @ sign: a@b",
            "the cupbearer said no",
        ] {
            assert_eq!(redact_credentials(message), message);
        }
    }

    #[test]
    fn bigquery_response_errors_keep_status_and_reason() {
        let response: gcp_bigquery_client::error::ResponseError = serde_json::from_value(
            serde_json::json!({"error": {"code": 429, "errors": [], "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}),
        )
        .unwrap();
        let error = ConnectorError::from(BQError::ResponseError { error: response });
        match &error {
            ConnectorError::BigQuery {
                http_status,
                message,
            } => {
                assert_eq!(*http_status, Some(429));
                assert_eq!(message, "RESOURCE_EXHAUSTED: Quota exceeded");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            error.to_string(),
            "BigQuery request failed (HTTP 429): RESOURCE_EXHAUSTED: Quota exceeded"
        );
    }
}
