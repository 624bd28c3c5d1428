//! The one place a [`SessionContext`] is built: CLI, tests and the `.slt` runner all use it, so tests exercise the
//! production configuration.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::storage::{LazyObjectStoreRegistry, StorageOptions, StorageRoot};
use crate::tables::{TableDecl, register_storage_tables};

/// How much a session may use and where it spills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// Size of the spilling memory pool shared by all operators of the session.
    pub memory_limit_bytes: usize,
    pub target_partitions: usize,
    /// Where sorts/aggregations spill; the OS temp dir when `None`.
    pub spill_dir: Option<PathBuf>,
    pub batch_size: usize,
    pub storage: StorageOptions,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            memory_limit_bytes: 4 << 30,
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            spill_dir: None,
            batch_size: 8192,
            storage: StorageOptions::default(),
        }
    }
}

/// Builds a session: spilling memory pool, disk manager, lazy object-store registry, information_schema, and
/// every phygital SQL function registered.
pub fn build_context(opts: &EngineOptions) -> Result<SessionContext> {
    let config = SessionConfig::new()
        .with_target_partitions(opts.target_partitions.max(1))
        .with_batch_size(opts.batch_size.max(1))
        .with_information_schema(true)
        .with_collect_statistics(true)
        .set_bool("datafusion.execution.parquet.pushdown_filters", true)
        .set_str("datafusion.execution.spill_compression", "zstd");

    let mut disk = DiskManagerBuilder::default();
    if let Some(dir) = &opts.spill_dir {
        disk = disk.with_mode(DiskManagerMode::Directories(vec![dir.clone()]));
    }
    let runtime = RuntimeEnvBuilder::new()
        // FairSpillPool: every spilling operator gets a fair share; a non-spilling reservation over the
        // limit fails with ResourcesExhausted instead of the process being killed.
        .with_memory_pool(Arc::new(FairSpillPool::new(opts.memory_limit_bytes)))
        .with_disk_manager_builder(disk)
        .with_object_store_registry(Arc::new(LazyObjectStoreRegistry::new(opts.storage.clone())))
        .build_arc()?;

    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    // `SELECT * FROM 's3://bucket/file.parquet'` works like in datafusion-cli.
    let mut ctx = SessionContext::new_with_state(state).enable_url_table();
    phygital_udfs::register_session(&mut ctx)?;
    Ok(ctx)
}

/// A session over a storage root: [`build_context`] plus every table under `storage` registered.
pub async fn open(storage: &str, opts: &EngineOptions) -> Result<(SessionContext, StorageRoot)> {
    open_with_tables(storage, opts, &[]).await
}

/// Like [`open`], with extra or overriding table declarations (`[tables]` of `phygital.toml`).
pub async fn open_with_tables(
    storage: &str,
    opts: &EngineOptions,
    declared: &[TableDecl],
) -> Result<(SessionContext, StorageRoot)> {
    let root = StorageRoot::parse(storage)?;
    let ctx = build_context(opts)?;
    register_storage_tables(&ctx, &root, declared).await?;
    Ok((ctx, root))
}
