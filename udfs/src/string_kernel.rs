//! Shared string kernels of the scalar functions.
//!
//! Every identity function maps a string (or a pair of strings) to at most one string. The kernels
//! here do the Arrow side once: they accept every string encoding DataFusion hands to a function
//! (`Utf8`, `LargeUtf8`, `Utf8View`, `Dictionary(any key, string)`, scalars and NULLs), call a
//! per-value closure that writes its result into one reused buffer (no allocation per row), and
//! always produce `Utf8`, so a function's output type does not depend on how its input was stored.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, LargeStringArray, StringArray, StringArrayType, StringBuilder,
    StringViewArray, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::ColumnarValue;

/// Bytes reserved per row in the output buffer; a guess that saves the first few regrowths.
const OUTPUT_BYTES_PER_ROW: usize = 24;

/// The string inside a string scalar; `None` for a NULL of any type.
///
/// `function` names the caller in the error for a non-string scalar (the signatures rule that
/// out at planning time, so it only fires when `invoke_with_args` is called directly).
pub(crate) fn scalar_str<'a>(function: &str, value: &'a ScalarValue) -> Result<Option<&'a str>> {
    match value {
        ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
            Ok(v.as_deref())
        }
        ScalarValue::Dictionary(_, inner) => scalar_str(function, inner),
        ScalarValue::Null => Ok(None),
        other => exec_err!(
            "{function}: expected a string argument, got a value of type {}",
            other.data_type()
        ),
    }
}

/// Applies `transform` to every non-NULL string of `arg` and returns a `Utf8` result of the same
/// shape (scalar in, scalar out).
///
/// `transform(input, out)` receives a cleared `out`, writes the result into it and returns
/// `true`, or returns `false` for NULL. A NULL input is NULL without calling `transform`.
pub(crate) fn map_strings<F>(
    function: &str,
    arg: &ColumnarValue,
    mut transform: F,
) -> Result<ColumnarValue>
where
    F: FnMut(&str, &mut String) -> bool,
{
    match arg {
        ColumnarValue::Scalar(value) => {
            let mut out = String::new();
            let result = match scalar_str(function, value)? {
                Some(input) if transform(input, &mut out) => Some(out),
                _ => None,
            };
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(result)))
        }
        ColumnarValue::Array(array) => Ok(ColumnarValue::Array(map_string_array(
            function,
            array,
            &mut transform,
        )?)),
    }
}

/// [`map_strings`] for an array of any string encoding.
pub(crate) fn map_string_array<F>(
    function: &str,
    array: &ArrayRef,
    transform: &mut F,
) -> Result<ArrayRef>
where
    F: FnMut(&str, &mut String) -> bool,
{
    match array.data_type() {
        DataType::Utf8 => Ok(map_typed_strings(array.as_string::<i32>(), transform)),
        DataType::LargeUtf8 => Ok(map_typed_strings(array.as_string::<i64>(), transform)),
        DataType::Utf8View => Ok(map_typed_strings(array.as_string_view(), transform)),
        DataType::Null => Ok(new_null_array(&DataType::Utf8, array.len())),
        DataType::Dictionary(_, _) => map_dictionary(function, array, transform),
        other => exec_err!("{function}: expected a string argument, got an array of type {other}"),
    }
}

fn map_typed_strings<'a, S, F>(strings: S, transform: &mut F) -> ArrayRef
where
    S: StringArrayType<'a>,
    F: FnMut(&str, &mut String) -> bool,
{
    let mut builder =
        StringBuilder::with_capacity(strings.len(), strings.len() * OUTPUT_BYTES_PER_ROW);
    let mut out = String::with_capacity(64);
    for value in strings.iter() {
        out.clear();
        match value {
            Some(input) if transform(input, &mut out) => builder.append_value(&out),
            _ => builder.append_null(),
        }
    }
    Arc::new(builder.finish())
}

/// Maps the dictionary's values once and expands the result through the keys.
///
/// A dictionary can hold many more values than the array has rows (a selective filter keeps
/// the whole dictionary of its input); then mapping the rows is cheaper than mapping the values.
fn map_dictionary<F>(function: &str, array: &ArrayRef, transform: &mut F) -> Result<ArrayRef>
where
    F: FnMut(&str, &mut String) -> bool,
{
    let dictionary = array.as_any_dictionary();
    if dictionary.values().len() > array.len() {
        let rows = cast(array, dictionary.values().data_type())?;
        return map_string_array(function, &rows, transform);
    }
    let mapped_values = map_string_array(function, dictionary.values(), transform)?;
    // `cast` of a dictionary to its value type is a `take` of the values by the keys (NULL keys
    // stay NULL), i.e. exactly the expansion needed here.
    Ok(cast(
        &dictionary.with_values(mapped_values),
        &DataType::Utf8,
    )?)
}

/// One argument of a two-argument function, with a dictionary decoded so that its rows can be
/// read by index.
enum PairArgument<'a> {
    Scalar(Option<&'a str>),
    Array(ArrayRef),
}

impl<'a> PairArgument<'a> {
    fn new(function: &str, arg: &'a ColumnarValue) -> Result<Self> {
        match arg {
            ColumnarValue::Scalar(value) => Ok(Self::Scalar(scalar_str(function, value)?)),
            ColumnarValue::Array(array) => match array.data_type() {
                DataType::Dictionary(_, value_type) => Ok(Self::Array(cast(array, value_type)?)),
                _ => Ok(Self::Array(Arc::clone(array))),
            },
        }
    }

    fn rows(&self, function: &str, number_rows: usize) -> Result<StringRows<'_>> {
        match self {
            Self::Scalar(value) => Ok(StringRows::Scalar(*value)),
            Self::Array(array) if array.len() != number_rows => exec_err!(
                "{function}: argument array has {} rows, expected {number_rows}",
                array.len()
            ),
            Self::Array(array) => match array.data_type() {
                DataType::Utf8 => Ok(StringRows::Utf8(array.as_string::<i32>())),
                DataType::LargeUtf8 => Ok(StringRows::LargeUtf8(array.as_string::<i64>())),
                DataType::Utf8View => Ok(StringRows::Utf8View(array.as_string_view())),
                DataType::Null => Ok(StringRows::Scalar(None)),
                other => exec_err!(
                    "{function}: expected a string argument, got an array of type {other}"
                ),
            },
        }
    }
}

/// Row access to a [`PairArgument`]: a broadcast scalar or one of the string arrays.
enum StringRows<'a> {
    Scalar(Option<&'a str>),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
}

impl<'a> StringRows<'a> {
    fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Self::Scalar(value) => *value,
            Self::Utf8(array) => array.is_valid(row).then(|| array.value(row)),
            Self::LargeUtf8(array) => array.is_valid(row).then(|| array.value(row)),
            Self::Utf8View(array) => array.is_valid(row).then(|| array.value(row)),
        }
    }
}

/// Applies a fallible `transform` to every row where both arguments are non-NULL; a row with a
/// NULL argument is NULL. Two scalars give a scalar, anything else a `Utf8` array of
/// `number_rows` rows.
///
/// `transform(left, right, out)` receives a cleared `out` and returns `Ok(true)` when it wrote a
/// result, `Ok(false)` for NULL, or an error that aborts the whole call.
pub(crate) fn map_string_pairs<F>(
    function: &str,
    left: &ColumnarValue,
    right: &ColumnarValue,
    number_rows: usize,
    mut transform: F,
) -> Result<ColumnarValue>
where
    F: FnMut(&str, &str, &mut String) -> Result<bool>,
{
    if let (ColumnarValue::Scalar(l), ColumnarValue::Scalar(r)) = (left, right) {
        let mut out = String::new();
        let result = match (scalar_str(function, l)?, scalar_str(function, r)?) {
            (Some(l), Some(r)) if transform(l, r, &mut out)? => Some(out),
            _ => None,
        };
        return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(result)));
    }
    let (left, right) = (
        PairArgument::new(function, left)?,
        PairArgument::new(function, right)?,
    );
    let (left_rows, right_rows) = (
        left.rows(function, number_rows)?,
        right.rows(function, number_rows)?,
    );

    let mut builder = StringBuilder::with_capacity(number_rows, number_rows * OUTPUT_BYTES_PER_ROW);
    let mut out = String::with_capacity(64);
    for row in 0..number_rows {
        out.clear();
        match (left_rows.get(row), right_rows.get(row)) {
            (Some(l), Some(r)) if transform(l, r, &mut out)? => builder.append_value(&out),
            _ => builder.append_null(),
        }
    }
    Ok(ColumnarValue::Array(Arc::new(builder.finish())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_harness::{all_encodings, strings_of};
    use datafusion::arrow::array::{DictionaryArray, Int32Array};
    use datafusion::arrow::datatypes::Int32Type;

    fn shout(input: &str, out: &mut String) -> bool {
        if input.is_empty() {
            return false;
        }
        out.push_str(&input.to_uppercase());
        true
    }

    #[test]
    fn maps_every_encoding_to_utf8() -> Result<()> {
        let input = [Some("ab"), None, Some(""), Some("ab"), Some("cd")];
        for array in all_encodings(&input) {
            let out = map_strings("t", &ColumnarValue::Array(Arc::clone(&array)), shout)?;
            let ColumnarValue::Array(out) = out else {
                panic!("array in must give array out")
            };
            assert_eq!(
                out.data_type(),
                &DataType::Utf8,
                "input {}",
                array.data_type()
            );
            assert_eq!(
                strings_of(&out),
                vec![
                    Some("AB".into()),
                    None,
                    None,
                    Some("AB".into()),
                    Some("CD".into())
                ],
                "input {}",
                array.data_type()
            );
        }
        Ok(())
    }

    #[test]
    fn maps_scalars_to_utf8_scalars() -> Result<()> {
        for scalar in [
            ScalarValue::Utf8(Some("x".into())),
            ScalarValue::LargeUtf8(Some("x".into())),
            ScalarValue::Utf8View(Some("x".into())),
            ScalarValue::Dictionary(Box::new(DataType::Int32), Box::new(ScalarValue::from("x"))),
        ] {
            let out = map_strings("t", &ColumnarValue::Scalar(scalar), shout)?;
            let ColumnarValue::Scalar(out) = out else {
                panic!("scalar in must give scalar out")
            };
            assert_eq!(out, ScalarValue::Utf8(Some("X".into())));
        }
        for null in [
            ScalarValue::Null,
            ScalarValue::Utf8(None),
            ScalarValue::Utf8View(None),
        ] {
            let out = map_strings("t", &ColumnarValue::Scalar(null), shout)?;
            let ColumnarValue::Scalar(out) = out else {
                panic!("scalar in must give scalar out")
            };
            assert_eq!(out, ScalarValue::Utf8(None));
        }
        Ok(())
    }

    #[test]
    fn rejects_non_string_input() {
        let err = map_strings(
            "my_fn",
            &ColumnarValue::Scalar(ScalarValue::Int64(Some(1))),
            shout,
        )
        .unwrap_err();
        assert!(err.to_string().contains("my_fn"), "{err}");
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        let err = map_strings("my_fn", &ColumnarValue::Array(ints), shout).unwrap_err();
        assert!(err.to_string().contains("Int32"), "{err}");
    }

    #[test]
    fn dictionary_values_are_mapped_once() -> Result<()> {
        let dictionary: DictionaryArray<Int32Type> =
            vec![Some("a"), Some("a"), None, Some("b"), Some("a")]
                .into_iter()
                .collect();
        let array: ArrayRef = Arc::new(dictionary);
        let mut calls = 0;
        let out = map_strings("t", &ColumnarValue::Array(array), |input, out| {
            calls += 1;
            shout(input, out)
        })?;
        assert_eq!(calls, 2, "one call per distinct dictionary value");
        let out = out.to_array(5)?;
        assert_eq!(
            strings_of(&out),
            vec![
                Some("A".into()),
                Some("A".into()),
                None,
                Some("B".into()),
                Some("A".into())
            ]
        );
        Ok(())
    }

    #[test]
    fn large_dictionary_behind_few_rows_maps_rows() -> Result<()> {
        let values: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..100).map(|i| format!("v{i}")),
        ));
        let keys = Int32Array::from(vec![Some(7), None]);
        let array: ArrayRef = Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values)?);
        let mut calls = 0;
        let out = map_strings("t", &ColumnarValue::Array(array), |input, out| {
            calls += 1;
            shout(input, out)
        })?;
        assert_eq!(calls, 1, "only the referenced row is mapped");
        assert_eq!(strings_of(&out.to_array(2)?), vec![Some("V7".into()), None]);
        Ok(())
    }

    fn join(l: &str, r: &str, out: &mut String) -> Result<bool> {
        if r == "boom" {
            return exec_err!("bad row {r}");
        }
        out.push_str(l);
        out.push(':');
        out.push_str(r);
        Ok(true)
    }

    #[test]
    fn pairs_broadcast_scalars_over_arrays_of_every_encoding() -> Result<()> {
        let right = [Some("x"), None, Some("y")];
        for array in all_encodings(&right) {
            let left = ColumnarValue::Scalar(ScalarValue::from("k"));
            let out = map_string_pairs(
                "t",
                &left,
                &ColumnarValue::Array(Arc::clone(&array)),
                3,
                join,
            )?;
            assert_eq!(
                strings_of(&out.to_array(3)?),
                vec![Some("k:x".into()), None, Some("k:y".into())],
                "input {}",
                array.data_type()
            );
            let out = map_string_pairs("t", &ColumnarValue::Array(array), &left, 3, join)?;
            assert_eq!(
                strings_of(&out.to_array(3)?),
                vec![Some("x:k".into()), None, Some("y:k".into())]
            );
        }
        let null = ColumnarValue::Scalar(ScalarValue::Utf8(None));
        let out = map_string_pairs(
            "t",
            &null,
            &ColumnarValue::Scalar(ScalarValue::from("v")),
            1,
            join,
        )?;
        let ColumnarValue::Scalar(out) = out else {
            panic!("scalars in must give a scalar out")
        };
        assert_eq!(out, ScalarValue::Utf8(None));
        Ok(())
    }

    #[test]
    fn pairs_of_arrays_and_errors() -> Result<()> {
        let left = ColumnarValue::Array(Arc::new(StringArray::from(vec![
            Some("a"),
            Some("b"),
            None,
        ])));
        let right = ColumnarValue::Array(Arc::new(StringViewArray::from(vec![
            Some("1"),
            None,
            Some("3"),
        ])));
        let out = map_string_pairs("t", &left, &right, 3, join)?;
        assert_eq!(
            strings_of(&out.to_array(3)?),
            vec![Some("a:1".into()), None, None]
        );

        let bad = ColumnarValue::Array(Arc::new(StringArray::from(vec!["ok", "boom", "ok"])));
        let err = map_string_pairs("t", &left, &bad, 3, join).unwrap_err();
        assert!(err.to_string().contains("bad row boom"), "{err}");

        let err = map_string_pairs("t", &left, &right, 4, join).unwrap_err();
        assert!(
            err.to_string()
                .contains("t: argument array has 3 rows, expected 4"),
            "{err}"
        );
        Ok(())
    }
}
