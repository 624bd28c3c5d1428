//! `identity_churn('<previous map>', '<current map>')`: how the customers of one identity map
//! changed in the next — unchanged, grown, shrunk, merged, split — plus the identifiers that
//! appeared and disappeared.
//!
//! Both arguments are kept as SQL text and planned in `scan`; each is checked and projected to
//! `(id_type, id_value, customer_id, side)` (strings cast to `Utf8View`) and the two are
//! concatenated into the one input [`QueryInputExec`](crate::query_argument::QueryInputExec) runs [`IdentityChurn`] over.

use std::fmt;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt8Type};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, exec_err};
use datafusion::execution::memory_pool::MemoryReservation;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Documentation, LogicalPlan, LogicalPlanBuilder, cast, lit};
use datafusion_macros::user_doc;
use futures::stream::BoxStream;

use super::stitch::{IdentifierInterner, NameInterner, StringColumn};
use crate::DocumentedTableFunction;
use crate::query_argument::{
    ArgumentColumns, QueryArgumentTable, QueryInputOperator, TaggedUnion, UnionPart,
    WholeInputState, check_union_columns, emit_after_whole_input, is_string, is_string_or_integer,
    reserve_for,
};

const NAME: &str = "identity_churn";

/// The columns of the combined input, in order.
const COLUMNS: [&str; 4] = ["id_type", "id_value", "customer_id", "side"];

/// The categories, in output order: per previous customer, then per identifier.
const CATEGORIES: [&str; 7] = [
    "unchanged",
    "grown",
    "shrunk",
    "merged",
    "split",
    "new",
    "gone",
];

static OUTPUT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("category", DataType::Utf8, false),
        Field::new("customers", DataType::Int64, false),
        Field::new("identifiers", DataType::Int64, false),
    ]))
});

#[user_doc(
    doc_section(label = "Identity Functions"),
    description = r#"Compares two identity maps (e.g. yesterday's and today's `identity_stitch` output): what happened to each previous customer, and which identifiers appeared or disappeared.

Both relations have the columns `id_type, id_value, customer_id` (types and values strings of any encoding, `customer_id` a string or an integer; other columns are ignored). Rows with a NULL `customer_id` (blocked identifiers) belong to no customer and are ignored; an identifier listed twice on one side with different customers is an execution error naming it. Customers are compared by their identifiers, not by their ids, so the maps of two plain runs compare as well as those of incremental runs.

Each previous customer falls into exactly one category, checked in this order: `split` (its identifiers present in both maps are now under several customers), `merged` (they are under one customer that also holds identifiers of another previous customer), `grown` (under one customer that also holds new identifiers), `shrunk` (under one customer with nothing added, but some of its identifiers are gone), `unchanged` (the same identifiers, together, and nothing else). A previous customer none of whose identifiers is in the current map counts in the `gone` row.

Output, always these seven rows in this order, `(category, customers, identifiers)`: `unchanged`, `grown`, `shrunk`, `merged`, `split` with the number of previous customers in the category and their identifiers present in both maps; `new` with the identifiers only in the current map and the current customers made only of them; `gone` with the identifiers only in the previous map and the previous customers all of whose identifiers are gone. So the five customer rows plus `gone` add up to the previous customers, the five plus `new` to the current identifiers, and the five plus `gone` to the previous identifiers.

Both queries run as a sub-plan of one operator (`IdentityChurnExec`), which holds every identifier (about 40 bytes plus the value) and the customer ids in memory, reserved in the session's memory pool."#,
    syntax_example = "identity_churn('<previous map query or table>', '<current map query or table>')",
    sql_example = r#"```sql
> select * from identity_churn('select * from (values (''email'', ''a@x.ru'', ''c1''), (''email'', ''b@x.ru'', ''c2'')) m(id_type, id_value, customer_id)', 'select * from (values (''email'', ''a@x.ru'', ''k1''), (''email'', ''b@x.ru'', ''k1''), (''phone'', ''+79160000001'', ''k2'')) m(id_type, id_value, customer_id)');
+-----------+-----------+-------------+
| category  | customers | identifiers |
+-----------+-----------+-------------+
| unchanged | 0         | 0           |
| grown     | 0         | 0           |
| shrunk    | 0         | 0           |
| merged    | 2         | 2           |
| split     | 0         | 0           |
| new       | 1         | 1           |
| gone      | 0         | 0           |
+-----------+-----------+-------------+
```"#,
    argument(
        name = "previous",
        description = "A query (`SELECT …`, `WITH …`, `VALUES …`) or a table name giving the previous identity map `(id_type, id_value, customer_id)`. A string literal."
    ),
    argument(
        name = "current",
        description = "A query or a table name giving the current identity map. A string literal."
    )
)]
#[derive(Debug, Default)]
pub struct IdentityChurnFunc;

impl DocumentedTableFunction for IdentityChurnFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The two maps compared, as tagged in the `side` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Previous = 0,
    Current = 1,
}

impl UnionPart for Side {
    fn argument(self) -> &'static str {
        match self {
            Self::Previous => "previous",
            Self::Current => "current",
        }
    }

    /// Checks one map's columns and projects it to `(id_type, id_value, customer_id, side)`.
    fn tag(self, plan: LogicalPlan) -> Result<LogicalPlan> {
        let columns = ArgumentColumns {
            function: NAME,
            relation: &format!("the {} map", self.argument()),
            needs: "id_type, id_value, customer_id",
            plan: &plan,
        };
        let exprs = vec![
            cast(
                columns.required(COLUMNS[0], is_string, "a string")?,
                DataType::Utf8View,
            )
            .alias(COLUMNS[0]),
            cast(
                columns.required(COLUMNS[1], is_string, "a string")?,
                DataType::Utf8View,
            )
            .alias(COLUMNS[1]),
            cast(
                columns.required(COLUMNS[2], is_string_or_integer, "a string or an integer")?,
                DataType::Utf8View,
            )
            .alias(COLUMNS[2]),
            lit(self as u8).alias(COLUMNS[3]),
        ];
        LogicalPlanBuilder::from(plan).project(exprs)?.build()
    }
}

impl TableFunctionImpl for IdentityChurnFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let input = TaggedUnion::from_call(
            NAME,
            "('<previous map query or table>', '<current map query or table>')",
            args.exprs(),
            &[Side::Previous, Side::Current],
        )?;
        Ok(Arc::new(QueryArgumentTable::new(
            input,
            Arc::new(IdentityChurn),
        )))
    }
}

/// The operator: reads both maps, then emits the summary.
#[derive(Debug, Default)]
pub struct IdentityChurn;

impl QueryInputOperator for IdentityChurn {
    fn function(&self) -> &'static str {
        NAME
    }

    fn name(&self) -> &'static str {
        "IdentityChurnExec"
    }

    fn fmt_parameters(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "previous vs current")
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&OUTPUT_SCHEMA)
    }

    fn check_input(&self, input: &SchemaRef) -> Result<()> {
        check_union_columns(NAME, input, &COLUMNS)
    }

    fn execute(
        self: Arc<Self>,
        input: SendableRecordBatchStream,
        projection: Option<Vec<usize>>,
        context: Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<RecordBatch>>> {
        Ok(emit_after_whole_input(
            NAME,
            "IdentityChurnExec",
            ChurnInput::default(),
            input,
            projection,
            &context,
        ))
    }
}

impl WholeInputState for ChurnInput {
    fn add_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let id_type = StringColumn::try_new(batch.column(0), COLUMNS[0])?;
        let id_value = StringColumn::try_new(batch.column(1), COLUMNS[1])?;
        let customer = StringColumn::try_new(batch.column(2), COLUMNS[2])?;
        let side = batch.column(3).as_primitive::<UInt8Type>();
        for row in 0..batch.num_rows() {
            let (Some(t), Some(v), Some(c)) =
                (id_type.get(row), id_value.get(row), customer.get(row))
            else {
                continue;
            };
            let side = match side.value(row) {
                0 => Side::Previous,
                _ => Side::Current,
            };
            self.add(t, v, c, side)?;
        }
        Ok(())
    }

    fn allocated_bytes(&self) -> usize {
        self.types.allocated_bytes()
            + self.identifiers.allocated_bytes()
            + self.customers[0].allocated_bytes()
            + self.customers[1].allocated_bytes()
            + (self.customer[0].capacity() + self.customer[1].capacity()) * size_of::<u32>()
    }

    fn held(&self) -> String {
        format!("{} identifiers", self.identifiers.len())
    }

    fn finish(self, reservation: &MemoryReservation) -> Result<RecordBatch> {
        self.summarise(reservation)?.to_batch()
    }
}

/// No customer on this side.
const NONE: u32 = u32::MAX;

/// Every identifier of both maps with its customer on each side.
#[derive(Debug, Default)]
struct ChurnInput {
    types: NameInterner,
    identifiers: IdentifierInterner,
    /// Customer ids per side.
    customers: [NameInterner; 2],
    /// Per side, per identifier: its customer or [`NONE`].
    customer: [Vec<u32>; 2],
}

impl ChurnInput {
    fn add(&mut self, id_type: &[u8], value: &[u8], customer: &[u8], side: Side) -> Result<()> {
        let (type_id, _) = self.types.intern(id_type)?;
        let (identifier, new) = self.identifiers.intern(type_id, value)?;
        if new {
            self.customer[0].push(NONE);
            self.customer[1].push(NONE);
        }
        let s = side as usize;
        let (customer, _) = self.customers[s].intern(customer)?;
        let slot = &mut self.customer[s][identifier as usize];
        if *slot != NONE && *slot != customer {
            // Sorted: which of the two rows came first depends on partitioning.
            let mut ids = [
                self.customers[s].name(*slot),
                self.customers[s].name(customer),
            ];
            ids.sort_unstable();
            return exec_err!(
                "{NAME}: identifier {} {:?} has two customer ids in the {} map, {:?} and {:?}",
                self.types.name(type_id),
                String::from_utf8_lossy(value),
                side.argument(),
                ids[0],
                ids[1]
            );
        }
        *slot = customer;
        Ok(())
    }

    fn summarise(&self, reservation: &MemoryReservation) -> Result<ChurnSummary> {
        let previous = &self.customer[Side::Previous as usize];
        let current = &self.customer[Side::Current as usize];
        let (n_previous, n_current) = (self.customers[0].len(), self.customers[1].len());
        // Pairs (previous, current) of identifiers in both maps, distinct.
        let mut links: Vec<(u32, u32)> = previous
            .iter()
            .zip(current)
            .filter(|(p, c)| **p != NONE && **c != NONE)
            .map(|(p, c)| (*p, *c))
            .collect();
        let link_bytes = links.capacity() * size_of::<(u32, u32)>();
        reserve_for(
            NAME,
            reservation,
            self.allocated_bytes()
                + link_bytes
                + (3 * n_previous + 2 * n_current) * size_of::<u32>(),
            self,
        )?;
        // Per previous customer: identifiers in both maps, identifiers gone.
        let mut kept = vec![0u32; n_previous];
        let mut gone = vec![0u32; n_previous];
        // Per current customer: whether it holds new identifiers.
        let mut with_new = vec![false; n_current];
        let mut summary = ChurnSummary::default();
        for (p, c) in previous.iter().zip(current) {
            match (*p, *c) {
                (NONE, NONE) => {}
                (NONE, c) => {
                    with_new[c as usize] = true;
                    summary.rows[5].1 += 1;
                }
                (p, NONE) => {
                    gone[p as usize] += 1;
                    summary.rows[6].1 += 1;
                }
                (p, _) => kept[p as usize] += 1,
            }
        }
        links.sort_unstable();
        links.dedup();
        // Distinct current customers per previous one, previous customers per current one.
        let mut currents_of = vec![0u32; n_previous];
        let mut previous_of = vec![0u32; n_current];
        let mut only_current = vec![NONE; n_previous];
        for (p, c) in &links {
            currents_of[*p as usize] += 1;
            previous_of[*c as usize] += 1;
            only_current[*p as usize] = *c;
        }
        for p in 0..n_previous {
            if kept[p] == 0 {
                summary.rows[6].0 += 1;
                continue;
            }
            let c = only_current[p] as usize;
            let category = if currents_of[p] > 1 {
                4
            } else if previous_of[c] > 1 {
                3
            } else if with_new[c] {
                1
            } else if gone[p] > 0 {
                2
            } else {
                0
            };
            summary.rows[category].0 += 1;
            summary.rows[category].1 += u64::from(kept[p]);
        }
        summary.rows[5].0 = (0..n_current).filter(|c| previous_of[*c] == 0).count() as u64;
        Ok(summary)
    }
}

/// `(customers, identifiers)` per category of [`CATEGORIES`].
#[derive(Debug, Default, PartialEq, Eq)]
struct ChurnSummary {
    rows: [(u64, u64); 7],
}

impl ChurnSummary {
    fn to_batch(&self) -> Result<RecordBatch> {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(RecordBatch::try_new(
            Arc::clone(&OUTPUT_SCHEMA),
            vec![
                Arc::new(StringArray::from_iter_values(CATEGORIES)),
                Arc::new(Int64Array::from_iter_values(
                    self.rows.iter().map(|r| count(r.0)),
                )),
                Arc::new(Int64Array::from_iter_values(
                    self.rows.iter().map(|r| count(r.1)),
                )),
            ],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::memory_pool::MemoryConsumer;

    use super::*;
    use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool};

    fn summarise(previous: &[(&str, &str)], current: &[(&str, &str)]) -> Result<Vec<(u64, u64)>> {
        let mut maps = ChurnInput::default();
        for (side, rows) in [(Side::Previous, previous), (Side::Current, current)] {
            for (value, customer) in rows {
                maps.add(b"email", value.as_bytes(), customer.as_bytes(), side)?;
            }
        }
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1 << 20));
        let reservation = MemoryConsumer::new("test").register(&pool);
        Ok(maps.summarise(&reservation)?.rows.to_vec())
    }

    /// `[unchanged, grown, shrunk, merged, split, new, gone]` as `(customers, identifiers)`.
    #[test]
    fn every_category_on_hand_checked_maps() -> Result<()> {
        let previous = [
            ("a1", "A"),
            ("a2", "A"), // unchanged: a1, a2 together as K1
            ("b1", "B"), // grown: b1 with the new n1 in K2
            ("c1", "C"),
            ("c2", "C"), // shrunk: c2 is gone
            ("d1", "D"),
            ("e1", "E"), // merged: d1 and e1 in K4
            ("f1", "F"),
            ("f2", "F"), // split: f1 in K5, f2 in K6
            ("g1", "G"), // gone
        ];
        let current = [
            ("a1", "K1"),
            ("a2", "K1"),
            ("b1", "K2"),
            ("n1", "K2"),
            ("c1", "K3"),
            ("d1", "K4"),
            ("e1", "K4"),
            ("f1", "K5"),
            ("f2", "K6"),
            ("n2", "K7"),
            ("n3", "K7"),
        ];
        assert_eq!(
            summarise(&previous, &current)?,
            vec![(1, 2), (1, 1), (1, 1), (2, 2), (1, 2), (1, 3), (1, 2)]
        );
        Ok(())
    }

    #[test]
    fn identical_maps_are_unchanged_whatever_the_ids() -> Result<()> {
        let previous = [("a", "1"), ("b", "1"), ("c", "2")];
        let current = [("c", "y"), ("a", "x"), ("b", "x")];
        assert_eq!(
            summarise(&previous, &current)?,
            vec![(2, 3), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0)]
        );
        // split beats merged: A splits into K1, K2 and K2 also holds B
        let previous = [("a1", "A"), ("a2", "A"), ("b1", "B")];
        let current = [("a1", "K1"), ("a2", "K2"), ("b1", "K2")];
        assert_eq!(
            summarise(&previous, &current)?,
            vec![(0, 0), (0, 0), (0, 0), (1, 1), (1, 2), (0, 0), (0, 0)]
        );
        Ok(())
    }

    #[test]
    fn an_identifier_with_two_customers_is_an_error() {
        let err = summarise(&[("a", "1"), ("a", "2")], &[]).unwrap_err();
        assert!(
            err.to_string().contains(
                "identity_churn: identifier email \"a\" has two customer ids in the previous map, \"1\" and \"2\""
            ),
            "{err}"
        );
        assert!(summarise(&[("a", "1"), ("a", "1")], &[]).is_ok());
    }
}
