//! `phygital.toml`: the project configuration, with environment overrides.
//!
//! ```toml
//! [storage]
//! root = "s3://bucket/prefix"        # file://…, a plain path, s3://, gs://, az://, abfss://
//! s3_endpoint = "http://127.0.0.1:9000"  # S3-compatible servers (MinIO, Ceph, moto…)
//!
//! [tables.stores]                     # add or override a table
//! location = "s3://other-bucket/dim/stores/"
//! format = "parquet"                  # parquet | csv | json
//!
//! [engine]
//! memory_limit = "4GiB"
//! target_partitions = 4
//! spill_dir = "/mnt/spill"
//! ```
//! `[bigquery]` holds the defaults of `phygital sync bigquery`. Sections owned by later features (`[identity]`,
//! `[attribution]`) are kept as raw TOML here and
//! validated by those features; any other unknown key is an error, so a typo never silently does nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::session::EngineOptions;
use crate::storage::StorageOptions;

/// Default file name looked up in the working directory.
pub const CONFIG_FILE: &str = "phygital.toml";
/// The embedded default storage root when neither flag, env nor config names one.
pub const DEFAULT_STORAGE: &str = "./phygital-data";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub tables: BTreeMap<String, TableSpec>,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub identity: Option<toml::Table>,
    #[serde(default)]
    pub attribution: Option<toml::Table>,
    #[serde(default)]
    pub bigquery: Option<BigQuerySection>,
}

/// `[bigquery]`: defaults of `phygital sync bigquery`; command-line flags win.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BigQuerySection {
    pub project: Option<String>,
    pub dataset: Option<String>,
    pub location: Option<String>,
    /// A service-account key file; application default credentials when absent.
    pub credentials: Option<PathBuf>,
    /// An emulator or private endpoint, e.g. "http://127.0.0.1:9050".
    pub endpoint: Option<String>,
    /// Tables to sync, "NAME" or "NAME=SOURCE"; every table of the storage root when empty.
    #[serde(default)]
    pub tables: Vec<String>,
    /// replace | append | merge | replace-partitions
    pub mode: Option<String>,
    #[serde(default)]
    pub key: Vec<String>,
    pub partition_by: Option<String>,
    #[serde(default)]
    pub cluster_by: Vec<String>,
    /// Create missing datasets and tables (default true).
    pub create: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    pub root: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    #[serde(default)]
    pub s3_allow_http: bool,
    /// Let the cloud SDKs ask the instance metadata service for credentials (EC2, GCE, Azure VMs).
    /// Off by default: on a laptop or CI that lookup hangs on an unreachable address instead of saying
    /// "no credentials".
    #[serde(default)]
    pub allow_instance_credentials: bool,
}

/// A table declared in `[tables.<name>]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// A folder or file URL; relative paths are relative to the storage root.
    pub location: String,
    #[serde(default)]
    pub format: TableFormat,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    #[default]
    Parquet,
    Csv,
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    pub memory_limit: Option<String>,
    pub target_partitions: Option<usize>,
    pub spill_dir: Option<PathBuf>,
    pub batch_size: Option<usize>,
}

impl Config {
    /// Reads `path`, or `./phygital.toml` when `path` is `None` and that file exists.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(CONFIG_FILE), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|e| match e {
                Error::Config(msg) => Error::Config(format!("{}: {msg}", path.display())),
                other => other,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    pub fn parse(text: &str) -> Result<Config> {
        toml::from_str(text)
            .map_err(|e| Error::Config(e.message().to_string() + &span_hint(text, e.span())))
    }

    /// Storage root: `--storage` flag, else `PHYGITAL_STORAGE`, else `[storage] root`, else `./phygital-data`.
    pub fn storage_root(&self, flag: Option<&str>) -> String {
        flag.map(str::to_string)
            .or_else(|| env_nonempty("PHYGITAL_STORAGE"))
            .or_else(|| self.storage.root.clone())
            .unwrap_or_else(|| DEFAULT_STORAGE.to_string())
    }

    pub fn storage_options(&self) -> StorageOptions {
        StorageOptions {
            s3_endpoint: env_nonempty("PHYGITAL_S3_ENDPOINT")
                .or_else(|| self.storage.s3_endpoint.clone()),
            s3_region: self.storage.s3_region.clone(),
            s3_allow_http: self.storage.s3_allow_http,
            allow_instance_credentials: self.storage.allow_instance_credentials
                || env_flag("PHYGITAL_ALLOW_INSTANCE_CREDENTIALS"),
        }
    }

    /// Engine options from `[engine]`, overridden by `PHYGITAL_MEMORY_LIMIT`, `PHYGITAL_TARGET_PARTITIONS`,
    /// `PHYGITAL_SPILL_DIR`.
    pub fn engine_options(&self) -> Result<EngineOptions> {
        let mut opts = EngineOptions::default();
        let memory =
            env_nonempty("PHYGITAL_MEMORY_LIMIT").or_else(|| self.engine.memory_limit.clone());
        if let Some(m) = memory {
            opts.memory_limit_bytes = parse_size(&m)?;
        }
        let partitions = match env_nonempty("PHYGITAL_TARGET_PARTITIONS") {
            Some(v) => Some(v.parse::<usize>().map_err(|_| {
                Error::Config(format!(
                    "PHYGITAL_TARGET_PARTITIONS must be a positive integer, got '{v}'"
                ))
            })?),
            None => self.engine.target_partitions,
        };
        if let Some(p) = partitions {
            if p == 0 {
                return Err(Error::Config("target_partitions must be at least 1".into()));
            }
            opts.target_partitions = p;
        }
        if let Some(dir) = env_nonempty("PHYGITAL_SPILL_DIR")
            .map(PathBuf::from)
            .or_else(|| self.engine.spill_dir.clone())
        {
            opts.spill_dir = Some(dir);
        }
        if let Some(b) = self.engine.batch_size {
            if b == 0 {
                return Err(Error::Config("batch_size must be at least 1".into()));
            }
            opts.batch_size = b;
        }
        opts.storage = self.storage_options();
        Ok(opts)
    }
}

/// Parses "512MiB", "4GiB", "2G", "1500000" (bytes) into bytes.
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| Error::Config(format!("invalid size '{s}' (expected e.g. 512MiB, 4GiB)")))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(Error::Config(format!(
                "invalid size unit '{other}' in '{s}'"
            )));
        }
    };
    let bytes = value * mult;
    if !(bytes >= 1.0 && bytes < usize::MAX as f64) {
        return Err(Error::Config(format!("size '{s}' out of range")));
    }
    Ok(bytes as usize)
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn env_flag(key: &str) -> bool {
    env_nonempty(key)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_config() {
        let c = Config::parse(
            r#"
            [storage]
            root = "s3://b/p"
            s3_endpoint = "http://127.0.0.1:9000"
            [tables.stores]
            location = "dim/stores/"
            format = "csv"
            [engine]
            memory_limit = "512MiB"
            target_partitions = 3
            [bigquery]
            project = "p"
            tables = ["customer_360", "daily=attribution_channel_daily"]
            mode = "merge"
            key = ["customer_id"]
            "#,
        )
        .unwrap();
        let bigquery = c.bigquery.as_ref().unwrap();
        assert_eq!(bigquery.project.as_deref(), Some("p"));
        assert_eq!(bigquery.tables.len(), 2);
        assert_eq!(bigquery.key, ["customer_id"]);
        let err = Config::parse("[bigquery]\nproject = 'p'\ndataset_id = 'd'\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dataset_id") && err.contains("line 3"),
            "{err}"
        );
        assert_eq!(c.storage.root.as_deref(), Some("s3://b/p"));
        assert_eq!(c.tables["stores"].format, TableFormat::Csv);
        let e = c.engine_options().unwrap();
        assert_eq!(e.memory_limit_bytes, 512 << 20);
        assert_eq!(e.target_partitions, 3);
        assert_eq!(
            e.storage.s3_endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_line() {
        let err = Config::parse("[storage]\nroot = 'x'\nrot = 'y'\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rot") && err.contains("line 3"), "{err}");
        let err = Config::parse("[tables.t]\nlocation = 'x'\nformat = 'avro'\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("avro"), "{err}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert!(parse_size("0").is_err());
    }
}
