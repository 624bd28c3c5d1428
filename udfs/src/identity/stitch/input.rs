//! The relations identity stitching reads: the edges and, when the options name them, the
//! blocklist query (`block_query`) and the previous identity map (`previous`).
//!
//! Every relation is planned in `scan`, in the caller's session, and runs as part of the
//! operator's one input: with only edges, the edges query as it is; with more, each relation is
//! checked, projected to the edge columns plus a [`PART`] tag (strings cast to `Utf8View`, which
//! shares the buffers of `Utf8` and `Utf8View` input, timestamps to µs UTC) and the three are
//! concatenated (`UNION ALL`). Inside the tagged input a block row is `(a_type, a_value)` =
//! `(id_type, id_value)` with its rule in `source`; a previous-map row carries `customer_id` in
//! `b_value` and `first_seen` in `ts`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit, UInt8Type};
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::{Column, DataFusionError, Result, ScalarValue, internal_err, plan_err};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionState;
use datafusion::execution::memory_pool::MemoryReservation;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, lit};
use futures::StreamExt;

use super::graph::{EDGE_COLUMNS, EdgeColumns, EdgeReader, Graph, GraphBuilder};
use super::incremental::PreviousMap;
use super::interner::{StringColumn, TimestampColumn};
use super::options::{BlockMatcher, BlockRule, StitchOptions};
use crate::query_argument::{
    QueryArgument, QueryInput, describe_columns, is_string, is_string_or_integer,
};

/// The tag column of the combined input.
pub(crate) const PART: &str = "identity_input_part";

/// The rule name of a `block_query` row without a `rule` column or with a NULL rule.
pub(crate) const DEFAULT_QUERY_RULE: &str = "query";

/// Which relation a row of the combined input comes from (the [`PART`] value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Edges = 0,
    Block = 1,
    Previous = 2,
}

/// The relations `identity_stitch` and `identity_explain` read, planned when their table (a
/// [`QueryArgumentTable`](crate::query_argument::QueryArgumentTable)) is scanned.
#[derive(Debug)]
pub(crate) struct StitchQueries {
    edges: QueryArgument,
    block_query: Option<QueryArgument>,
    previous: Option<QueryArgument>,
}

impl StitchQueries {
    pub(crate) fn try_new(
        function: &'static str,
        edges: QueryArgument,
        options: &StitchOptions,
    ) -> Result<Self> {
        let argument = |key: &'static str, text: &Option<String>| {
            text.as_deref()
                .map(|text| QueryArgument::parse(function, key, text))
                .transpose()
        };
        Ok(Self {
            edges,
            block_query: argument("block_query", &options.block_query)?,
            previous: argument("previous", &options.previous)?,
        })
    }
}

/// Whether the operator reads the tagged, combined input rather than the bare edges.
pub(crate) fn is_tagged(options: &StitchOptions) -> bool {
    options.block_query.is_some() || options.previous.is_some()
}

#[async_trait]
impl QueryInput for StitchQueries {
    async fn logical_plan(&self, function: &str, state: &SessionState) -> Result<LogicalPlan> {
        let edges = self.edges.logical_plan(function, state).await?;
        if self.block_query.is_none() && self.previous.is_none() {
            return Ok(edges);
        }
        // The edges' own checks first, so that their errors read as without the options.
        EdgeColumns::try_new(edges.schema().as_arrow())?;
        let mut input = LogicalPlanBuilder::from(tag_edges(edges)?);
        if let Some(block) = &self.block_query {
            let plan = block.logical_plan(function, state).await?;
            input = input.union(tag_block(function, plan)?)?;
        }
        if let Some(previous) = &self.previous {
            let plan = previous.logical_plan(function, state).await?;
            input = input.union(tag_previous(function, plan)?)?;
        }
        input.build()
    }
}

fn utf8_view(expr: Expr) -> Expr {
    cast(expr, DataType::Utf8View)
}

fn timestamp_us_utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn null_string() -> Expr {
    lit(ScalarValue::Utf8View(None))
}

/// The tagged projection: `part, a_type, a_value, b_type, b_value, ts, source`.
fn tagged(plan: LogicalPlan, part: Part, columns: [Expr; 6]) -> Result<LogicalPlan> {
    let [a_type, a_value, b_type, b_value, ts, source] = columns;
    let exprs = vec![
        lit(part as u8).alias(PART),
        utf8_view(a_type).alias(EDGE_COLUMNS[0]),
        utf8_view(a_value).alias(EDGE_COLUMNS[1]),
        utf8_view(b_type).alias(EDGE_COLUMNS[2]),
        utf8_view(b_value).alias(EDGE_COLUMNS[3]),
        cast(ts, timestamp_us_utc()).alias(EDGE_COLUMNS[4]),
        utf8_view(source).alias(EDGE_COLUMNS[5]),
    ];
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}

fn tag_edges(plan: LogicalPlan) -> Result<LogicalPlan> {
    let column = |name: &str| -> Result<Expr> {
        let mut matches = plan.schema().iter().filter(|(_, f)| f.name() == name);
        match (matches.next(), matches.next()) {
            (Some((qualifier, _)), None) => Ok(Expr::Column(Column::new(qualifier.cloned(), name))),
            _ => plan_err!(
                "identity_stitch: the edges relation has no single column '{name}'; name its columns apart"
            ),
        }
    };
    let columns = [
        column(EDGE_COLUMNS[0])?,
        column(EDGE_COLUMNS[1])?,
        column(EDGE_COLUMNS[2])?,
        column(EDGE_COLUMNS[3])?,
        column(EDGE_COLUMNS[4])?,
        column(EDGE_COLUMNS[5])?,
    ];
    tagged(plan, Part::Edges, columns)
}

/// Finds the columns of an option's query by name.
struct OptionColumns<'a> {
    function: &'a str,
    option: &'static str,
    /// The columns the query needs, for messages: `id_type, id_value [, rule]`.
    needs: &'static str,
    plan: &'a LogicalPlan,
}

impl OptionColumns<'_> {
    /// The column `name` if the query has it, checked with `accepts`.
    fn optional(
        &self,
        name: &str,
        accepts: fn(&DataType) -> bool,
        expected: &str,
    ) -> Result<Option<Expr>> {
        let (function, option) = (self.function, self.option);
        let mut matches = self.plan.schema().iter().filter(|(_, f)| f.name() == name);
        match (matches.next(), matches.next()) {
            (Some((qualifier, field)), None) if accepts(field.data_type()) => {
                Ok(Some(Expr::Column(Column::new(qualifier.cloned(), name))))
            }
            (Some((_, field)), None) => plan_err!(
                "{function}: option '{option}': column '{name}' must be {expected}, got {}",
                field.data_type()
            ),
            (Some(_), Some(_)) => plan_err!(
                "{function}: option '{option}': the query has more than one column named '{name}'"
            ),
            (None, _) => Ok(None),
        }
    }

    fn required(&self, name: &str, accepts: fn(&DataType) -> bool, expected: &str) -> Result<Expr> {
        match self.optional(name, accepts, expected)? {
            Some(column) => Ok(column),
            None => plan_err!(
                "{}: option '{}': the query has no column '{name}'; it needs {} and has: {}",
                self.function,
                self.option,
                self.needs,
                describe_columns(self.plan)
            ),
        }
    }
}

fn is_timestamp(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Timestamp(_, _) | DataType::Null)
}

/// `block_query`: `(id_type, id_value [, rule])`.
fn tag_block(function: &str, plan: LogicalPlan) -> Result<LogicalPlan> {
    let columns = OptionColumns {
        function,
        option: "block_query",
        needs: "id_type, id_value [, rule]",
        plan: &plan,
    };
    let id_type = columns.required("id_type", is_string, "a string")?;
    let id_value = columns.required("id_value", is_string, "a string")?;
    let rule = columns
        .optional("rule", is_string, "a string")?
        .unwrap_or_else(null_string);
    let ts = lit(ScalarValue::TimestampMicrosecond(None, Some("UTC".into())));
    tagged(
        plan,
        Part::Block,
        [id_type, id_value, null_string(), null_string(), ts, rule],
    )
}

/// `previous`: `(id_type, id_value, customer_id [, first_seen])`.
fn tag_previous(function: &str, plan: LogicalPlan) -> Result<LogicalPlan> {
    let columns = OptionColumns {
        function,
        option: "previous",
        needs: "id_type, id_value, customer_id [, first_seen]",
        plan: &plan,
    };
    let id_type = columns.required("id_type", is_string, "a string")?;
    let id_value = columns.required("id_value", is_string, "a string")?;
    let customer_id = columns.required(
        "customer_id",
        is_string_or_integer,
        "a string or an integer",
    )?;
    let first_seen = columns
        .optional("first_seen", is_timestamp, "a timestamp")?
        .unwrap_or_else(|| lit(ScalarValue::TimestampMicrosecond(None, Some("UTC".into()))));
    tagged(
        plan,
        Part::Previous,
        [
            id_type,
            id_value,
            null_string(),
            customer_id,
            first_seen,
            null_string(),
        ],
    )
}

/// The rows of `block_query`, per `(id_type, rule)`: the values to block.
#[derive(Debug, Default)]
pub(crate) struct QueryBlocks {
    values: BTreeMap<(String, String), Vec<String>>,
    bytes: usize,
}

impl QueryBlocks {
    fn add(&mut self, id_type: &[u8], value: &[u8], rule: Option<&[u8]>) {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let rule = rule.map_or_else(|| DEFAULT_QUERY_RULE.to_string(), text);
        let value = text(value);
        self.bytes += value.capacity() + size_of::<String>();
        let key = (text(id_type), rule);
        if !self.values.contains_key(&key) {
            self.bytes += key.0.capacity() + key.1.capacity() + 4 * size_of::<String>();
        }
        self.values.entry(key).or_default().push(value);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub(crate) fn allocated_bytes(&self) -> usize {
        self.bytes
    }

    /// `options` with these blocks after their own rules: one exact rule per `(id_type, rule)`,
    /// in that order (a value blocked by the options keeps the options' rule name).
    pub(crate) fn add_to(self, options: &StitchOptions) -> StitchOptions {
        let mut options = options.clone();
        for ((id_type, rule), mut values) in self.values {
            values.sort_unstable();
            values.dedup();
            options.block.entry(id_type).or_default().push(BlockRule {
                name: rule,
                matcher: BlockMatcher::Exact(values),
            });
        }
        options
    }
}

/// Everything read from the operator's input.
#[derive(Debug, Default)]
pub(crate) struct StitchInputs {
    pub graph: Graph,
    pub blocks: QueryBlocks,
    pub previous: PreviousMap,
}

impl StitchInputs {
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.graph.allocated_bytes()
            + self.blocks.allocated_bytes()
            + self.previous.allocated_bytes()
    }
}

/// The tagged input's relations while they are read.
struct TaggedInputs {
    edges: EdgeReader,
    blocks: QueryBlocks,
    previous: PreviousMap,
}

impl TaggedInputs {
    fn allocated_bytes(&self) -> usize {
        self.edges.allocated_bytes()
            + self.blocks.allocated_bytes()
            + self.previous.allocated_bytes()
    }

    fn add_batch(
        &mut self,
        graph: &GraphBuilder,
        columns: &EdgeColumns,
        schema: &Schema,
        part_index: usize,
        batch: &RecordBatch,
    ) -> Result<()> {
        let tags = batch.column(part_index).as_primitive::<UInt8Type>();
        for part in [Part::Edges, Part::Block, Part::Previous] {
            let mask: BooleanArray = tags
                .iter()
                .map(|tag| Some(tag == Some(part as u8)))
                .collect();
            let rows = mask.true_count();
            if rows == 0 {
                continue;
            }
            let filtered;
            let rows_of_part = if rows == batch.num_rows() {
                batch
            } else {
                filtered = filter_record_batch(batch, &mask)?;
                &filtered
            };
            match part {
                Part::Edges => self.edges.add_batch(graph, columns, rows_of_part)?,
                Part::Block => add_block_rows(&mut self.blocks, schema, rows_of_part)?,
                Part::Previous => self.previous.add_batch(schema, rows_of_part)?,
            }
        }
        Ok(())
    }
}

/// Drains `inputs` into the graph (and, when `tagged`, the one combined stream also into the
/// blocks and the previous map), keeping `reservation` equal to the memory held. Several
/// streams (the edges query's partitions) are read at once, each on its own task; identifiers
/// are interned on up to `threads` threads.
pub(crate) async fn read_inputs(
    inputs: Vec<SendableRecordBatchStream>,
    tagged: bool,
    function: &'static str,
    threads: usize,
    reservation: &MemoryReservation,
) -> Result<StitchInputs> {
    let graph = Arc::new(GraphBuilder::new(threads, inputs.len()));
    // The graph's own bytes, reserved by whichever reader submits a chunk.
    let held = Arc::new(reservation.new_empty());
    let (blocks, previous) = match (tagged, <[_; 1]>::try_from(inputs)) {
        (true, Ok([input])) => read_tagged(input, &graph, function, &held).await?,
        (true, Err(inputs)) => {
            return internal_err!(
                "{function}: the combined input must be one stream, got {}",
                inputs.len()
            );
        }
        (false, Ok([input])) => {
            read_edges(input, &graph, function, reservation.new_empty(), &held).await?;
            Default::default()
        }
        (false, Err(inputs)) => {
            let tasks = inputs.into_iter().map(|input| {
                let (graph, held) = (Arc::clone(&graph), Arc::clone(&held));
                let own = reservation.new_empty();
                let task = SpawnedTask::spawn(async move {
                    read_edges(input, &graph, function, own, &held).await
                });
                async move {
                    task.join_unwind()
                        .await
                        .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))?
                }
            });
            // The first error ends the reading: the other tasks are aborted when dropped.
            futures::future::try_join_all(tasks).await?;
            Default::default()
        }
    };
    let Some(graph) = Arc::into_inner(graph) else {
        return internal_err!("{function}: a reader of the edges is still running");
    };
    let over_limit = |graph: &GraphBuilder, e| {
        graph_over_memory_limit(function, graph.node_count(), graph.edge_count(), e)
    };
    let held_bytes =
        graph.allocated_bytes()? + blocks.allocated_bytes() + previous.allocated_bytes();
    // Numbering the nodes copies each partition's values once: reserve the copy first.
    let finish_bytes = graph.finish_extra_bytes()?;
    drop(held);
    reservation
        .try_resize(held_bytes + finish_bytes)
        .map_err(|e| over_limit(&graph, e))?;
    let inputs = StitchInputs {
        graph: graph.finish()?,
        blocks,
        previous,
    };
    reservation
        .try_resize(inputs.allocated_bytes())
        .map_err(|e| over_memory_limit(function, &inputs.graph, e))?;
    Ok(inputs)
}

/// Reads one stream of edges into `graph`: `own` holds the reader's chunk, `held` the graph.
async fn read_edges(
    mut input: SendableRecordBatchStream,
    graph: &GraphBuilder,
    function: &str,
    own: MemoryReservation,
    held: &MemoryReservation,
) -> Result<()> {
    let columns = EdgeColumns::try_new(&input.schema())?;
    let mut reader = graph.reader()?;
    let over_limit =
        |e| graph_over_memory_limit(function, graph.node_count(), graph.edge_count(), e);
    while let Some(batch) = input.next().await {
        let submitted = reader.submitted();
        reader.add_batch(graph, &columns, &batch?)?;
        own.try_resize(reader.allocated_bytes())
            .map_err(over_limit)?;
        if reader.submitted() != submitted {
            graph.reserve(held).map_err(over_limit)?;
        }
    }
    reader.done(graph)?;
    graph.reserve(held).map_err(over_limit)
}

/// Reads the tagged combination of edges, blocks and previous map (one stream) into `graph`
/// and returns the blocks and the previous map.
async fn read_tagged(
    mut input: SendableRecordBatchStream,
    graph: &GraphBuilder,
    function: &str,
    held: &MemoryReservation,
) -> Result<(QueryBlocks, PreviousMap)> {
    let schema = input.schema();
    let columns = EdgeColumns::try_new(&schema)?;
    let part = match schema.index_of(PART) {
        Ok(index) => index,
        Err(_) => return internal_err!("{function}: the combined input has no {PART} column"),
    };
    let mut inputs = TaggedInputs {
        edges: graph.reader()?,
        blocks: QueryBlocks::default(),
        previous: PreviousMap::default(),
    };
    let over_limit =
        |e| graph_over_memory_limit(function, graph.node_count(), graph.edge_count(), e);
    while let Some(batch) = input.next().await {
        inputs.add_batch(graph, &columns, &schema, part, &batch?)?;
        let bytes = inputs.allocated_bytes() + graph.allocated_bytes()?;
        held.try_resize(bytes).map_err(over_limit)?;
    }
    let TaggedInputs {
        edges,
        blocks,
        previous,
    } = inputs;
    edges.done(graph)?;
    Ok((blocks, previous))
}

/// The error for a graph that does not fit in the memory pool.
pub(crate) fn over_memory_limit(
    function: &str,
    graph: &Graph,
    error: DataFusionError,
) -> DataFusionError {
    graph_over_memory_limit(function, graph.node_count(), graph.edges.len(), error)
}

fn graph_over_memory_limit(
    function: &str,
    nodes: usize,
    edges: usize,
    error: DataFusionError,
) -> DataFusionError {
    error.context(format!(
        "{function}: the identity graph ({nodes} identifiers, {edges} edges) does not fit in the memory pool; raise the memory limit"
    ))
}

fn add_block_rows(blocks: &mut QueryBlocks, schema: &Schema, batch: &RecordBatch) -> Result<()> {
    let column = |name: &str| -> Result<StringColumn<'_>> {
        StringColumn::try_new(batch.column(schema.index_of(name)?), name)
    };
    let id_type = column(EDGE_COLUMNS[0])?;
    let id_value = column(EDGE_COLUMNS[1])?;
    let rule = column(EDGE_COLUMNS[5])?;
    for row in 0..batch.num_rows() {
        // A NULL value (e.g. a store phone that does not normalise) blocks nothing.
        if let (Some(id_type), Some(value)) = (id_type.get(row), id_value.get(row)) {
            blocks.add(id_type, value, rule.get(row));
        }
    }
    Ok(())
}

impl PreviousMap {
    fn add_batch(&mut self, schema: &Schema, batch: &RecordBatch) -> Result<()> {
        let column = |name: &str| -> Result<StringColumn<'_>> {
            StringColumn::try_new(batch.column(schema.index_of(name)?), name)
        };
        let id_type = column(EDGE_COLUMNS[0])?;
        let id_value = column(EDGE_COLUMNS[1])?;
        let customer = column(EDGE_COLUMNS[3])?;
        let first_seen = TimestampColumn::try_new(batch.column(schema.index_of(EDGE_COLUMNS[4])?))?;
        for row in 0..batch.num_rows() {
            self.add_row(
                id_type.get(row),
                id_value.get(row),
                customer.get(row),
                first_seen.get(row)?,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_blocks_become_exact_rules_after_the_options_rules() {
        let mut blocks = QueryBlocks::default();
        blocks.add(b"phone", b"+74950000002", Some(b"store_phone"));
        blocks.add(b"phone", b"+74950000001", Some(b"store_phone"));
        blocks.add(b"phone", b"+74950000001", Some(b"store_phone"));
        blocks.add(b"email", b"shop@x.ru", None);
        assert!(blocks.allocated_bytes() > 0);
        let options = blocks.add_to(&StitchOptions::default());
        let phone = &options.block["phone"];
        assert_eq!(
            phone[0].name, "default:zeros",
            "the shipped rules come first"
        );
        assert_eq!(
            phone.last(),
            Some(&BlockRule {
                name: "store_phone".into(),
                matcher: BlockMatcher::Exact(vec!["+74950000001".into(), "+74950000002".into()]),
            })
        );
        let email = &options.block["email"];
        assert_eq!(
            email.last().map(|r| r.name.as_str()),
            Some(DEFAULT_QUERY_RULE)
        );
    }
}
