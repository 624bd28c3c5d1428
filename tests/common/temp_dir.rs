//! A fresh folder under the OS temp dir, removed on drop (no `tempfile` dev-dependency on purpose).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct TempDir(PathBuf);

impl TempDir {
    /// `<temp>/phygital-<label>-<pid>-<n>`, empty.
    pub fn new(label: &str) -> std::io::Result<TempDir> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "phygital-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path)?; // left by an earlier process with the same pid
        }
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // best effort: a leftover folder in the temp dir is harmless
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
