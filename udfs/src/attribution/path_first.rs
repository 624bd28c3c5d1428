//! `path_first(path)`: fractribution's `first` transform, each channel at its first touch.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ScalarUDF};
use datafusion_macros::user_doc;

use crate::attribution::path_transform::{
    PathKernel, PathTransformUdf, PathWriter, only_path_argument,
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
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct PathFirst;

/// `path_first` as a scalar function.
pub type PathFirstFunc = PathTransformUdf<PathFirst>;

impl PathKernel for PathFirst {
    const NAME: &'static str = "path_first";
    type Parameter<'a> = ();

    fn arguments(args: &[ColumnarValue]) -> Result<(&ColumnarValue, ())> {
        Ok((only_path_argument(Self::NAME, args)?, ()))
    }

    fn transform(_: &(), channels: &[Option<&str>], out: &mut PathWriter<'_>) -> Result<()> {
        first_touch_path(channels, out);
        Ok(())
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
