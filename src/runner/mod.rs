//! `phygital run`: a folder of SQL models materialised as Parquet tables in dependency order.
//!
//! Each `*.sql` file is one model: a query whose result becomes the table named after the file, written under
//! the storage root. The runner infers what each model reads with DataFusion's parser ([`dependencies`]), runs
//! the models upstream first ([`order`]), writes each as a new version and tests it ([`data_tests`]) before
//! publishing it atomically ([`materialize`]), and reports rows and time per model ([`report`]).
//!
//! ```no_run
//! # async fn example() -> phygital::Result<()> {
//! use phygital::runner::{Project, RunOptions, run_project};
//! let project = Project::load("sql")?;
//! let (ctx, root) = phygital::session::open("./phygital-data", &Default::default()).await?;
//! let mut report = run_project(&ctx, &root, &project, &RunOptions::default()).await?;
//! if let Some(error) = report.take_failure() {
//!     return Err(error);
//! }
//! # Ok(()) }
//! ```

pub mod data_tests;
pub mod dependencies;
pub mod header;
pub mod materialize;
pub mod order;
pub mod project;
pub mod report;

use std::collections::BTreeSet;
use std::time::Instant;

use datafusion::common::{DataFusionError, TableReference};
use datafusion::prelude::SessionContext;
use indicatif::{ProgressBar, ProgressStyle};

pub use order::Selector;
pub use project::{Model, Project};
pub use report::{ModelReport, ModelStatus, RunReport, RunStatus, TestReport, TestStatus};

use crate::error::{Error, Result};
use crate::storage::StorageRoot;
use crate::table_manifest::TableManifest;
use crate::tables::register_published_table;
use order::ModelGraph;
use project::model_error;

/// How to run a project.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--select`: which models to run; all when empty.
    pub select: Vec<Selector>,
    /// Stop at a model's first failing data test instead of running its other tests too.
    pub fail_fast: bool,
    /// Print one line per model on stderr.
    pub log_models: bool,
    /// Show a progress bar on stderr (for terminals).
    pub progress_bar: bool,
}

/// Runs the selected models of `project` against the tables of `ctx`, writing under `root`.
///
/// Errors found before anything runs (a dependency cycle, an unknown `--select` name, a missing table, a
/// model read but neither selected nor materialised) are returned as `Err`. A model that fails while the run
/// proceeds ends the run: the report says which and why, and [`RunReport::take_failure`] returns the error.
pub async fn run_project(
    ctx: &SessionContext,
    root: &StorageRoot,
    project: &Project,
    options: &RunOptions,
) -> Result<RunReport> {
    let started = Instant::now();
    let graph = ModelGraph::new(project);
    let order = graph.topological_order()?;
    let selected = graph.select(&options.select)?;
    let to_run: Vec<usize> = order.into_iter().filter(|i| selected.contains(i)).collect();
    check_inputs(ctx, root, project, &graph, &selected)?;

    let run_id = materialize::new_run_id();
    let mut report = RunReport {
        run_id: run_id.clone(),
        project: project.dir.display().to_string(),
        storage: root.to_string(),
        status: RunStatus::Success,
        seconds: 0.0,
        models: to_run
            .iter()
            .map(|&i| {
                let m = &project.models[i];
                ModelReport::new(&m.name, &m.file.display().to_string())
            })
            .collect(),
        failure: None,
    };
    let progress = Progress::new(options, to_run.len());
    progress.line(&format!(
        "phygital run {run_id}: {} of {} models from {} into {root}",
        to_run.len(),
        project.models.len(),
        project.dir.display()
    ));
    let name_width = report
        .models
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(0);
    for (position, &index) in to_run.iter().enumerate() {
        let model = &project.models[index];
        progress.start(&model.name);
        let model_started = Instant::now();
        let entry = &mut report.models[position];
        let outcome = run_model(ctx, root, model, &run_id, options, entry).await;
        entry.seconds = Some(model_started.elapsed().as_secs_f64());
        match outcome {
            Ok(()) => {
                entry.status = ModelStatus::Success;
                progress.line(&entry.progress_line(position + 1, to_run.len(), name_width));
            }
            Err(e) => {
                entry.status = ModelStatus::Failed;
                entry.error = Some(e.to_string());
                progress.line(&entry.progress_line(position + 1, to_run.len(), name_width));
                let detail = entry.failed_tests_detail();
                if !detail.is_empty() {
                    progress.line(detail.trim_end());
                }
                report.status = RunStatus::Failed;
                report.failure = Some(e);
                break;
            }
        }
        progress.advance();
    }
    progress.finish();
    report.seconds = started.elapsed().as_secs_f64();
    progress.line(&report.to_string());
    Ok(report)
}

/// Plans, writes, tests and publishes one model. Until the publish, the previous version stays the table's.
async fn run_model(
    ctx: &SessionContext,
    root: &StorageRoot,
    model: &Model,
    run_id: &str,
    options: &RunOptions,
    entry: &mut ModelReport,
) -> Result<()> {
    let file = model.location(None);
    let engine = |e: DataFusionError| Error::in_model(&file, &e);
    let plan = ctx
        .state()
        .statement_to_plan(model.statement.clone())
        .await
        .map_err(engine)?;
    let df = ctx.execute_logical_plan(plan).await.map_err(engine)?;
    data_tests::check_header_columns(&model.header, df.schema())
        .map_err(|(line, message)| model_error(&model.file, Some((line as u64, 0)), message))?;

    let partition_by: Vec<String> = model
        .header
        .partition_by
        .iter()
        .map(|c| c.normalized())
        .collect();
    let started = materialize::now_rfc3339();
    let written = materialize::write_version(ctx, root, &model.name, run_id, df, &partition_by)
        .await
        .map_err(engine)?;
    let mut manifest = written.manifest;
    manifest.started = started;
    manifest.description = model.header.description.clone();
    manifest.source = Some(file.clone());
    for column in &mut manifest.columns {
        column.doc = model
            .header
            .columns
            .iter()
            .find(|d| d.column.normalized() == column.name)
            .map(|d| d.doc.clone());
    }
    entry.rows = Some(manifest.rows);

    let store = root.object_store(ctx).map_err(engine)?;
    let folder = materialize::table_folder(root, &model.name);
    let previous = TableManifest::read(store.as_ref(), &folder)
        .await
        .map_err(engine)?;
    manifest.previous_version = previous.as_ref().map(|p| p.version.clone());

    // Tests read the new version under the model's name; on failure the published one is put back.
    register_published_table(ctx, root, &manifest)
        .await
        .map_err(engine)?;
    let tests_started = Instant::now();
    let tested = run_data_tests(ctx, model, options, entry).await;
    entry.tests_seconds = Some(tests_started.elapsed().as_secs_f64());
    if let Err(e) = tested {
        restore(ctx, root, &model.name, previous.as_ref()).await;
        return Err(e);
    }

    manifest.finished = materialize::now_rfc3339();
    materialize::publish(store.as_ref(), root, &manifest)
        .await
        .map_err(engine)?;
    entry.location = Some(written.url);
    Ok(())
}

async fn run_data_tests(
    ctx: &SessionContext,
    model: &Model,
    options: &RunOptions,
    entry: &mut ModelReport,
) -> Result<()> {
    let mut first_failure = None;
    for test in &model.header.tests {
        let at = model.location(Some(test.line));
        let found = data_tests::run_test(ctx, &model.name, test)
            .await
            .map_err(|e| Error::in_model(&at, &e.context(format!("data test '{}'", test.text))))?;
        let (status, offending_rows, sample_batches) = match found {
            None => (TestStatus::Passed, 0, Vec::new()),
            Some(o) => (TestStatus::Failed, o.count, o.sample),
        };
        entry.tests.push(TestReport {
            test: test.text.clone(),
            line: test.line,
            status,
            offending_rows,
            sample: TestReport::sample_as_json(&sample_batches),
            sample_batches,
        });
        if status == TestStatus::Passed {
            entry.tests_passed += 1;
            continue;
        }
        entry.tests_failed += 1;
        first_failure.get_or_insert_with(|| Error::Model {
            location: at,
            message: format!(
                "data test '{}' failed: {offending_rows} offending rows; the new output of '{}' is not published",
                test.text, model.name
            ),
        });
        if options.fail_fast {
            break;
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// Puts the published version back as the session's table after a failed test (or drops the unpublished one).
async fn restore(
    ctx: &SessionContext,
    root: &StorageRoot,
    name: &str,
    published: Option<&TableManifest>,
) {
    let restored = match published {
        Some(manifest) => register_published_table(ctx, root, manifest)
            .await
            .map(|_| ()),
        None => ctx.deregister_table(TableReference::bare(name)).map(|_| ()),
    };
    if let Err(e) = restored {
        tracing::warn!(table = name, error = %e, "could not restore the published version in this session");
    }
}

/// Fails before running anything when a model reads a table that does not exist, or a model that is neither
/// selected nor materialised.
fn check_inputs(
    ctx: &SessionContext,
    root: &StorageRoot,
    project: &Project,
    graph: &ModelGraph,
    selected: &BTreeSet<usize>,
) -> Result<()> {
    for &index in selected {
        let model = &project.models[index];
        for &upstream in graph.upstream_of(index) {
            let dependency = &project.models[upstream];
            if !selected.contains(&upstream) && !table_exists(ctx, &dependency.name)? {
                return Err(Error::Project(format!(
                    "{} reads model '{}', which is not selected and has no materialised output under {root}: \
                     run it first or select it too (--select +{})",
                    model.file.display(),
                    dependency.name,
                    model.name
                )));
            }
        }
        for read in &model.reads {
            let TableReference::Bare { table } = &read.table else {
                continue; // schema-qualified names (information_schema.tables) are the planner's business
            };
            // Locations (`'s3://b/x.parquet'`, `'data/x.csv'`) are read directly by the URL table support.
            let is_location = table.contains(['/', '.', ':']);
            if read.in_function_argument
                || is_location
                || project.model(table).is_some()
                || table_exists(ctx, table)?
            {
                continue;
            }
            return Err(model_error(
                &model.file,
                read.location,
                format!(
                    "table '{table}' not found: there is no model {} and no table under {root}",
                    project.dir.join(format!("{table}.sql")).display()
                ),
            ));
        }
    }
    Ok(())
}

fn table_exists(ctx: &SessionContext, name: &str) -> Result<bool> {
    Ok(ctx.table_exist(TableReference::bare(name))?)
}

/// Lines and an optional bar on stderr; lines go through the bar so they do not tear it.
struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Progress {
    fn new(options: &RunOptions, models: usize) -> Progress {
        let bar = options.progress_bar.then(|| {
            let bar = ProgressBar::new(models as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} models, running {msg}",
            ) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            lines: options.log_models,
        }
    }

    fn line(&self, text: &str) {
        if !self.lines {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn start(&self, model: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(model.to_string());
        }
    }

    fn advance(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
