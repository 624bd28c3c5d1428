//! `IdentityStitchExec`: the physical operator, a `QueryInputExec` running [`IdentityStitch`].
//! It drains its edges input into the identity graph (the edges query's partitions at once, one
//! reader task each), resolves it, and streams the identity map or the audit in batches of the
//! session's batch size, in one output partition. All of its memory is reserved in the session's
//! memory pool.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::graph::EdgeColumns;
use super::incremental::{assign_ids, default_run_id};
use super::input::{StitchInputs, is_tagged, over_memory_limit, read_inputs};
use super::options::{OutputSelector, StitchOptions};
use super::output::{OutputBatches, Stitched, output_schema};
use super::resolve::{resolve, type_ranks};
use crate::query_argument::{QueryInputExec, QueryInputOperator};

const NAME: &str = "IdentityStitchExec";
const FUNCTION: &str = "identity_stitch";

/// Identity stitching over an edges input `(a_type, a_value, b_type, b_value, ts, source)`.
pub type IdentityStitchExec = QueryInputExec<IdentityStitch>;

impl IdentityStitchExec {
    /// The options this operator runs with.
    pub fn options(&self) -> &StitchOptions {
        &self.operator().options
    }
}

/// The stitching step of [`IdentityStitchExec`]: the options of one `identity_stitch` call.
/// `IdentityStitchExec::try_new` checks the input's columns (a plan error names what is
/// missing); its projection selects columns of the map, audit or changes schema, per
/// `options.output`. With `block_query` or `previous` the input is the tagged combination of
/// the relations (see `input`).
#[derive(Debug)]
pub struct IdentityStitch {
    options: Arc<StitchOptions>,
}

impl IdentityStitch {
    pub fn new(options: Arc<StitchOptions>) -> Self {
        Self { options }
    }
}

impl QueryInputOperator for IdentityStitch {
    fn function(&self) -> &'static str {
        FUNCTION
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn fmt_parameters(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "output={}", self.options.output.name())?;
        if self.options.block_query.is_some() {
            write!(f, ", block_query")?;
        }
        if self.options.previous.is_some() {
            write!(f, ", previous")?;
        }
        Ok(())
    }

    fn schema(&self) -> SchemaRef {
        output_schema(self.options.output)
    }

    fn check_input(&self, input: &SchemaRef) -> Result<()> {
        EdgeColumns::try_new(input).map(|_| ())
    }

    fn execute(
        self: Arc<Self>,
        input: SendableRecordBatchStream,
        projection: Option<Vec<usize>>,
        context: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        self.execute_partitions(vec![input], projection, context)
    }

    // The edges query's partitions are read at once, each on its own task (reading, splitting
    // and hashing the rows was the critical path on one stream); the tagged combination with
    // blocks or a previous map is read as one stream.
    fn reads_partitions(&self) -> bool {
        !is_tagged(&self.options)
    }

    fn execute_partitions(
        self: Arc<Self>,
        inputs: Vec<SendableRecordBatchStream>,
        projection: Option<Vec<usize>>,
        context: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        let reservation = MemoryConsumer::new(NAME).register(context.memory_pool());
        let batch_size = context.session_config().batch_size();
        let threads = context.session_config().target_partitions();
        let stitched = async move {
            let stitched = stitch(inputs, &self.options, threads, &reservation).await?;
            Ok::<_, DataFusionError>((
                OutputBatches::new(stitched, self.options.output, projection, batch_size),
                reservation,
            ))
        };
        Ok(futures::stream::once(stitched)
            .flat_map(|result| match result {
                // The batches are cut from the graph: keep its memory reserved until the stream is
                // dropped, by moving the reservation into the mapping closure.
                Ok((batches, reservation)) => futures::stream::iter(batches)
                    .map(move |batch| {
                        let _held = &reservation;
                        batch
                    })
                    .boxed(),
                Err(e) => futures::stream::once(async { Err(e) }).boxed(),
            })
            .boxed())
    }
}

/// Reads every input batch of every stream (interning on up to `threads` threads), then
/// resolves the graph and names its customers, keeping `reservation` equal to the memory held.
async fn stitch(
    inputs: Vec<SendableRecordBatchStream>,
    options: &StitchOptions,
    threads: usize,
    reservation: &MemoryReservation,
) -> Result<Stitched> {
    let StitchInputs {
        graph,
        blocks,
        previous,
    } = read_inputs(inputs, is_tagged(options), FUNCTION, threads, reservation).await?;
    let input_bytes = graph.allocated_bytes() + previous.allocated_bytes();
    let mut report = |extra: usize| {
        reservation
            .try_resize(input_bytes + extra)
            .map_err(|e| over_memory_limit(FUNCTION, &graph, e))
    };
    let with_blocks;
    let options = if blocks.is_empty() {
        options
    } else {
        with_blocks = blocks.add_to(options);
        &with_blocks
    };
    let mut resolution = resolve(&graph, options, &mut report)?;
    let with_changes = options.output == OutputSelector::Changes;
    let ids = if with_changes || !previous.is_empty() {
        let resolution_bytes = resolution.allocated_bytes();
        let mut report_ids = |extra: usize| report(resolution_bytes + extra);
        let ranks = type_ranks(&graph, options);
        Some(assign_ids(
            &graph,
            &mut resolution,
            &previous,
            &ranks,
            with_changes,
            &mut report_ids,
        )?)
    } else {
        None
    };
    let run_id = match (&options.run_id, with_changes) {
        (Some(run_id), _) => run_id.clone(),
        (None, true) => default_run_id(&graph, &previous),
        (None, false) => String::new(),
    };
    let total = input_bytes
        + resolution.allocated_bytes()
        + ids.as_ref().map_or(0, |ids| ids.allocated_bytes());
    reservation
        .try_resize(total)
        .map_err(|e| over_memory_limit(FUNCTION, &graph, e))?;
    Ok(Stitched {
        graph,
        resolution,
        previous,
        ids,
        run_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::physical_plan::common::collect;
    use datafusion::physical_plan::{
        ChildrenPropertiesMode, ExecutionPlan, ReplaceChildrenOptions,
    };
    use datafusion::prelude::SessionConfig;

    /// `n` edges email:u{i} - phone:p{i / 2}: pairs of e-mails sharing a phone.
    fn edges(n: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a_type", DataType::Utf8, false),
            Field::new("a_value", DataType::Utf8, false),
            Field::new("b_type", DataType::Utf8, false),
            Field::new("b_value", DataType::Utf8, false),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("source", DataType::Utf8, true),
        ]));
        let strings = |f: &dyn Fn(usize) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values((0..n).map(f)))
        };
        let columns = vec![
            strings(&|_| "email".into()),
            strings(&|i| format!("u{i}")),
            strings(&|_| "phone".into()),
            strings(&|i| format!("p{}", i / 2)),
            Arc::new(TimestampMicrosecondArray::from_iter_values(0..n as i64)) as ArrayRef,
            strings(&|_| "web".into()),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn run(
        batch: RecordBatch,
        options: &str,
        batch_size: usize,
        pool_bytes: usize,
    ) -> Result<Vec<RecordBatch>> {
        let input = MemorySourceConfig::try_new_exec(&[vec![batch.clone()]], batch.schema(), None)?;
        let options = Arc::new(StitchOptions::parse(Some(options))?);
        let exec =
            IdentityStitchExec::try_new(input, Arc::new(IdentityStitch::new(options)), None)?;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(pool_bytes)))
            .build_arc()?;
        let context = TaskContext::default()
            .with_runtime(runtime)
            .with_session_config(SessionConfig::new().with_batch_size(batch_size));
        // A memory input needs no tokio runtime: the whole plan runs on this thread.
        futures::executor::block_on(collect(exec.execute(0, Arc::new(context))?))
    }

    #[test]
    fn streams_the_map_in_batches_of_the_session_batch_size() -> Result<()> {
        let batches = run(edges(10), r#"{"degree_limit": {}}"#, 4, 1 << 20)?;
        let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, vec![4, 4, 4, 3], "10 e-mails + 5 phones");
        let customers: std::collections::BTreeSet<String> = batches
            .iter()
            .flat_map(|b| {
                let ids = b.column(2).as_string::<i32>().clone();
                (0..ids.len()).map(move |i| ids.value(i).to_string())
            })
            .collect();
        assert_eq!(customers.len(), 5, "one customer per shared phone");
        assert_eq!(
            batches[0].schema(),
            Arc::clone(&super::super::output::MAP_SCHEMA)
        );
        Ok(())
    }

    #[test]
    fn audit_output_and_projection() -> Result<()> {
        let input = edges(6);
        let exec = IdentityStitchExec::try_new(
            MemorySourceConfig::try_new_exec(&[vec![input.clone()]], input.schema(), None)?,
            Arc::new(IdentityStitch::new(Arc::new(StitchOptions::parse(Some(
                r#"{"output": "audit", "block": {"phone": ["p0"]}}"#,
            ))?))),
            Some(vec![0, 2]),
        )?;
        assert_eq!(exec.schema().fields().len(), 2);
        assert_eq!(exec.schema().field(1).name(), "id_value");
        let batches = futures::executor::block_on(collect(
            exec.execute(0, Arc::new(TaskContext::default()))?,
        ))?;
        assert_eq!(batches.len(), 1);
        let rule = batches[0].column(0).as_string::<i32>();
        let value = batches[0].column(1).as_string::<i32>();
        assert_eq!((rule.value(0), value.value(0)), ("block", "p0"));
        assert_eq!(batches[0].num_rows(), 1);
        Ok(())
    }

    /// The map builds only the projected columns, in the projection's order; with none (as for
    /// `count(*)`) its batches still carry the row counts.
    #[test]
    fn map_columns_are_built_as_projected() -> Result<()> {
        let input = edges(10);
        let run_projected = |projection: Option<Vec<usize>>| -> Result<Vec<RecordBatch>> {
            let exec = IdentityStitchExec::try_new(
                MemorySourceConfig::try_new_exec(&[vec![input.clone()]], input.schema(), None)?,
                Arc::new(IdentityStitch::new(Arc::new(StitchOptions::default()))),
                projection,
            )?;
            let context =
                TaskContext::default().with_session_config(SessionConfig::new().with_batch_size(4));
            futures::executor::block_on(collect(exec.execute(0, Arc::new(context))?))
        };
        let full = run_projected(None)?;
        let projected = run_projected(Some(vec![2, 0]))?;
        assert_eq!(projected.len(), full.len());
        for (full, projected) in full.iter().zip(&projected) {
            assert_eq!(projected.schema().field(0).name(), "customer_id");
            assert_eq!(projected.column(0), full.column(2));
            assert_eq!(projected.column(1), full.column(0));
        }
        let counted = run_projected(Some(vec![]))?;
        let rows: Vec<usize> = counted.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(rows, vec![4, 4, 4, 3], "10 e-mails + 5 phones");
        assert!(counted.iter().all(|b| b.num_columns() == 0));
        Ok(())
    }

    #[test]
    fn a_graph_over_the_memory_limit_fails_cleanly() {
        let err = run(edges(20_000), "{}", 8192, 64 * 1024).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("identity_stitch: the identity graph (")
                && message.contains("does not fit in the memory pool"),
            "{message}"
        );
        assert!(
            matches!(err.find_root(), DataFusionError::ResourcesExhausted(_)),
            "{err:?}"
        );
        // the same input fits in a larger pool
        assert!(run(edges(20_000), "{}", 8192, 64 << 20).is_ok());
    }

    #[test]
    fn rejects_a_second_partition_and_wrong_children() -> Result<()> {
        let input = edges(2);
        let source =
            MemorySourceConfig::try_new_exec(&[vec![input.clone()]], input.schema(), None)?;
        let exec = Arc::new(IdentityStitchExec::try_new(
            source,
            Arc::new(IdentityStitch::new(Arc::new(StitchOptions::default()))),
            None,
        )?);
        let err = exec
            .execute(1, Arc::new(TaskContext::default()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("one output partition"), "{err}");
        let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
        let err = Arc::clone(&exec)
            .replace_children(vec![], options)
            .unwrap_err();
        assert!(err.to_string().contains("has one child, got 0"), "{err}");
        let display = datafusion::physical_plan::displayable(exec.as_ref())
            .one_line()
            .to_string();
        assert_eq!(display.trim(), "IdentityStitchExec: output=map");
        Ok(())
    }
}
