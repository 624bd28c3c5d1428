//! `path_exposure(path)`: fractribution's `exposure` transform, consecutive repeats collapsed.

use std::sync::{Arc, LazyLock};

use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ScalarUDF};
use datafusion_macros::user_doc;

use crate::attribution::path_transform::{
    PathKernel, PathTransformUdf, PathWriter, only_path_argument,
};

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"fractribution's `exposure` path transform: consecutive touches of the same channel collapsed into one (`[D, A, B, B, C, D, C, C]` becomes `[D, A, B, C, D, C]`), the view of Markov models that treat a repeated channel as one state.

A NULL path is NULL. NULL channels are kept, and consecutive NULLs collapse like any repeated channel."#,
    syntax_example = "path_exposure(path)",
    sql_example = r#"```sql
> select path_exposure(['D', 'A', 'B', 'B', 'C', 'D', 'C', 'C']) as path;
+--------------------+
| path               |
+--------------------+
| [D, A, B, C, D, C] |
+--------------------+
```"#,
    argument(
        name = "path",
        description = "The channels of one journey in time order, e.g. `array_agg(channel ORDER BY touch_ts)`: a list (any list type) of strings (any string type)."
    ),
    related_udf(name = "path_unique"),
    related_udf(name = "path_first")
)]
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct PathExposure;

/// `path_exposure` as a scalar function.
pub type PathExposureFunc = PathTransformUdf<PathExposure>;

impl PathKernel for PathExposure {
    const NAME: &'static str = "path_exposure";
    type Parameter<'a> = ();

    fn arguments(args: &[ColumnarValue]) -> Result<(&ColumnarValue, ())> {
        Ok((only_path_argument(Self::NAME, args)?, ()))
    }

    fn transform(_: &(), channels: &[Option<&str>], out: &mut PathWriter<'_>) -> Result<()> {
        exposure_path(channels, out);
        Ok(())
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `path_exposure` function, shared by every registration.
pub fn path_exposure_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(PathExposureFunc::new())));
    Arc::clone(&INSTANCE)
}

/// Writes `channels` with every run of one channel collapsed into its first touch.
pub(crate) fn exposure_path(channels: &[Option<&str>], out: &mut PathWriter<'_>) {
    if let Some(first) = channels.first() {
        out.push(*first);
    }
    for pair in channels.windows(2) {
        if pair[1] != pair[0] {
            out.push(pair[1]);
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
        assert_snowplow_vectors(&PathExposureFunc::new(), |path| vec![path], |v| v.exposure);
    }

    #[test]
    fn fractribution_documented_example() {
        // google/fractribution py/templates/path_transforms.sql (Apache-2.0).
        for array in path_array_in_every_encoding(&[path("D > A > B > B > C > D > C > C")]) {
            let result =
                invoke_path_function(&PathExposureFunc::new(), vec![ColumnarValue::Array(array)]);
            assert_paths(&result, &[path("D > A > B > C > D > C")]);
        }
    }

    #[test]
    fn null_channels_collapse_like_values() {
        let paths = [
            None,
            Some(vec![]),
            Some(vec![None, None, Some("a"), Some("a"), None]),
        ];
        for array in path_array_in_every_encoding(&paths) {
            let result =
                invoke_path_function(&PathExposureFunc::new(), vec![ColumnarValue::Array(array)]);
            assert_paths(
                &result,
                &[None, Some(vec![]), Some(vec![None, Some("a"), None])],
            );
        }
    }
}
