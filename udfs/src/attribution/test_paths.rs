//! Test support for functions over channel paths: a path column in every list and string
//! encoding, and reading `List<Utf8>` results back.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, LargeListArray, ListArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::logical_expr::ColumnarValue;

use crate::attribution::channel_paths::{DecodedPaths, PathColumn};
use crate::test_harness::all_encodings;

/// A path per row: `None` is a NULL path, `Some(vec![])` an empty one.
pub(crate) type TestPath<'a> = Option<Vec<Option<&'a str>>>;

/// `paths` as `List` and `LargeList` over every string encoding of the channels.
pub(crate) fn path_array_in_every_encoding(paths: &[TestPath<'_>]) -> Vec<ArrayRef> {
    let flat: Vec<Option<&str>> = paths.iter().flatten().flatten().copied().collect();
    let lengths = paths.iter().map(|p| p.as_ref().map_or(0, Vec::len));
    let nulls = NullBuffer::from(paths.iter().map(Option::is_some).collect::<Vec<_>>());
    let mut arrays = vec![];
    for channels in all_encodings(&flat) {
        let item = Arc::new(Field::new_list_field(channels.data_type().clone(), true));
        arrays.push(Arc::new(
            ListArray::try_new(
                Arc::clone(&item),
                OffsetBuffer::<i32>::from_lengths(lengths.clone()),
                Arc::clone(&channels),
                Some(nulls.clone()),
            )
            .expect("valid list"),
        ) as ArrayRef);
        arrays.push(Arc::new(
            LargeListArray::try_new(
                item,
                OffsetBuffer::<i64>::from_lengths(lengths.clone()),
                channels,
                Some(nulls.clone()),
            )
            .expect("valid large list"),
        ));
    }
    arrays
}

/// Every path of a decoded column.
pub(crate) fn paths_of<'a>(column: &PathColumn<'a>) -> Vec<TestPath<'a>> {
    (0..column.len())
        .map(|row| {
            let mut path = vec![];
            column.read(row, &mut path).then_some(path)
        })
        .collect()
}

/// The paths of a transform's result (`List<Utf8>`), as owned strings for comparison.
pub(crate) fn transformed_paths(
    result: &ColumnarValue,
    rows: usize,
) -> Vec<Option<Vec<Option<String>>>> {
    let array = result.to_array(rows).expect("result converts to an array");
    assert_eq!(array.data_type(), &DataType::new_list(DataType::Utf8, true));
    assert_eq!(array.len(), rows);
    let decoded = DecodedPaths::try_new("test", &array).expect("a list of strings");
    paths_of(&decoded.column())
        .into_iter()
        .map(|path| path.map(|p| p.into_iter().map(|c| c.map(str::to_string)).collect()))
        .collect()
}

/// `paths` with owned strings, to compare with [`transformed_paths`].
pub(crate) fn owned(paths: &[TestPath<'_>]) -> Vec<Option<Vec<Option<String>>>> {
    paths
        .iter()
        .map(|path| {
            path.as_ref()
                .map(|p| p.iter().map(|c| c.map(str::to_string)).collect())
        })
        .collect()
}

/// Splits fractribution's path notation (`"A > B > C"`) into a path.
pub(crate) fn path(text: &str) -> TestPath<'_> {
    Some(text.split(" > ").map(Some).collect())
}

/// Asserts that the rows of a transform's result are `expected`.
pub(crate) fn assert_paths(result: &ColumnarValue, expected: &[TestPath<'_>]) {
    assert_eq!(transformed_paths(result, expected.len()), owned(expected));
}

/// One row of `path_transform_vectors_snowplow.csv`: the public test vectors of Snowplow's
/// dbt-snowplow-fractribution package (Apache-2.0), a port of Google's fractribution. Paths use
/// its `" > "` notation; the empty raw path is one channel named `''`.
pub(crate) struct SnowplowVector {
    pub raw: &'static str,
    pub trim_long_path_1: &'static str,
    pub trim_long_path_2: &'static str,
    pub unique: &'static str,
    pub frequency: &'static str,
    pub exposure: &'static str,
    pub first: &'static str,
    pub remove_if_not_all_direct: &'static str,
    pub remove_if_last_and_not_all_direct: &'static str,
}

/// Every row of `/work/shared/fixtures/attribution/path_transform_vectors_snowplow.csv`.
pub(crate) const SNOWPLOW_VECTORS: [SnowplowVector; 6] = [
    SnowplowVector {
        raw: "Example > Video > Direct > Direct",
        trim_long_path_1: "Direct",
        trim_long_path_2: "Direct > Direct",
        unique: "Example > Video > Direct > Direct",
        frequency: "Example(1) > Video(1) > Direct(2)",
        exposure: "Example > Video > Direct",
        first: "Example > Video > Direct",
        remove_if_not_all_direct: "Example > Video",
        remove_if_last_and_not_all_direct: "Example > Video",
    },
    SnowplowVector {
        raw: "Direct > Direct",
        trim_long_path_1: "Direct",
        trim_long_path_2: "Direct > Direct",
        unique: "Direct > Direct",
        frequency: "Direct(2)",
        exposure: "Direct",
        first: "Direct",
        remove_if_not_all_direct: "Direct > Direct",
        remove_if_last_and_not_all_direct: "Direct > Direct",
    },
    SnowplowVector {
        raw: "a > a > a > Direct > a > Direct > Direct",
        trim_long_path_1: "Direct",
        trim_long_path_2: "Direct > Direct",
        unique: "a > a > a > Direct > a > Direct > Direct",
        frequency: "a(4) > Direct(3)",
        exposure: "a > Direct > a > Direct",
        first: "a > Direct",
        remove_if_not_all_direct: "a > a > a > a",
        remove_if_last_and_not_all_direct: "a > a > a > Direct > a",
    },
    SnowplowVector {
        raw: "Direct",
        trim_long_path_1: "Direct",
        trim_long_path_2: "Direct",
        unique: "Direct",
        frequency: "Direct(1)",
        exposure: "Direct",
        first: "Direct",
        remove_if_not_all_direct: "Direct",
        remove_if_last_and_not_all_direct: "Direct",
    },
    SnowplowVector {
        raw: "",
        trim_long_path_1: "",
        trim_long_path_2: "",
        unique: "",
        frequency: "(1)",
        exposure: "",
        first: "",
        remove_if_not_all_direct: "",
        remove_if_last_and_not_all_direct: "",
    },
    SnowplowVector {
        raw: "Example > Video > Direct",
        trim_long_path_1: "Direct",
        trim_long_path_2: "Video > Direct",
        unique: "Example > Video > Direct",
        frequency: "Example(1) > Video(1) > Direct(1)",
        exposure: "Example > Video > Direct",
        first: "Example > Video > Direct",
        remove_if_not_all_direct: "Example > Video",
        remove_if_last_and_not_all_direct: "Example > Video",
    },
];

/// Checks `function` (with `make_args` adding its literal parameters) against one expected
/// column of [`SNOWPLOW_VECTORS`], over every list and string encoding of the raw paths.
pub(crate) fn assert_snowplow_vectors(
    function: &dyn datafusion::logical_expr::ScalarUDFImpl,
    make_args: impl Fn(ColumnarValue) -> Vec<ColumnarValue>,
    expected: impl Fn(&SnowplowVector) -> &'static str,
) {
    let raw: Vec<TestPath<'_>> = SNOWPLOW_VECTORS.iter().map(|v| path(v.raw)).collect();
    let expected: Vec<TestPath<'_>> = SNOWPLOW_VECTORS.iter().map(|v| path(expected(v))).collect();
    for array in path_array_in_every_encoding(&raw) {
        let data_type = array.data_type().clone();
        let result = invoke_path_function(function, make_args(ColumnarValue::Array(array)));
        assert_eq!(
            transformed_paths(&result, raw.len()),
            owned(&expected),
            "{} over {data_type}",
            function.name()
        );
    }
}

/// Invokes a path function the way the planner and executor do (return field from the literal
/// arguments, then `invoke_with_args`), checking the result's type and nullability.
pub(crate) fn invoke_path_function(
    function: &dyn datafusion::logical_expr::ScalarUDFImpl,
    args: Vec<ColumnarValue>,
) -> ColumnarValue {
    try_invoke_path_function(function, args).expect("function succeeds")
}

/// [`invoke_path_function`] returning the planning or execution error.
pub(crate) fn try_invoke_path_function(
    function: &dyn datafusion::logical_expr::ScalarUDFImpl,
    args: Vec<ColumnarValue>,
) -> datafusion::common::Result<ColumnarValue> {
    crate::test_harness::invoke_udf(function, args)
}
