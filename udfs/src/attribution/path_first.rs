//! `path_first(path)`: fractribution's `first` transform, each channel at its first touch.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::utils::take_function_args;
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::attribution::path_transform::{
    PathWriter, map_paths, transform_argument_types, transform_return_field,
};

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"fractribution's `first` path transform: each channel once, at the position of its first touch (`[D, A, B, B, C, D, C, C]` becomes `[D, A, B, C]`).

A NULL path is NULL. NULL channels count as one channel: the first NULL is kept, later ones dropped like any repeat."#,
    syntax_example = "path_first(path)",
    sql_example = r#"```sql
> select path_first(['D', 'A', 'B', 'B', 'C', 'D', 'C', 'C']) as path;
+--------------+
| path         |
+--------------+
| [D, A, B, C] |
+--------------+
```"#,
    argument(
        name = "path",
        description = "The channels of one journey in time order, e.g. `array_agg(channel ORDER BY touch_ts)`: a list (any list type) of strings (any string type)."
    ),
    related_udf(name = "path_exposure"),
    related_udf(name = "path_frequency")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PathFirstFunc {
    signature: Signature,
}

impl Default for PathFirstFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl PathFirstFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for PathFirstFunc {
    fn name(&self) -> &str {
        "path_first"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        transform_argument_types(self.name(), arg_types, None)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("{}: return_field_from_args is used instead", self.name())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(transform_return_field(self.name(), &args))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [path] = take_function_args(self.name(), &args.args)?;
        map_paths(self.name(), path, |channels, out| {
            first_touch_path(channels, out);
            Ok(())
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `path_first` function, shared by every registration.
pub fn path_first_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(PathFirstFunc::new())));
    Arc::clone(&INSTANCE)
}

/// Writes the first touch of each channel, in order.
pub(crate) fn first_touch_path(channels: &[Option<&str>], out: &mut PathWriter<'_>) {
    let mut seen = HashSet::with_capacity(channels.len());
    for channel in channels {
        if seen.insert(*channel) {
            out.push(*channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::test_paths::{
        assert_paths, assert_snowplow_vectors, invoke_path_function, path,
        path_array_in_every_encoding,
    };

    #[test]
    fn matches_snowplow_vectors() {
        assert_snowplow_vectors(&PathFirstFunc::new(), |path| vec![path], |v| v.first);
    }

    #[test]
    fn fractribution_documented_example() {
        // google/fractribution py/templates/path_transforms.sql (Apache-2.0).
        for array in path_array_in_every_encoding(&[path("D > A > B > B > C > D > C > C")]) {
            let result =
                invoke_path_function(&PathFirstFunc::new(), vec![ColumnarValue::Array(array)]);
            assert_paths(&result, &[path("D > A > B > C")]);
        }
    }

    #[test]
    fn null_channels_are_one_channel() {
        let paths = [
            None,
            Some(vec![]),
            Some(vec![None, Some("a"), None, Some("b"), Some("a")]),
        ];
        for array in path_array_in_every_encoding(&paths) {
            let result =
                invoke_path_function(&PathFirstFunc::new(), vec![ColumnarValue::Array(array)]);
            assert_paths(
                &result,
                &[None, Some(vec![]), Some(vec![None, Some("a"), Some("b")])],
            );
        }
    }
}
