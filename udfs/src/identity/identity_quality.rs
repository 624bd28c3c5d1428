//! `identity_quality('<map query or table>', '<truth query or table>')`: how well an identity map
//! (identifier → customer) matches the ground truth (identifier → person).
//!
//! Both arguments are kept as SQL text and planned in `scan`; each is checked and projected to
//! `(id_type, id_value, cluster, side)` (strings cast to `Utf8View`, which shares the buffers of
//! `Utf8` and `Utf8View` input) and the two are concatenated (`UNION ALL`) into the one input
//! [`QueryInputExec`](crate::query_argument::QueryInputExec) runs [`IdentityQuality`] over. The operator interns identifiers, pairs each
//! one's customer with its person and hands the pairs to [`cluster_quality`].

use std::fmt;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{AsArray, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt8Type};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, Result, exec_err, internal_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    Documentation, LogicalPlan, LogicalPlanBuilder, cast as cast_expr, lit,
};
use datafusion_macros::user_doc;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::quality_metrics::{Assignment, ClusterQuality, cluster_quality, size_bucket_label};
use super::stitch::{IdentifierInterner, NameInterner, StringColumn};
use crate::DocumentedTableFunction;
use crate::query_argument::{
    ArgumentColumns, QueryArgumentTable, QueryInputOperator, TaggedUnion, UnionPart,
    check_union_columns, is_string, is_string_or_integer,
};

const NAME: &str = "identity_quality";

/// The columns of the combined input, in order.
const ID_TYPE: &str = "id_type";
const ID_VALUE: &str = "id_value";
const CLUSTER: &str = "cluster";
const SIDE: &str = "side";

/// The two relations compared, as tagged in the `side` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Map = 0,
    Truth = 1,
}

impl Side {
    fn cluster_column(self) -> &'static str {
        match self {
            Self::Map => "customer_id",
            Self::Truth => "person_id",
        }
    }
}

impl UnionPart for Side {
    fn argument(self) -> &'static str {
        match self {
            Self::Map => "map",
            Self::Truth => "truth",
        }
    }

    /// Checks one side's columns and projects it to `(id_type, id_value, cluster, side)`.
    fn tag(self, plan: LogicalPlan) -> Result<LogicalPlan> {
        let cluster = self.cluster_column();
        let columns = ArgumentColumns {
            function: NAME,
            relation: &format!("the {} query", self.argument()),
            needs: &format!("{ID_TYPE}, {ID_VALUE}, {cluster}"),
            plan: &plan,
        };
        let id_type = columns.required(ID_TYPE, is_string, "a string")?;
        let id_value = columns.required(ID_VALUE, is_string, "a string")?;
        let cluster_id =
            columns.required(cluster, is_string_or_integer, "a string or an integer")?;
        let exprs = vec![
            cast_expr(id_type, DataType::Utf8View).alias(ID_TYPE),
            cast_expr(id_value, DataType::Utf8View).alias(ID_VALUE),
            cast_expr(cluster_id, DataType::Utf8View).alias(CLUSTER),
            lit(self as u8).alias(SIDE),
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
    description = r#"Measures an identity map against ground truth: pairwise and B-cubed precision, recall and F1, and the shape of the predicted clusters.

The map relation has the columns `id_type, id_value, customer_id` (the output of `identity_stitch` fits); a NULL `customer_id` (e.g. a blocked identifier) counts as a cluster of its own. The truth relation has `id_type, id_value, person_id`. Types and values are strings of any encoding; `customer_id` and `person_id` strings or integers; other columns are ignored. A missing or mistyped column is a planning error; a NULL type, value or `person_id`, or an identifier listed twice on one side with different clusters, is an execution error naming it (exact duplicates are fine).

Only identifiers present in both relations are evaluated; `identifiers_only_in_map` and `identifiers_only_in_truth` count the others. Output, one row `(metric, value DOUBLE)` per metric, in this order: `pairwise_precision`, `pairwise_recall`, `pairwise_f1` (over pairs of identifiers placed in the same cluster, counted from the contingency table), `bcubed_precision`, `bcubed_recall`, `bcubed_f1` (per-identifier precision and recall averaged over identifiers, Bagga & Baldwin 1998), `identifiers_evaluated`, `identifiers_only_in_map`, `identifiers_only_in_truth`, `clusters_predicted`, `clusters_true`, `largest_cluster`, `largest_cluster_true_persons` (persons merged by the largest predicted cluster; the most among equally large ones), `singletons` (predicted clusters of one identifier), `over_merged_clusters` (predicted clusters holding more than one person), then `singletons:<id_type>` for each type evaluated, by type name, then the cluster-size histogram `cluster_size:1`, `cluster_size:2`, `cluster_size:3-4`, `cluster_size:5-8`, … (predicted clusters per power-of-two size range, every range up to the largest cluster's, empty ones as 0). Cluster figures count evaluated identifiers only.

A ratio with nothing to measure is NULL: pairwise precision without any predicted pair (an all-singletons map), pairwise recall without any true pair, every ratio and `largest_cluster*` when no identifier is evaluated; an F1 is NULL when its precision or recall is.

Both queries run as a sub-plan of one operator (`IdentityQualityExec`), which holds every identifier (about 60 bytes plus the value) and the distinct customer and person ids in memory, reserved in the session's memory pool."#,
    syntax_example = "identity_quality('<map query or table>', '<truth query or table>')",
    sql_example = r#"```sql
> select * from identity_quality('select * from (values (''email'', ''a@x.ru'', ''c1''), (''phone'', ''+79160000001'', ''c1''), (''email'', ''b@x.ru'', ''c1'')) m(id_type, id_value, customer_id)', 'select * from (values (''email'', ''a@x.ru'', ''p1''), (''phone'', ''+79160000001'', ''p1''), (''email'', ''b@x.ru'', ''p2'')) t(id_type, id_value, person_id)') where metric like 'pairwise%';
+--------------------+--------------------+
| metric             | value              |
+--------------------+--------------------+
| pairwise_precision | 0.3333333333333333 |
| pairwise_recall    | 1.0                |
| pairwise_f1        | 0.5                |
+--------------------+--------------------+
```"#,
    argument(
        name = "map",
        description = "A query (`SELECT …`, `WITH …`, `VALUES …`) or a table name giving the identity map `(id_type, id_value, customer_id)`. A string literal."
    ),
    argument(
        name = "truth",
        description = "A query or a table name giving the ground truth `(id_type, id_value, person_id)`. A string literal."
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
        let input = TaggedUnion::from_call(
            NAME,
            "('<map query or table>', '<truth query or table>')",
            args.exprs(),
            &[Side::Map, Side::Truth],
        )?;
        Ok(Arc::new(QueryArgumentTable::new(
            input,
            Arc::new(IdentityQuality),
        )))
    }
}

/// The operator: reads both sides, then emits the metrics.
#[derive(Debug, Default)]
pub struct IdentityQuality;

impl QueryInputOperator for IdentityQuality {
    fn function(&self) -> &'static str {
        NAME
    }

    fn name(&self) -> &'static str {
        "IdentityQualityExec"
    }

    fn fmt_parameters(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "map vs truth")
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&OUTPUT_SCHEMA)
    }

    fn check_input(&self, input: &SchemaRef) -> Result<()> {
        check_union_columns(NAME, input, &[ID_TYPE, ID_VALUE, CLUSTER, SIDE])
    }

    fn execute(
        self: Arc<Self>,
        mut input: SendableRecordBatchStream,
        projection: Option<Vec<usize>>,
        context: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        let reservation = MemoryConsumer::new(NAME).register(context.memory_pool());
        let measured = async move {
            let mut identifiers = QualityInput::default();
            while let Some(batch) = input.next().await {
                identifiers.add_batch(&batch?)?;
                reserve(&reservation, identifiers.allocated_bytes(), &identifiers)?;
            }
            let report = identifiers.measure(&reservation)?;
            let batch = report.to_batch()?;
            match projection {
                Some(indices) => Ok(batch.project(&indices)?),
                None => Ok(batch),
            }
        };
        Ok(futures::stream::once(measured).boxed())
    }
}

fn reserve(reservation: &MemoryReservation, bytes: usize, input: &QualityInput) -> Result<()> {
    reservation.try_resize(bytes).map_err(|e: DataFusionError| {
        e.context(format!(
            "{NAME}: {} identifiers do not fit in the memory pool; raise the memory limit",
            input.identifiers.len()
        ))
    })
}

/// No row for the identifier on this side.
const ABSENT: u64 = u64::MAX;
/// The map's "customer" of an identifier with a NULL `customer_id`; made unique per identifier
/// (`| node`) when evaluated, so each is a singleton. Customer ids are below 2³².
const UNASSIGNED: u64 = 1 << 32;

/// Every identifier of both sides with its customer and person.
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
}

impl QualityInput {
    fn add_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let id_type = StringColumn::try_new(batch.column(0), ID_TYPE)?;
        let id_value = StringColumn::try_new(batch.column(1), ID_VALUE)?;
        let cluster = StringColumn::try_new(batch.column(2), CLUSTER)?;
        let Some(side) = batch.column(3).as_primitive_opt::<UInt8Type>() else {
            return internal_err!("{NAME}: the side column is not UInt8");
        };
        for row in 0..batch.num_rows() {
            let side = if side.value(row) == Side::Map as u8 {
                Side::Map
            } else {
                Side::Truth
            };
            self.add_row(side, id_type.get(row), id_value.get(row), cluster.get(row))?;
        }
        Ok(())
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
        let (type_id, _) = self.types.intern(id_type)?;
        let (node, new) = self.identifiers.intern(type_id, id_value)?;
        if new {
            self.customer.push(ABSENT);
            self.person.push(ABSENT);
        }
        let cluster_id = match (side, cluster) {
            (Side::Map, None) => UNASSIGNED,
            (Side::Truth, None) => {
                return exec_err!(
                    "{NAME}: the truth query has a NULL person_id for identifier ({}, '{}')",
                    self.types.name(type_id),
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
                self.types.name(type_id),
                String::from_utf8_lossy(id_value),
                side.cluster_column(),
                self.cluster_name(side, previous),
                self.cluster_name(side, cluster_id)
            );
        }
        Ok(())
    }

    fn cluster_name(&self, side: Side, id: u64) -> String {
        match (side, u32::try_from(id)) {
            (Side::Map, Ok(id)) => format!("'{}'", self.customers.name(id)),
            (Side::Truth, Ok(id)) => format!("'{}'", self.persons.name(id)),
            (_, Err(_)) => "NULL".to_string(),
        }
    }

    fn allocated_bytes(&self) -> usize {
        self.identifiers.allocated_bytes()
            + (self.customer.capacity() + self.person.capacity()) * size_of::<u64>()
            + self.name_bytes
    }

    /// Pairs each identifier present on both sides with its customer and person and measures.
    fn measure(&self, reservation: &MemoryReservation) -> Result<QualityReport> {
        let mut only_in_map = 0u64;
        let mut only_in_truth = 0u64;
        let mut evaluated_per_type = vec![0u64; self.types.len()];
        let evaluated = self
            .customer
            .iter()
            .zip(&self.person)
            .filter(|&(&c, &p)| c != ABSENT && p != ABSENT)
            .count();
        reserve(
            reservation,
            self.allocated_bytes() + evaluated * size_of::<Assignment>(),
            self,
        )?;
        let mut assignments = Vec::with_capacity(evaluated);
        for (node, (&customer, &person)) in self.customer.iter().zip(&self.person).enumerate() {
            match (customer == ABSENT, person == ABSENT) {
                (false, true) => only_in_map += 1,
                (true, false) => only_in_truth += 1,
                (true, true) => {}
                (false, false) => {
                    let id_type = self.identifiers.type_of(node as u32);
                    evaluated_per_type[id_type as usize] += 1;
                    assignments.push(Assignment {
                        predicted: if customer == UNASSIGNED {
                            UNASSIGNED | node as u64
                        } else {
                            customer
                        },
                        truth: person,
                        id_type,
                    });
                }
            }
        }
        let quality = cluster_quality(&mut assignments, self.types.len());
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
            only_in_map,
            only_in_truth,
            singletons_by_type,
        })
    }
}

/// What the output rows are made of.
#[derive(Debug)]
struct QualityReport {
    quality: ClusterQuality,
    only_in_map: u64,
    only_in_truth: u64,
    /// `(type name, singletons)` for every type evaluated, by name.
    singletons_by_type: Vec<(String, u64)>,
}

impl QualityReport {
    fn rows(&self) -> Vec<(String, Option<f64>)> {
        let q = &self.quality;
        let count = |n: u64| Some(n as f64);
        let mut rows: Vec<(String, Option<f64>)> = [
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
        ]
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
    use super::*;

    fn input(
        map: &[(&str, &str, Option<&str>)],
        truth: &[(&str, &str, &str)],
    ) -> Result<QualityInput> {
        let mut input = QualityInput::default();
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
        Ok(input)
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
}
