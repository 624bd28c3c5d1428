//! `path_remove_if_last_and_not_all(path, channel)`: fractribution's
//! `remove_if_last_and_not_all` transform.

use std::sync::{Arc, LazyLock};

use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, Documentation, ReturnFieldArgs, ScalarUDF};
use datafusion_macros::user_doc;

use crate::attribution::path_remove_if_not_all::{channel_arguments, check_planned_channel};
use crate::attribution::path_transform::{
    PathKernel, PathTransformUdf, PathWriter, TransformParameter,
};

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"fractribution's `remove_if_last_and_not_all` path transform: the trailing touches of `channel` removed, unless the path has no other channel, in which case it is returned unchanged (`A > B > A > A` without trailing `A` becomes `A > B`; `A > A` stays `A > A`). Typically used with `'Direct'`, so that a closing direct visit does not take the credit from the channel that brought the customer.

The comparison is exact (case-sensitive). A NULL path is NULL; NULL channels in the path are not `channel` and are kept."#,
    syntax_example = "path_remove_if_last_and_not_all(path, channel)",
    sql_example = r#"```sql
> select path_remove_if_last_and_not_all(['A', 'B', 'A', 'A'], 'A') as path;
+--------+
| path   |
+--------+
| [A, B] |
+--------+
```"#,
    argument(
        name = "path",
        description = "The channels of one journey in time order, e.g. `array_agg(channel ORDER BY touch_ts)`: a list (any list type) of strings (any string type)."
    ),
    argument(
        name = "channel",
        description = "String literal: the channel to remove. NULL or a non-literal is a planning error."
    ),
    related_udf(name = "path_remove_if_not_all")
)]
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct PathRemoveIfLastAndNotAll;

/// `path_remove_if_last_and_not_all` as a scalar function.
pub type PathRemoveIfLastAndNotAllFunc = PathTransformUdf<PathRemoveIfLastAndNotAll>;

impl PathKernel for PathRemoveIfLastAndNotAll {
    const NAME: &'static str = "path_remove_if_last_and_not_all";
    const PARAMETER: Option<TransformParameter> = Some(TransformParameter::Channel);
    type Parameter<'a> = &'a str;

    fn check_planned_arguments(args: &ReturnFieldArgs) -> Result<()> {
        check_planned_channel(Self::NAME, args)
    }

    fn arguments(args: &[ColumnarValue]) -> Result<(&ColumnarValue, &str)> {
        channel_arguments(Self::NAME, args)
    }

    fn transform(
        channel: &&str,
        channels: &[Option<&str>],
        out: &mut PathWriter<'_>,
    ) -> Result<()> {
        remove_if_last_and_not_all(channels, channel, out);
        Ok(())
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `path_remove_if_last_and_not_all` function, shared by every registration.
pub fn path_remove_if_last_and_not_all_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(PathRemoveIfLastAndNotAllFunc::new())));
    Arc::clone(&INSTANCE)
}

/// Writes `channels` without its trailing touches of `removed`, or unchanged when nothing
/// else is left.
pub(crate) fn remove_if_last_and_not_all(
    channels: &[Option<&str>],
    removed: &str,
    out: &mut PathWriter<'_>,
) {
    let kept = channels
        .iter()
        .rposition(|channel| *channel != Some(removed))
        .map_or(channels.len(), |last_other| last_other + 1);
    for channel in &channels[..kept] {
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
    use crate::test_harness::literal;
    use datafusion::common::ScalarValue;

    #[test]
    fn matches_snowplow_vectors() {
        assert_snowplow_vectors(
            &PathRemoveIfLastAndNotAllFunc::new(),
            |path| vec![path, literal("Direct")],
            |v| v.remove_if_last_and_not_all_direct,
        );
    }

    #[test]
    fn snowplow_documented_example_and_edge_cases() {
        // dbt-snowplow-fractribution macros/path_transformations/create_udfs.sql:
        // target `A`, path `A → B → A → A` becomes `A → B`.
        let paths = [
            path("A > B > A > A"),
            path("A > A"),
            Some(vec![]),
            None,
            Some(vec![None, Some("A")]),
            path("a > B"),
            path("A > B > A > B"),
        ];
        for array in path_array_in_every_encoding(&paths) {
            let result = invoke_path_function(
                &PathRemoveIfLastAndNotAllFunc::new(),
                vec![ColumnarValue::Array(array), literal("A")],
            );
            assert_paths(
                &result,
                &[
                    path("A > B"),
                    path("A > A"),
                    Some(vec![]),
                    None,
                    Some(vec![None]),
                    path("a > B"),
                    path("A > B > A > B"),
                ],
            );
        }
    }

    #[test]
    fn channel_must_be_a_non_null_literal() {
        let paths = path_array_in_every_encoding(&[path("A")]).remove(0);
        let err = try_invoke_path_function(
            &PathRemoveIfLastAndNotAllFunc::new(),
            vec![
                ColumnarValue::Array(Arc::clone(&paths)),
                ColumnarValue::Scalar(ScalarValue::Utf8(None)),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("argument 'channel' must not be NULL"), "{err}");
        let err = try_invoke_path_function(
            &PathRemoveIfLastAndNotAllFunc::new(),
            vec![
                ColumnarValue::Array(Arc::clone(&paths)),
                ColumnarValue::Array(paths),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("argument 'channel' must be a string literal"),
            "{err}"
        );
    }
}
