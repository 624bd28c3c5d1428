//! `path_frequency(path)`: fractribution's `frequency` transform, `Channel(count)` per channel.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, Documentation, ScalarUDF};
use datafusion_macros::user_doc;

use crate::attribution::path_transform::{
    PathKernel, PathTransformUdf, PathWriter, only_path_argument,
};

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"fractribution's `frequency` path transform: each channel once, at the position of its first touch, written `Channel(n)` with `n` its number of touches in the path (`[D, A, B, B, C, D, C, C]` becomes `[D(2), A(1), B(2), C(3)]`).

A NULL path is NULL. A NULL channel is an execution error, as a count cannot be attached to a missing name: replace NULL channels first (e.g. `coalesce(channel, '(none)')`). Channel names containing parentheses are accepted (fractribution's Python version rejects them, its SQL version does not)."#,
    syntax_example = "path_frequency(path)",
    sql_example = r#"```sql
> select path_frequency(['D', 'A', 'B', 'B', 'C', 'D', 'C', 'C']) as path;
+--------------------------+
| path                     |
+--------------------------+
| [D(2), A(1), B(2), C(3)] |
+--------------------------+
```"#,
    argument(
        name = "path",
        description = "The channels of one journey in time order, e.g. `array_agg(channel ORDER BY touch_ts)`: a list (any list type) of strings (any string type)."
    ),
    related_udf(name = "path_first"),
    related_udf(name = "path_exposure")
)]
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct PathFrequency;

/// `path_frequency` as a scalar function.
pub type PathFrequencyFunc = PathTransformUdf<PathFrequency>;

impl PathKernel for PathFrequency {
    const NAME: &'static str = "path_frequency";
    type Parameter<'a> = ();

    fn arguments(args: &[ColumnarValue]) -> Result<(&ColumnarValue, ())> {
        Ok((only_path_argument(Self::NAME, args)?, ()))
    }

    fn transform(_: &(), channels: &[Option<&str>], out: &mut PathWriter<'_>) -> Result<()> {
        frequency_path(channels, out)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `path_frequency` function, shared by every registration.
pub fn path_frequency_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(PathFrequencyFunc::new())));
    Arc::clone(&INSTANCE)
}

/// Writes `channel(count)` for each channel at its first touch; a NULL channel is an error.
pub(crate) fn frequency_path(channels: &[Option<&str>], out: &mut PathWriter<'_>) -> Result<()> {
    let mut counts: HashMap<&str, usize> = HashMap::with_capacity(channels.len());
    for (position, channel) in channels.iter().enumerate() {
        let Some(channel) = channel else {
            return exec_err!(
                "path_frequency: NULL channel at position {} of a path; replace NULL channels before building paths (e.g. coalesce(channel, '(none)'))",
                position + 1
            );
        };
        *counts.entry(channel).or_default() += 1;
    }
    for channel in channels.iter().flatten() {
        // Removing the count marks the channel as written.
        if let Some(count) = counts.remove(channel) {
            out.push_counted(channel, count);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::test_paths::{
        assert_paths, assert_snowplow_vectors, invoke_path_function, path,
        path_array_in_every_encoding, try_invoke_path_function,
    };

    #[test]
    fn matches_snowplow_vectors() {
        assert_snowplow_vectors(
            &PathFrequencyFunc::new(),
            |path| vec![path],
            |v| v.frequency,
        );
    }

    #[test]
    fn fractribution_documented_example() {
        // google/fractribution py/templates/path_transforms.sql (Apache-2.0).
        for array in path_array_in_every_encoding(&[path("D > A > B > B > C > D > C > C")]) {
            let result =
                invoke_path_function(&PathFrequencyFunc::new(), vec![ColumnarValue::Array(array)]);
            assert_paths(&result, &[path("D(2) > A(1) > B(2) > C(3)")]);
        }
    }

    #[test]
    fn null_and_empty_paths() {
        for array in path_array_in_every_encoding(&[None, Some(vec![])]) {
            let result =
                invoke_path_function(&PathFrequencyFunc::new(), vec![ColumnarValue::Array(array)]);
            assert_paths(&result, &[None, Some(vec![])]);
        }
    }

    #[test]
    fn null_channel_is_an_error() {
        for array in path_array_in_every_encoding(&[Some(vec![Some("a"), None])]) {
            let err = try_invoke_path_function(
                &PathFrequencyFunc::new(),
                vec![ColumnarValue::Array(array)],
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("NULL channel at position 2"), "{err}");
        }
    }
}
