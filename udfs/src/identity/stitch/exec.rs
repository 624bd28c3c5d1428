//! `IdentityStitchExec`: the physical operator. It drains its (single-partition) edges input
//! into the identity graph, resolves it, and streams the identity map or the audit in batches of
//! the session's batch size. All of its memory is reserved in the session's memory pool.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, internal_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan,
    InputDistributionRequirements, Partitioning, PlanProperties, ReplaceChildrenOptions,
};
use futures::StreamExt;

use super::graph::{EdgeColumns, Graph};
use super::options::{OutputSelector, StitchOptions};
use super::output::{OutputBatches, output_schema};
use super::resolve::{Resolution, resolve};

const NAME: &str = "IdentityStitchExec";

/// Identity stitching over an edges input `(a_type, a_value, b_type, b_value, ts, source)`.
#[derive(Debug)]
pub struct IdentityStitchExec {
    input: Arc<dyn ExecutionPlan>,
    columns: EdgeColumns,
    options: Arc<StitchOptions>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl IdentityStitchExec {
    /// Checks the input's columns (a plan error names what is missing) and builds the operator;
    /// `projection` selects output columns (of the map or audit schema, per `options.output`).
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        options: Arc<StitchOptions>,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        let columns = EdgeColumns::try_new(&input.schema())?;
        let full = output_schema(options.output);
        let schema = match &projection {
            Some(projection) => Arc::new(full.project(projection)?),
            None => full,
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            // Nothing can be emitted before every edge has been read.
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(Self {
            input,
            columns,
            options,
            projection,
            schema,
            properties,
        })
    }

    /// The options this operator runs with.
    pub fn options(&self) -> &StitchOptions {
        &self.options
    }
}

impl DisplayAs for IdentityStitchExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let output = match self.options.output {
            OutputSelector::Map => "map",
            OutputSelector::Audit => "audit",
        };
        write!(f, "{NAME}: output={output}")
    }
}

impl ExecutionPlan for IdentityStitchExec {
    fn name(&self) -> &str {
        NAME
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    // One global graph: the optimizer puts a CoalescePartitionsExec below this operator.
    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        InputDistributionRequirements::new(vec![Distribution::SinglePartition])
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("{NAME} has one child, got {}", children.len());
        }
        // The output properties do not depend on the child's: rebuilding is always right.
        Ok(Arc::new(Self::try_new(
            children.swap_remove(0),
            Arc::clone(&self.options),
            self.projection.clone(),
        )?))
    }

    // Still a required method in 55 (deprecated in favour of `replace_children`).
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("{NAME} has one output partition, asked for {partition}");
        }
        let input = self.input.execute(0, Arc::clone(&context))?;
        let reservation = MemoryConsumer::new(NAME).register(context.memory_pool());
        let columns = self.columns.clone();
        let options = Arc::clone(&self.options);
        let projection = self.projection.clone();
        let batch_size = context.session_config().batch_size();
        let stitched = async move {
            let (graph, resolution) = stitch(input, &columns, &options, &reservation).await?;
            Ok::<_, DataFusionError>((
                OutputBatches::new(graph, resolution, options.output, projection, batch_size),
                reservation,
            ))
        };
        let stream = futures::stream::once(stitched).flat_map(|result| match result {
            // The batches are cut from the graph: keep its memory reserved until the stream is
            // dropped, by moving the reservation into the mapping closure.
            Ok((batches, reservation)) => futures::stream::iter(batches)
                .map(move |batch| {
                    let _held = &reservation;
                    batch
                })
                .boxed(),
            Err(e) => futures::stream::once(async { Err(e) }).boxed(),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}

/// Reads every edge batch into the graph, then resolves it, keeping `reservation` equal to the
/// memory held.
async fn stitch(
    mut input: SendableRecordBatchStream,
    columns: &EdgeColumns,
    options: &StitchOptions,
    reservation: &MemoryReservation,
) -> Result<(Graph, Resolution)> {
    let mut graph = Graph::default();
    while let Some(batch) = input.next().await {
        graph.add_batch(columns, &batch?)?;
        reservation
            .try_resize(graph.allocated_bytes())
            .map_err(|e| over_memory_limit(&graph, e))?;
    }
    let graph_bytes = graph.allocated_bytes();
    let mut report = |extra: usize| {
        reservation
            .try_resize(graph_bytes + extra)
            .map_err(|e| over_memory_limit(&graph, e))
    };
    let resolution = resolve(&graph, options, &mut report)?;
    Ok((graph, resolution))
}

fn over_memory_limit(graph: &Graph, error: DataFusionError) -> DataFusionError {
    error.context(format!(
        "identity_stitch: the identity graph ({} identifiers, {} edges) does not fit in the memory pool; raise the memory limit",
        graph.node_count(),
        graph.edges.len()
    ))
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
        let exec = IdentityStitchExec::try_new(input, options, None)?;
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
            Arc::new(StitchOptions::parse(Some(
                r#"{"output": "audit", "block": {"phone": ["p0"]}}"#,
            ))?),
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
            Arc::new(StitchOptions::default()),
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
