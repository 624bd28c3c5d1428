//! Tests of the `.slt` runner itself (tests/common/slt/): `tests/sqllogictests.rs` is a `harness = false`
//! binary and cannot hold `#[test]`s. Above all they check that the runner *fails* when it should.

#[path = "common/slt/mod.rs"]
mod slt;

use datafusion::prelude::SessionContext;
use slt::parser::{self, ExpectedError, QueryExpect, RecordKind, SortMode, StatementExpect};
use slt::runner::{RunSettings, ScriptOutcome, run_script};
use slt::values::normalize_decimal;

async fn run(script: &str, complete: bool) -> ScriptOutcome {
    let settings = RunSettings {
        labels: &["phygital"],
        workspace_root: env!("CARGO_MANIFEST_DIR"),
        complete,
    };
    match run_script(&SessionContext::new(), script, &settings).await {
        Ok(outcome) => outcome,
        Err(e) => panic!("script did not run: {e}"),
    }
}

/// The 1-based lines of the failing records.
async fn failing_lines(script: &str) -> Vec<usize> {
    run(script, false)
        .await
        .failures
        .iter()
        .map(|f| f.line)
        .collect()
}

#[test]
fn decimals_round_to_12_places_half_even_and_trim() {
    let cases = [
        ("1", "1"),
        ("1.0", "1"),
        ("-0", "0"),
        ("-0.0000000000001", "0"),
        ("0.30000000000000004", "0.3"),
        ("0.3333333333333333", "0.333333333333"),
        ("0.6666666666666666", "0.666666666667"),
        // ties go to the even neighbour, like BigDecimal's default rounding
        ("1.0000000000005", "1"),
        ("1.0000000000015", "1.000000000002"),
        ("1.00000000000050001", "1.000000000001"),
        ("9.9999999999999", "10"),
        ("-9.9999999999999", "-10"),
        ("123456789.125", "123456789.125"),
        ("-0.00000025", "-0.00000025"),
        ("1.50", "1.5"),
        ("100", "100"),
        ("007.10", "7.1"),
        ("abc", "abc"),
    ];
    for (input, expected) in cases {
        assert_eq!(normalize_decimal(input), expected, "normalising {input}");
    }
}

#[test]
fn parser_reads_every_directive() {
    let script = "\
# comment
statement ok
CREATE TABLE t AS VALUES (1)

statement error table .* not found
SELECT * FROM nope

statement count 3
INSERT INTO t VALUES (1), (2), (3)

skipif other
onlyif phygital
query IT rowsort my_label
SELECT 1,
  'a'
----
1 a

query error
SELECT x
----
exact message
over two lines


control substitution on

halt
";
    let records = match parser::parse(script) {
        Ok(records) => records,
        Err(e) => panic!("{e}"),
    };
    let kinds: Vec<&RecordKind> = records.iter().map(|r| &r.kind).collect();
    assert_eq!(
        records.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 5, 8, 13, 19, 26, 28]
    );
    assert!(
        matches!(kinds[0], RecordKind::Statement { expect: StatementExpect::Ok, sql } if sql == "CREATE TABLE t AS VALUES (1)")
    );
    assert!(
        matches!(kinds[1], RecordKind::Statement { expect: StatementExpect::Error(ExpectedError::Regex(r)), .. } if r == "table .* not found")
    );
    assert!(matches!(
        kinds[2],
        RecordKind::Statement {
            expect: StatementExpect::Count(3),
            ..
        }
    ));
    match kinds[3] {
        RecordKind::Query {
            sql,
            expect:
                QueryExpect::Rows {
                    types,
                    sort,
                    label,
                    rows,
                },
        } => {
            assert_eq!(sql, "SELECT 1,\n  'a'");
            assert_eq!(types, "IT");
            assert_eq!(*sort, SortMode::Rows);
            assert_eq!(label.as_deref(), Some("my_label"));
            assert_eq!(rows, &vec!["1 a".to_string()]);
        }
        other => panic!("unexpected record {other:?}"),
    }
    assert_eq!(records[3].conditions.len(), 2);
    assert!(
        matches!(kinds[4], RecordKind::Query { expect: QueryExpect::Error(ExpectedError::Exact(m)), .. } if m == "exact message\nover two lines")
    );
    assert_eq!(kinds[5], &RecordKind::Substitution(true));
    assert_eq!(kinds[6], &RecordKind::Halt);
}

#[test]
fn parse_errors_name_the_line() {
    let cases = [
        (
            "statement ok\nSELECT 1\n\nfrobnicate\n",
            4,
            "unknown directive",
        ),
        ("query IX\nSELECT 1\n", 1, "invalid column type letter 'X'"),
        ("query I sideways\nSELECT 1\n", 1, "invalid sort mode"),
        ("statement ok\n\nSELECT 1\n", 1, "expected SQL"),
        ("statement error ([a\nSELECT 1\n", 1, "invalid error regex"),
        ("statement ok\nSELECT 1\n----\n1\n", 1, "use `query`"),
        ("statement count many\nSELECT 1\n", 1, "invalid row count"),
        (
            "statement ok\nSELECT 1\n\nskipif phygital\n",
            4,
            "applies to nothing",
        ),
    ];
    for (script, line, message) in cases {
        match parser::parse(script) {
            Ok(records) => panic!("{script:?} parsed: {records:?}"),
            Err(e) => {
                assert_eq!(e.line, line, "{script:?}: {e}");
                assert!(e.message.contains(message), "{script:?}: {e}");
            }
        }
    }
}

#[tokio::test]
async fn matching_script_passes() {
    let script = "\
statement ok
CREATE TABLE t(a INT, b VARCHAR, c DOUBLE, d BOOLEAN) AS VALUES (2, 'x', 0.5, true), (1, '', NULL, false)

query ITRB rowsort
SELECT * FROM t
----
1 (empty) NULL false
2 x 0.5 true

query error DataFusion error: Error during planning: table '.*nope' not found
SELECT * FROM nope

statement count 1
INSERT INTO t VALUES (3, 'z', 1.0, NULL)

query I
SELECT count(*) FROM t
----
3
";
    let outcome = run(script, false).await;
    assert!(outcome.failures.is_empty(), "{:#?}", outcome.failures);
    assert!(outcome.completed.is_none());
}

#[tokio::test]
async fn wrong_rows_fail_with_line_sql_expected_and_actual() {
    let script = "\
query IT
SELECT 1, 'a'
----
1 b
";
    let outcome = run(script, false).await;
    assert_eq!(outcome.failures.len(), 1);
    let report = outcome.failures[0].report("tests/slt/x.slt");
    assert!(
        report.starts_with("tests/slt/x.slt:1: query result mismatch"),
        "{report}"
    );
    assert!(report.contains("[SQL]\nSELECT 1, 'a'\n"), "{report}");
    assert!(report.contains("[Expected]\n1 b\n"), "{report}");
    assert!(report.contains("[Actual]\n1 a\n"), "{report}");
}

#[tokio::test]
async fn every_kind_of_mismatch_fails() {
    let script = "\
query I
SELECT 1
----
1
2

query I
SELECT 1, 2
----
1 2

query I
SELECT 2 UNION ALL SELECT 1 ORDER BY 1 DESC
----
1
2

statement ok
SELECT * FROM nope

statement error
SELECT 1

statement error no such text
SELECT * FROM nope

query error
SELECT 1

query I
SELECT * FROM nope
----
1

statement count 5
SELECT 1
";
    assert_eq!(
        failing_lines(script).await,
        vec![1, 7, 12, 18, 21, 24, 27, 30, 35]
    );
}

#[tokio::test]
async fn sort_modes() {
    let script = "\
query IT rowsort
SELECT * FROM (VALUES (2, 'b'), (1, 'z'), (1, 'a'))
----
1 a
1 z
2 b

query II valuesort
SELECT * FROM (VALUES (3, 1), (2, 4))
----
1
2
3
4

query I
SELECT * FROM (VALUES (2), (1)) t(a) ORDER BY a DESC
----
2
1
";
    assert_eq!(failing_lines(script).await, Vec::<usize>::new());
    // without a sort mode, order matters
    let unsorted = "query I\nSELECT * FROM (VALUES (2), (1)) t(a) ORDER BY a\n----\n2\n1\n";
    assert_eq!(failing_lines(unsorted).await, vec![1]);
}

#[tokio::test]
async fn conditions_and_halt() {
    let script = "\
skipif phygital
query I
SELECT 1
----
2

onlyif postgres
statement ok
not sql at all

onlyif phygital
query I
SELECT 1
----
2

halt

query I
SELECT 1
----
3
";
    // only the `onlyif phygital` record runs (and fails); the rest is skipped or after halt
    assert_eq!(failing_lines(script).await, vec![12]);
}

#[tokio::test]
async fn exact_error_messages() {
    let script = "\
statement error
SELECT * FROM nope
----
DataFusion error: Error during planning: table 'datafusion.public.nope' not found


statement error
SELECT * FROM nope
----
DataFusion error: something else


statement ok
SELECT 1
";
    assert_eq!(failing_lines(script).await, vec![7]);
}

#[tokio::test]
async fn test_dir_is_substituted_only_when_enabled() {
    let script = "\
query T
SELECT '$__TEST_DIR__'
----
$__TEST_DIR__

control substitution on

statement ok
COPY (SELECT 1 AS a) TO '$__TEST_DIR__/one.parquet' STORED AS PARQUET

statement ok
CREATE EXTERNAL TABLE one STORED AS PARQUET LOCATION '${__TEST_DIR__}/one.parquet'

query I
SELECT a FROM one
----
1
";
    let outcome = run(script, false).await;
    assert!(outcome.failures.is_empty(), "{:#?}", outcome.failures);
}

#[tokio::test]
async fn explain_plans_become_numbered_rows() {
    let script = "\
statement ok
CREATE TABLE t(a INT) AS VALUES (1)

query TT
EXPLAIN SELECT a FROM t WHERE a > 0
----
";
    let outcome = run(script, true).await;
    let completed = outcome.completed.unwrap_or_default();
    assert!(
        completed.contains("\nlogical_plan\n01)Filter: t.a > Int32(0)\n02)--TableScan: t"),
        "{completed}"
    );
    assert!(completed.contains("\nphysical_plan\n01)"), "{completed}");
    // and the completed file passes as written
    assert!(
        run(&completed, false).await.failures.is_empty(),
        "{completed}"
    );
}

#[tokio::test]
async fn complete_rewrites_mismatches_and_keeps_the_rest() {
    let script = "\
# keep this comment
statement ok
CREATE TABLE t(a INT) AS VALUES (1), (2)

query I rowsort
SELECT a FROM t
----
1
2

# wrong rows
query I rowsort
SELECT a * 10
  FROM t
----
PLACEHOLDER

# wrong column count
query II
SELECT 'x'
----

statement ok
SELECT * FROM nope

statement error
SELECT 1

query error wrong text
SELECT * FROM nope
";
    let outcome = run(script, true).await;
    let Some(completed) = outcome.completed else {
        panic!("no completed script");
    };
    let expected = "\
# keep this comment
statement ok
CREATE TABLE t(a INT) AS VALUES (1), (2)

query I rowsort
SELECT a FROM t
----
1
2

# wrong rows
query I rowsort
SELECT a * 10
  FROM t
----
10
20

# wrong column count
query T
SELECT 'x'
----
x

statement error DataFusion error: Error during planning: table 'datafusion\\.public\\.nope' not found
SELECT * FROM nope

statement ok
SELECT 1

query error DataFusion error: Error during planning: table 'datafusion\\.public\\.nope' not found
SELECT * FROM nope
";
    assert_eq!(completed, expected);
    let rerun = run(&completed, true).await;
    assert!(rerun.failures.is_empty(), "{:#?}", rerun.failures);
    assert_eq!(
        rerun.completed.as_deref(),
        Some(expected),
        "completion is stable"
    );
}
