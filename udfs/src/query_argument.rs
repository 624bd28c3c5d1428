//! Table functions whose first argument is a relation given as SQL text — a query (`SELECT …`,
//! `WITH …`, `VALUES …`) or a table name — and whose rows run through an operator of ours
//! (`identity_stitch`, `markov_attribution`, `shapley_attribution`).
//!
//! The call keeps the text ([`QueryArgument`]); [`QueryArgumentTable`] plans it only in
//! `TableProvider::scan` (asynchronous, in the caller's session: same catalog, functions and
//! object stores), and [`QueryInputExec`] runs the operator over the whole input in one partition.
//! What differs between the functions is a [`QueryInputOperator`] and, for functions reading
//! several relations (`identity_quality`, `identity_churn`), a [`QueryInput`] that combines them.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, DataFusionError, Result, internal_err, plan_err};
use datafusion::execution::context::SessionState;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableType};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan,
    InputDistributionRequirements, Partitioning, PlanProperties, ReplaceChildrenOptions,
    execute_stream,
};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::string_kernel::scalar_str;

/// A relation argument kept as SQL text: a query as given, or `SELECT * FROM <table>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryArgument {
    /// The argument's name, for messages (`paths`, `edges`).
    argument: &'static str,
    sql: String,
}

impl QueryArgument {
    /// Reads the text of `function`'s argument `argument`: a query (`SELECT`, `WITH`, `VALUES`,
    /// possibly parenthesised) or a table name of one to three parts, each a plain or a
    /// double-quoted identifier. Only such names are spliced into SQL; anything else is an error.
    pub(crate) fn parse(function: &str, argument: &'static str, text: &str) -> Result<Self> {
        let text = text.trim();
        let keyword = text
            .trim_start_matches(|c: char| c == '(' || c.is_whitespace())
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let sql = if matches!(keyword.as_str(), "select" | "with" | "values") {
            text.to_string()
        } else if is_table_name(text) {
            format!("SELECT * FROM {text}")
        } else {
            return plan_err!(
                "{function}: argument '{argument}' must be a query (SELECT, WITH or VALUES) or a table name, got {text:?}"
            );
        };
        Ok(Self { argument, sql })
    }

    /// Reads `function`'s argument `argument` from the call: a string literal, not NULL, holding
    /// a query or a table name (see [`Self::parse`]).
    pub(crate) fn from_literal(
        function: &str,
        argument: &'static str,
        expr: &Expr,
    ) -> Result<Self> {
        Self::parse(
            function,
            argument,
            required_string_literal(function, argument, expr)?,
        )
    }

    /// The SQL the argument stands for.
    #[cfg(test)]
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }
}

/// `function`'s argument `argument` as a string literal of any encoding; `None` for a NULL
/// literal.
pub(crate) fn string_literal<'a>(
    function: &str,
    argument: &str,
    expr: &'a Expr,
) -> Result<Option<&'a str>> {
    match expr {
        Expr::Literal(value, _) => match scalar_str(function, value) {
            Ok(text) => Ok(text),
            Err(_) => plan_err!(
                "{function}: argument '{argument}' must be a string literal, got {}",
                value.data_type()
            ),
        },
        other => plan_err!(
            "{function}: argument '{argument}' must be a string literal, got the expression {other}"
        ),
    }
}

/// [`string_literal`], where NULL is an error.
pub(crate) fn required_string_literal<'a>(
    function: &str,
    argument: &str,
    expr: &'a Expr,
) -> Result<&'a str> {
    match string_literal(function, argument, expr)? {
        Some(text) => Ok(text),
        None => plan_err!("{function}: argument '{argument}' must not be NULL"),
    }
}

/// Whether a query argument's column holds strings: any string encoding, or NULL.
pub(crate) fn is_string(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => true,
        DataType::Dictionary(_, value) => is_string(value),
        _ => false,
    }
}

/// Whether a query argument's column holds ids: strings or integers.
pub(crate) fn is_string_or_integer(data_type: &DataType) -> bool {
    is_string(data_type) || data_type.is_integer()
}

/// The relations a query-argument function reads, planned into the one logical plan its
/// operator's input comes from.
#[async_trait]
pub(crate) trait QueryInput: fmt::Debug + Send + Sync + 'static {
    /// Plans the relations in `state` (the caller's session) and combines them.
    async fn logical_plan(&self, function: &str, state: &SessionState) -> Result<LogicalPlan>;
}

#[async_trait]
impl QueryInput for QueryArgument {
    async fn logical_plan(&self, function: &str, state: &SessionState) -> Result<LogicalPlan> {
        state
            .create_logical_plan(&self.sql)
            .await
            .map_err(|e| e.context(format!("{function}: planning the {} query", self.argument)))
    }
}

/// One relation of a [`TaggedUnion`]: the argument it comes from and the projection that
/// checks its columns and tags its rows.
pub(crate) trait UnionPart: fmt::Debug + Copy + Send + Sync + 'static {
    /// The argument's name, for messages (`map`, `truth`).
    fn argument(self) -> &'static str;
    /// Checks the relation's columns and projects it to the union's schema.
    fn tag(self, plan: LogicalPlan) -> Result<LogicalPlan>;
}

/// Several query arguments, each projected by its [`UnionPart`] to one schema (which marks the
/// relation a row comes from), concatenated (`UNION ALL`) in order.
#[derive(Debug)]
pub(crate) struct TaggedUnion<T: UnionPart> {
    queries: Vec<(QueryArgument, T)>,
}

impl<T: UnionPart> TaggedUnion<T> {
    /// Reads a call of `function` whose arguments are the queries of `parts`, in order; `usage`
    /// spells the arguments for the message on a wrong count.
    pub(crate) fn from_call(
        function: &str,
        usage: &str,
        exprs: &[Expr],
        parts: &[T],
    ) -> Result<Self> {
        if exprs.len() != parts.len() {
            return plan_err!(
                "{function} takes {} arguments {usage}, got {}",
                parts.len(),
                exprs.len()
            );
        }
        let queries = exprs
            .iter()
            .zip(parts)
            .map(|(expr, part)| {
                Ok((
                    QueryArgument::from_literal(function, part.argument(), expr)?,
                    *part,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Self { queries })
    }
}

#[async_trait]
impl<T: UnionPart> QueryInput for TaggedUnion<T> {
    async fn logical_plan(&self, function: &str, state: &SessionState) -> Result<LogicalPlan> {
        // Every query is planned before any is checked, so planning errors come first.
        let mut plans = Vec::with_capacity(self.queries.len());
        for (query, part) in &self.queries {
            plans.push((query.logical_plan(function, state).await?, *part));
        }
        let mut union: Option<LogicalPlanBuilder> = None;
        for (plan, part) in plans {
            let tagged = part.tag(plan)?;
            union = Some(match union {
                Some(union) => union.union(tagged)?,
                None => LogicalPlanBuilder::from(tagged),
            });
        }
        match union {
            Some(union) => union.build(),
            None => internal_err!("{function}: a union of no queries"),
        }
    }
}

/// Checks that the input a [`TaggedUnion`] planned has the columns its parts project to; any
/// other input is a bug, not bad data.
pub(crate) fn check_union_columns(
    function: &str,
    input: &SchemaRef,
    columns: &[&str],
) -> Result<()> {
    let names: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
    if names != columns {
        return internal_err!("{function}: unexpected combined input columns {names:?}");
    }
    Ok(())
}

/// Finds the columns of a planned query argument by name, for a projection to a fixed shape.
pub(crate) struct ArgumentColumns<'a> {
    pub function: &'a str,
    /// The relation, for messages: `the previous map`.
    pub relation: &'a str,
    /// The columns it needs, for messages: `id_type, id_value, customer_id`.
    pub needs: &'a str,
    pub plan: &'a LogicalPlan,
}

impl ArgumentColumns<'_> {
    /// The column `name`, checked with `accepts` (`expected` describes what it accepts).
    pub(crate) fn required(
        &self,
        name: &str,
        accepts: fn(&DataType) -> bool,
        expected: &str,
    ) -> Result<Expr> {
        let Self {
            function,
            relation,
            needs,
            plan,
        } = self;
        let mut matches = plan.schema().iter().filter(|(_, f)| f.name() == name);
        match (matches.next(), matches.next()) {
            (Some((qualifier, field)), None) if accepts(field.data_type()) => {
                Ok(Expr::Column(Column::new(qualifier.cloned(), name)))
            }
            (Some((_, field)), None) => plan_err!(
                "{function}: column '{name}' of {relation} must be {expected}, got {}",
                field.data_type()
            ),
            (Some(_), Some(_)) => {
                plan_err!("{function}: {relation} has more than one column named '{name}'")
            }
            (None, _) => plan_err!(
                "{function}: {relation} has no column '{name}'; it needs {needs} and has: {}",
                describe_columns(plan)
            ),
        }
    }
}

/// `name type, …` for every column of `plan`: what a relation has, for messages.
pub(crate) fn describe_columns(plan: &LogicalPlan) -> String {
    plan.schema()
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The caller's session as the `SessionState` that plans query arguments.
fn session_state<'a>(function: &str, session: &'a dyn Session) -> Result<&'a SessionState> {
    match session.as_any().downcast_ref::<SessionState>() {
        Some(state) => Ok(state),
        None => internal_err!("{function}: expected a SessionState to plan its query arguments"),
    }
}

/// `name`, `schema.name` or `catalog.schema.name`, each part `[A-Za-z_][A-Za-z0-9_]*` or a
/// double-quoted identifier (`""` escapes a quote).
fn is_table_name(text: &str) -> bool {
    let mut parts = 0;
    let mut rest = text;
    loop {
        parts += 1;
        let after = if let Some(quoted) = rest.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if quoted[i + 1..].starts_with('"') {
                        chars.next();
                    } else {
                        end = Some(i);
                        break;
                    }
                }
            }
            match end {
                Some(end) if end > 0 => &quoted[end + 1..],
                _ => return false,
            }
        } else {
            let length = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if length == 0 || rest.starts_with(|c: char| c.is_ascii_digit()) {
                return false;
            }
            &rest[length..]
        };
        match after.strip_prefix('.') {
            Some(next) if parts < 3 => rest = next,
            Some(_) => return false,
            None => return after.is_empty(),
        }
    }
}

/// What a table function computes from the rows of its query argument. (`pub`, like
/// [`QueryInputExec`], because the crate exports `IdentityStitchExec`.)
pub trait QueryInputOperator: fmt::Debug + Send + Sync + 'static {
    /// The SQL function, for messages.
    fn function(&self) -> &'static str;
    /// The operator's name in `EXPLAIN`.
    fn name(&self) -> &'static str;
    /// What `EXPLAIN` shows after the name.
    fn fmt_parameters(&self, f: &mut fmt::Formatter) -> fmt::Result;
    /// The output schema, fixed by the call's arguments.
    fn schema(&self) -> SchemaRef;
    /// Shapes the logical plan of the query into the input the operator reads; as is by default.
    fn prepare_input(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        Ok(plan)
    }
    /// Checks the planned input's schema (a plan error names what is wrong); any by default.
    fn check_input(&self, _input: &SchemaRef) -> Result<()> {
        Ok(())
    }
    /// Consumes the whole input and streams the output, with only the `projection` columns.
    fn execute(
        self: Arc<Self>,
        input: SendableRecordBatchStream,
        projection: Option<Vec<usize>>,
        context: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>>;
    /// Whether the operator reads its input's partitions itself, all at once
    /// ([`execute_partitions`](Self::execute_partitions)); otherwise the optimizer coalesces
    /// them into the one stream [`execute`](Self::execute) reads.
    fn reads_partitions(&self) -> bool {
        false
    }
    /// Like [`execute`](Self::execute), over one stream per input partition; called only when
    /// [`reads_partitions`](Self::reads_partitions).
    fn execute_partitions(
        self: Arc<Self>,
        _inputs: Vec<SendableRecordBatchStream>,
        _projection: Option<Vec<usize>>,
        _context: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        internal_err!("{} reads one coalesced input", self.name())
    }
}

/// The state of an operator that answers only once it has read its whole input (a churn summary,
/// a quality report): fed batch by batch, its memory reserved in the pool as it grows.
pub(crate) trait WholeInputState: Send + 'static {
    /// Feeds one input batch.
    fn add_batch(&mut self, batch: &RecordBatch) -> Result<()>;
    /// The bytes the state holds now.
    fn allocated_bytes(&self) -> usize;
    /// What the state holds, for the out-of-memory error (`12 identifiers`).
    fn held(&self) -> String;
    /// The one output batch, from everything fed.
    fn finish(self, reservation: &MemoryReservation) -> Result<RecordBatch>;
}

/// Feeds all of `input` to `state` (reserved under `consumer` in the pool), then emits the batch
/// it finishes with, projected to `projection`.
pub(crate) fn emit_after_whole_input<S: WholeInputState>(
    function: &'static str,
    consumer: &str,
    mut state: S,
    mut input: SendableRecordBatchStream,
    projection: Option<Vec<usize>>,
    context: &TaskContext,
) -> BoxStream<'static, Result<RecordBatch>> {
    let reservation = MemoryConsumer::new(consumer).register(context.memory_pool());
    futures::stream::once(async move {
        while let Some(batch) = input.next().await {
            state.add_batch(&batch?)?;
            reserve_for(function, &reservation, state.allocated_bytes(), &state)?;
        }
        let batch = state.finish(&reservation)?;
        match projection {
            Some(indices) => Ok(batch.project(&indices)?),
            None => Ok(batch),
        }
    })
    .boxed()
}

/// Resizes `reservation` to `bytes` for `state`; the error says what does not fit.
pub(crate) fn reserve_for<S: WholeInputState>(
    function: &'static str,
    reservation: &MemoryReservation,
    bytes: usize,
    state: &S,
) -> Result<()> {
    reservation.try_resize(bytes).map_err(|e: DataFusionError| {
        e.context(format!(
            "{function}: {} do not fit in the memory pool; raise the memory limit",
            state.held()
        ))
    })
}

/// The table a query-argument function returns: its input is planned when it is scanned.
#[derive(Debug)]
pub(crate) struct QueryArgumentTable<O: QueryInputOperator + ?Sized, I: QueryInput = QueryArgument>
{
    input: I,
    operator: Arc<O>,
}

impl<O: QueryInputOperator + ?Sized, I: QueryInput> QueryArgumentTable<O, I> {
    pub(crate) fn new(input: I, operator: Arc<O>) -> Self {
        Self { input, operator }
    }
}

#[async_trait]
impl<O: QueryInputOperator + ?Sized, I: QueryInput> TableProvider for QueryArgumentTable<O, I> {
    fn schema(&self) -> SchemaRef {
        self.operator.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        session: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let function = self.operator.function();
        let state = session_state(function, session)?;
        let input = self.input.logical_plan(function, state).await?;
        let input = state
            .create_physical_plan(&self.operator.prepare_input(input)?)
            .await?;
        Ok(Arc::new(QueryInputExec::try_new(
            input,
            Arc::clone(&self.operator),
            projection.cloned(),
        )?))
    }
}

/// Runs a [`QueryInputOperator`] over its whole (single-partition) input; one output partition.
#[derive(Debug)]
pub struct QueryInputExec<O: QueryInputOperator + ?Sized> {
    input: Arc<dyn ExecutionPlan>,
    operator: Arc<O>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl<O: QueryInputOperator + ?Sized> QueryInputExec<O> {
    /// Checks the input's schema and builds the operator; `projection` selects output columns.
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        operator: Arc<O>,
        projection: Option<Vec<usize>>,
    ) -> Result<Self> {
        operator.check_input(&input.schema())?;
        let full = operator.schema();
        let schema = match &projection {
            Some(indices) => Arc::new(full.project(indices)?),
            None => full,
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            // Nothing can be emitted before the whole input has been read.
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(Self {
            input,
            operator,
            projection,
            schema,
            properties,
        })
    }

    /// The operator this plan runs.
    pub fn operator(&self) -> &O {
        &self.operator
    }
}

impl<O: QueryInputOperator + ?Sized> DisplayAs for QueryInputExec<O> {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: ", self.operator.name())?;
        self.operator.fmt_parameters(f)
    }
}

impl<O: QueryInputOperator + ?Sized> ExecutionPlan for QueryInputExec<O> {
    fn name(&self) -> &str {
        self.operator.name()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    // The operator needs every row at once: the optimizer coalesces the input's partitions,
    // unless the operator reads them itself.
    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        let distribution = if self.operator.reads_partitions() {
            Distribution::UnspecifiedDistribution
        } else {
            Distribution::SinglePartition
        };
        InputDistributionRequirements::new(vec![distribution])
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
            return internal_err!(
                "{} has one child, got {}",
                self.operator.name(),
                children.len()
            );
        }
        // The output properties do not depend on the child's: rebuilding is always right.
        Ok(Arc::new(Self::try_new(
            children.swap_remove(0),
            Arc::clone(&self.operator),
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
            return internal_err!(
                "{} has one output partition, asked for {partition}",
                self.operator.name()
            );
        }
        let operator = Arc::clone(&self.operator);
        let projection = self.projection.clone();
        let output = if operator.reads_partitions() {
            let inputs = (0..self.input.properties().partitioning.partition_count())
                .map(|partition| self.input.execute(partition, Arc::clone(&context)))
                .collect::<Result<Vec<_>>>()?;
            operator.execute_partitions(inputs, projection, context)?
        } else {
            let input = execute_stream(Arc::clone(&self.input), Arc::clone(&context))?;
            operator.execute(input, projection, context)?
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            output,
        )))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{col, lit};

    use super::*;

    #[test]
    fn query_arguments_are_non_null_string_literals() -> Result<()> {
        for text in [
            ScalarValue::Utf8(Some("edges".into())),
            ScalarValue::LargeUtf8(Some("edges".into())),
            ScalarValue::Utf8View(Some("edges".into())),
            ScalarValue::Dictionary(
                Box::new(DataType::Int32),
                Box::new(ScalarValue::Utf8(Some("edges".into()))),
            ),
        ] {
            let query = QueryArgument::from_literal("f", "edges", &lit(text))?;
            assert_eq!(query.sql(), "SELECT * FROM edges");
        }
        let error = |expr: Expr| match QueryArgument::from_literal("f", "edges", &expr) {
            Ok(query) => panic!("accepted {expr}: {query:?}"),
            Err(e) => e.strip_backtrace(),
        };
        assert_eq!(
            error(lit(ScalarValue::Utf8(None))),
            "Error during planning: f: argument 'edges' must not be NULL"
        );
        assert_eq!(
            error(lit(7i64)),
            "Error during planning: f: argument 'edges' must be a string literal, got Int64"
        );
        assert_eq!(
            error(col("x")),
            "Error during planning: f: argument 'edges' must be a string literal, got the expression x"
        );
        assert_eq!(
            string_literal("f", "options", &lit(ScalarValue::Utf8(None)))?,
            None
        );
        Ok(())
    }

    #[test]
    fn table_names_are_plain_or_quoted_identifiers() {
        for name in [
            "edges",
            "_e1",
            "s.t",
            "c.s.t",
            "\"My Paths\"",
            "s.\"a\"\"b\".t",
        ] {
            assert!(is_table_name(name), "{name}");
        }
        for bad in [
            "", "1abc", "a.b.c.d", "a.", ".a", "a b", "\"\"", "\"open", "a;b", "a.\"b\"c",
        ] {
            assert!(!is_table_name(bad), "{bad}");
        }
    }
}
