//! `attribution_weights(model, channels, touch_ts, conversion_ts [, parameter])`: the
//! rule-based credit of each touch of an already-built path, as a list.

use std::ops::Range;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Builder, ListBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::arguments::{invoked_literal, planned_literal};
use crate::attribution::channel_paths::{DecodedPaths, PathColumn, check_path_type};
use crate::attribution::weights::{
    Journey, RuleModel, check_parameter_type, common_time_type, fill_untimed_weights, fill_weights,
};

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"The share of a conversion that each touch of its path earns under a rule-based model, for paths already grouped into lists (one row per conversion): element `i` of the result is the weight of touch `i`. The models, their parameters and their rules are those of `attribution_weight`; weights sum to 1 for every model but `participation`.

This is the form for big data: build the paths with `GROUP BY conversion_id` and `array_agg(... ORDER BY touch_ts, touch_id)` (aggregation spills to disk, the window form cannot), then `unnest` the channels and weights together. For credit summed per channel, the aggregate `attribution_channel_credit` reads the same lists without unnesting them (faster).

Every model but `time_decay` depends only on the touches' positions (and channels), so `touch_ts` and `conversion_ts` may be left out: `attribution_weights(model, channels [, parameter])` reads no time column and skips the time checks (the third argument tells the forms apart: a list is `touch_ts`). `time_decay` without them is a planning error.

A NULL `channels`, `touch_ts` or `conversion_ts` gives NULL; an empty path gives an empty list (a conversion without touches, to be reported as unattributed). Execution errors: lists of different lengths, a NULL touch time, touches not in time order, a touch after the conversion. An unknown model or a bad parameter is a planning error."#,
    syntax_example = "attribution_weights(model, channels, touch_ts, conversion_ts[, parameter]), or without times: attribution_weights(model, channels[, parameter])",
    sql_example = r#"```sql
> select attribution_weights('j_shaped',
    ['paid_search', 'social', 'email', 'display'],
    [timestamp '2026-11-01 10:00:00', timestamp '2026-11-04 10:00:00',
     timestamp '2026-11-10 09:00:00', timestamp '2026-11-10 09:30:00'],
    timestamp '2026-11-10 10:00:00') as weights;
+----------------------+
| weights              |
+----------------------+
| [0.2, 0.1, 0.1, 0.6] |
+----------------------+
> select attribution_weights('position_based', ['paid_search', 'social', 'email']) as weights;
+-----------------+
| weights         |
+-----------------+
| [0.4, 0.2, 0.4] |
+-----------------+
```"#,
    argument(
        name = "model",
        description = "String literal: the model name, as for `attribution_weight`."
    ),
    argument(
        name = "channels",
        description = "The path: the touches' channels in time order, a list (any list type) of strings (any string type)."
    ),
    argument(
        name = "touch_ts",
        description = "The touches' times in the same order, a list of timestamps (any unit and time zone) or dates. Needed by `time_decay` only; left out together with `conversion_ts` for the other models."
    ),
    argument(
        name = "conversion_ts",
        description = "The conversion time; no touch may be after it."
    ),
    argument(
        name = "parameter",
        description = "Optional literal: the half-life of `time_decay` (`INTERVAL '3 days'` or a number of days, default 7 days) or the shares `'first,middle,last'` of `custom`."
    ),
    related_udf(name = "attribution_weight"),
    related_udf(name = "attribution_channel_credit")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AttributionWeightsFunc {
    signature: Signature,
}

impl Default for AttributionWeightsFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl AttributionWeightsFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

const FUNCTION: &str = "attribution_weights";
const USAGE: &str = "attribution_weights(model, channels, touch_ts, conversion_ts [, parameter]), or attribution_weights(model, channels [, parameter]) for a model that reads no times";
const MODEL_ARGUMENT: &str = "model";

/// The list type of the result: weights are never NULL.
fn weights_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float64, false)))
}

/// The two argument lists of the list-form rule models: with the touches' and the conversion's
/// times (`model, path, touch_ts, conversion_ts, …`), which every model accepts, or without them
/// (`model, path, …`) for the models whose weights depend only on the touches' positions and
/// channels, which then read no time column at all. The third argument tells them apart: a list
/// is `touch_ts` (so is an untyped `NULL` followed by a time: a model parameter is never a
/// time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathsForm {
    Timed,
    Untimed,
}

impl PathsForm {
    /// The form of a call with (coerced or not) argument types `arg_types`.
    pub(crate) fn of(arg_types: &[DataType]) -> Self {
        match arg_types.get(2) {
            Some(
                DataType::List(_)
                | DataType::LargeList(_)
                | DataType::FixedSizeList(_, _)
                | DataType::ListView(_)
                | DataType::LargeListView(_),
            ) => Self::Timed,
            Some(DataType::Null)
                if arg_types.get(3).is_some_and(|conversion| {
                    matches!(
                        conversion,
                        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
                    )
                }) =>
            {
                Self::Timed
            }
            _ => Self::Untimed,
        }
    }

    /// The number of arguments before the optional ones.
    pub(crate) fn fixed_arguments(self) -> usize {
        match self {
            Self::Timed => 4,
            Self::Untimed => 2,
        }
    }

    /// A planning error when `model` needs the times this form does not give.
    pub(crate) fn check_model(self, function: &str, model: &RuleModel) -> Result<()> {
        if self == Self::Untimed && model.uses_times() {
            return plan_err!(
                "{function}: model 'time_decay' needs the touch times: pass touch_ts and conversion_ts after the path"
            );
        }
        Ok(())
    }
}

/// The coerced types of the first arguments of the list-form rule models, `(model, path)` or
/// `(model, path, touch_ts, conversion_ts)` (see [`PathsForm`]), and the up to `optional`
/// arguments after them; `path_argument` names the path in errors.
pub(crate) fn coerce_rule_paths<'a>(
    function: &str,
    usage: &str,
    arg_types: &'a [DataType],
    optional: usize,
    path_argument: &str,
) -> Result<(PathsForm, Vec<DataType>, &'a [DataType])> {
    let form = PathsForm::of(arg_types);
    let fixed = form.fixed_arguments();
    if arg_types.len() < fixed || arg_types.len() > fixed + optional {
        let with_times = match form {
            PathsForm::Timed => "",
            PathsForm::Untimed => " without touch times",
        };
        return plan_err!(
            "{function}: expected {fixed} to {} arguments{with_times}, got {}; usage: {usage}",
            fixed + optional,
            arg_types.len()
        );
    }
    let (fixed_types, rest) = arg_types.split_at(fixed);
    let model = &fixed_types[0];
    if !matches!(
        model,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        return plan_err!(
            "{function}: argument '{MODEL_ARGUMENT}' must be a string literal, got {model}"
        );
    }
    let path = &fixed_types[1];
    check_path_type(function, path_argument, path)?;
    let mut types = vec![model.clone(), path.clone()];
    if let [_, _, touch, conversion] = fixed_types {
        let mut times = vec![("conversion_ts", conversion)];
        if let Some(item) = touch_item_type(function, touch)? {
            times.push(("touch_ts", item));
        }
        let time = common_time_type(function, &times)?;
        types.extend([touch_list_type(time.clone()), time]);
    }
    Ok((form, types, rest))
}

/// The list type `touch_ts` is cast to.
fn touch_list_type(time: DataType) -> DataType {
    DataType::new_list(time, true)
}

/// The item type of a list type (`None` for `Null`), or a planning error.
fn touch_item_type<'a>(function: &str, data_type: &'a DataType) -> Result<Option<&'a DataType>> {
    match data_type {
        DataType::Null => Ok(None),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::FixedSizeList(item, _)
        | DataType::ListView(item)
        | DataType::LargeListView(item) => Ok(Some(item.data_type())),
        other => plan_err!(
            "{function}: argument 'touch_ts' must be a list of timestamps (e.g. array_agg(touch_ts ORDER BY touch_ts)), got {other}"
        ),
    }
}

/// The model and its parameter from the literal arguments.
fn model_of(name: Option<&str>, parameter: Option<&ScalarValue>) -> Result<RuleModel> {
    let Some(name) = name else {
        return plan_err!("{FUNCTION}: argument '{MODEL_ARGUMENT}' must not be NULL");
    };
    RuleModel::parse(FUNCTION, name, parameter)
}

impl ScalarUDFImpl for AttributionWeightsFunc {
    fn name(&self) -> &str {
        FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let (_, mut types, rest) = coerce_rule_paths(FUNCTION, USAGE, arg_types, 1, "channels")?;
        if let [parameter] = rest {
            check_parameter_type(FUNCTION, parameter)?;
            types.push(parameter.clone());
        }
        Ok(types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("{FUNCTION}: return_field_from_args is used instead")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let arg_types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|field| field.data_type().clone())
            .collect();
        let form = PathsForm::of(&arg_types);
        let fixed = form.fixed_arguments();
        let parameter = match args.scalar_arguments.get(fixed) {
            None => None,
            Some(Some(value)) => Some(*value),
            Some(None) => {
                return plan_err!("{FUNCTION}: the model parameter must be a literal");
            }
        };
        let model = model_of(
            planned_literal(FUNCTION, MODEL_ARGUMENT, &args, 0)?,
            parameter,
        )?;
        form.check_model(FUNCTION, &model)?;
        let nullable = args
            .arg_fields
            .iter()
            .take(fixed)
            .skip(1)
            .any(|field| field.is_nullable());
        Ok(Arc::new(Field::new(FUNCTION, weights_type(), nullable)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arg_types: Vec<DataType> = args.args.iter().map(ColumnarValue::data_type).collect();
        let form = PathsForm::of(&arg_types);
        let fixed = form.fixed_arguments();
        let parameter = match args.args.get(fixed) {
            None => None,
            Some(ColumnarValue::Scalar(value)) => Some(value),
            Some(ColumnarValue::Array(_)) => {
                return exec_err!("{FUNCTION}: the model parameter must be a literal");
            }
        };
        let model = model_of(
            invoked_literal(FUNCTION, MODEL_ARGUMENT, &args.args, 0)?,
            parameter,
        )?;
        form.check_model(FUNCTION, &model)?;
        let Some(inputs) = args.args.get(1..fixed) else {
            return exec_err!("{FUNCTION}: expected at least {fixed} arguments; usage: {USAGE}");
        };
        let rows = args.number_rows;
        let all_scalar = inputs
            .iter()
            .all(|arg| matches!(arg, ColumnarValue::Scalar(_)));
        let inputs = inputs
            .iter()
            .map(|arg| arg.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let weights = weights_of_paths(&model, &inputs)?;
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &weights, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(weights))
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `attribution_weights` function, shared by every registration.
pub fn attribution_weights_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(AttributionWeightsFunc::new())));
    Arc::clone(&INSTANCE)
}

/// The weights of every row's path; `inputs` are the channels, or the channels, touch times and
/// conversion times.
fn weights_of_paths(model: &RuleModel, inputs: &[ArrayRef]) -> Result<ArrayRef> {
    let rows = inputs.first().map_or(0, |channels| channels.len());
    let mut builder = ListBuilder::with_capacity(Float64Builder::new(), rows)
        .with_field(Arc::new(Field::new_list_field(DataType::Float64, false)));
    let append = |_, weighted: Option<(Range<usize>, &[f64])>| {
        match weighted {
            Some((_, weights)) => {
                builder.values().append_slice(weights);
                builder.append(true);
            }
            None => builder.append_null(),
        }
        Ok(())
    };
    match inputs {
        [channels] => {
            let decoded = DecodedPaths::try_new(FUNCTION, channels)?;
            for_each_untimed_row(FUNCTION, &decoded.column(), model, append)?;
        }
        [channels, touch, conversion] => {
            TimedPaths::try_new(FUNCTION, channels, touch, conversion)?
                .for_each_row(model, append)?;
        }
        _ => {
            return internal_err!(
                "{FUNCTION}: expected 1 or 3 path columns, got {}",
                inputs.len()
            );
        }
    }
    Ok(Arc::new(builder.finish()))
}

/// Calls `visit(row, weighted)` for every row of `paths` in order, with `weighted` the indices
/// of the path's channels in the list values (see [`PathColumn::channel_range`]) and the weight
/// of each under `model`, a model that reads no times, or `None` when the path is NULL: the
/// untimed counterpart of [`TimedPaths::for_each_row`].
pub(crate) fn for_each_untimed_row(
    function: &'static str,
    paths: &PathColumn<'_>,
    model: &RuleModel,
    mut visit: impl FnMut(usize, Option<(Range<usize>, &[f64])>) -> Result<()>,
) -> Result<()> {
    let mut path = Vec::new();
    let mut weights = Vec::new();
    // Most models need only the number of touches: the channel strings are read only for those
    // that look at them.
    let uses_channels = model.uses_channels();
    let mut by_length = LengthWeights::new(function, model);
    for row in 0..paths.len() {
        let Some(range) = paths.channel_range(row) else {
            visit(row, None)?;
            continue;
        };
        if !uses_channels {
            let weights = by_length.get(range.len())?;
            visit(row, Some((range, weights)))?;
            continue;
        }
        paths.read(row, &mut path);
        fill_untimed_weights(&function, model, range.len(), &path, &mut weights)?;
        visit(row, Some((range, &weights)))?;
    }
    Ok(())
}

/// The weights of a model that reads neither times nor channels, by number of touches: computed
/// once per length (most paths are short), not once per path.
pub(crate) struct LengthWeights<'m> {
    function: &'static str,
    model: &'m RuleModel,
    /// The weights of every length `1..=filled` back to back, `n` touches at `n(n-1)/2` (see
    /// [`ShortWeights`]); `filled` is at most [`MAX_CACHED_LENGTH`].
    short: Vec<f64>,
    filled: usize,
    /// The weights of the lengths up to [`PADDED_LENGTH`] again, length `n` in row `n` followed by
    /// zeros (see [`ShortWeights::padded`]).
    padded: [[f64; PADDED_LENGTH]; PADDED_LENGTH + 1],
    /// The weights of the last path longer than that.
    long: Vec<f64>,
}

/// The length of the rows of [`ShortWeights::padded`]: most paths are at most this long.
pub(crate) const PADDED_LENGTH: usize = 8;

/// The longest path whose weights [`LengthWeights`] keeps for the next path of the same length:
/// the kept weights grow with the square of it.
const MAX_CACHED_LENGTH: usize = 64;

/// Where the weights of `n ≥ 1` touches start in [`LengthWeights::short`].
const fn triangle(n: usize) -> usize {
    n * (n - 1) / 2
}

impl<'m> LengthWeights<'m> {
    /// Weights under `model`, which must not [use channels](RuleModel::uses_channels) or
    /// times; errors name `function`.
    pub(crate) fn new(function: &'static str, model: &'m RuleModel) -> Self {
        Self {
            function,
            model,
            short: Vec::new(),
            filled: 0,
            padded: [[0.0; PADDED_LENGTH]; PADDED_LENGTH + 1],
            long: Vec::new(),
        }
    }

    /// The weight of each of `touches` touches.
    #[inline]
    pub(crate) fn get(&mut self, touches: usize) -> Result<&[f64]> {
        // Looked up once per path: the hit is inlined into the caller's loop, the rest is not.
        if (1..=self.filled).contains(&touches) {
            let start = triangle(touches);
            return Ok(&self.short[start..start + touches]);
        }
        self.compute(touches)
    }

    #[inline(never)]
    fn compute(&mut self, touches: usize) -> Result<&[f64]> {
        if touches > MAX_CACHED_LENGTH || touches == 0 {
            fill_untimed_weights(&self.function, self.model, touches, &[], &mut self.long)?;
            return Ok(&self.long);
        }
        self.fill_to(touches)?;
        let start = triangle(touches);
        Ok(&self.short[start..start + touches])
    }

    /// Computes the weights of every length up to `touches` (at most [`MAX_CACHED_LENGTH`]) not
    /// computed yet.
    fn fill_to(&mut self, touches: usize) -> Result<()> {
        let mut weights = Vec::new();
        for n in self.filled + 1..=touches.min(MAX_CACHED_LENGTH) {
            fill_untimed_weights(&self.function, self.model, n, &[], &mut weights)?;
            self.short.extend_from_slice(&weights);
            if let Some(row) = self.padded.get_mut(n) {
                row[..n].copy_from_slice(&weights);
            }
            self.filled = n;
        }
        Ok(())
    }

    /// The weights of every length up to `longest` (at most [`MAX_CACHED_LENGTH`]), looked up
    /// without a miss, and the weights of the longer ones.
    pub(crate) fn split(
        &mut self,
        longest: usize,
    ) -> Result<(ShortWeights<'_>, LongWeights<'_, 'm>)> {
        self.fill_to(longest)?;
        let Self {
            function,
            model,
            short,
            filled,
            padded,
            long,
        } = self;
        let short = ShortWeights {
            flat: short,
            filled: *filled,
            padded,
        };
        let long = LongWeights {
            function,
            model,
            weights: long,
        };
        Ok((short, long))
    }
}

/// The weights of the lengths `1..=filled` of a [`LengthWeights`].
#[derive(Clone, Copy)]
pub(crate) struct ShortWeights<'a> {
    flat: &'a [f64],
    filled: usize,
    padded: &'a [[f64; PADDED_LENGTH]; PADDED_LENGTH + 1],
}

impl<'a> ShortWeights<'a> {
    /// The weights of `touches` touches, `None` when 0 or longer than the longest kept.
    #[inline(always)]
    pub(crate) fn get(self, touches: usize) -> Option<&'a [f64]> {
        // One comparison for both ends: 0 wraps around to the largest value.
        if touches.wrapping_sub(1) < self.filled {
            let start = triangle(touches);
            self.flat.get(start..start + touches)
        } else {
            None
        }
    }

    /// The weights of `touches` touches followed by zeros, `None` when 0 or more than
    /// [`PADDED_LENGTH`]: a caller can copy a whole row, whatever the length, without a branch
    /// that depends on it.
    #[inline(always)]
    pub(crate) fn padded(self, touches: usize) -> Option<&'a [f64; PADDED_LENGTH]> {
        if touches.wrapping_sub(1) < self.filled.min(PADDED_LENGTH) {
            self.padded.get(touches)
        } else {
            None
        }
    }
}

/// The weights of paths longer than those of [`ShortWeights`], computed per path.
pub(crate) struct LongWeights<'a, 'm> {
    function: &'a &'static str,
    model: &'a &'m RuleModel,
    weights: &'a mut Vec<f64>,
}

impl LongWeights<'_, '_> {
    /// The weights of `touches` touches.
    #[inline(never)]
    pub(crate) fn get(&mut self, touches: usize) -> Result<&[f64]> {
        fill_untimed_weights(self.function, self.model, touches, &[], self.weights)?;
        Ok(self.weights)
    }
}

/// A batch of paths with their touch and conversion times: the list-form input of the rule
/// models, shared by `attribution_weights` and `attribution_channel_credit`.
pub(crate) struct TimedPaths {
    function: &'static str,
    decoded: DecodedPaths,
    /// `List<Timestamp(µs)>`.
    touch: ArrayRef,
    /// `Timestamp(µs)`.
    conversion: ArrayRef,
}

impl TimedPaths {
    /// Decodes the paths and brings the times to microseconds (see [`common_time_type`]);
    /// errors name `function`.
    pub(crate) fn try_new(
        function: &'static str,
        channels: &ArrayRef,
        touch: &ArrayRef,
        conversion: &ArrayRef,
    ) -> Result<Self> {
        // The planner has cast the times already (see `coerce_types`); this makes a direct call
        // with other time types behave the same (a cast to the same type is free).
        let mut times = vec![("conversion_ts", conversion.data_type())];
        if let Some(item) = touch_item_type(function, touch.data_type())? {
            times.push(("touch_ts", item));
        }
        let time = common_time_type(function, &times)?;
        let touch = cast(touch, &touch_list_type(time.clone()))?;
        let conversion = cast(conversion, &time)?;
        let decoded = DecodedPaths::try_new(function, channels)?;
        let rows = decoded.column().len();
        if rows != touch.len() || conversion.len() != touch.len() {
            return exec_err!(
                "{function}: arguments have different numbers of rows ({rows}, {}, {})",
                touch.len(),
                conversion.len()
            );
        }
        Ok(Self {
            function,
            decoded,
            touch,
            conversion,
        })
    }

    /// The channels of the paths.
    pub(crate) fn paths(&self) -> PathColumn<'_> {
        self.decoded.column()
    }

    /// Whether the touch times of `row` are NULL.
    pub(crate) fn touch_is_null(&self, row: usize) -> bool {
        self.touch.is_null(row)
    }

    /// The conversion time of `row` in microseconds since the epoch, `None` when NULL.
    pub(crate) fn conversion_micros(&self, row: usize) -> Option<i64> {
        let conversion = self.conversion.as_primitive::<TimestampMicrosecondType>();
        conversion.is_valid(row).then(|| conversion.value(row))
    }

    /// Calls `visit(row, weighted)` for every row in order, with `weighted` the indices of the
    /// path's channels in the list values (see [`PathColumn::channel_range`]) and the weight of
    /// each under `model`, or `None` when the path, the touch times or the conversion time is
    /// NULL.
    ///
    /// Errors: a NULL touch time in a path, a path and touch times of different lengths, and
    /// those of [`fill_weights`].
    pub(crate) fn for_each_row(
        &self,
        model: &RuleModel,
        mut visit: impl FnMut(usize, Option<(Range<usize>, &[f64])>) -> Result<()>,
    ) -> Result<()> {
        let function = self.function;
        let touch = self.touch.as_list::<i32>();
        let touch_offsets = touch.value_offsets();
        let touch_times = touch.values().as_primitive::<TimestampMicrosecondType>();
        let touch_nulls = touch_times.nulls().filter(|nulls| nulls.null_count() > 0);
        let conversion = self.conversion.as_primitive::<TimestampMicrosecondType>();
        let paths = self.decoded.column();
        let mut path = Vec::new();
        let mut weights = Vec::new();
        // Most models need only the number of touches: the channel strings are read only for
        // those that look at them.
        let uses_channels = model.uses_channels();
        for row in 0..touch.len() {
            let Some(channel_range) = paths.channel_range(row) else {
                visit(row, None)?;
                continue;
            };
            if touch.is_null(row) || conversion.is_null(row) {
                visit(row, None)?;
                continue;
            }
            let range = touch_offsets[row] as usize..touch_offsets[row + 1] as usize;
            if touch_nulls.is_some_and(|nulls| range.clone().any(|index| nulls.is_null(index))) {
                return exec_err!(
                    "{function}: a touch time in a path is NULL; every touch needs a time"
                );
            }
            if range.len() != channel_range.len() {
                return exec_err!(
                    "{function}: a path has {} channels but {} touch times; build both lists from the same rows",
                    channel_range.len(),
                    range.len()
                );
            }
            if uses_channels {
                paths.read(row, &mut path);
            }
            let journey = Journey {
                touch_micros: &touch_times.values()[range],
                channels: &path,
                conversion_micros: conversion.value(row),
            };
            fill_weights(&function, model, &journey, &mut weights)?;
            visit(row, Some((channel_range, &weights)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::test_paths::{
        invoke_path_function, path, path_array_in_every_encoding, try_invoke_path_function,
    };
    use crate::test_harness::literal;
    use datafusion::arrow::array::{ListArray, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::{Float64Type, TimestampNanosecondType};

    const DAY_NANOS: i64 = 86_400_000_000_000;

    /// Touch times in days after the epoch, as nanosecond lists.
    fn touch_days(paths: &[Option<Vec<i64>>]) -> ColumnarValue {
        let lists = ListArray::from_iter_primitive::<TimestampNanosecondType, _, _>(
            paths.iter().map(|p| {
                p.as_ref()
                    .map(|days| days.iter().map(|d| Some(d * DAY_NANOS)).collect::<Vec<_>>())
            }),
        );
        ColumnarValue::Array(Arc::new(lists))
    }

    fn conversion_day(day: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(
            Some(day * DAY_NANOS),
            None,
        ))
    }

    fn weights_of(result: &ColumnarValue, rows: usize) -> Vec<Option<Vec<f64>>> {
        let array = result.to_array(rows).unwrap();
        assert_eq!(array.data_type(), &weights_type());
        array
            .as_list::<i32>()
            .iter()
            .map(|list| list.map(|l| l.as_primitive::<Float64Type>().values().to_vec()))
            .collect()
    }

    fn adobe_path() -> ColumnarValue {
        ColumnarValue::Array(
            path_array_in_every_encoding(&[path("paid_search > social > email > display")])
                .remove(0),
        )
    }

    #[test]
    fn adobe_examples() {
        // Adobe Analytics, "Attribution models": paid search 9 days, social 6 days, email and
        // display 0 days before a $50 order. J-shaped: $10, $5, $5, $30; time decay with a
        // 7-day half-life: 13.8 %, 18.6 %, 33.8 %, 33.8 %.
        let function = AttributionWeightsFunc::new();
        let j = invoke_path_function(
            &function,
            vec![
                literal("j_shaped"),
                adobe_path(),
                touch_days(&[Some(vec![1, 4, 10, 10])]),
                conversion_day(10),
            ],
        );
        let dollars: Vec<f64> = weights_of(&j, 1)[0]
            .as_ref()
            .unwrap()
            .iter()
            .map(|w| w * 50.0)
            .collect();
        assert_eq!(dollars, [10.0, 5.0, 5.0, 30.0]);
        let decay = invoke_path_function(
            &function,
            vec![
                literal("time_decay"),
                adobe_path(),
                touch_days(&[Some(vec![1, 4, 10, 10])]),
                conversion_day(10),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(7))),
            ],
        );
        let percent: Vec<f64> = weights_of(&decay, 1)[0]
            .as_ref()
            .unwrap()
            .iter()
            .map(|w| (w * 1000.0).round() / 10.0)
            .collect();
        assert_eq!(percent, [13.8, 18.6, 33.8, 33.8]);
    }

    #[test]
    fn last_non_direct_reads_channels_in_every_encoding() {
        let paths = [
            path("email > Direct > direct"),
            path("Direct > DIRECT"),
            None,
            Some(vec![]),
            Some(vec![Some("direct"), None]),
        ];
        let touches = touch_days(&[
            Some(vec![1, 2, 3]),
            Some(vec![1, 2]),
            Some(vec![1]),
            Some(vec![]),
            Some(vec![1, 2]),
        ]);
        for channels in path_array_in_every_encoding(&paths) {
            let data_type = channels.data_type().clone();
            let result = invoke_path_function(
                &AttributionWeightsFunc::new(),
                vec![
                    literal("last_non_direct"),
                    ColumnarValue::Array(channels),
                    touches.clone(),
                    conversion_day(5),
                ],
            );
            assert_eq!(
                weights_of(&result, 5),
                vec![
                    Some(vec![1.0, 0.0, 0.0]),
                    Some(vec![0.0, 1.0]),
                    None,
                    Some(vec![]),
                    Some(vec![0.0, 1.0]),
                ],
                "{data_type}"
            );
        }
    }

    #[test]
    fn scalars_give_a_scalar_and_nulls_give_null() {
        let channels = ScalarValue::try_from_array(
            &path_array_in_every_encoding(&[path("a > b")]).remove(0),
            0,
        )
        .unwrap();
        let touches =
            ScalarValue::try_from_array(&touch_days(&[Some(vec![1, 2])]).to_array(1).unwrap(), 0)
                .unwrap();
        let result = invoke_path_function(
            &AttributionWeightsFunc::new(),
            vec![
                literal("linear"),
                ColumnarValue::Scalar(channels.clone()),
                ColumnarValue::Scalar(touches.clone()),
                conversion_day(3),
            ],
        );
        let ColumnarValue::Scalar(weights) = &result else {
            panic!("scalars in must give a scalar out")
        };
        assert_eq!(
            weights_of(&ColumnarValue::Scalar(weights.clone()), 1),
            vec![Some(vec![0.5, 0.5])]
        );
        let result = invoke_path_function(
            &AttributionWeightsFunc::new(),
            vec![
                literal("linear"),
                ColumnarValue::Scalar(channels),
                ColumnarValue::Scalar(touches),
                ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(None, None)),
            ],
        );
        assert_eq!(weights_of(&result, 1), vec![None]);
    }

    #[test]
    fn time_zones_and_units_are_normalised() {
        // touches in nanoseconds UTC, the conversion a naive microsecond time read as UTC
        let touches =
            TimestampNanosecondArray::from(vec![DAY_NANOS, 2 * DAY_NANOS]).with_timezone("UTC");
        let lists = ListArray::new(
            Arc::new(Field::new_list_field(touches.data_type().clone(), true)),
            datafusion::arrow::buffer::OffsetBuffer::from_lengths([2]),
            Arc::new(touches),
            None,
        );
        let result = invoke_path_function(
            &AttributionWeightsFunc::new(),
            vec![
                literal("time_decay"),
                adobe_path_of(&["a", "b"]),
                ColumnarValue::Array(Arc::new(lists)),
                ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
                    Some(2 * DAY_NANOS / 1000),
                    None,
                )),
                ColumnarValue::Scalar(ScalarValue::Float64(Some(1.0))),
            ],
        );
        let weights = weights_of(&result, 1)[0].clone().unwrap();
        assert!(
            (weights[0] - 1.0 / 3.0).abs() < 1e-15 && (weights[1] - 2.0 / 3.0).abs() < 1e-15,
            "{weights:?}"
        );
    }

    fn adobe_path_of(channels: &[&str]) -> ColumnarValue {
        let text = channels.join(" > ");
        ColumnarValue::Array(path_array_in_every_encoding(&[path(&text)]).remove(0))
    }

    #[test]
    fn bad_rows_and_arguments_are_errors() {
        let function = AttributionWeightsFunc::new();
        let run = |model: &str, channels: &[&str], days: Vec<i64>, conversion: i64| {
            try_invoke_path_function(
                &function,
                vec![
                    literal(model),
                    adobe_path_of(channels),
                    touch_days(&[Some(days)]),
                    conversion_day(conversion),
                ],
            )
            .unwrap_err()
            .to_string()
        };
        let err = run("linear", &["a", "b"], vec![1], 5);
        assert!(
            err.contains("a path has 2 channels but 1 touch times"),
            "{err}"
        );
        let err = run("linear", &["a", "b"], vec![1, 6], 5);
        assert!(err.contains("attribution_weights: touch 2 of 2 at 1970-01-07 00:00:00 is after its conversion at 1970-01-06 00:00:00"), "{err}");
        let err = run("linear", &["a", "b"], vec![2, 1], 5);
        assert!(err.contains("touches are not in time order"), "{err}");
        let err = run("shapley", &["a"], vec![1], 5);
        assert!(
            err.contains("unknown attribution model 'shapley'; valid models: first_touch,"),
            "{err}"
        );

        let null_touch =
            ListArray::from_iter_primitive::<TimestampNanosecondType, _, _>([Some(vec![
                Some(1),
                None,
            ])]);
        let err = try_invoke_path_function(
            &function,
            vec![
                literal("linear"),
                adobe_path_of(&["a", "b"]),
                ColumnarValue::Array(Arc::new(null_touch)),
                conversion_day(5),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("a touch time in a path is NULL"), "{err}");

        let err = function
            .coerce_types(&[
                DataType::Utf8,
                DataType::new_list(DataType::Utf8, true),
                DataType::new_list(DataType::Int64, true),
                DataType::Date32,
            ])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("argument 'touch_ts' must be a timestamp or a date, got Int64"),
            "{err}"
        );
    }

    #[test]
    fn the_form_without_times_gives_the_timed_weights() {
        let function = AttributionWeightsFunc::new();
        let paths = [
            path("email > Direct > direct"),
            None,
            Some(vec![]),
            path("a > b > a > c"),
            Some(vec![Some("direct"), None]),
        ];
        let touches = touch_days(&[
            Some(vec![1, 2, 3]),
            Some(vec![1]),
            Some(vec![]),
            Some(vec![1, 2, 3, 4]),
            Some(vec![1, 2]),
        ]);
        let models = [
            ("first_touch", None),
            ("last_touch", None),
            ("last_non_direct", None),
            ("linear", None),
            ("position_based", None),
            ("j_shaped", None),
            ("inverse_j", None),
            ("custom", Some(literal("0.1,0.3,0.6"))),
            ("participation", None),
        ];
        for channels in path_array_in_every_encoding(&paths) {
            let data_type = channels.data_type().clone();
            for (model, parameter) in &models {
                let mut timed = vec![
                    literal(model),
                    ColumnarValue::Array(Arc::clone(&channels)),
                    touches.clone(),
                    conversion_day(5),
                ];
                let mut untimed = vec![literal(model), ColumnarValue::Array(Arc::clone(&channels))];
                timed.extend(parameter.clone());
                untimed.extend(parameter.clone());
                assert_eq!(
                    weights_of(&invoke_path_function(&function, untimed), 5),
                    weights_of(&invoke_path_function(&function, timed), 5),
                    "{model} over {data_type}"
                );
            }
        }
        let err = try_invoke_path_function(&function, vec![literal("time_decay"), adobe_path()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("attribution_weights: model 'time_decay' needs the touch times"),
            "{err}"
        );
        let err = function
            .coerce_types(&[DataType::Utf8])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected 2 to 3 arguments without touch times, got 1"),
            "{err}"
        );
    }

    #[test]
    fn length_weights_match_the_weights_of_each_length() -> Result<()> {
        let models = [
            RuleModel::parse("t", "linear", None)?,
            RuleModel::parse("t", "position_based", None)?,
            RuleModel::parse("t", "last_touch", None)?,
        ];
        for model in &models {
            let expected = |n: usize| -> Result<Vec<f64>> {
                let mut weights = Vec::new();
                fill_untimed_weights(&"t", model, n, &[], &mut weights)?;
                Ok(weights)
            };
            // Asked one length at a time, out of order, across the kept limit and back.
            let mut lengths = LengthWeights::new("t", model);
            for n in [3, 1, 0, 64, 65, 2, 100, 7, 64, 0, 65] {
                assert_eq!(lengths.get(n)?, expected(n)?, "{model:?}, {n} touches");
            }
            // Split at a batch's longest path: every length up to it is looked up, the longer
            // ones computed per path.
            let mut lengths = LengthWeights::new("t", model);
            let (short, mut long) = lengths.split(5)?;
            assert_eq!(short.get(0), None);
            assert_eq!(short.get(6), None);
            for n in 1..=5 {
                assert_eq!(
                    short.get(n),
                    Some(&expected(n)?[..]),
                    "{model:?}, {n} touches"
                );
                let mut padded = expected(n)?;
                padded.resize(PADDED_LENGTH, 0.0);
                assert_eq!(short.padded(n).map(|row| &row[..]), Some(&padded[..]));
            }
            assert_eq!(short.padded(0), None);
            assert_eq!(short.padded(6), None, "not filled yet");
            assert_eq!(long.get(70)?, expected(70)?);
            let (short, _) = lengths.split(200)?;
            assert_eq!(short.get(MAX_CACHED_LENGTH), Some(&expected(64)?[..]));
            assert_eq!(short.get(MAX_CACHED_LENGTH + 1), None);
            assert!(short.padded(PADDED_LENGTH).is_some());
            assert_eq!(short.padded(PADDED_LENGTH + 1), None);
        }
        Ok(())
    }
}
