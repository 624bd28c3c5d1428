//! `path_trim_long(path, n)`: fractribution's `trim_long_path`, the last `n` touches of a path.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{ColumnarValue, Documentation, ReturnFieldArgs, ScalarUDF};
use datafusion_macros::user_doc;

use crate::attribution::path_transform::{
    PATH_ARGUMENT, PathKernel, PathTransformUdf, PathWriter, TransformParameter,
};

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"fractribution's `trim_long_path`: the last `n` touches of the path (those closest to the conversion), or the whole path when it has at most `n` touches (`[D, A, B, B, C, D, C, C]` with `n = 3` becomes `[D, C, C]`). As in fractribution, `n = 0` means no limit and returns the path unchanged.

A NULL path is NULL; NULL channels are kept."#,
    syntax_example = "path_trim_long(path, n)",
    sql_example = r#"```sql
> select path_trim_long(['D', 'A', 'B', 'B', 'C', 'D', 'C', 'C'], 3) as path;
+-----------+
| path      |
+-----------+
| [D, C, C] |
+-----------+
```"#,
    argument(
        name = "path",
        description = "The channels of one journey in time order, e.g. `array_agg(channel ORDER BY touch_ts)`: a list (any list type) of strings (any string type)."
    ),
    argument(
        name = "n",
        description = "Integer literal ≥ 0: the number of touches to keep, 0 for all. A negative number, NULL or a non-literal is a planning error."
    ),
    related_udf(name = "path_exposure")
)]
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct PathTrimLong;

/// `path_trim_long` as a scalar function.
pub type PathTrimLongFunc = PathTransformUdf<PathTrimLong>;

impl PathKernel for PathTrimLong {
    const NAME: &'static str = "path_trim_long";
    const PARAMETER: Option<TransformParameter> = Some(TransformParameter::Count);
    /// The number of touches to keep.
    type Parameter<'a> = usize;

    fn check_planned_arguments(args: &ReturnFieldArgs) -> Result<()> {
        // Validates `n` once, at planning time.
        let Some(Some(n)) = args.scalar_arguments.get(1) else {
            return plan_err!(
                "{}: argument '{N_ARGUMENT}' must be an integer literal",
                Self::NAME
            );
        };
        touches_to_keep(Self::NAME, n)?;
        Ok(())
    }

    fn arguments(args: &[ColumnarValue]) -> Result<(&ColumnarValue, usize)> {
        let [path, ColumnarValue::Scalar(n)] = args else {
            return plan_err!(
                "{}: expected arguments ({PATH_ARGUMENT}, {N_ARGUMENT}) with '{N_ARGUMENT}' an integer literal",
                Self::NAME
            );
        };
        Ok((path, touches_to_keep(Self::NAME, n)?))
    }

    fn transform(keep: &usize, channels: &[Option<&str>], out: &mut PathWriter<'_>) -> Result<()> {
        trim_long_path(channels, *keep, out);
        Ok(())
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `path_trim_long` function, shared by every registration.
pub fn path_trim_long_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(PathTrimLongFunc::new())));
    Arc::clone(&INSTANCE)
}

const N_ARGUMENT: &str = "n";

/// The `n` literal: a non-negative integer of any integer type; 0 keeps every touch.
fn touches_to_keep(function: &str, n: &ScalarValue) -> Result<usize> {
    if n.is_null() {
        return plan_err!("{function}: argument '{N_ARGUMENT}' must not be NULL");
    }
    if !n.data_type().is_integer() {
        return plan_err!(
            "{function}: argument '{N_ARGUMENT}' must be an integer literal, got {}",
            n.data_type()
        );
    }
    match n.cast_to(&DataType::Int64)? {
        ScalarValue::Int64(Some(0)) => Ok(usize::MAX),
        ScalarValue::Int64(Some(n)) if n > 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        other => plan_err!(
            "{function}: argument '{N_ARGUMENT}' must be ≥ 0 (0 keeps the whole path), got {other}"
        ),
    }
}

/// Writes the last `keep` touches of `channels`.
pub(crate) fn trim_long_path(channels: &[Option<&str>], keep: usize, out: &mut PathWriter<'_>) {
    let start = channels.len().saturating_sub(keep);
    for channel in &channels[start..] {
        out.push(*channel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::test_paths::{
        assert_paths, assert_snowplow_vectors, invoke_path_function, path,
        path_array_in_every_encoding, try_invoke_path_function,
    };

    fn n(value: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(value)))
    }

    #[test]
    fn matches_snowplow_vectors() {
        assert_snowplow_vectors(
            &PathTrimLongFunc::new(),
            |path| vec![path, n(1)],
            |v| v.trim_long_path_1,
        );
        assert_snowplow_vectors(
            &PathTrimLongFunc::new(),
            |path| vec![path, n(2)],
            |v| v.trim_long_path_2,
        );
    }

    #[test]
    fn zero_keeps_everything_and_short_paths_stay() {
        let paths = [
            path("D > A > B"),
            Some(vec![]),
            None,
            Some(vec![None, Some("x")]),
        ];
        for array in path_array_in_every_encoding(&paths) {
            let all = invoke_path_function(
                &PathTrimLongFunc::new(),
                vec![ColumnarValue::Array(Arc::clone(&array)), n(0)],
            );
            assert_paths(&all, &paths);
            let long = invoke_path_function(
                &PathTrimLongFunc::new(),
                vec![
                    ColumnarValue::Array(array),
                    ColumnarValue::Scalar(ScalarValue::UInt8(Some(5))),
                ],
            );
            assert_paths(&long, &paths);
        }
    }

    #[test]
    fn rejects_negative_null_and_non_literal_counts() {
        let array = path_array_in_every_encoding(&[path("A")]).remove(0);
        for (bad, message) in [
            (n(-1), "must be ≥ 0"),
            (
                ColumnarValue::Scalar(ScalarValue::Int64(None)),
                "must not be NULL",
            ),
            (
                ColumnarValue::Array(Arc::clone(&array)),
                "must be an integer literal",
            ),
        ] {
            let err = try_invoke_path_function(
                &PathTrimLongFunc::new(),
                vec![ColumnarValue::Array(Arc::clone(&array)), bad],
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(message), "{err}");
        }
    }
}
