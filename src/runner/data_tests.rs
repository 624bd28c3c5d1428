//! Data tests of a model: each is a query returning the offending rows of the model's new version; a test
//! passes when it returns none.

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::common::{DFSchema, Result};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Ident;

use super::header::{DataTest, DataTestKind, Header, normalize};

/// How many offending rows a failure shows.
pub const SAMPLE_ROWS: usize = 10;

/// What a failed test found.
#[derive(Debug, Clone)]
pub struct Offenders {
    /// All offending rows (for `unique`: duplicated key combinations).
    pub count: u64,
    /// Up to [`SAMPLE_ROWS`] of them.
    pub sample: Vec<RecordBatch>,
}

/// The query returning the offending rows of `test` on table `model`.
pub fn offenders_query(model: &str, test: &DataTest) -> String {
    let list = |columns: &[Ident]| {
        columns
            .iter()
            .map(Ident::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &test.kind {
        DataTestKind::NotNull(columns) => {
            let any_null = columns
                .iter()
                .map(|c| format!("{c} IS NULL"))
                .collect::<Vec<_>>()
                .join(" OR ");
            format!("SELECT * FROM {model} WHERE {any_null}")
        }
        DataTestKind::Unique(columns) => {
            let key = list(columns);
            format!(
                "SELECT {key}, count(*) AS duplicate_rows FROM {model} GROUP BY {key} \
                 HAVING count(*) > 1 ORDER BY duplicate_rows DESC"
            )
        }
        DataTestKind::AcceptedValues { column, values } => format!(
            "SELECT * FROM {model} WHERE {column} IS NOT NULL AND {column} NOT IN ({})",
            values.join(", ")
        ),
        DataTestKind::Relationships {
            column,
            to_table,
            to_column,
        } => format!(
            "SELECT * FROM {model} AS child WHERE child.{column} IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM {to_table} AS parent WHERE parent.{to_column} = child.{column})"
        ),
        DataTestKind::Sql(sql) => sql.clone(),
    }
}

/// Runs one test; `None` when it passes.
pub async fn run_test(
    ctx: &SessionContext,
    model: &str,
    test: &DataTest,
) -> Result<Option<Offenders>> {
    let query = offenders_query(model, test);
    let sample = ctx
        .sql(&format!("SELECT * FROM ({query}) LIMIT {SAMPLE_ROWS}"))
        .await?
        .collect()
        .await?;
    if sample.iter().all(|b| b.num_rows() == 0) {
        return Ok(None);
    }
    // Only failures pay for counting all offenders.
    let counted = ctx
        .sql(&format!("SELECT count(*) FROM ({query})"))
        .await?
        .collect()
        .await?;
    let count = counted
        .first()
        .and_then(|b| b.column(0).as_primitive_opt::<Int64Type>())
        .map_or(0, |a| a.value(0));
    Ok(Some(Offenders {
        count: u64::try_from(count).unwrap_or(0),
        sample: sample.into_iter().filter(|b| b.num_rows() > 0).collect(),
    }))
}

/// Checks that the columns the header names exist in the model's output: `(line, message)` of the first that
/// does not.
pub fn check_header_columns(header: &Header, schema: &DFSchema) -> Result<(), (usize, String)> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let missing = |what: &str, ident: &Ident, line: usize| {
        let name = normalize(ident);
        (!names.contains(&name.as_str())).then(|| {
            (
                line,
                format!(
                    "{what} names column '{name}', which the query does not return (columns: {})",
                    names.join(", ")
                ),
            )
        })
    };
    let partitions = header
        .partition_by
        .iter()
        .filter_map(|c| missing("partition_by", &c.ident, c.line));
    let docs = header
        .columns
        .iter()
        .filter_map(|d| missing("column documentation", &d.column.ident, d.column.line));
    let tests = header.tests.iter().flat_map(|t| {
        let what = format!("data test '{}'", t.text);
        let columns: Vec<&Ident> = match &t.kind {
            DataTestKind::NotNull(c) | DataTestKind::Unique(c) => c.iter().collect(),
            DataTestKind::AcceptedValues { column, .. }
            | DataTestKind::Relationships { column, .. } => vec![column],
            DataTestKind::Sql(_) => vec![],
        };
        columns
            .into_iter()
            .filter_map(|c| missing(&what, c, t.line))
            .collect::<Vec<_>>()
    });
    if let Some(first) = partitions.chain(docs).chain(tests).next() {
        return Err(first);
    }
    if !header.partition_by.is_empty() && header.partition_by.len() >= names.len() {
        return Err((
            header.partition_by[0].line,
            "partition_by names every column: a table needs at least one column stored in its files".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::header::Header;

    fn queries(header: &str) -> Vec<String> {
        Header::parse(header)
            .unwrap()
            .tests
            .iter()
            .map(|t| offenders_query("m", t))
            .collect()
    }

    #[test]
    fn queries_per_kind() {
        let q = queries(
            "-- test: not_null(a, \"B\")\n-- test: unique(a, b)\n-- test: accepted_values(s, 'x', 'y')\n\
             -- test: relationships(id, other.key)\n-- test: sql: SELECT * FROM m WHERE a < 0\n",
        );
        assert_eq!(q[0], "SELECT * FROM m WHERE a IS NULL OR \"B\" IS NULL");
        assert_eq!(
            q[1],
            "SELECT a, b, count(*) AS duplicate_rows FROM m GROUP BY a, b HAVING count(*) > 1 ORDER BY duplicate_rows DESC"
        );
        assert_eq!(
            q[2],
            "SELECT * FROM m WHERE s IS NOT NULL AND s NOT IN ('x', 'y')"
        );
        assert_eq!(
            q[3],
            "SELECT * FROM m AS child WHERE child.id IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM other AS parent WHERE parent.key = child.id)"
        );
        assert_eq!(q[4], "SELECT * FROM m WHERE a < 0");
    }

    async fn context() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.sql(
            "CREATE TABLE m AS VALUES (1, 'x', 10), (2, 'y', 20), (2, 'z', NULL), (NULL, 'x', 30)",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        ctx.sql("CREATE TABLE other AS VALUES (1), (2)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        ctx
    }

    async fn outcome(ctx: &SessionContext, test: &str) -> Option<u64> {
        let header = Header::parse(&format!("-- test: {test}\n")).unwrap();
        run_test(ctx, "m", &header.tests[0])
            .await
            .unwrap()
            .map(|o| {
                let sampled: usize = o.sample.iter().map(RecordBatch::num_rows).sum();
                assert!(sampled as u64 <= o.count && sampled > 0);
                o.count
            })
    }

    #[tokio::test]
    async fn tests_find_offending_rows() {
        let ctx = context().await;
        assert_eq!(outcome(&ctx, "not_null(column2)").await, None);
        assert_eq!(outcome(&ctx, "not_null(column1, column3)").await, Some(2));
        assert_eq!(outcome(&ctx, "unique(column2)").await, Some(1));
        assert_eq!(outcome(&ctx, "unique(column1, column2)").await, None);
        assert_eq!(
            outcome(&ctx, "accepted_values(column2, 'x', 'y', 'z')").await,
            None
        );
        assert_eq!(
            outcome(&ctx, "accepted_values(column2, 'x')").await,
            Some(2)
        );
        assert_eq!(
            outcome(&ctx, "relationships(column1, other.column1)").await,
            None
        );
        assert_eq!(
            outcome(&ctx, "relationships(column3, other.column1)").await,
            Some(3)
        );
        assert_eq!(
            outcome(&ctx, "sql: SELECT * FROM m WHERE column3 > 15").await,
            Some(2)
        );
    }

    #[test]
    fn header_columns_must_exist() {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = DFSchema::try_from(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]))
        .unwrap();
        let check = |h: &str| check_header_columns(&Header::parse(h).unwrap(), &schema);
        assert!(
            check(
                "-- partition_by: b\n-- column a: x\n-- test: unique(a)\n-- test: sql: SELECT 1\n"
            )
            .is_ok()
        );
        let (line, message) = check("-- column a: x\n-- test: not_null(a, c)\n").unwrap_err();
        assert_eq!(line, 2);
        assert_eq!(
            message,
            "data test 'not_null(a, c)' names column 'c', which the query does not return (columns: a, b)"
        );
        assert_eq!(check("-- partition_by: x\n").unwrap_err().0, 1);
        assert!(
            check("-- partition_by: a, b\n")
                .unwrap_err()
                .1
                .contains("every column")
        );
    }
}
