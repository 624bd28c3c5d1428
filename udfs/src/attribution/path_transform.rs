//! What the path transform functions (`path_unique`, `path_exposure`, `path_first`,
//! `path_frequency`, `path_remove_if_not_all`, `path_remove_if_last_and_not_all`,
//! `path_trim_long`) share: argument checks, the return field, the batch loop and the
//! `ScalarUDFImpl` itself ([`PathTransformUdf`]); each function's file holds its
//! [`PathKernel`] with the function's documentation.
//!
//! Each transform is its own SQL function, like DataFusion's `array_distinct`/`array_remove`
//! rather than one `path_transform(path, 'name')`: the arity and argument types differ per
//! transform and are then checked at planning time, every transform has its own documentation
//! entry, and the names map one to one to fractribution's and Snowplow's UDFs.
//!
//! Semantics shared by all transforms: a NULL path is NULL; a NULL channel inside a path is a
//! value like any other (two NULLs are the same channel, as in `GROUP BY`), so nothing is
//! dropped; the result is always `List<Utf8>`, whatever list and string encoding came in.

use std::fmt::{self, Write as _};
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::utils::take_function_args;
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::attribution::channel_paths::{DecodedPaths, check_path_type};

/// The name of the path argument in messages and documentation.
pub(crate) const PATH_ARGUMENT: &str = "path";

/// One path transform: its SQL name, its parameter and what it does to a path.
pub trait PathKernel: fmt::Debug + Default + PartialEq + Eq + Hash + Send + Sync + 'static {
    /// The SQL function.
    const NAME: &'static str;
    /// The parameter after the path, if any. Without one the function is strict (a NULL path
    /// is NULL without a call); with one, a NULL parameter is a planning error instead.
    const PARAMETER: Option<TransformParameter> = None;

    /// The parameter's value for one call (`()` without a parameter).
    type Parameter<'a>;

    /// Checks the literal parameter once, at planning time.
    fn check_planned_arguments(_args: &ReturnFieldArgs) -> Result<()> {
        Ok(())
    }

    /// The path argument and the parameter's value.
    fn arguments(args: &[ColumnarValue]) -> Result<(&ColumnarValue, Self::Parameter<'_>)>;

    /// Writes the transformed `channels` of one path.
    fn transform(
        parameter: &Self::Parameter<'_>,
        channels: &[Option<&str>],
        out: &mut PathWriter<'_>,
    ) -> Result<()>;

    /// The function's documentation (from its `#[user_doc]`).
    fn documentation(&self) -> Option<&Documentation>;
}

/// The path argument of a transform without a parameter.
pub(crate) fn only_path_argument<'a>(
    function: &str,
    args: &'a [ColumnarValue],
) -> Result<&'a ColumnarValue> {
    let [path] = take_function_args(function, args)?;
    Ok(path)
}

/// A path transform as a scalar function; `K` says which.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PathTransformUdf<K: PathKernel> {
    signature: Signature,
    kernel: K,
}

impl<K: PathKernel> Default for PathTransformUdf<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: PathKernel> PathTransformUdf<K> {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            kernel: K::default(),
        }
    }
}

impl<K: PathKernel> ScalarUDFImpl for PathTransformUdf<K> {
    fn name(&self) -> &str {
        K::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        transform_argument_types(K::NAME, arg_types, K::PARAMETER)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("{}: return_field_from_args is used instead", K::NAME)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        K::check_planned_arguments(&args)?;
        Ok(transform_return_field(K::NAME, &args))
    }

    fn is_strict(&self) -> bool {
        K::PARAMETER.is_none()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (path, parameter) = K::arguments(&args.args)?;
        map_paths(K::NAME, path, |channels, out| {
            K::transform(&parameter, channels, out)
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.kernel.documentation()
    }
}

/// The parameter a transform takes after the path, if any.
#[derive(Debug, Clone, Copy)]
pub enum TransformParameter {
    /// A string literal: the channel to remove.
    Channel,
    /// An integer literal: the number of touches to keep.
    Count,
}

impl TransformParameter {
    fn name(self) -> &'static str {
        match self {
            Self::Channel => "channel",
            Self::Count => "n",
        }
    }

    fn accepts(self, data_type: &DataType) -> bool {
        match self {
            Self::Channel => matches!(
                data_type,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
            ),
            Self::Count => data_type.is_integer() || data_type == &DataType::Null,
        }
    }
}

/// `coerce_types` of a transform: checks the arguments and keeps their types. The path reader
/// handles every list and string encoding, and a literal parameter must stay a literal (a cast
/// would hide it from `return_field_from_args`).
pub(crate) fn transform_argument_types(
    function: &str,
    arg_types: &[DataType],
    parameter: Option<TransformParameter>,
) -> Result<Vec<DataType>> {
    let usage = match parameter {
        None => format!("{function}({PATH_ARGUMENT})"),
        Some(p) => format!("{function}({PATH_ARGUMENT}, {})", p.name()),
    };
    match (arg_types, parameter) {
        ([path], None) => check_path_type(function, PATH_ARGUMENT, path)?,
        ([path, value], Some(p)) => {
            check_path_type(function, PATH_ARGUMENT, path)?;
            if !p.accepts(value) {
                let expected = match p {
                    TransformParameter::Channel => "a string literal",
                    TransformParameter::Count => "an integer literal",
                };
                return plan_err!(
                    "{function}: argument '{}' must be {expected}, got {value}; usage: {usage}",
                    p.name()
                );
            }
        }
        _ => {
            return plan_err!(
                "{function}: expected {} argument(s), got {}; usage: {usage}",
                1 + usize::from(parameter.is_some()),
                arg_types.len()
            );
        }
    }
    Ok(arg_types.to_vec())
}

/// The result field of every transform: `List<Utf8>` (items nullable, like DataFusion's own
/// lists), NULL exactly when the path is NULL.
pub(crate) fn transform_return_field(function: &str, args: &ReturnFieldArgs) -> FieldRef {
    let nullable = args
        .arg_fields
        .first()
        .is_none_or(|path| path.is_nullable());
    Arc::new(Field::new(function, transformed_path_type(), nullable))
}

fn transformed_path_type() -> DataType {
    DataType::new_list(DataType::Utf8, true)
}

/// The output of a transform for one path.
pub struct PathWriter<'b> {
    channels: &'b mut StringBuilder,
    scratch: &'b mut String,
}

impl PathWriter<'_> {
    /// Appends a channel (NULL for `None`).
    pub(crate) fn push(&mut self, channel: Option<&str>) {
        self.channels.append_option(channel);
    }

    /// Appends `channel(count)`, fractribution's frequency notation.
    pub(crate) fn push_counted(&mut self, channel: &str, count: usize) {
        self.scratch.clear();
        // Writing into a String cannot fail.
        let _ = write!(self.scratch, "{channel}({count})");
        self.channels.append_value(&*self.scratch);
    }
}

/// Applies `transform` to every non-NULL path of `path` (any list and string encoding, array
/// or scalar) and returns the `List<Utf8>` results in the same shape; a NULL path is NULL.
///
/// `transform(channels, out)` receives the path's channels in order (`None` for a NULL
/// channel) and pushes the transformed path into `out`; an error aborts the call.
pub(crate) fn map_paths<F>(
    function: &str,
    path: &ColumnarValue,
    mut transform: F,
) -> Result<ColumnarValue>
where
    F: FnMut(&[Option<&str>], &mut PathWriter<'_>) -> Result<()>,
{
    match path {
        ColumnarValue::Array(array) => Ok(ColumnarValue::Array(map_path_array(
            function,
            array,
            &mut transform,
        )?)),
        ColumnarValue::Scalar(scalar) => {
            if scalar.is_null() {
                return Ok(ColumnarValue::Scalar(ScalarValue::try_from(
                    &transformed_path_type(),
                )?));
            }
            let result = map_path_array(function, &scalar.to_array()?, &mut transform)?;
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &result, 0,
            )?))
        }
    }
}

fn map_path_array<F>(function: &str, array: &ArrayRef, transform: &mut F) -> Result<ArrayRef>
where
    F: FnMut(&[Option<&str>], &mut PathWriter<'_>) -> Result<()>,
{
    let decoded = DecodedPaths::try_new(function, array)?;
    let paths = decoded.column();
    let mut builder = ListBuilder::with_capacity(StringBuilder::new(), paths.len());
    let mut channels = Vec::new();
    let mut scratch = String::new();
    for row in 0..paths.len() {
        if !paths.read(row, &mut channels) {
            builder.append_null();
            continue;
        }
        let mut out = PathWriter {
            channels: builder.values(),
            scratch: &mut scratch,
        };
        transform(&channels, &mut out)?;
        builder.append(true);
    }
    Ok(Arc::new(builder.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::test_paths::{assert_paths, path_array_in_every_encoding};

    fn reverse(channels: &[Option<&str>], out: &mut PathWriter<'_>) -> Result<()> {
        channels.iter().rev().for_each(|c| out.push(*c));
        Ok(())
    }

    #[test]
    fn maps_every_encoding_to_list_of_utf8() -> Result<()> {
        let paths = [Some(vec![Some("a"), None, Some("b")]), None, Some(vec![])];
        for array in path_array_in_every_encoding(&paths) {
            let out = map_paths("t", &ColumnarValue::Array(Arc::clone(&array)), reverse)?;
            assert_paths(
                &out,
                &[Some(vec![Some("b"), None, Some("a")]), None, Some(vec![])],
            );
        }
        Ok(())
    }

    #[test]
    fn scalars_give_scalars() -> Result<()> {
        let array = path_array_in_every_encoding(&[Some(vec![Some("x"), Some("y")])]).remove(0);
        let scalar = ScalarValue::try_from_array(&array, 0)?;
        let out = map_paths("t", &ColumnarValue::Scalar(scalar), reverse)?;
        let ColumnarValue::Scalar(out) = &out else {
            panic!("scalar in must give scalar out")
        };
        assert_eq!(out.data_type(), transformed_path_type());
        assert_paths(
            &ColumnarValue::Scalar(out.clone()),
            &[Some(vec![Some("y"), Some("x")])],
        );
        let out = map_paths("t", &ColumnarValue::Scalar(ScalarValue::Null), reverse)?;
        let ColumnarValue::Scalar(out) = out else {
            panic!("scalar in must give scalar out")
        };
        assert!(out.is_null());
        assert_eq!(out.data_type(), transformed_path_type());
        Ok(())
    }

    #[test]
    fn checks_arity_and_parameter_types() {
        let path = DataType::new_list(DataType::Utf8View, true);
        assert!(transform_argument_types("f", std::slice::from_ref(&path), None).is_ok());
        let err = transform_argument_types("f", &[path.clone(), DataType::Utf8], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f: expected 1 argument(s), got 2; usage: f(path)"),
            "{err}"
        );
        let err = transform_argument_types(
            "f",
            &[path.clone(), DataType::Utf8],
            Some(TransformParameter::Count),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("argument 'n' must be an integer literal"),
            "{err}"
        );
        assert!(
            transform_argument_types(
                "f",
                &[path, DataType::Int32],
                Some(TransformParameter::Count)
            )
            .is_ok()
        );
    }
}
