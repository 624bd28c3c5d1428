//! `path_unique(path)`: fractribution's `unique` transform, the identity.

use std::sync::{Arc, LazyLock};

use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ScalarUDF};
use datafusion_macros::user_doc;

use crate::attribution::path_transform::{
    PathKernel, PathTransformUdf, PathWriter, only_path_argument,
};

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"fractribution's `unique` path transform: the path unchanged, every touch kept in order (`[D, A, B, B, C, D, C, C]` stays `[D, A, B, B, C, D, C, C]`).

Its use is to name the untransformed path in the same way as the other transforms, and to bring any list encoding (`LargeList`, `FixedSizeList`, list views) of any string type (`Utf8View` from Parquet, dictionaries) to `List<Utf8>`. A NULL path is NULL; NULL channels are kept."#,
    syntax_example = "path_unique(path)",
    sql_example = r#"```sql
> select path_unique(['D', 'A', 'B', 'B', 'C', 'D', 'C', 'C']) as path;
+--------------------------+
| path                     |
+--------------------------+
| [D, A, B, B, C, D, C, C] |
+--------------------------+
```"#,
    argument(
        name = "path",
        description = "The channels of one journey in time order, e.g. `array_agg(channel ORDER BY touch_ts)`: a list (any list type) of strings (any string type)."
    ),
    related_udf(name = "path_exposure"),
    related_udf(name = "path_first"),
    related_udf(name = "path_frequency")
)]
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct PathUnique;

/// `path_unique` as a scalar function.
pub type PathUniqueFunc = PathTransformUdf<PathUnique>;

impl PathKernel for PathUnique {
    const NAME: &'static str = "path_unique";
    type Parameter<'a> = ();

    fn arguments(args: &[ColumnarValue]) -> Result<(&ColumnarValue, ())> {
        Ok((only_path_argument(Self::NAME, args)?, ()))
    }

    fn transform(_: &(), channels: &[Option<&str>], out: &mut PathWriter<'_>) -> Result<()> {
        unique_path(channels, out);
        Ok(())
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `path_unique` function, shared by every registration.
pub fn path_unique_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(PathUniqueFunc::new())));
    Arc::clone(&INSTANCE)
}

/// Writes `channels` unchanged.
pub(crate) fn unique_path(channels: &[Option<&str>], out: &mut PathWriter<'_>) {
    for channel in channels {
        out.push(*channel);
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
        assert_snowplow_vectors(&PathUniqueFunc::new(), |path| vec![path], |v| v.unique);
    }

    #[test]
    fn fractribution_documented_example() {
        // google/fractribution py/templates/path_transforms.sql (Apache-2.0).
        let input = path_array_in_every_encoding(&[path("D > A > B > B > C > D > C > C")]);
        for array in input {
            let result =
                invoke_path_function(&PathUniqueFunc::new(), vec![ColumnarValue::Array(array)]);
            assert_paths(&result, &[path("D > A > B > B > C > D > C > C")]);
        }
    }

    #[test]
    fn keeps_null_and_empty_paths_and_null_channels() {
        let paths = [None, Some(vec![]), Some(vec![None, Some("a"), None])];
        for array in path_array_in_every_encoding(&paths) {
            let result =
                invoke_path_function(&PathUniqueFunc::new(), vec![ColumnarValue::Array(array)]);
            assert_paths(&result, &paths);
        }
    }
}
