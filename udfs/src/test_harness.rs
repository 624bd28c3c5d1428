//! Test support: builds every string encoding of an input and invokes a function the way the
//! planner does (return field from the literal arguments first, then `invoke_with_args`).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, LargeStringArray, StringArray, StringViewArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int8Type, Int32Type, UInt16Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, TypeSignature,
};

/// `values` as `Utf8`, `LargeUtf8`, `Utf8View` and dictionaries with different key and value types.
pub(crate) fn all_encodings(values: &[Option<&str>]) -> Vec<ArrayRef> {
    let utf8: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
    let view: ArrayRef = Arc::new(StringViewArray::from(values.to_vec()));
    vec![
        Arc::clone(&utf8),
        Arc::new(LargeStringArray::from(values.to_vec())),
        Arc::clone(&view),
        Arc::new(
            values
                .iter()
                .copied()
                .collect::<DictionaryArray<Int32Type>>(),
        ),
        Arc::new(
            values
                .iter()
                .copied()
                .collect::<DictionaryArray<Int8Type>>(),
        ),
        // Hive partition columns arrive as Dictionary(UInt16, Utf8); Parquet dictionaries of
        // views as Dictionary(_, Utf8View).
        Arc::new(
            DictionaryArray::<UInt16Type>::try_new(
                (0..values.len() as u16).collect(),
                Arc::clone(&view),
            )
            .expect("valid dictionary"),
        ),
    ]
}

/// `value` as every string scalar type.
pub(crate) fn all_scalar_encodings(value: Option<&str>) -> Vec<ScalarValue> {
    let owned = value.map(str::to_string);
    vec![
        ScalarValue::Utf8(owned.clone()),
        ScalarValue::LargeUtf8(owned.clone()),
        ScalarValue::Utf8View(owned.clone()),
        ScalarValue::Dictionary(
            Box::new(DataType::Int32),
            Box::new(ScalarValue::Utf8(owned)),
        ),
    ]
}

/// The values of a `Utf8` array.
pub(crate) fn strings_of(array: &ArrayRef) -> Vec<Option<String>> {
    assert_eq!(array.data_type(), &DataType::Utf8);
    array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

/// Invokes `function` the way the planner and executor do (argument coercion check for
/// user-defined signatures, return field from the literal arguments, then `invoke_with_args`),
/// checking that the result has the return field's type, one value per row, and no NULL when the
/// field is declared non-nullable.
pub(crate) fn invoke_udf(
    function: &dyn ScalarUDFImpl,
    args: Vec<ColumnarValue>,
) -> Result<ColumnarValue> {
    let number_rows = args
        .iter()
        .find_map(|arg| match arg {
            ColumnarValue::Array(array) => Some(array.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1);
    let arg_fields: Vec<_> = args
        .iter()
        .enumerate()
        .map(|(i, arg)| {
            let nullable = match arg {
                ColumnarValue::Array(array) => array.logical_null_count() > 0,
                ColumnarValue::Scalar(scalar) => scalar.is_null(),
            };
            Arc::new(Field::new(format!("arg{i}"), arg.data_type(), nullable))
        })
        .collect();
    if matches!(
        function.signature().type_signature,
        TypeSignature::UserDefined
    ) {
        let arg_types: Vec<DataType> = args.iter().map(ColumnarValue::data_type).collect();
        function.coerce_types(&arg_types)?;
    }
    let scalars: Vec<Option<&ScalarValue>> = args
        .iter()
        .map(|arg| match arg {
            ColumnarValue::Scalar(scalar) => Some(scalar),
            ColumnarValue::Array(_) => None,
        })
        .collect();
    let return_field = function.return_field_from_args(ReturnFieldArgs {
        arg_fields: &arg_fields,
        scalar_arguments: &scalars,
    })?;
    let result = function.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows,
        return_field: Arc::clone(&return_field),
        config_options: Arc::new(ConfigOptions::default()),
    })?;
    let nulls = match &result {
        ColumnarValue::Array(array) => {
            assert_eq!(array.len(), number_rows);
            array.logical_null_count()
        }
        ColumnarValue::Scalar(scalar) => usize::from(scalar.is_null()),
    };
    assert_eq!(&result.data_type(), return_field.data_type());
    assert!(
        return_field.is_nullable() || nulls == 0,
        "NULL in a non-nullable result"
    );
    Ok(result)
}

/// [`invoke_udf`] for the string functions: the result is `Utf8`, and all-scalar arguments give a
/// scalar result.
pub(crate) fn invoke(
    function: &dyn ScalarUDFImpl,
    args: Vec<ColumnarValue>,
) -> Result<ColumnarValue> {
    let all_scalar = args
        .iter()
        .all(|arg| matches!(arg, ColumnarValue::Scalar(_)));
    let result = invoke_udf(function, args)?;
    assert_eq!(result.data_type(), DataType::Utf8);
    if all_scalar {
        assert!(
            matches!(result, ColumnarValue::Scalar(_)),
            "scalar arguments must give a scalar result"
        );
    }
    Ok(result)
}

/// Checks that `function` maps `input[i]` to `expected[i]` for every array encoding of `input`
/// and for every scalar encoding of each value. `make_args` places the data argument among the
/// function's other (literal) arguments.
pub(crate) fn assert_maps_in_every_encoding(
    function: &dyn ScalarUDFImpl,
    make_args: impl Fn(ColumnarValue) -> Vec<ColumnarValue>,
    input: &[Option<&str>],
    expected: &[Option<&str>],
) -> Result<()> {
    assert_eq!(input.len(), expected.len());
    let expected: Vec<Option<String>> = expected.iter().map(|v| v.map(str::to_string)).collect();
    for array in all_encodings(input) {
        let data_type = array.data_type().clone();
        let result = invoke(function, make_args(ColumnarValue::Array(array)))?;
        let ColumnarValue::Array(result) = result else {
            panic!("{}: array input must give an array result", function.name())
        };
        assert_eq!(
            strings_of(&result),
            expected,
            "{} over {data_type}",
            function.name()
        );
    }
    for (value, expected) in input.iter().zip(&expected) {
        for scalar in all_scalar_encodings(*value) {
            let data_type = scalar.data_type();
            let result = invoke(function, make_args(ColumnarValue::Scalar(scalar)))?;
            let ColumnarValue::Scalar(result) = result else {
                panic!(
                    "{}: scalar input must give a scalar result",
                    function.name()
                )
            };
            assert_eq!(
                result,
                ScalarValue::Utf8(expected.clone()),
                "{}({value:?}) over {data_type}",
                function.name()
            );
        }
    }
    Ok(())
}

/// A string literal argument.
pub(crate) fn literal(value: &str) -> ColumnarValue {
    ColumnarValue::Scalar(ScalarValue::from(value))
}
