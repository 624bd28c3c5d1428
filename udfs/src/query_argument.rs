//! Table functions whose first argument is a relation given as SQL text — a query (`SELECT …`,
//! `WITH …`, `VALUES …`) or a table name — and whose rows run through an operator of ours
//! (`identity_stitch`, `markov_attribution`, `shapley_attribution`).
//!
//! The call keeps the text ([`QueryArgument`]); [`QueryArgumentTable`] plans it only in
//! `TableProvider::scan` (asynchronous, in the caller's session: same catalog, functions and
//! object stores), and [`QueryInputExec`] runs the operator over the whole input in one partition.
//! What differs between the functions is a [`QueryInputOperator`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err, plan_err};
use datafusion::execution::context::SessionState;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, TableType};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan,
    InputDistributionRequirements, Partitioning, PlanProperties, ReplaceChildrenOptions,
    execute_stream,
};
use futures::stream::BoxStream;

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

    /// The SQL the argument stands for.
    #[cfg(test)]
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    /// Plans the query in the caller's session; `prepare` adjusts the logical plan before
    /// physical planning.
    async fn plan(
        &self,
        function: &str,
        session: &dyn Session,
        prepare: impl FnOnce(LogicalPlan) -> Result<LogicalPlan>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = session_state(function, session)?;
        let plan = self.logical_plan(function, state).await?;
        state.create_physical_plan(&prepare(plan)?).await
    }

    /// The logical plan of the query in `state`, for functions that combine several query
    /// arguments into one input (`identity_quality`).
    pub(crate) async fn logical_plan(
        &self,
        function: &str,
        state: &SessionState,
    ) -> Result<LogicalPlan> {
        state
            .create_logical_plan(&self.sql)
            .await
            .map_err(|e| e.context(format!("{function}: planning the {} query", self.argument)))
    }
}

/// The caller's session as the `SessionState` that plans query arguments.
pub(crate) fn session_state<'a>(
    function: &str,
    session: &'a dyn Session,
) -> Result<&'a SessionState> {
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
}

/// The table a query-argument function returns: the query is planned when it is scanned.
#[derive(Debug)]
pub(crate) struct QueryArgumentTable<O: QueryInputOperator + ?Sized> {
    query: QueryArgument,
    operator: Arc<O>,
}

impl<O: QueryInputOperator + ?Sized> QueryArgumentTable<O> {
    pub(crate) fn new(query: QueryArgument, operator: Arc<O>) -> Self {
        Self { query, operator }
    }
}

#[async_trait]
impl<O: QueryInputOperator + ?Sized> TableProvider for QueryArgumentTable<O> {
    fn schema(&self) -> SchemaRef {
        self.operator.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = self
            .query
            .plan(self.operator.function(), state, |plan| {
                self.operator.prepare_input(plan)
            })
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

    // The operator needs every row at once: the optimizer coalesces the input's partitions.
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
        let input = execute_stream(Arc::clone(&self.input), Arc::clone(&context))?;
        let output = Arc::clone(&self.operator).execute(input, self.projection.clone(), context)?;
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            output,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
