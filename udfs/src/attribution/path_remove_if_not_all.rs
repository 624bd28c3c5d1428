//! `path_remove_if_not_all(path, channel)`: fractribution's `remove_if_not_all` transform.

use std::sync::{Arc, LazyLock};

use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{ColumnarValue, Documentation, ReturnFieldArgs, ScalarUDF};
use datafusion_macros::user_doc;

use crate::arguments::{invoked_literal, planned_literal};
use crate::attribution::path_transform::{
    PATH_ARGUMENT, PathKernel, PathTransformUdf, PathWriter, TransformParameter,
};

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"fractribution's `remove_if_not_all` path transform: every touch of `channel` removed, unless the path has no other channel, in which case it is returned unchanged (`A > B > A > A` without `A` becomes `B`; `A > A` stays `A > A`). Typically used with `'Direct'`, so that direct visits get credit only on all-direct paths.

The comparison is exact (case-sensitive). A NULL path is NULL; NULL channels in the path are not `channel` and are kept."#,
    syntax_example = "path_remove_if_not_all(path, channel)",
    sql_example = r#"```sql
> select path_remove_if_not_all(['A', 'B', 'A', 'A'], 'A') as path;
+------+
| path |
+------+
| [B]  |
+------+
```"#,
    argument(
        name = "path",
        description = "The channels of one journey in time order, e.g. `array_agg(channel ORDER BY touch_ts)`: a list (any list type) of strings (any string type)."
    ),
    argument(
        name = "channel",
        description = "String literal: the channel to remove. NULL or a non-literal is a planning error."
    ),
    related_udf(name = "path_remove_if_last_and_not_all")
)]
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct PathRemoveIfNotAll;

/// `path_remove_if_not_all` as a scalar function.
pub type PathRemoveIfNotAllFunc = PathTransformUdf<PathRemoveIfNotAll>;

impl PathKernel for PathRemoveIfNotAll {
    const NAME: &'static str = "path_remove_if_not_all";
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
        remove_if_not_all(channels, channel, out);
        Ok(())
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `path_remove_if_not_all` function, shared by every registration.
pub fn path_remove_if_not_all_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(PathRemoveIfNotAllFunc::new())));
    Arc::clone(&INSTANCE)
}

pub(crate) const CHANNEL_ARGUMENT: &str = "channel";

/// The channel literal of the `remove_if_*` transforms: a NULL is a planning error.
fn removed_channel<'a>(function: &str, channel: Option<&'a str>) -> Result<&'a str> {
    match channel {
        Some(channel) => Ok(channel),
        None => plan_err!("{function}: argument '{CHANNEL_ARGUMENT}' must not be NULL"),
    }
}

/// Checks the channel literal of a `remove_if_*` transform at planning time.
pub(crate) fn check_planned_channel(function: &str, args: &ReturnFieldArgs) -> Result<()> {
    removed_channel(
        function,
        planned_literal(function, CHANNEL_ARGUMENT, args, 1)?,
    )?;
    Ok(())
}

/// The path and channel arguments of a `remove_if_*` transform.
pub(crate) fn channel_arguments<'a>(
    function: &str,
    args: &'a [ColumnarValue],
) -> Result<(&'a ColumnarValue, &'a str)> {
    let (Some(path), 2) = (args.first(), args.len()) else {
        return plan_err!("{function}: expected arguments ({PATH_ARGUMENT}, {CHANNEL_ARGUMENT})");
    };
    let channel = removed_channel(
        function,
        invoked_literal(function, CHANNEL_ARGUMENT, args, 1)?,
    )?;
    Ok((path, channel))
}

/// Writes `channels` without the touches of `removed`, or unchanged when nothing else is left.
pub(crate) fn remove_if_not_all(
    channels: &[Option<&str>],
    removed: &str,
    out: &mut PathWriter<'_>,
) {
    let all_removed = channels.iter().all(|channel| *channel == Some(removed));
    for channel in channels {
        if all_removed || *channel != Some(removed) {
            out.push(*channel);
        }
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
            &PathRemoveIfNotAllFunc::new(),
            |path| vec![path, literal("Direct")],
            |v| v.remove_if_not_all_direct,
        );
    }

    #[test]
    fn snowplow_documented_example_and_edge_cases() {
        // dbt-snowplow-fractribution macros/path_transformations/create_udfs.sql:
        // target `A`, path `A → B → A → A` becomes `B`.
        let paths = [
            path("A > B > A > A"),
            path("A > A"),
            Some(vec![]),
            None,
            Some(vec![None, Some("A")]),
            path("a > B"),
        ];
        for array in path_array_in_every_encoding(&paths) {
            let result = invoke_path_function(
                &PathRemoveIfNotAllFunc::new(),
                vec![ColumnarValue::Array(array), literal("A")],
            );
            assert_paths(
                &result,
                &[
                    path("B"),
                    path("A > A"),
                    Some(vec![]),
                    None,
                    Some(vec![None]),
                    path("a > B"),
                ],
            );
        }
    }

    #[test]
    fn channel_must_be_a_non_null_literal() {
        let paths = path_array_in_every_encoding(&[path("A")]).remove(0);
        let err = try_invoke_path_function(
            &PathRemoveIfNotAllFunc::new(),
            vec![
                ColumnarValue::Array(Arc::clone(&paths)),
                ColumnarValue::Scalar(ScalarValue::Utf8(None)),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("argument 'channel' must not be NULL"), "{err}");
        let err = try_invoke_path_function(
            &PathRemoveIfNotAllFunc::new(),
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
