//! What a sync wrote and from what: the manifest stored next to the data
//! (`<root>/_sync/bigquery/<table>.json`), and the source snapshot it names.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ndjson::{push_date, push_time};
use super::values::MICROS_PER_DAY;

/// One source file as listed before the sync read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    pub path: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    /// RFC 3339.
    pub last_modified: String,
}

/// The files a sync read. Its [`id`](Self::id) names the snapshot: the same files with the
/// same sizes, etags and modification times give the same id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSnapshot {
    pub files: Vec<SourceFile>,
}

impl SourceSnapshot {
    pub fn new(mut files: Vec<SourceFile>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Self { files }
    }

    /// First 16 bytes of SHA-256 over the sorted file list, hex.
    pub fn id(&self) -> String {
        let mut hasher = Sha256::new();
        for file in &self.files {
            hasher.update(file.path.as_bytes());
            hasher.update([0]);
            hasher.update(file.size.to_string().as_bytes());
            hasher.update([0]);
            hasher.update(file.e_tag.as_deref().unwrap_or("").as_bytes());
            hasher.update([0]);
            hasher.update(file.last_modified.as_bytes());
            hasher.update([b'\n']);
        }
        hex(&hasher.finalize()[..16])
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// The record of one successful table sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncManifest {
    /// `project.dataset.table`
    pub table: String,
    /// The source table's name under the storage root.
    pub source: String,
    pub mode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_by: Option<String>,
    pub rows: u64,
    /// The order-independent checksum (hex) of the rows synced, equal in BigQuery and locally.
    pub checksum: String,
    pub source_snapshot_id: String,
    pub source_snapshot: SourceSnapshot,
    pub run_id: String,
    pub started: String,
    pub finished: String,
    /// `synced`, or `already-applied` when an append of this snapshot was committed by an
    /// earlier run.
    pub status: String,
    pub jobs: Vec<String>,
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn rfc3339(time: SystemTime) -> String {
    let micros = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    };
    let mut out = String::with_capacity(27);
    push_date(micros.div_euclid(MICROS_PER_DAY), &mut out);
    out.push('T');
    push_time(micros.rem_euclid(MICROS_PER_DAY), &mut out);
    out.push('Z');
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn file(path: &str, size: u64) -> SourceFile {
        SourceFile {
            path: path.into(),
            size,
            e_tag: None,
            last_modified: "2026-11-22T00:00:00.000000Z".into(),
        }
    }

    #[test]
    fn snapshot_id_ignores_listing_order_and_sees_every_change() {
        let a = SourceSnapshot::new(vec![file("t/a.parquet", 10), file("t/b.parquet", 20)]);
        let b = SourceSnapshot::new(vec![file("t/b.parquet", 20), file("t/a.parquet", 10)]);
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 32);
        let grown = SourceSnapshot::new(vec![file("t/a.parquet", 11), file("t/b.parquet", 20)]);
        assert_ne!(a.id(), grown.id());
        let fewer = SourceSnapshot::new(vec![file("t/a.parquet", 10)]);
        assert_ne!(a.id(), fewer.id());
        assert_eq!(a.total_bytes(), 30);
    }

    #[test]
    fn rfc3339_formats_microseconds() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_micros(1_767_323_045_123_456);
        assert_eq!(rfc3339(time), "2026-01-02T03:04:05.123456Z");
    }
}
