//! A small BigQuery REST client for the sync: datasets, tables, jobs (with media upload),
//! queries. Every call goes through [`RetryPolicy::run`] and is safe to repeat:
//! - creations treat 409 "already exists" as done (a retried request whose first attempt
//!   reached BigQuery);
//! - jobs carry a job id chosen by the caller, so a retried insert answers 409 and the job is
//!   fetched instead of started twice;
//! - deletions treat 404 as done.
//!
//! Request bodies are the REST resources as JSON (`gcp-bigquery-client`'s models where they
//! exist: schemas). Its `Client` is not used for the calls themselves because it has no media
//! upload and turns non-JSON error bodies (a proxy's 502) into decoding errors without the
//! HTTP status, which retries need. Error bodies are reduced to BigQuery's message; URLs and
//! tokens never reach an error.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::auth::TokenSource;
use super::names::TableRef;
use super::retry::RetryPolicy;
use crate::error::{ConnectorError, redact_credentials};

/// Google's endpoint; `--endpoint` / `BIGQUERY_EMULATOR_HOST` replace it.
pub const DEFAULT_ENDPOINT: &str = "https://bigquery.googleapis.com";

/// Settings of a [`BigQueryClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Scheme, host and port of the API (`https://bigquery.googleapis.com`, or an emulator's
    /// `http://127.0.0.1:9050`); a trailing `/bigquery/v2` is accepted and ignored.
    pub endpoint: String,
    pub project: String,
    /// Location of jobs and queries (`US`, `EU`, `europe-west3`…); BigQuery's default if none.
    pub location: Option<String>,
    pub retry: RetryPolicy,
    /// Upper bound of one HTTP request, uploads included.
    pub request_timeout: Duration,
}

impl ClientOptions {
    pub fn new(project: impl Into<String>) -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            project: project.into(),
            location: None,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(300),
        }
    }
}

/// Turns `127.0.0.1:9050`, `http://127.0.0.1:9050/` or `http://h:p/bigquery/v2` into
/// `scheme://host:port` (http when no scheme is given, as `BIGQUERY_EMULATOR_HOST` is written).
pub fn normalize_endpoint(endpoint: &str) -> Result<String, ConnectorError> {
    let trimmed = endpoint.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| ConnectorError::InvalidRequest {
        reason: format!(
            "invalid BigQuery endpoint {:?}: {e}",
            redact_credentials(trimmed)
        ),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConnectorError::InvalidRequest {
            reason: format!(
                "invalid BigQuery endpoint {:?}: expected http(s)://host[:port]",
                redact_credentials(trimmed)
            ),
        });
    }
    let path = url.path().trim_end_matches('/');
    let path = path.strip_suffix("/bigquery/v2").unwrap_or(path);
    let mut root = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        root.push_str(&format!(":{port}"));
    }
    root.push_str(path);
    Ok(root)
}

/// A finished BigQuery job (its REST resource).
#[derive(Debug, Clone)]
pub struct FinishedJob {
    pub job_id: String,
    pub resource: Value,
}

/// Rows of a query result: `rows[i][j]` is the `v` of column j, as BigQuery sends it (strings
/// for scalars, `useInt64Timestamp` for timestamps, arrays/objects for nested values).
#[derive(Debug, Clone, Default)]
pub struct QueryRows {
    pub rows: Vec<Vec<Value>>,
}

#[derive(Debug, Clone)]
pub struct BigQueryClient {
    http: reqwest::Client,
    /// `{endpoint}/bigquery/v2/projects/{project}`
    api: String,
    /// `{endpoint}/upload/bigquery/v2/projects/{project}`
    upload: String,
    project: String,
    location: Option<String>,
    tokens: TokenSource,
    retry: RetryPolicy,
}

/// One attempt's body.
enum Body<'a> {
    None,
    Json(&'a Value),
    /// A multipart/related media upload: job metadata, then the data.
    Media {
        metadata: &'a Value,
        data: &'a [u8],
    },
}

const MULTIPART_BOUNDARY: &str = "phygital-7c1e5b0a3f9d4e2b8a6c";

impl BigQueryClient {
    pub fn new(options: &ClientOptions, tokens: TokenSource) -> Result<Self, ConnectorError> {
        let root = normalize_endpoint(&options.endpoint)?;
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| ConnectorError::InvalidRequest {
                reason: format!("cannot build the HTTP client: {}", e.without_url()),
            })?;
        let project = urlencode(&options.project);
        Ok(Self {
            http,
            api: format!("{root}/bigquery/v2/projects/{project}"),
            upload: format!("{root}/upload/bigquery/v2/projects/{project}"),
            project: options.project.clone(),
            location: options.location.clone(),
            tokens,
            retry: options.retry,
        })
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// One request, no retry. 2xx → the JSON body (`Null` when empty).
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Body<'_>,
    ) -> Result<Value, ConnectorError> {
        let token = self.tokens.token().await?;
        let mut request = self.http.request(method, url).bearer_auth(token);
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(value),
            Body::Media { metadata, data } => {
                let mut bytes = Vec::with_capacity(data.len() + 1024);
                bytes.extend_from_slice(
                    format!(
                        "--{MULTIPART_BOUNDARY}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n--{MULTIPART_BOUNDARY}\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                bytes.extend_from_slice(data);
                bytes.extend_from_slice(format!("\r\n--{MULTIPART_BOUNDARY}--\r\n").as_bytes());
                request
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        format!("multipart/related; boundary={MULTIPART_BOUNDARY}"),
                    )
                    .body(bytes)
            }
        };
        let response = request.send().await.map_err(request_error)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(request_error)?;
        if status.is_success() {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                ConnectorError::UnexpectedResponse {
                    reason: format!("response is not JSON: {e}"),
                }
            });
        }
        Err(response_error(status, &bytes))
    }

    /// A request with retries.
    async fn call(
        &self,
        what: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, ConnectorError> {
        self.retry
            .run(what, || {
                let body = body.map_or(Body::None, Body::Json);
                self.send(method.clone(), url, body)
            })
            .await
    }

    fn location_query(&self) -> String {
        self.location
            .as_deref()
            .map(|l| format!("?location={}", urlencode(l)))
            .unwrap_or_default()
    }

    /// The dataset resource, or `None` if it does not exist.
    pub async fn get_dataset(&self, dataset: &str) -> Result<Option<Value>, ConnectorError> {
        let url = format!("{}/datasets/{}", self.api, urlencode(dataset));
        not_found_as_none(
            self.call(
                &format!("reading dataset {dataset}"),
                Method::GET,
                &url,
                None,
            )
            .await,
        )
    }

    /// Creates a dataset; an existing one (e.g. created by a retried first attempt) is fine.
    pub async fn create_dataset(&self, dataset: &str) -> Result<(), ConnectorError> {
        let mut resource = json!({
            "datasetReference": {"projectId": self.project, "datasetId": dataset},
        });
        if let Some(location) = &self.location {
            resource["location"] = json!(location);
        }
        let url = format!("{}/datasets", self.api);
        already_exists_as_ok(
            self.call(
                &format!("creating dataset {dataset}"),
                Method::POST,
                &url,
                Some(&resource),
            )
            .await,
        )
    }

    /// The table resource, or `None` if it does not exist.
    pub async fn get_table(&self, table: &TableRef) -> Result<Option<Value>, ConnectorError> {
        not_found_as_none(
            self.call(
                &format!("reading table {table}"),
                Method::GET,
                &self.table_url(table),
                None,
            )
            .await,
        )
    }

    /// Creates a table from its resource; `Ok(false)` if it exists already.
    pub async fn create_table(
        &self,
        table: &TableRef,
        resource: &Value,
    ) -> Result<bool, ConnectorError> {
        let url = format!(
            "{}/datasets/{}/tables",
            self.api,
            urlencode(table.dataset())
        );
        match self
            .call(
                &format!("creating table {table}"),
                Method::POST,
                &url,
                Some(resource),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(ConnectorError::BigQuery {
                http_status: Some(409),
                ..
            }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Deletes a table; a missing one is fine.
    pub async fn delete_table(&self, table: &TableRef) -> Result<(), ConnectorError> {
        let result = self
            .call(
                &format!("deleting table {table}"),
                Method::DELETE,
                &self.table_url(table),
                None,
            )
            .await;
        match not_found_as_none(result) {
            Ok(_) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The ids of the tables of `dataset` that start with `prefix`.
    pub async fn list_tables(
        &self,
        dataset: &str,
        prefix: &str,
    ) -> Result<Vec<String>, ConnectorError> {
        let mut out = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/datasets/{}/tables?maxResults=1000",
                self.api,
                urlencode(dataset)
            );
            if let Some(token) = &page_token {
                url.push_str(&format!("&pageToken={}", urlencode(token)));
            }
            let page = self
                .call(
                    &format!("listing the tables of dataset {dataset}"),
                    Method::GET,
                    &url,
                    None,
                )
                .await?;
            let tables = page.get("tables").and_then(Value::as_array);
            for table in tables.into_iter().flatten() {
                if let Some(id) = table
                    .pointer("/tableReference/tableId")
                    .and_then(Value::as_str)
                    .filter(|id| id.starts_with(prefix))
                {
                    out.push(id.to_owned());
                }
            }
            page_token = page
                .get("nextPageToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            // An empty page with a token would loop forever on a misbehaving server.
            if page_token.is_none() || tables.is_none_or(|t| t.is_empty()) {
                return Ok(out);
            }
        }
    }

    /// The job resource, or `None` if there is no job with this id.
    pub async fn get_job(&self, job_id: &str) -> Result<Option<Value>, ConnectorError> {
        let url = format!(
            "{}/jobs/{}{}",
            self.api,
            urlencode(job_id),
            self.location_query()
        );
        not_found_as_none(
            self.call(&format!("reading job {job_id}"), Method::GET, &url, None)
                .await,
        )
    }

    /// Starts the job `job_id` with `configuration` (or finds it, if a previous attempt
    /// started it) and waits until it is done; a job that ends with an error is
    /// [`ConnectorError::JobFailed`].
    pub async fn run_job(
        &self,
        job_id: &str,
        configuration: Value,
        what: &str,
    ) -> Result<FinishedJob, ConnectorError> {
        let resource = self.job_resource(job_id, configuration);
        let url = format!("{}/jobs", self.api);
        let inserted = self
            .retry
            .run(&format!("starting job {job_id} ({what})"), || async {
                match self.send(Method::POST, &url, Body::Json(&resource)).await {
                    Err(ConnectorError::BigQuery {
                        http_status: Some(409),
                        ..
                    }) => Ok(None),
                    other => other.map(Some),
                }
            })
            .await?;
        self.finish_job(job_id, inserted, what).await
    }

    /// Like [`Self::run_job`] for a load job whose data is sent in the same request (a
    /// multipart media upload).
    pub async fn run_upload_job(
        &self,
        job_id: &str,
        configuration: Value,
        data: &[u8],
        what: &str,
    ) -> Result<FinishedJob, ConnectorError> {
        let resource = self.job_resource(job_id, configuration);
        let url = format!("{}/jobs?uploadType=multipart", self.upload);
        let inserted = self
            .retry
            .run(&format!("uploading job {job_id} ({what})"), || async {
                let body = Body::Media {
                    metadata: &resource,
                    data,
                };
                match self.send(Method::POST, &url, body).await {
                    Err(ConnectorError::BigQuery {
                        http_status: Some(409),
                        ..
                    }) => Ok(None),
                    other => other.map(Some),
                }
            })
            .await?;
        self.finish_job(job_id, inserted, what).await
    }

    fn job_resource(&self, job_id: &str, configuration: Value) -> Value {
        let mut reference = json!({"projectId": self.project, "jobId": job_id});
        if let Some(location) = &self.location {
            reference["location"] = json!(location);
        }
        json!({"jobReference": reference, "configuration": configuration})
    }

    /// Polls the job until it is DONE and checks its outcome.
    async fn finish_job(
        &self,
        job_id: &str,
        inserted: Option<Value>,
        what: &str,
    ) -> Result<FinishedJob, ConnectorError> {
        let mut job = match inserted {
            Some(job) => job,
            None => self.require_job(job_id).await?,
        };
        let mut delay = Duration::from_millis(200);
        while job.pointer("/status/state").and_then(Value::as_str) != Some("DONE") {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            job = self.require_job(job_id).await?;
        }
        job_outcome(job_id, job, what)
    }

    async fn require_job(&self, job_id: &str) -> Result<Value, ConnectorError> {
        self.get_job(job_id)
            .await?
            .ok_or_else(|| ConnectorError::UnexpectedResponse {
                reason: format!("job {job_id} was accepted but cannot be found"),
            })
    }

    /// Runs a query and returns all its rows.
    pub async fn query(&self, sql: &str, what: &str) -> Result<QueryRows, ConnectorError> {
        let mut request = json!({
            "query": sql,
            "useLegacySql": false,
            "timeoutMs": 60_000,
            "formatOptions": {"useInt64Timestamp": true},
        });
        if let Some(location) = &self.location {
            request["location"] = json!(location);
        }
        let url = format!("{}/queries", self.api);
        let mut response = self.call(what, Method::POST, &url, Some(&request)).await?;
        let job_id = response
            .pointer("/jobReference/jobId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut out = QueryRows::default();
        loop {
            if response.get("jobComplete").and_then(Value::as_bool) == Some(false) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            } else {
                if let Some(errors) = response.get("errors").and_then(Value::as_array)
                    && !errors.is_empty()
                {
                    return Err(ConnectorError::UnexpectedResponse {
                        reason: format!("{what}: {}", error_messages(errors)),
                    });
                }
                for row in response
                    .get("rows")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    out.rows.push(row_values(row)?);
                }
            }
            let page_token = response
                .get("pageToken")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let complete = response.get("jobComplete").and_then(Value::as_bool) != Some(false);
            if complete && page_token.is_none() {
                return Ok(out);
            }
            let Some(job_id) = &job_id else {
                return Err(ConnectorError::UnexpectedResponse {
                    reason: format!("{what}: an incomplete query result without a job id"),
                });
            };
            let mut url = format!(
                "{}/queries/{}?timeoutMs=60000&formatOptions.useInt64Timestamp=true",
                self.api,
                urlencode(job_id)
            );
            if let Some(location) = &self.location {
                url.push_str(&format!("&location={}", urlencode(location)));
            }
            if let Some(token) = page_token.filter(|_| complete) {
                url.push_str(&format!("&pageToken={}", urlencode(&token)));
            }
            response = self.call(what, Method::GET, &url, None).await?;
        }
    }

    fn table_url(&self, table: &TableRef) -> String {
        format!(
            "{}/datasets/{}/tables/{}",
            self.api,
            urlencode(table.dataset()),
            urlencode(table.table())
        )
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A connection-level failure: no HTTP status, so it is retried.
fn request_error(error: reqwest::Error) -> ConnectorError {
    ConnectorError::BigQuery {
        http_status: error.status().map(|s| s.as_u16()),
        message: redact_credentials(&error.without_url().to_string()),
    }
}

/// BigQuery's error body `{"error": {"code", "message", "status"}}`, or the start of whatever
/// else answered (a proxy's HTML).
fn response_error(status: StatusCode, body: &[u8]) -> ConnectorError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .map(|error| {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            match error.get("status").and_then(Value::as_str) {
                Some(kind) if !kind.is_empty() => format!("{kind}: {message}"),
                _ => message.to_owned(),
            }
        })
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text: String = text.chars().take(200).collect();
            let reason = status.canonical_reason().unwrap_or("");
            if text.trim().is_empty() {
                reason.to_owned()
            } else {
                format!("{reason}: {}", text.trim())
            }
        });
    ConnectorError::BigQuery {
        http_status: Some(status.as_u16()),
        message: redact_credentials(&message),
    }
}

fn not_found_as_none(
    result: Result<Value, ConnectorError>,
) -> Result<Option<Value>, ConnectorError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(ConnectorError::BigQuery {
            http_status: Some(404),
            ..
        }) => Ok(None),
        Err(error) => Err(error),
    }
}

fn already_exists_as_ok(result: Result<Value, ConnectorError>) -> Result<(), ConnectorError> {
    match result {
        Ok(_)
        | Err(ConnectorError::BigQuery {
            http_status: Some(409),
            ..
        }) => Ok(()),
        Err(error) => Err(error),
    }
}

fn error_messages(errors: &[Value]) -> String {
    errors
        .iter()
        .filter_map(|e| e.get("message").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A DONE job: its `errorResult` (if any) is the failure.
fn job_outcome(job_id: &str, job: Value, what: &str) -> Result<FinishedJob, ConnectorError> {
    if let Some(error) = job.pointer("/status/errorResult") {
        let mut message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_owned();
        if let Some(errors) = job.pointer("/status/errors").and_then(Value::as_array) {
            let details = error_messages(errors);
            if !details.is_empty() && details != message {
                message = format!("{message} ({details})");
            }
        }
        return Err(ConnectorError::JobFailed {
            job_id: job_id.to_owned(),
            what: what.to_owned(),
            message: redact_credentials(&message),
        });
    }
    Ok(FinishedJob {
        job_id: job_id.to_owned(),
        resource: job,
    })
}

/// `{"f": [{"v": …}, …]}` → the `v`s.
fn row_values(row: &Value) -> Result<Vec<Value>, ConnectorError> {
    let cells = row.get("f").and_then(Value::as_array).ok_or_else(|| {
        ConnectorError::UnexpectedResponse {
            reason: "a query result row without cells".to_owned(),
        }
    })?;
    Ok(cells
        .iter()
        .map(|cell| cell.get("v").cloned().unwrap_or(Value::Null))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised() {
        for (given, expected) in [
            ("127.0.0.1:9050", "http://127.0.0.1:9050"),
            ("http://127.0.0.1:9050/", "http://127.0.0.1:9050"),
            ("http://127.0.0.1:9050/bigquery/v2", "http://127.0.0.1:9050"),
            (
                "https://bigquery.googleapis.com",
                "https://bigquery.googleapis.com",
            ),
        ] {
            assert_eq!(normalize_endpoint(given).unwrap(), expected);
        }
        let error = normalize_endpoint("ftp://user:secret@host")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn error_bodies_become_status_and_message() {
        let body = br#"{"error":{"code":409,"message":"Already Exists: Job p:j","status":"ALREADY_EXISTS"}}"#;
        match response_error(StatusCode::CONFLICT, body) {
            ConnectorError::BigQuery {
                http_status,
                message,
            } => {
                assert_eq!(http_status, Some(409));
                assert_eq!(message, "ALREADY_EXISTS: Already Exists: Job p:j");
            }
            other => panic!("{other:?}"),
        }
        match response_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>") {
            ConnectorError::BigQuery {
                http_status,
                message,
            } => {
                assert_eq!(http_status, Some(502));
                assert_eq!(message, "Bad Gateway: <html>bad gateway</html>");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failed_jobs_report_their_error() {
        let job = json!({"status": {"state": "DONE", "errorResult": {"message": "Syntax error"}, "errors": [{"message": "Syntax error"}]}});
        let error = job_outcome("j1", job, "MERGE").unwrap_err();
        assert_eq!(
            error.to_string(),
            "BigQuery job j1 (MERGE) failed: Syntax error"
        );
        let ok = json!({"status": {"state": "DONE"}});
        assert_eq!(job_outcome("j2", ok, "copy").unwrap().job_id, "j2");
    }

    #[test]
    fn query_rows_are_cell_values() {
        let row = json!({"f": [{"v": "1"}, {"v": null}, {"v": [{"v": "a"}]}]});
        assert_eq!(
            row_values(&row).unwrap(),
            vec![json!("1"), Value::Null, json!([{"v": "a"}])]
        );
    }
}
