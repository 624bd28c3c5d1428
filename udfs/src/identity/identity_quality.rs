//! `identity_quality('<map query or table>', '<truth query or table>' [, '<edges query or table>'])`:
//! how well an identity map (identifier → customer) matches the ground truth (identifier → person)
//! and, given the edges the map was built from, how well the best map the evidence allows would.
//!
//! Every argument is kept as SQL text and planned in `scan`; each is checked and projected to
//! `(id_type, id_value, cluster, part, other_type, other_value)` (strings cast to `Utf8View`, which
//! shares the buffers of `Utf8` and `Utf8View` input; an edge's `a_*` endpoint in `id_*`, its `b_*`
//! endpoint in `other_*`) and they are concatenated (`UNION ALL`) into the one input
//! [`QueryInputExec`](crate::query_argument::QueryInputExec) runs [`IdentityQuality`] over. The
//! operator interns identifiers, pairs each one's customer with its person and hands the pairs to
//! [`cluster_quality`]; with edges, it joins the edges the truth confirms with the stitcher's
//! [`UnionFind`] and measures those components the same way (the evidence ceiling).

use std::fmt;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{AsArray, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt8Type};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err, plan_err};
use datafusion::execution::memory_pool::MemoryReservation;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    Documentation, Expr, LogicalPlan, LogicalPlanBuilder, cast as cast_expr, lit,
};
use datafusion_macros::user_doc;
use futures::stream::BoxStream;

use super::quality_metrics::{Assignment, ClusterQuality, cluster_quality, size_bucket_label};
use super::stitch::{IdentifierInterner, NameInterner, StringColumn, UnionFind, is_blank};
use crate::DocumentedTableFunction;
use crate::query_argument::{
    ArgumentColumns, QueryArgumentTable, QueryInputOperator, TaggedUnion, UnionPart,
    WholeInputState, check_union_columns, emit_after_whole_input, is_string, is_string_or_integer,
    reserve_for,
};

const NAME: &str = "identity_quality";
const USAGE: &str =
    "('<map query or table>', '<truth query or table>' [, '<edges query or table>'])";

/// The columns of the combined input, in order.
const ID_TYPE: &str = "id_type";
const ID_VALUE: &str = "id_value";
const CLUSTER: &str = "cluster";
const PART: &str = "part";
/// An edge's second endpoint (`b_type`, `b_value`); NULL in map and truth rows.
const OTHER_TYPE: &str = "other_type";
const OTHER_VALUE: &str = "other_value";
const INPUT_COLUMNS: [&str; 6] = [ID_TYPE, ID_VALUE, CLUSTER, PART, OTHER_TYPE, OTHER_VALUE];

/// The edge columns read, as `identity_stitch` names them.
const EDGE_ENDPOINTS: [&str; 4] = ["a_type", "a_value", "b_type", "b_value"];

/// The two clusterings compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Map,
    Truth,
}

impl Side {
    fn argument(self) -> &'static str {
        match self {
            Self::Map => "map",
            Self::Truth => "truth",
        }
    }

    fn cluster_column(self) -> &'static str {
        match self {
            Self::Map => "customer_id",
            Self::Truth => "person_id",
        }
    }
}

/// The relations read, as tagged in the `part` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Clusters(Side),
    Edges,
}

impl Part {
    const MAP: Self = Self::Clusters(Side::Map);
    const TRUTH: Self = Self::Clusters(Side::Truth);

    fn tag_value(self) -> u8 {
        match self {
            Self::MAP => 0,
            Self::TRUTH => 1,
            Self::Edges => 2,
        }
    }

    fn from_tag_value(value: u8) -> Result<Self> {
        match value {
            0 => Ok(Self::MAP),
            1 => Ok(Self::TRUTH),
            2 => Ok(Self::Edges),
            other => internal_err!("{NAME}: unexpected part tag {other}"),
        }
    }
}

fn utf8_view(expr: Expr) -> Expr {
    cast_expr(expr, DataType::Utf8View)
}

fn null_string() -> Expr {
    lit(ScalarValue::Utf8View(None))
}

impl UnionPart for Part {
    fn argument(self) -> &'static str {
        match self {
            Self::Clusters(side) => side.argument(),
            Self::Edges => "edges",
        }
    }

    /// Checks one relation's columns and projects it to [`INPUT_COLUMNS`].
    fn tag(self, plan: LogicalPlan) -> Result<LogicalPlan> {
        let relation = format!("the {} query", self.argument());
        let [id_type, id_value, cluster, other_type, other_value] = match self {
            Self::Clusters(side) => {
                let cluster = side.cluster_column();
                let columns = ArgumentColumns {
                    function: NAME,
                    relation: &relation,
                    needs: &format!("{ID_TYPE}, {ID_VALUE}, {cluster}"),
                    plan: &plan,
                };
                [
                    columns.required(ID_TYPE, is_string, "a string")?,
                    columns.required(ID_VALUE, is_string, "a string")?,
                    columns.required(cluster, is_string_or_integer, "a string or an integer")?,
                    null_string(),
                    null_string(),
                ]
            }
            Self::Edges => {
                let columns = ArgumentColumns {
                    function: NAME,
                    relation: &relation,
                    needs: &EDGE_ENDPOINTS.join(", "),
                    plan: &plan,
                };
                let [a_type, a_value, b_type, b_value] =
                    EDGE_ENDPOINTS.map(|name| columns.required(name, is_string, "a string"));
                [a_type?, a_value?, null_string(), b_type?, b_value?]
            }
        };
        let exprs = vec![
            utf8_view(id_type).alias(ID_TYPE),
            utf8_view(id_value).alias(ID_VALUE),
            utf8_view(cluster).alias(CLUSTER),
            lit(self.tag_value()).alias(PART),
            utf8_view(other_type).alias(OTHER_TYPE),
            utf8_view(other_value).alias(OTHER_VALUE),
        ];
        LogicalPlanBuilder::from(plan).project(exprs)?.build()
    }
}

static OUTPUT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("metric", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
    ]))
});

#[user_doc(
    doc_section(label = "Identity Functions"),
    description = r#"Measures an identity map against ground truth: pairwise and B-cubed precision, recall and F1, and the shape of the predicted clusters; given the edges the map was built from, also the evidence ceiling — how much of the missing recall the stitcher lost and how much the data never links.

The map relation has the columns `id_type, id_value, customer_id` (the output of `identity_stitch` fits); a NULL `customer_id` (e.g. a blocked identifier) counts as a cluster of its own. The truth relation has `id_type, id_value, person_id`. Types and values are strings of any encoding; `customer_id` and `person_id` strings or integers; other columns are ignored. A missing or mistyped column is a planning error; a NULL type, value or `person_id`, or an identifier listed twice on one side with different clusters, is an execution error naming it (exact duplicates are fine).

Only identifiers present in both relations are evaluated; `identifiers_only_in_map` and `identifiers_only_in_truth` count the others. Output, one row `(metric, value DOUBLE)` per metric, in this order: `pairwise_precision`, `pairwise_recall`, `pairwise_f1` (over pairs of identifiers placed in the same cluster, counted from the contingency table), `bcubed_precision`, `bcubed_recall`, `bcubed_f1` (per-identifier precision and recall averaged over identifiers, Bagga & Baldwin 1998), `identifiers_evaluated`, `identifiers_only_in_map`, `identifiers_only_in_truth`, `clusters_predicted`, `clusters_true`, `largest_cluster`, `largest_cluster_true_persons` (persons merged by the largest predicted cluster; the most among equally large ones), `singletons` (predicted clusters of one identifier), `over_merged_clusters` (predicted clusters holding more than one person), then the ceiling rows below when edges are given, then `singletons:<id_type>` for each type evaluated, by type name, then the cluster-size histogram `cluster_size:1`, `cluster_size:2`, `cluster_size:3-4`, `cluster_size:5-8`, … (predicted clusters per power-of-two size range, every range up to the largest cluster's, empty ones as 0). Cluster figures count evaluated identifiers only.

The edges relation has the columns `a_type, a_value, b_type, b_value`, as `identity_stitch` reads them (other columns, such as `ts` and `source`, are ignored; a missing or mistyped column is a planning error naming it). As in `identity_stitch`, an endpoint with a NULL or blank type or value names no identifier, so a row with one endpoint (a sighting) links nothing. The evidence ceiling is the best map any stitcher could build from correct evidence: the connected components of the edges whose two endpoints belong to the same person in the truth; an edge with an endpoint the truth does not know cannot be confirmed and is left out, and an identifier in no confirmed edge (never in the edges, only sighted, or linked only to other persons) is a singleton. It is measured over the same identifiers as the map (those in both map and truth), so the two compare like with like: `ceiling_pairwise_precision`, `ceiling_pairwise_recall`, `ceiling_pairwise_f1`, `ceiling_bcubed_precision`, `ceiling_bcubed_recall`, `ceiling_bcubed_f1` (the precisions are 1 by construction, or NULL without a pair, and kept for symmetry), `pairwise_recall_vs_ceiling`, `bcubed_recall_vs_ceiling` (the map's recall divided by the ceiling's: 1 means the stitcher lost nothing the data supports, below 1 what it lost; above 1 means the map joined identifiers of a person through links the truth calls wrong, i.e. over-merges). The gap between the ceiling's recall and 1 is what the data itself is missing.

A ratio with nothing to measure is NULL: pairwise precision without any predicted pair (an all-singletons map), pairwise recall without any true pair, every ratio and `largest_cluster*` when no identifier is evaluated; an F1 is NULL when its precision or recall is, a `*_recall_vs_ceiling` when either recall is or the ceiling's is 0.

All queries run as a sub-plan of one operator (`IdentityQualityExec`), which holds every identifier (about 60 bytes plus the value), the distinct customer and person ids and 8 bytes per linking edge in memory, reserved in the session's memory pool."#,
    syntax_example = "identity_quality('<map query or table>', '<truth query or table>' [, '<edges query or table>'])",
    sql_example = r#"```sql
> select * from identity_quality('select * from (values (''email'', ''a@x.ru'', ''c1''), (''phone'', ''+79160000001'', ''c1''), (''email'', ''b@x.ru'', ''c1'')) m(id_type, id_value, customer_id)', 'select * from (values (''email'', ''a@x.ru'', ''p1''), (''phone'', ''+79160000001'', ''p1''), (''email'', ''b@x.ru'', ''p2'')) t(id_type, id_value, person_id)') where metric like 'pairwise%';
+--------------------+--------------------+
| metric             | value              |
+--------------------+--------------------+
| pairwise_precision | 0.3333333333333333 |
| pairwise_recall    | 1.0                |
| pairwise_f1        | 0.5                |
+--------------------+--------------------+
> -- The map links a cookie to nobody, though one edge ties it to its person's e-mail; the phone is only sighted.
> select * from identity_quality('select * from (values (''email'', ''a@x.ru'', ''c1''), (''cookie'', ''k1'', ''c2''), (''phone'', ''+79160000001'', ''c3'')) m(id_type, id_value, customer_id)', 'select * from (values (''email'', ''a@x.ru'', ''p1''), (''cookie'', ''k1'', ''p1''), (''phone'', ''+79160000001'', ''p1'')) t(id_type, id_value, person_id)', 'select * from (values (''cookie'', ''k1'', ''email'', ''a@x.ru''), (''phone'', ''+79160000001'', null, null)) e(a_type, a_value, b_type, b_value)') where metric like '%pairwise_recall%';
+----------------------------+--------------------+
| metric                     | value              |
+----------------------------+--------------------+
| pairwise_recall            | 0.0                |
| ceiling_pairwise_recall    | 0.3333333333333333 |
| pairwise_recall_vs_ceiling | 0.0                |
+----------------------------+--------------------+
```"#,
    argument(
        name = "map",
        description = "A query (`SELECT …`, `WITH …`, `VALUES …`) or a table name giving the identity map `(id_type, id_value, customer_id)`. A string literal."
    ),
    argument(
        name = "truth",
        description = "A query or a table name giving the ground truth `(id_type, id_value, person_id)`. A string literal."
    ),
    argument(
        name = "edges",
        description = "Optional: a query or a table name giving the edges the map was built from `(a_type, a_value, b_type, b_value)`, as `identity_stitch` takes them (e.g. `identity_edges`). Adds the evidence-ceiling metrics. A string literal."
    )
)]
#[derive(Debug, Default)]
pub struct IdentityQualityFunc;

impl DocumentedTableFunction for IdentityQualityFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

impl TableFunctionImpl for IdentityQualityFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let parts: &[Part] = match exprs.len() {
            2 => &[Part::MAP, Part::TRUTH],
            3 => &[Part::MAP, Part::TRUTH, Part::Edges],
            n => return plan_err!("{NAME} takes 2 or 3 arguments {USAGE}, got {n}"),
        };
        let input = TaggedUnion::from_call(NAME, USAGE, exprs, parts)?;
        Ok(Arc::new(QueryArgumentTable::new(
            input,
            Arc::new(IdentityQuality {
                with_edges: parts.len() == 3,
            }),
        )))
    }
}

/// The operator: reads every relation, then emits the metrics.
#[derive(Debug, Default)]
pub struct IdentityQuality {
    /// Whether an edges relation is read, and the ceiling measured.
    with_edges: bool,
}

impl QueryInputOperator for IdentityQuality {
    fn function(&self) -> &'static str {
        NAME
    }

    fn name(&self) -> &'static str {
        "IdentityQualityExec"
    }

    fn fmt_parameters(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.with_edges {
            write!(f, "map vs truth, ceiling from edges")
        } else {
            write!(f, "map vs truth")
        }
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&OUTPUT_SCHEMA)
    }

    fn check_input(&self, input: &SchemaRef) -> Result<()> {
        check_union_columns(NAME, input, &INPUT_COLUMNS)
    }

    fn execute(
        self: Arc<Self>,
        input: SendableRecordBatchStream,
        projection: Option<Vec<usize>>,
        context: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        Ok(emit_after_whole_input(
            NAME,
            NAME,
            QualityInput::new(self.with_edges),
            input,
            projection,
            &context,
        ))
    }
}

impl WholeInputState for QualityInput {
    fn add_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let id_type = StringColumn::try_new(batch.column(0), ID_TYPE)?;
        let id_value = StringColumn::try_new(batch.column(1), ID_VALUE)?;
        let cluster = StringColumn::try_new(batch.column(2), CLUSTER)?;
        let Some(part) = batch.column(3).as_primitive_opt::<UInt8Type>() else {
            return internal_err!("{NAME}: the part column is not UInt8");
        };
        let other_type = StringColumn::try_new(batch.column(4), OTHER_TYPE)?;
        let other_value = StringColumn::try_new(batch.column(5), OTHER_VALUE)?;
        for row in 0..batch.num_rows() {
            match Part::from_tag_value(part.value(row))? {
                Part::Clusters(side) => {
                    self.add_row(side, id_type.get(row), id_value.get(row), cluster.get(row))?
                }
                Part::Edges => self.add_edge(
                    (id_type.get(row), id_value.get(row)),
                    (other_type.get(row), other_value.get(row)),
                )?,
            }
        }
        Ok(())
    }

    fn allocated_bytes(&self) -> usize {
        self.identifiers.allocated_bytes()
            + (self.customer.capacity() + self.person.capacity()) * size_of::<u64>()
            + self.name_bytes
            + self
                .edges
                .as_ref()
                .map_or(0, |edges| edges.capacity() * size_of::<(u32, u32)>())
    }

    fn held(&self) -> String {
        format!("{} identifiers", self.identifiers.len())
    }

    fn finish(self, reservation: &MemoryReservation) -> Result<RecordBatch> {
        self.measure(reservation)?.to_batch()
    }
}

/// No row for the identifier on this side.
const ABSENT: u64 = u64::MAX;
/// The map's "customer" of an identifier with a NULL `customer_id`; made unique per identifier
/// (`| node`) when evaluated, so each is a singleton. Customer ids are below 2³².
const UNASSIGNED: u64 = 1 << 32;

/// Every identifier of every relation with its customer and person, and the edges.
#[derive(Debug, Default)]
struct QualityInput {
    types: NameInterner,
    identifiers: IdentifierInterner,
    customers: NameInterner,
    persons: NameInterner,
    /// Heap bytes of the customer and person names, for the memory pool.
    name_bytes: usize,
    /// Per identifier: customer id, [`UNASSIGNED`] or [`ABSENT`].
    customer: Vec<u64>,
    /// Per identifier: person id or [`ABSENT`].
    person: Vec<u64>,
    /// With an edges relation: its rows linking two distinct identifiers (the truth, which says
    /// which of them to join, may arrive after them).
    edges: Option<Vec<(u32, u32)>>,
}

impl QualityInput {
    fn new(with_edges: bool) -> Self {
        Self {
            edges: with_edges.then(Vec::new),
            ..Self::default()
        }
    }

    /// The node of `(id_type, id_value)`, interned with no customer and no person when new.
    fn intern(&mut self, id_type: &[u8], id_value: &[u8]) -> Result<u32> {
        let (type_id, _) = self.types.intern(id_type)?;
        let (node, new) = self.identifiers.intern(type_id, id_value)?;
        if new {
            self.customer.push(ABSENT);
            self.person.push(ABSENT);
        }
        Ok(node)
    }

    fn add_row(
        &mut self,
        side: Side,
        id_type: Option<&[u8]>,
        id_value: Option<&[u8]>,
        cluster: Option<&[u8]>,
    ) -> Result<()> {
        let argument = side.argument();
        let (Some(id_type), Some(id_value)) = (id_type, id_value) else {
            let present = match (id_type, id_value) {
                (Some(t), None) => format!("id_type '{}'", String::from_utf8_lossy(t)),
                (None, Some(v)) => format!("id_value '{}'", String::from_utf8_lossy(v)),
                _ => "both NULL".to_string(),
            };
            return exec_err!(
                "{NAME}: the {argument} query has a row with a NULL id_type or id_value ({present})"
            );
        };
        let node = self.intern(id_type, id_value)?;
        let cluster_id = match (side, cluster) {
            (Side::Map, None) => UNASSIGNED,
            (Side::Truth, None) => {
                return exec_err!(
                    "{NAME}: the truth query has a NULL person_id for identifier ({}, '{}')",
                    String::from_utf8_lossy(id_type),
                    String::from_utf8_lossy(id_value)
                );
            }
            (side, Some(name)) => {
                let names = match side {
                    Side::Map => &mut self.customers,
                    Side::Truth => &mut self.persons,
                };
                let (id, new) = names.intern(name)?;
                if new {
                    // The name, its `String` and its hash table slot.
                    self.name_bytes += name.len() + size_of::<String>() + 2 * size_of::<u32>();
                }
                u64::from(id)
            }
        };
        let slot = match side {
            Side::Map => &mut self.customer[node as usize],
            Side::Truth => &mut self.person[node as usize],
        };
        if *slot == ABSENT {
            *slot = cluster_id;
            return Ok(());
        }
        if *slot != cluster_id {
            let previous = *slot;
            return exec_err!(
                "{NAME}: identifier ({}, '{}') appears in the {argument} query with two different {}s: {} and {}",
                String::from_utf8_lossy(id_type),
                String::from_utf8_lossy(id_value),
                side.cluster_column(),
                self.cluster_name(side, previous),
                self.cluster_name(side, cluster_id)
            );
        }
        Ok(())
    }

    /// Reads one edge row. An endpoint with a NULL or blank type or value names no identifier
    /// (`identity_stitch` drops it the same way), so only rows naming two distinct identifiers
    /// are kept; sightings, like identifiers in no edge, can only be singletons.
    fn add_edge(
        &mut self,
        a: (Option<&[u8]>, Option<&[u8]>),
        b: (Option<&[u8]>, Option<&[u8]>),
    ) -> Result<()> {
        let (Some(a), Some(b)) = (named_endpoint(a), named_endpoint(b)) else {
            return Ok(());
        };
        if a == b {
            return Ok(());
        }
        let (a, b) = (self.intern(a.0, a.1)?, self.intern(b.0, b.1)?);
        let Some(edges) = &mut self.edges else {
            return internal_err!("{NAME}: an edge row without an edges argument");
        };
        edges.push((a, b));
        Ok(())
    }

    fn cluster_name(&self, side: Side, id: u64) -> String {
        match (side, u32::try_from(id)) {
            (Side::Map, Ok(id)) => format!("'{}'", self.customers.name(id)),
            (Side::Truth, Ok(id)) => format!("'{}'", self.persons.name(id)),
            (_, Err(_)) => "NULL".to_string(),
        }
    }

    /// `(node, customer, person)` of every identifier present in both the map and the truth.
    fn evaluated(&self) -> impl Iterator<Item = (u32, u64, u64)> + '_ {
        self.customer
            .iter()
            .zip(&self.person)
            .enumerate()
            .filter(|&(_, (&c, &p))| c != ABSENT && p != ABSENT)
            .map(|(node, (&c, &p))| (node as u32, c, p))
    }

    /// Pairs each identifier present on both sides with its customer and person and measures;
    /// with edges, measures the evidence ceiling over the same identifiers.
    fn measure(&self, reservation: &MemoryReservation) -> Result<QualityReport> {
        let mut only_in_map = 0u64;
        let mut only_in_truth = 0u64;
        for (&customer, &person) in self.customer.iter().zip(&self.person) {
            match (customer == ABSENT, person == ABSENT) {
                (false, true) => only_in_map += 1,
                (true, false) => only_in_truth += 1,
                _ => {}
            }
        }
        let evaluated = self.evaluated().count();
        // The ceiling's union-find: a parent and a size per identifier.
        let components = self
            .edges
            .as_ref()
            .map_or(0, |_| self.identifiers.len() * 2 * size_of::<u32>());
        reserve_for(
            NAME,
            reservation,
            self.allocated_bytes() + evaluated * size_of::<Assignment>() + components,
            self,
        )?;
        let mut evaluated_per_type = vec![0u64; self.types.len()];
        let mut assignments = Vec::with_capacity(evaluated);
        for (node, customer, person) in self.evaluated() {
            let id_type = self.identifiers.type_of(node);
            evaluated_per_type[id_type as usize] += 1;
            assignments.push(Assignment {
                predicted: if customer == UNASSIGNED {
                    UNASSIGNED | u64::from(node)
                } else {
                    customer
                },
                truth: person,
                id_type,
            });
        }
        let quality = cluster_quality(&mut assignments, self.types.len());
        let ceiling = self
            .edges
            .as_deref()
            .map(|edges| self.evidence_ceiling(edges, &mut assignments));
        let mut singletons_by_type: Vec<(String, u64)> = evaluated_per_type
            .iter()
            .enumerate()
            .filter(|&(_, &count)| count > 0)
            .map(|(type_id, _)| {
                (
                    self.types.name(type_id as u32).to_string(),
                    quality.singletons_by_type[type_id],
                )
            })
            .collect();
        singletons_by_type.sort_unstable();
        Ok(QualityReport {
            quality,
            ceiling,
            only_in_map,
            only_in_truth,
            singletons_by_type,
        })
    }

    /// The best map the evidence supports, measured: the components of the edges joining two
    /// identifiers of one person, over the evaluated identifiers (`assignments` is reused).
    fn evidence_ceiling(
        &self,
        edges: &[(u32, u32)],
        assignments: &mut Vec<Assignment>,
    ) -> ClusterQuality {
        let mut components = UnionFind::new(self.identifiers.len());
        for &(a, b) in edges {
            let person = self.person[a as usize];
            if person == ABSENT || self.person[b as usize] != person {
                continue;
            }
            let (a, b) = (components.find(a), components.find(b));
            if a != b {
                components.union_roots(a, b);
            }
        }
        assignments.clear();
        for (node, _, person) in self.evaluated() {
            assignments.push(Assignment {
                predicted: u64::from(components.find(node)),
                truth: person,
                id_type: self.identifiers.type_of(node),
            });
        }
        cluster_quality(assignments, self.types.len())
    }
}

/// An edge endpoint's `(type, value)`, unless either is NULL or blank.
fn named_endpoint<'a>(
    (id_type, id_value): (Option<&'a [u8]>, Option<&'a [u8]>),
) -> Option<(&'a [u8], &'a [u8])> {
    Some((
        id_type.filter(|t| !is_blank(t))?,
        id_value.filter(|v| !is_blank(v))?,
    ))
}

/// `recall / ceiling`; `None` when either is undefined or the ceiling is 0.
fn share_of_ceiling(recall: Option<f64>, ceiling: Option<f64>) -> Option<f64> {
    let (recall, ceiling) = (recall?, ceiling?);
    (ceiling > 0.0).then(|| recall / ceiling)
}

/// What the output rows are made of.
#[derive(Debug)]
struct QualityReport {
    quality: ClusterQuality,
    /// The evidence ceiling, when edges were given.
    ceiling: Option<ClusterQuality>,
    only_in_map: u64,
    only_in_truth: u64,
    /// `(type name, singletons)` for every type evaluated, by name.
    singletons_by_type: Vec<(String, u64)>,
}

impl QualityReport {
    fn rows(&self) -> Vec<(String, Option<f64>)> {
        let q = &self.quality;
        let count = |n: u64| Some(n as f64);
        let mut rows: Vec<(&str, Option<f64>)> = vec![
            ("pairwise_precision", q.pairwise_precision),
            ("pairwise_recall", q.pairwise_recall),
            ("pairwise_f1", q.pairwise_f1),
            ("bcubed_precision", q.bcubed_precision),
            ("bcubed_recall", q.bcubed_recall),
            ("bcubed_f1", q.bcubed_f1),
            ("identifiers_evaluated", count(q.identifiers)),
            ("identifiers_only_in_map", count(self.only_in_map)),
            ("identifiers_only_in_truth", count(self.only_in_truth)),
            ("clusters_predicted", count(q.clusters_predicted)),
            ("clusters_true", count(q.clusters_true)),
            ("largest_cluster", q.largest_cluster.and_then(count)),
            (
                "largest_cluster_true_persons",
                q.largest_cluster_true_persons.and_then(count),
            ),
            ("singletons", count(q.singletons)),
            ("over_merged_clusters", count(q.over_merged_clusters)),
        ];
        if let Some(c) = &self.ceiling {
            rows.extend([
                ("ceiling_pairwise_precision", c.pairwise_precision),
                ("ceiling_pairwise_recall", c.pairwise_recall),
                ("ceiling_pairwise_f1", c.pairwise_f1),
                ("ceiling_bcubed_precision", c.bcubed_precision),
                ("ceiling_bcubed_recall", c.bcubed_recall),
                ("ceiling_bcubed_f1", c.bcubed_f1),
                (
                    "pairwise_recall_vs_ceiling",
                    share_of_ceiling(q.pairwise_recall, c.pairwise_recall),
                ),
                (
                    "bcubed_recall_vs_ceiling",
                    share_of_ceiling(q.bcubed_recall, c.bcubed_recall),
                ),
            ]);
        }
        let mut rows: Vec<(String, Option<f64>)> = rows
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        rows.extend(
            self.singletons_by_type
                .iter()
                .map(|(id_type, n)| (format!("singletons:{id_type}"), count(*n))),
        );
        rows.extend(q.size_histogram.iter().enumerate().map(|(bucket, n)| {
            (
                format!("cluster_size:{}", size_bucket_label(bucket)),
                count(*n),
            )
        }));
        rows
    }

    fn to_batch(&self) -> Result<RecordBatch> {
        let rows = self.rows();
        let metrics: StringArray = rows.iter().map(|(name, _)| Some(name.as_str())).collect();
        let values: Float64Array = rows.iter().map(|(_, value)| *value).collect();
        Ok(RecordBatch::try_new(
            Arc::clone(&OUTPUT_SCHEMA),
            vec![Arc::new(metrics), Arc::new(values)],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::memory_pool::MemoryConsumer;

    use super::*;

    fn input(
        map: &[(&str, &str, Option<&str>)],
        truth: &[(&str, &str, &str)],
    ) -> Result<QualityInput> {
        let mut input = QualityInput::default();
        add_clusters(&mut input, map, truth)?;
        Ok(input)
    }

    fn add_clusters(
        input: &mut QualityInput,
        map: &[(&str, &str, Option<&str>)],
        truth: &[(&str, &str, &str)],
    ) -> Result<()> {
        for (t, v, c) in map {
            input.add_row(
                Side::Map,
                Some(t.as_bytes()),
                Some(v.as_bytes()),
                c.map(str::as_bytes),
            )?;
        }
        for (t, v, p) in truth {
            input.add_row(
                Side::Truth,
                Some(t.as_bytes()),
                Some(v.as_bytes()),
                Some(p.as_bytes()),
            )?;
        }
        Ok(())
    }

    fn metric(report: &QualityReport, name: &str) -> Option<f64> {
        let rows = report.rows();
        let found = rows.iter().find(|(metric, _)| metric == name);
        found.unwrap_or_else(|| panic!("no metric {name}")).1
    }

    fn measure(input: &QualityInput) -> Result<QualityReport> {
        let pool: Arc<dyn datafusion::execution::memory_pool::MemoryPool> =
            Arc::new(datafusion::execution::memory_pool::UnboundedMemoryPool::default());
        let reservation = MemoryConsumer::new("test").register(&pool);
        input.measure(&reservation)
    }

    #[test]
    fn unassigned_identifiers_are_singletons_and_only_shared_identifiers_count() -> Result<()> {
        let input = input(
            &[
                ("email", "a", Some("c1")),
                ("phone", "1", Some("c1")),
                ("email", "b", None),
                ("phone", "2", None),
                ("email", "a", Some("c1")),
                ("cookie", "x", Some("c1")),
            ],
            &[
                ("email", "a", "p1"),
                ("phone", "1", "p1"),
                ("email", "b", "p1"),
                ("phone", "2", "p2"),
                ("card", "9", "p2"),
            ],
        )?;
        let report = measure(&input)?;
        assert_eq!(metric(&report, "identifiers_evaluated"), Some(4.0));
        assert_eq!(metric(&report, "identifiers_only_in_map"), Some(1.0));
        assert_eq!(metric(&report, "identifiers_only_in_truth"), Some(1.0));
        // Predicted {a, 1}, {b}, {2}; true {a, 1, b}, {2}.
        assert_eq!(metric(&report, "clusters_predicted"), Some(3.0));
        assert_eq!(metric(&report, "clusters_true"), Some(2.0));
        assert_eq!(metric(&report, "pairwise_precision"), Some(1.0));
        assert_eq!(metric(&report, "pairwise_recall"), Some(1.0 / 3.0));
        assert_eq!(metric(&report, "singletons"), Some(2.0));
        assert_eq!(metric(&report, "singletons:email"), Some(1.0));
        assert_eq!(metric(&report, "singletons:phone"), Some(1.0));
        assert_eq!(metric(&report, "over_merged_clusters"), Some(0.0));
        let names: Vec<String> = report.rows().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names.len(), 19, "{names:?}");
        assert_eq!(
            names[15..],
            [
                "singletons:email",
                "singletons:phone",
                "cluster_size:1",
                "cluster_size:2"
            ]
        );
        assert_eq!(metric(&report, "cluster_size:1"), Some(2.0));
        assert_eq!(metric(&report, "cluster_size:2"), Some(1.0));
        Ok(())
    }

    #[test]
    fn conflicting_duplicates_and_nulls_are_errors() {
        let err = input(
            &[("email", "a", Some("c1")), ("email", "a", Some("c2"))],
            &[],
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("identifier (email, 'a') appears in the map query with two different customer_ids: 'c1' and 'c2'"),
            "{err}"
        );
        let err = input(&[("email", "a", Some("c1")), ("email", "a", None)], &[])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("'c1' and NULL"), "{err}");
        let err = input(&[], &[("email", "a", "p1"), ("email", "a", "p2")])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("truth query with two different person_ids"),
            "{err}"
        );

        let mut quality = QualityInput::default();
        let err = quality
            .add_row(Side::Truth, Some(b"email"), Some(b"a"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("NULL person_id for identifier (email, 'a')"),
            "{err}"
        );
        let err = quality
            .add_row(Side::Map, Some(b"email"), None, Some(b"c"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "the map query has a row with a NULL id_type or id_value (id_type 'email')"
            ),
            "{err}"
        );
    }

    #[test]
    fn empty_inputs_give_undefined_ratios() -> Result<()> {
        let report = measure(&QualityInput::default())?;
        assert_eq!(metric(&report, "pairwise_f1"), None);
        assert_eq!(metric(&report, "bcubed_precision"), None);
        assert_eq!(metric(&report, "largest_cluster"), None);
        assert_eq!(metric(&report, "identifiers_evaluated"), Some(0.0));
        assert_eq!(report.to_batch()?.num_rows(), 15);
        Ok(())
    }

    #[test]
    fn the_map_and_truth_are_reserved_in_the_memory_pool() -> Result<()> {
        use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};
        let mut input = QualityInput::default();
        for i in 0..1000 {
            input.add_row(
                Side::Map,
                Some(b"email"),
                Some(format!("{i}@x").as_bytes()),
                Some(b"c"),
            )?;
        }
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1024));
        let reservation = MemoryConsumer::new("test").register(&pool);
        let err = input.measure(&reservation).unwrap_err().to_string();
        assert!(
            err.contains("1000 identifiers do not fit in the memory pool"),
            "{err}"
        );
        Ok(())
    }

    /// A hand graph where the map and the evidence ceiling differ both ways (see the comments).
    const TRUTH: &[(&str, &str, &str)] = &[
        ("email", "a", "p1"),
        ("phone", "1", "p1"),
        ("cookie", "k1", "p1"),
        // Never in the edges: a singleton even in the ceiling.
        ("cookie", "k2", "p1"),
        ("email", "b", "p2"),
        ("phone", "2", "p2"),
        ("card", "9", "p3"),
    ];

    /// `(a_type, a_value, b_type, b_value)`.
    type EdgeRow = (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );

    const EDGES: &[EdgeRow] = &[
        // Confirmed by the truth: {a, 1, k1} and {b, 2}.
        (Some("email"), Some("a"), Some("phone"), Some("1")),
        (Some("cookie"), Some("k1"), Some("email"), Some("a")),
        (Some("phone"), Some("2"), Some("email"), Some("b")),
        // Joins two persons: the map follows it and over-merges, the ceiling does not.
        (Some("phone"), Some("1"), Some("email"), Some("b")),
        // An endpoint the truth does not know: cannot be confirmed.
        (Some("card"), Some("9"), Some("phone"), Some("X")),
        // A sighting, a blank endpoint and a self-loop link nothing.
        (Some("phone"), Some("1"), None, None),
        (Some("cookie"), Some("k2"), Some("email"), Some(" ")),
        (Some("email"), Some("a"), Some("email"), Some("a")),
    ];

    /// The map over-merges {a, 1, b, 2} and leaves k1 alone although an edge links it to a.
    const MAP: &[(&str, &str, Option<&str>)] = &[
        ("email", "a", Some("c1")),
        ("phone", "1", Some("c1")),
        ("email", "b", Some("c1")),
        ("phone", "2", Some("c1")),
        ("cookie", "k1", Some("c2")),
        ("cookie", "k2", None),
        ("card", "9", Some("c4")),
        ("phone", "X", Some("c4")),
    ];

    fn input_with_edges(
        map: &[(&str, &str, Option<&str>)],
        truth: &[(&str, &str, &str)],
        edges: &[EdgeRow],
    ) -> Result<QualityInput> {
        let mut quality = QualityInput::new(true);
        let bytes = |text: Option<&'static str>| text.map(str::as_bytes);
        for &(a_type, a_value, b_type, b_value) in edges {
            quality.add_edge(
                (bytes(a_type), bytes(a_value)),
                (bytes(b_type), bytes(b_value)),
            )?;
        }
        let plain = input(map, truth)?;
        // Map and truth rows after the edges: the order of the relations must not matter.
        add_clusters(&mut quality, map, truth)?;
        // The edges change none of the map's own figures.
        assert_eq!(
            measure(&plain)?.rows()[..15],
            measure(&quality)?.rows()[..15]
        );
        Ok(quality)
    }

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.unwrap_or_else(|| panic!("NULL, expected {expected}"));
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    #[test]
    fn the_ceiling_separates_stitcher_losses_from_missing_evidence() -> Result<()> {
        let report = measure(&input_with_edges(MAP, TRUTH, EDGES)?)?;
        // Evaluated: the 7 truth identifiers (X is only in the map and the edges).
        assert_eq!(metric(&report, "identifiers_evaluated"), Some(7.0));
        assert_eq!(metric(&report, "identifiers_only_in_map"), Some(1.0));
        // True pairs: C(4,2) + C(2,2) = 7. The map: {a, 1, b, 2}, {k1}, {k2}, {9} — 6 pairs, 2 right.
        close(metric(&report, "pairwise_precision"), 2.0 / 6.0);
        close(metric(&report, "pairwise_recall"), 2.0 / 7.0);
        // The ceiling: {a, 1, k1}, {b, 2}, {k2}, {9} — 4 pairs, all right.
        close(metric(&report, "ceiling_pairwise_precision"), 1.0);
        close(metric(&report, "ceiling_pairwise_recall"), 4.0 / 7.0);
        close(
            metric(&report, "ceiling_pairwise_f1"),
            2.0 * (4.0 / 7.0) / (1.0 + 4.0 / 7.0),
        );
        close(metric(&report, "pairwise_recall_vs_ceiling"), 0.5);
        // B-cubed recall: map (2/4 + 2/4 + 1/4 + 1/4 + 1 + 1 + 1) / 7, ceiling (3 · 3/4 + 1/4 + 3) / 7.
        close(metric(&report, "bcubed_recall"), 4.5 / 7.0);
        close(metric(&report, "ceiling_bcubed_precision"), 1.0);
        close(metric(&report, "ceiling_bcubed_recall"), 5.5 / 7.0);
        close(
            metric(&report, "ceiling_bcubed_f1"),
            2.0 * (5.5 / 7.0) / (1.0 + 5.5 / 7.0),
        );
        close(metric(&report, "bcubed_recall_vs_ceiling"), 4.5 / 5.5);
        let names: Vec<String> = report.rows().into_iter().map(|(name, _)| name).collect();
        assert_eq!(
            names[14..24],
            [
                "over_merged_clusters",
                "ceiling_pairwise_precision",
                "ceiling_pairwise_recall",
                "ceiling_pairwise_f1",
                "ceiling_bcubed_precision",
                "ceiling_bcubed_recall",
                "ceiling_bcubed_f1",
                "pairwise_recall_vs_ceiling",
                "bcubed_recall_vs_ceiling",
                "singletons:card",
            ]
        );
        // Without edges, no ceiling rows.
        let plain = measure(&input(MAP, TRUTH)?)?;
        assert!(
            plain
                .rows()
                .iter()
                .all(|(name, _)| !name.contains("ceiling"))
        );
        Ok(())
    }

    #[test]
    fn a_map_can_exceed_the_ceiling_only_through_links_the_truth_rejects() -> Result<()> {
        // d and e (one person) are linked only through X, which the truth does not know.
        let truth = [("email", "d", "p1"), ("phone", "e", "p1")];
        let edges: &[EdgeRow] = &[
            (Some("email"), Some("d"), Some("phone"), Some("X")),
            (Some("phone"), Some("X"), Some("phone"), Some("e")),
        ];
        let map = [
            ("email", "d", Some("c1")),
            ("phone", "X", Some("c1")),
            ("phone", "e", Some("c1")),
        ];
        let report = measure(&input_with_edges(&map, &truth, edges)?)?;
        close(metric(&report, "pairwise_recall"), 1.0);
        close(metric(&report, "ceiling_pairwise_recall"), 0.0);
        // No predicted pair in the ceiling, and nothing to divide by.
        assert_eq!(metric(&report, "ceiling_pairwise_precision"), None);
        assert_eq!(metric(&report, "ceiling_pairwise_f1"), None);
        assert_eq!(metric(&report, "pairwise_recall_vs_ceiling"), None);
        close(metric(&report, "ceiling_bcubed_recall"), 0.5);
        close(metric(&report, "bcubed_recall_vs_ceiling"), 2.0);

        // Empty edges: every evaluated identifier is a singleton of the ceiling.
        let report = measure(&input_with_edges(&map, &truth, &[])?)?;
        close(metric(&report, "ceiling_pairwise_recall"), 0.0);
        close(metric(&report, "ceiling_bcubed_precision"), 1.0);
        // And nothing evaluated: every ceiling ratio is undefined.
        let report = measure(&QualityInput::new(true))?;
        assert_eq!(report.to_batch()?.num_rows(), 23);
        assert_eq!(metric(&report, "ceiling_bcubed_recall"), None);
        assert_eq!(metric(&report, "bcubed_recall_vs_ceiling"), None);
        Ok(())
    }

    #[test]
    fn every_string_encoding_of_the_combined_input_reads_the_same() -> Result<()> {
        use crate::test_harness::all_encodings;
        use datafusion::arrow::array::{ArrayRef, UInt8Array};
        let mut rows: Vec<[Option<&str>; 5]> = vec![];
        let mut parts = vec![];
        for &(t, v, c) in MAP {
            rows.push([Some(t), Some(v), c, None, None]);
            parts.push(Part::MAP.tag_value());
        }
        for &(t, v, p) in TRUTH {
            rows.push([Some(t), Some(v), Some(p), None, None]);
            parts.push(Part::TRUTH.tag_value());
        }
        for &(a_type, a_value, b_type, b_value) in EDGES {
            rows.push([a_type, a_value, None, b_type, b_value]);
            parts.push(Part::Edges.tag_value());
        }
        let column = |i: usize| all_encodings(&rows.iter().map(|row| row[i]).collect::<Vec<_>>());
        let [types, values, clusters, other_types, other_values] = [0, 1, 2, 3, 4].map(column);
        let part: ArrayRef = Arc::new(UInt8Array::from(parts));
        let expected = measure(&input_with_edges(MAP, TRUTH, EDGES)?)?.rows();
        let encodings = types
            .into_iter()
            .zip(values)
            .zip(clusters)
            .zip(other_types)
            .zip(other_values);
        for ((((id_type, id_value), cluster), other_type), other_value) in encodings {
            let batch = RecordBatch::try_from_iter(vec![
                (ID_TYPE, id_type),
                (ID_VALUE, id_value),
                (CLUSTER, cluster),
                (PART, Arc::clone(&part)),
                (OTHER_TYPE, other_type),
                (OTHER_VALUE, other_value),
            ])?;
            let mut quality = QualityInput::new(true);
            quality.add_batch(&batch)?;
            assert_eq!(
                measure(&quality)?.rows(),
                expected,
                "{}",
                batch.column(0).data_type()
            );
        }
        Ok(())
    }

    #[test]
    fn edges_need_the_endpoint_columns_as_strings() -> Result<()> {
        use datafusion::logical_expr::col;
        let plan = |columns: &[(&str, Expr)]| {
            let values = vec![columns.iter().map(|(_, e)| e.clone()).collect()];
            let names = columns
                .iter()
                .enumerate()
                .map(|(i, (name, _))| col(format!("column{}", i + 1)).alias(*name));
            LogicalPlanBuilder::values(values)?.project(names)?.build()
        };
        let err = Part::Edges
            .tag(plan(&[
                ("a_type", lit("email")),
                ("a_value", lit("a")),
                ("b_value", lit("b")),
            ])?)
            .unwrap_err()
            .strip_backtrace();
        assert_eq!(
            err,
            "Error during planning: identity_quality: the edges query has no column 'b_type'; \
             it needs a_type, a_value, b_type, b_value and has: a_type Utf8, a_value Utf8, b_value Utf8"
        );
        let err = Part::Edges
            .tag(plan(&[
                ("a_type", lit("email")),
                ("a_value", lit(1)),
                ("b_type", lit(ScalarValue::Null)),
                ("b_value", lit(ScalarValue::Null)),
            ])?)
            .unwrap_err()
            .strip_backtrace();
        assert_eq!(
            err,
            "Error during planning: identity_quality: column 'a_value' of the edges query must be a string, got Int32"
        );
        // NULL-typed endpoint columns (sightings only) are strings.
        let tagged = Part::Edges.tag(plan(&[
            ("source", lit("web")),
            ("b_value", lit(ScalarValue::Null)),
            ("a_value", lit("a")),
            ("b_type", lit(ScalarValue::Null)),
            ("a_type", lit("email")),
        ])?)?;
        let names: Vec<&str> = tagged
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, INPUT_COLUMNS);
        Ok(())
    }
}
