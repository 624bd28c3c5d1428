//! `identity_explain('<edges query or table>', type_a, value_a, type_b, value_b [, options])`:
//! why two identifiers belong to one customer — the shortest chain of evidence between them in
//! the graph `identity_stitch` builds with the same options — or why they do not.
//!
//! It reads its input and applies the guards with the code of `identity_stitch` (same options,
//! same `block_query`), keeping the edges the guards let through; a breadth-first search over
//! them finds the path.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, Result, internal_err, plan_err};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Documentation;
use datafusion_macros::user_doc;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::stitch::{
    Edge, EdgeColumns, Graph, NO_SOURCE, NO_TS, NodeStatus, Resolution, StitchInputs,
    StitchOptions, StitchQueries, is_tagged, over_memory_limit, read_inputs, resolve_keeping_edges,
};
use crate::DocumentedTableFunction;
use crate::query_argument::{
    QueryArgument, QueryArgumentTable, QueryInputOperator, required_string_literal, string_literal,
};

const NAME: &str = "identity_explain";

static OUTPUT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, true),
        Field::new("from_type", DataType::Utf8, true),
        Field::new("from_value", DataType::Utf8, true),
        Field::new("to_type", DataType::Utf8, true),
        Field::new("to_value", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("reason", DataType::Utf8, true),
    ]))
});

#[user_doc(
    doc_section(label = "Identity Functions"),
    description = r#"Explains a link between two identifiers: the shortest chain of evidence that puts them into one customer, in the graph `identity_stitch` builds from the same edges with the same options, or the reason there is none.

The edges relation is that of `identity_stitch` (`a_type, a_value, b_type, b_value, ts, source`). The two identifiers are compared with the values exactly as they appear in the edges — no normalisation — so pass them as the edges hold them (e.g. `normalize_phone(...)` output).

Output, one row per edge of the path, from `(type_a, value_a)` to `(type_b, value_b)`: `step` (1, 2, …), `from_type, from_value, to_type, to_value`, `source` and `ts` (the earliest evidence of that link: its timestamp, then its source by name), and `reason` NULL. The path is a shortest one (fewest edges) over the links the guards let through: blocked and quarantined identifiers have no links, and an edge whose union a per-type limit or the size cap refused is not evidence. Among equally short paths, the one through identifiers first in (type, value) order is shown, whatever the input order.

When there is no path, one row with NULL `step` and edge columns and a `reason`: `unknown identifier: <type> "<value>"` (not in the edges), `same identifier`, `not connected` (no path even without the guards), or the guard that cut the shortest unguarded path, naming the identifier: `blocked:<rule>: <type> "<value>"`, `quarantined:degree_limit:<neighbour type>: <type> "<value>"` (one of the two identifiers, else the first on that path), `quarantined:max_component_size: <type> "<value>"` (the size circuit breaker held that identifier's customer), `refused_union:limits: <type> "<value>" - <type> "<value>"` (a per-type limit refused the union over that edge; the audit of `identity_stitch` says which).

Options: the JSON options of `identity_stitch` that shape the graph (`default_blocklist`, `block`, `block_regex`, `block_query`, `degree_limit`, `limits`, `priority`, `max_component_size`); `output`, `previous` and `run_id` are errors. The operator (`IdentityExplainExec`) holds the whole graph in memory like `identity_stitch`, reserved in the session's memory pool."#,
    syntax_example = "identity_explain('<edges query or table>', type_a, value_a, type_b, value_b [, '<options JSON>'])",
    sql_example = r#"```sql
> select step, from_value, to_value, source from identity_explain('select * from (values (''email'', ''ann@shop.ru'', ''phone'', ''+79161234567'', timestamp ''2024-01-01 10:00:00'', ''web''), (''phone'', ''+79161234567'', ''loyalty_card'', ''1234'', timestamp ''2024-01-02 10:00:00'', ''pos'')) t(a_type, a_value, b_type, b_value, ts, source)', 'email', 'ann@shop.ru', 'loyalty_card', '1234');
+------+--------------+--------------+--------+
| step | from_value   | to_value     | source |
+------+--------------+--------------+--------+
| 1    | ann@shop.ru  | +79161234567 | web    |
| 2    | +79161234567 | 1234         | pos    |
+------+--------------+--------------+--------+
```"#,
    argument(
        name = "edges",
        description = "A query (`SELECT …`, `WITH …`, `VALUES …`) or a table name giving the edges relation. A string literal."
    ),
    argument(
        name = "type_a",
        description = "The type of the first identifier, e.g. `'email'`. A string literal."
    ),
    argument(
        name = "value_a",
        description = "The value of the first identifier, exactly as in the edges. A string literal."
    ),
    argument(
        name = "type_b",
        description = "The type of the second identifier. A string literal."
    ),
    argument(
        name = "value_b",
        description = "The value of the second identifier. A string literal."
    ),
    argument(
        name = "options",
        description = "Optional JSON object of `identity_stitch` options (see above). A string literal; NULL means the defaults."
    )
)]
#[derive(Debug, Default)]
pub struct IdentityExplainFunc;

impl DocumentedTableFunction for IdentityExplainFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

impl TableFunctionImpl for IdentityExplainFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        if !(5..=6).contains(&exprs.len()) {
            return plan_err!(
                "{NAME} takes 5 or 6 arguments ('<edges query or table>', type_a, value_a, type_b, value_b [, '<options JSON>']), got {}",
                exprs.len()
            );
        }
        let required = |index: usize, argument: &str| -> Result<String> {
            Ok(required_string_literal(NAME, argument, &exprs[index])?.to_string())
        };
        let edges = QueryArgument::from_literal(NAME, "edges", &exprs[0])?;
        let a = (required(1, "type_a")?, required(2, "value_a")?);
        let b = (required(3, "type_b")?, required(4, "value_b")?);
        let options = match exprs.get(5) {
            Some(options) => {
                StitchOptions::parse_for(NAME, string_literal(NAME, "options", options)?)?
            }
            None => StitchOptions::default(),
        };
        let queries = StitchQueries::try_new(NAME, edges, &options)?;
        let operator = Arc::new(IdentityExplain { options, a, b });
        Ok(Arc::new(QueryArgumentTable::new(queries, operator)))
    }
}

/// The operator: reads the graph, applies the guards, and searches the path from `a` to `b`.
#[derive(Debug)]
pub struct IdentityExplain {
    options: StitchOptions,
    a: (String, String),
    b: (String, String),
}

impl QueryInputOperator for IdentityExplain {
    fn function(&self) -> &'static str {
        NAME
    }

    fn name(&self) -> &'static str {
        "IdentityExplainExec"
    }

    fn fmt_parameters(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "from={}:{:?}, to={}:{:?}",
            self.a.0, self.a.1, self.b.0, self.b.1
        )
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&OUTPUT_SCHEMA)
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
        let reservation =
            MemoryConsumer::new("IdentityExplainExec").register(context.memory_pool());
        let threads = context.session_config().target_partitions();
        let explained = async move {
            let StitchInputs {
                graph,
                blocks,
                previous: _,
            } = read_inputs(
                vec![input],
                is_tagged(&self.options),
                NAME,
                threads,
                &reservation,
            )
            .await?;
            let graph_bytes = graph.allocated_bytes();
            let mut report = |extra: usize| {
                reservation
                    .try_resize(graph_bytes + extra)
                    .map_err(|e| over_memory_limit(NAME, &graph, e))
            };
            let options = if blocks.is_empty() {
                self.options.clone()
            } else {
                blocks.add_to(&self.options)
            };
            let resolution = resolve_keeping_edges(&graph, &options, &mut report)?;
            let resolution_bytes = resolution.allocated_bytes();
            let mut report_path = |extra: usize| report(resolution_bytes + extra);
            let rows = explain(&graph, &resolution, &self.a, &self.b, &mut report_path)?;
            let batch = rows_to_batch(&graph, &rows)?;
            match projection {
                Some(indices) => Ok::<_, DataFusionError>(batch.project(&indices)?),
                None => Ok(batch),
            }
        };
        Ok(futures::stream::once(explained).boxed())
    }
}

/// The answer: the path's edges as `(from, to, ts, source)` node pairs, or the reason.
#[derive(Debug, PartialEq, Eq)]
enum Explanation {
    Path(Vec<PathStep>),
    Reason(String),
}

#[derive(Debug, PartialEq, Eq)]
struct PathStep {
    from: u32,
    to: u32,
    ts: i64,
    source: u32,
}

fn describe(graph: &Graph, node: u32) -> String {
    format!(
        "{} {:?}",
        graph.types.name(graph.nodes.type_of(node)),
        String::from_utf8_lossy(graph.nodes.value(node))
    )
}

fn explain(
    graph: &Graph,
    resolution: &Resolution,
    a: &(String, String),
    b: &(String, String),
    memory: &mut dyn FnMut(usize) -> Result<()>,
) -> Result<Explanation> {
    let find = |(id_type, value): &(String, String)| {
        let type_id = graph.types.get(id_type.as_bytes())?;
        graph.nodes.get(type_id, value.as_bytes())
    };
    let (Some(from), Some(to)) = (find(a), find(b)) else {
        let missing = if find(a).is_none() { a } else { b };
        return Ok(Explanation::Reason(format!(
            "unknown identifier: {} {:?}",
            missing.0, missing.1
        )));
    };
    if from == to {
        return Ok(Explanation::Reason("same identifier".to_string()));
    }
    for node in [from, to] {
        match resolution.status[node as usize] {
            NodeStatus::Blocked(rule) => {
                return Ok(Explanation::Reason(format!(
                    "blocked:{}: {}",
                    resolution.blocklist.rule_name(rule),
                    describe(graph, node)
                )));
            }
            NodeStatus::Quarantined(neighbour_type) => {
                return Ok(Explanation::Reason(format!(
                    "quarantined:degree_limit:{}: {}",
                    graph.types.name(neighbour_type),
                    describe(graph, node)
                )));
            }
            NodeStatus::Linked | NodeStatus::Held => {}
        }
    }
    if resolution.component_of(from) == resolution.component_of(to) {
        let Some(path) = shortest_path(graph, &resolution.kept_edges, from, to, memory)? else {
            // The kept edges span every component: this is a bug, not bad data.
            return internal_err!("{NAME}: no path inside one customer");
        };
        let edges = &resolution.kept_edges;
        return Ok(Explanation::Path(
            path.into_iter()
                .map(|(from, to, edge)| PathStep {
                    from,
                    to,
                    ts: edges[edge].ts,
                    source: edges[edge].source,
                })
                .collect(),
        ));
    }
    // Different customers: find the guard that cut the shortest path of the unguarded graph.
    let Some(path) = shortest_path(graph, &graph.edges, from, to, memory)? else {
        return Ok(Explanation::Reason("not connected".to_string()));
    };
    let nodes = || path.iter().map(|(_, to, _)| *to).chain([from]);
    for node in nodes() {
        match resolution.status[node as usize] {
            NodeStatus::Blocked(rule) => {
                return Ok(Explanation::Reason(format!(
                    "blocked:{}: {}",
                    resolution.blocklist.rule_name(rule),
                    describe(graph, node)
                )));
            }
            NodeStatus::Quarantined(neighbour_type) => {
                return Ok(Explanation::Reason(format!(
                    "quarantined:degree_limit:{}: {}",
                    graph.types.name(neighbour_type),
                    describe(graph, node)
                )));
            }
            NodeStatus::Linked | NodeStatus::Held => {}
        }
    }
    if let Some(node) = [from, to]
        .into_iter()
        .chain(nodes())
        .find(|node| resolution.status[*node as usize] == NodeStatus::Held)
    {
        return Ok(Explanation::Reason(format!(
            "quarantined:max_component_size: {}",
            describe(graph, node)
        )));
    }
    // Only a refused union is left: a per-type limit (the size cap would have held both sides).
    let refused = path
        .iter()
        .find(|(a, b, _)| resolution.component_of(*a) != resolution.component_of(*b));
    Ok(Explanation::Reason(match refused {
        Some((a, b, _)) => format!(
            "refused_union:limits: {} - {}",
            describe(graph, *a),
            describe(graph, *b)
        ),
        None => "not connected".to_string(),
    }))
}

/// One edge of a path: `(from, to, index of the edge)`.
type Hop = (u32, u32, usize);

/// Breadth-first search over `edges`, neighbours in (type, value) order so that the path chosen
/// among equally short ones does not depend on the input order. `None` when `to` is not
/// reachable from `from`.
fn shortest_path(
    graph: &Graph,
    edges: &[Edge],
    from: u32,
    to: u32,
    memory: &mut dyn FnMut(usize) -> Result<()>,
) -> Result<Option<Vec<Hop>>> {
    let n = graph.node_count();
    // Adjacency in compressed rows: (neighbour, edge index) per node.
    memory(
        (2 * n + 1) * size_of::<usize>()
            + edges.len() * 2 * size_of::<(u32, u32)>()
            + n * (size_of::<u32>() + 1),
    )?;
    let mut offsets = vec![0usize; n + 1];
    for edge in edges {
        offsets[edge.a as usize + 1] += 1;
        offsets[edge.b as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut adjacency = vec![(0u32, 0u32); edges.len() * 2];
    for (index, edge) in edges.iter().enumerate() {
        for (node, neighbour) in [(edge.a, edge.b), (edge.b, edge.a)] {
            adjacency[fill[node as usize]] = (neighbour, index as u32);
            fill[node as usize] += 1;
        }
    }
    drop(fill);
    let content = |node: u32| {
        (
            graph.types.name(graph.nodes.type_of(node)),
            graph.nodes.value(node),
        )
    };
    const UNSEEN: u32 = u32::MAX;
    let mut parent_edge = vec![UNSEEN; n];
    let mut seen = vec![false; n];
    seen[from as usize] = true;
    let mut queue = VecDeque::from([from]);
    while let Some(node) = queue.pop_front() {
        if node == to {
            break;
        }
        let neighbours = &mut adjacency[offsets[node as usize]..offsets[node as usize + 1]];
        // By content, then by edge index (the earliest evidence of a pair comes first in the
        // kept edges; raw duplicates are interchangeable for the reason).
        neighbours.sort_unstable_by(|x, y| content(x.0).cmp(&content(y.0)).then(x.1.cmp(&y.1)));
        for (neighbour, edge) in neighbours.iter() {
            if !seen[*neighbour as usize] {
                seen[*neighbour as usize] = true;
                parent_edge[*neighbour as usize] = *edge;
                queue.push_back(*neighbour);
            }
        }
    }
    if !seen[to as usize] {
        return Ok(None);
    }
    let mut hops = Vec::new();
    let mut node = to;
    while node != from {
        let index = parent_edge[node as usize] as usize;
        let edge = edges[index];
        let previous = if edge.a == node { edge.b } else { edge.a };
        hops.push((previous, node, index));
        node = previous;
    }
    hops.reverse();
    Ok(Some(hops))
}

fn rows_to_batch(graph: &Graph, explanation: &Explanation) -> Result<RecordBatch> {
    let mut step = Int64Builder::new();
    let mut from_type = StringBuilder::new();
    let mut from_value = StringBuilder::new();
    let mut to_type = StringBuilder::new();
    let mut to_value = StringBuilder::new();
    let mut source = StringBuilder::new();
    let mut ts = TimestampMicrosecondBuilder::new();
    let mut reason = StringBuilder::new();
    let type_of = |node: u32| graph.types.name(graph.nodes.type_of(node));
    let value_of = |node: u32| String::from_utf8_lossy(graph.nodes.value(node));
    match explanation {
        Explanation::Path(steps) => {
            for (i, s) in steps.iter().enumerate() {
                step.append_value(i as i64 + 1);
                from_type.append_value(type_of(s.from));
                from_value.append_value(value_of(s.from));
                to_type.append_value(type_of(s.to));
                to_value.append_value(value_of(s.to));
                source.append_option((s.source != NO_SOURCE).then(|| graph.sources.name(s.source)));
                ts.append_option((s.ts != NO_TS).then_some(s.ts));
                reason.append_null();
            }
        }
        Explanation::Reason(text) => {
            step.append_null();
            from_type.append_null();
            from_value.append_null();
            to_type.append_null();
            to_value.append_null();
            source.append_null();
            ts.append_null();
            reason.append_value(text);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(step.finish()),
        Arc::new(from_type.finish()),
        Arc::new(from_value.finish()),
        Arc::new(to_type.finish()),
        Arc::new(to_value.finish()),
        Arc::new(source.finish()),
        Arc::new(ts.finish().with_timezone("UTC")),
        Arc::new(reason.finish()),
    ];
    Ok(RecordBatch::try_new(Arc::clone(&OUTPUT_SCHEMA), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::stitch::test_graphs::{Rng, Row, graph_of, no_guards, row, shared_phone};

    /// The path as `from_value>to_value@source` strings, or the reason.
    fn run(rows: &[Row], options: &StitchOptions, a: (&str, &str), b: (&str, &str)) -> Vec<String> {
        let graph = graph_of(rows);
        let resolution = resolve_keeping_edges(&graph, options, &mut |_| Ok(())).unwrap();
        let pair = |(t, v): (&str, &str)| (t.to_string(), v.to_string());
        let mut peak = 0;
        let explanation = explain(&graph, &resolution, &pair(a), &pair(b), &mut |bytes| {
            peak = peak.max(bytes);
            Ok(())
        })
        .unwrap();
        let batch = rows_to_batch(&graph, &explanation).unwrap();
        assert_eq!(batch.schema(), Arc::clone(&OUTPUT_SCHEMA));
        match explanation {
            Explanation::Path(steps) => {
                assert!(peak > 0, "the search reports its memory");
                assert_eq!(batch.num_rows(), steps.len());
                steps
                    .iter()
                    .map(|s| {
                        format!(
                            "{}>{}@{}",
                            String::from_utf8_lossy(graph.nodes.value(s.from)),
                            String::from_utf8_lossy(graph.nodes.value(s.to)),
                            graph.sources.name(s.source)
                        )
                    })
                    .collect()
            }
            Explanation::Reason(reason) => {
                assert_eq!(batch.num_rows(), 1);
                vec![reason]
            }
        }
    }

    fn chain() -> Vec<Row> {
        vec![
            row(("email", "a"), ("phone", "p1"), 1, "pos"),
            row(("phone", "p1"), ("loyalty_card", "c"), 2, "pos"),
            row(("loyalty_card", "c"), ("email", "d"), 3, "web"),
            row(("email", "d"), ("phone", "p2"), 4, "crm"),
            // a shortcut a - d, seen twice: the earliest evidence is kept
            row(("email", "a"), ("anonymous_id", "k"), 9, "web"),
            row(("anonymous_id", "k"), ("email", "d"), 8, "app"),
            row(("anonymous_id", "k"), ("email", "d"), 5, "web"),
        ]
    }

    #[test]
    fn the_shortest_path_with_its_evidence() {
        let path = run(&chain(), &no_guards(), ("email", "a"), ("phone", "p2"));
        assert_eq!(path, vec!["a>k@web", "k>d@web", "d>p2@crm"]);
        // the other way round: the same links, reversed
        let back = run(&chain(), &no_guards(), ("phone", "p2"), ("email", "a"));
        assert_eq!(back, vec!["p2>d@crm", "d>k@web", "k>a@web"]);
    }

    #[test]
    fn ties_do_not_depend_on_input_order() {
        // two paths of two edges from x to y: through "m1" and through "m2"
        let mut rows = vec![
            row(("email", "x"), ("phone", "m2"), 1, "s"),
            row(("phone", "m2"), ("email", "y"), 1, "s"),
            row(("email", "x"), ("phone", "m1"), 1, "s"),
            row(("phone", "m1"), ("email", "y"), 1, "s"),
        ];
        let expected = run(&rows, &no_guards(), ("email", "x"), ("email", "y"));
        assert_eq!(expected, vec!["x>m1@s", "m1>y@s"]);
        let mut rng = Rng(5);
        for _ in 0..10 {
            rng.shuffle(&mut rows);
            assert_eq!(
                run(&rows, &no_guards(), ("email", "x"), ("email", "y")),
                expected
            );
        }
    }

    #[test]
    fn reasons_when_there_is_no_path() {
        let rows = vec![
            row(("email", "a@x.ru"), ("phone", "+70000000000"), 1, "pos"),
            row(("email", "b@x.ru"), ("phone", "+70000000000"), 2, "pos"),
            row(("email", "c@x.ru"), ("", ""), 3, "web"),
        ];
        let defaults = StitchOptions::default();
        let reason = |a, b| run(&rows, &defaults, a, b);
        assert_eq!(
            reason(("email", "a@x.ru"), ("email", "nobody@x.ru")),
            vec!["unknown identifier: email \"nobody@x.ru\""]
        );
        assert_eq!(
            reason(("mail", "a@x.ru"), ("email", "a@x.ru")),
            vec!["unknown identifier: mail \"a@x.ru\""]
        );
        assert_eq!(
            reason(("email", "a@x.ru"), ("email", "a@x.ru")),
            vec!["same identifier"]
        );
        assert_eq!(
            reason(("email", "a@x.ru"), ("phone", "+70000000000")),
            vec!["blocked:default:repeated_digit: phone \"+70000000000\""]
        );
        assert_eq!(
            reason(("email", "a@x.ru"), ("email", "c@x.ru")),
            vec!["not connected"]
        );
        let quarantine = StitchOptions::parse(Some(
            r#"{"default_blocklist": false, "degree_limit": {"email": 1}}"#,
        ))
        .unwrap();
        assert_eq!(
            run(
                &rows,
                &quarantine,
                ("phone", "+70000000000"),
                ("email", "a@x.ru")
            ),
            vec!["quarantined:degree_limit:email: phone \"+70000000000\""]
        );
        // the guard on the way is named
        assert_eq!(
            run(&rows, &quarantine, ("email", "a@x.ru"), ("email", "b@x.ru")),
            vec!["quarantined:degree_limit:email: phone \"+70000000000\""]
        );
        assert_eq!(
            reason(("email", "a@x.ru"), ("email", "b@x.ru")),
            vec!["blocked:default:repeated_digit: phone \"+70000000000\""]
        );
        // without guards the phone links a and b
        assert_eq!(
            run(
                &rows,
                &no_guards(),
                ("email", "a@x.ru"),
                ("email", "b@x.ru")
            ),
            vec!["a@x.ru>+70000000000@pos", "+70000000000>b@x.ru@pos"]
        );
    }

    #[test]
    fn refused_unions_are_not_evidence() {
        let rows = shared_phone();
        let limits = StitchOptions::parse(Some(
            r#"{"limits": {"app_account_id": 1}, "degree_limit": {}}"#,
        ))
        .unwrap();
        assert_eq!(
            run(&rows, &limits, ("email", "ann@x.ru"), ("email", "bob@x.ru")),
            vec!["refused_union:limits: phone \"+7916\" - email \"bob@x.ru\""]
        );
        assert_eq!(
            run(&rows, &limits, ("email", "ann@x.ru"), ("phone", "+7916")),
            vec!["ann@x.ru>+7916@pos"]
        );
        let capped = StitchOptions::parse(Some(
            r#"{"max_component_size": 2, "limits": {}, "degree_limit": {}}"#,
        ))
        .unwrap();
        let reason = run(&rows, &capped, ("email", "ann@x.ru"), ("email", "bob@x.ru"));
        assert_eq!(reason.len(), 1);
        assert!(
            reason[0].starts_with("quarantined:max_component_size: "),
            "{reason:?}"
        );
    }
}
