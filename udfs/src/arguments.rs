//! Argument types and constant (literal) arguments shared by the scalar functions.
//!
//! Configuration-like arguments (a phone region, an HMAC key, an identifier type) must be
//! literals so they can be validated once, at planning time, where a mistake is reported before
//! any data is read. `invoke_with_args` only sees values, so it reads them again from the scalar
//! it is given; both paths use the functions here and therefore give the same errors.

use datafusion::common::types::logical_string;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, EncodingPreservation, ReturnFieldArgs, TypeSignatureClass,
};

use crate::string_kernel::scalar_str;

/// A data argument: any string encoding, dictionaries passed through un-decoded so the kernels
/// can work on the distinct values.
pub(crate) fn string_data() -> Coercion {
    Coercion::new_exact(TypeSignatureClass::Native(logical_string()))
        .with_encoding_preservation(EncodingPreservation::dictionary())
}

/// A configuration argument: a string literal.
pub(crate) fn string_literal() -> Coercion {
    Coercion::new_exact(TypeSignatureClass::Native(logical_string()))
}

/// The literal argument `index` at planning time: `Ok(None)` for a NULL literal, a plan error
/// naming the function and the argument when it is not a constant.
pub(crate) fn planned_literal<'a>(
    function: &str,
    argument: &str,
    args: &ReturnFieldArgs<'a>,
    index: usize,
) -> Result<Option<&'a str>> {
    match args.scalar_arguments.get(index) {
        Some(Some(value)) => literal_str(function, argument, value),
        Some(None) => plan_err!(
            "{function}: argument '{argument}' must be a constant string literal, not a column or expression"
        ),
        None => plan_err!("{function}: missing argument '{argument}'"),
    }
}

/// The constant argument `index` at execution time (see [`planned_literal`]).
pub(crate) fn invoked_literal<'a>(
    function: &str,
    argument: &str,
    args: &'a [ColumnarValue],
    index: usize,
) -> Result<Option<&'a str>> {
    match args.get(index) {
        Some(ColumnarValue::Scalar(value)) => literal_str(function, argument, value),
        Some(ColumnarValue::Array(_)) => exec_err!(
            "{function}: argument '{argument}' must be a constant string literal, got an array"
        ),
        None => exec_err!("{function}: missing argument '{argument}'"),
    }
}

fn literal_str<'a>(
    function: &str,
    argument: &str,
    value: &'a ScalarValue,
) -> Result<Option<&'a str>> {
    match scalar_str(function, value) {
        Ok(text) => Ok(text),
        Err(_) => plan_err!(
            "{function}: argument '{argument}' must be a string literal, got {}",
            value.data_type()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
    use std::sync::Arc;

    fn fields(n: usize) -> Vec<FieldRef> {
        (0..n)
            .map(|i| Arc::new(Field::new(format!("a{i}"), DataType::Utf8, true)))
            .collect()
    }

    #[test]
    fn planned_literal_reads_constants_and_rejects_columns() -> Result<()> {
        let region = ScalarValue::Utf8View(Some("RU".into()));
        let null = ScalarValue::Utf8(None);
        let arg_fields = fields(2);
        let scalars = [None, Some(&region)];
        let args = ReturnFieldArgs {
            arg_fields: &arg_fields,
            scalar_arguments: &scalars,
        };
        assert_eq!(planned_literal("f", "region", &args, 1)?, Some("RU"));
        let err = planned_literal("f", "value", &args, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f: argument 'value' must be a constant"),
            "{err}"
        );

        let scalars = [None, Some(&null)];
        let args = ReturnFieldArgs {
            arg_fields: &arg_fields,
            scalar_arguments: &scalars,
        };
        assert_eq!(planned_literal("f", "region", &args, 1)?, None);

        let number = ScalarValue::Int64(Some(7));
        let scalars = [None, Some(&number)];
        let args = ReturnFieldArgs {
            arg_fields: &arg_fields,
            scalar_arguments: &scalars,
        };
        let err = planned_literal("f", "region", &args, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a string literal, got Int64"), "{err}");
        Ok(())
    }

    #[test]
    fn invoked_literal_reads_scalars_and_rejects_arrays() -> Result<()> {
        let array: ArrayRef = Arc::new(StringArray::from(vec!["RU"]));
        let args = [
            ColumnarValue::Array(array),
            ColumnarValue::Scalar(ScalarValue::from("key")),
        ];
        assert_eq!(invoked_literal("f", "key", &args, 1)?, Some("key"));
        let err = invoked_literal("f", "region", &args, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("must be a constant string literal, got an array"),
            "{err}"
        );
        let err = invoked_literal("f", "key", &args, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing argument 'key'"), "{err}");
        Ok(())
    }
}
