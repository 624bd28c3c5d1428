//! `attribution_weight(model, touch_ts, conversion_ts [, parameter | channel])`: the rule-based
//! credit of each touch, as a window function over the touches of one conversion.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    Documentation, PartitionEvaluator, Signature, Volatility, WindowUDF, WindowUDFImpl,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion_macros::user_doc;

use crate::attribution::channel_paths::{DecodedChannels, is_channel_type};
use crate::attribution::weights::{
    Journey, Micros, ModelName, RuleModel, check_parameter_type, common_time_type, fill_weights,
};
use crate::string_kernel::scalar_str;

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"The share of a conversion that each of its touches earns under a rule-based model, as a window function over the touches of one conversion: `PARTITION BY` the conversion, `ORDER BY` the touch time (and a touch id to break ties). Weights of one conversion sum to 1 for every model but `participation`; multiply by the revenue for revenue credit.

Models (`model`, a string literal, case-insensitive): `first_touch`, `last_touch`, `last_non_direct` (the last touch whose channel is not direct — `direct` or `(direct)`, any case; the last touch when all are direct; a NULL channel is not direct), `linear`, `position_based` (40 % first, 40 % last, 20 % shared by the middle; 1 touch → 1, 2 touches → ½, ½), `j_shaped` (20/20/60; 2 touches → ¼, ¾), `inverse_j` (60/20/20; 2 touches → ¾, ¼), `time_decay` (weight 2^(−Δt / half-life), Δt from touch to conversion, normalised; half-life 7 days unless given), `custom` (first/middle/last shares given, split like `position_based`), `participation` (1 for the first touch of each distinct channel, 0 for repeats: the credit of a conversion is its number of channels, inflated by design — never sum it with the other models).

The fourth argument depends on the model: the half-life for `time_decay` (`INTERVAL '3 days'` or a number of days), the shares `'first,middle,last'` (summing to 1) for `custom`, the touch's channel column for `last_non_direct` and `participation`; the other models take none. An unknown model or a bad parameter is a planning error.

Execution errors, never silently dropped rows: a touch after its conversion, touches not in time order (missing `ORDER BY`), a NULL touch or conversion time, or a conversion time that differs within one partition. Timestamps of any unit and dates are accepted (naive ones are read as UTC when the other argument has a time zone).

Memory: the window operator holds all rows of a partition of its input in memory and cannot spill, so one enormous journey, or a very large input, is limited by memory. For big data group the touches into paths and use `attribution_weights` on lists instead (aggregation spills)."#,
    syntax_example = "attribution_weight(model, touch_ts, conversion_ts[, parameter_or_channel]) OVER (PARTITION BY conversion_id ORDER BY touch_ts, touch_id)",
    sql_example = r#"```sql
> select channel,
    attribution_weight('position_based', touch_ts, conversion_ts)
      over (partition by conversion_id order by touch_ts) as weight
  from (values (1, 'email', timestamp '2026-11-01 10:00:00', timestamp '2026-11-03 12:00:00'),
               (1, 'store_visit', timestamp '2026-11-02 16:00:00', timestamp '2026-11-03 12:00:00'),
               (1, 'paid_search', timestamp '2026-11-03 11:00:00', timestamp '2026-11-03 12:00:00'))
       as touches(conversion_id, channel, touch_ts, conversion_ts)
  order by touch_ts;
+-------------+--------+
| channel     | weight |
+-------------+--------+
| email       | 0.4    |
| store_visit | 0.2    |
| paid_search | 0.4    |
+-------------+--------+
```"#,
    argument(
        name = "model",
        description = "String literal: the model name (see above)."
    ),
    argument(
        name = "touch_ts",
        description = "The touch time: a timestamp of any unit and time zone, or a date."
    ),
    argument(
        name = "conversion_ts",
        description = "The conversion time, the same on every row of a partition; no touch may be after it."
    ),
    argument(
        name = "parameter_or_channel",
        description = "`time_decay`: optional half-life literal. `custom`: the weights literal. `last_non_direct`, `participation`: the touch's channel (any string type). Absent for the other models."
    ),
    related_udf(name = "attribution_weights")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AttributionWeightFunc {
    signature: Signature,
}

impl Default for AttributionWeightFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl AttributionWeightFunc {
    pub fn new() -> Self {
        Self {
            // `user_defined`: `coerce_types` casts the times to one microsecond type.
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

const USAGE: &str = "attribution_weight(model, touch_ts, conversion_ts [, parameter_or_channel])";

impl WindowUDFImpl for AttributionWeightFunc {
    fn name(&self) -> &str {
        "attribution_weight"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [model, touch, conversion, rest @ ..] = arg_types else {
            return plan_err!(
                "{}: expected 3 or 4 arguments, got {}; usage: {USAGE}",
                self.name(),
                arg_types.len()
            );
        };
        if !matches!(
            model,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return plan_err!(
                "{}: argument 'model' must be a string literal, got {model}",
                self.name()
            );
        }
        let time = common_time_type(
            self.name(),
            &[("touch_ts", touch), ("conversion_ts", conversion)],
        )?;
        let mut types = vec![model.clone(), time.clone(), time];
        match rest {
            [] => {}
            [fourth] => {
                // A channel column or a parameter literal: which one depends on the model,
                // checked in `partition_evaluator`.
                if !is_channel_type(fourth) {
                    check_parameter_type(self.name(), fourth)?;
                }
                types.push(fourth.clone());
            }
            _ => {
                return plan_err!(
                    "{}: expected 3 or 4 arguments, got {}; usage: {USAGE}",
                    self.name(),
                    arg_types.len()
                );
            }
        }
        Ok(types)
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let exprs = args.input_exprs();
        let Some(name) = exprs.first().and_then(|e| literal(e.as_ref())) else {
            return plan_err!("{}: argument 'model' must be a string literal", self.name());
        };
        let Ok(Some(name)) = scalar_str(self.name(), name) else {
            return plan_err!(
                "{}: argument 'model' must be a non-NULL string literal, got {name}",
                self.name()
            );
        };
        let model_name = ModelName::parse(self.name(), name)?;
        let model = if model_name.uses_channels() {
            let channel_type = args.input_fields().get(3).map(|f| f.data_type());
            if !channel_type.is_some_and(is_channel_type) {
                return plan_err!(
                    "{}: model '{name}' needs the touch's channel (a string column) as the fourth argument: attribution_weight('{name}', touch_ts, conversion_ts, channel)",
                    self.name()
                );
            }
            model_name.with_parameter(self.name(), None)?
        } else {
            let parameter = match exprs.get(3) {
                None => None,
                Some(expr) => match literal(expr.as_ref()) {
                    Some(value) => Some(value),
                    None => {
                        return plan_err!(
                            "{}: the parameter of model '{name}' must be a literal",
                            self.name()
                        );
                    }
                },
            };
            model_name.with_parameter(self.name(), parameter)?
        };
        Ok(Box::new(AttributionWeightEvaluator { model }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        // Never NULL: every row gets a weight or the query fails.
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Float64,
            false,
        )))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The value of a literal argument, after constant folding.
fn literal(expr: &dyn PhysicalExpr) -> Option<&ScalarValue> {
    expr.downcast_ref::<Literal>().map(Literal::value)
}

/// The `attribution_weight` function, shared by every registration.
pub fn attribution_weight_udwf() -> Arc<WindowUDF> {
    static INSTANCE: LazyLock<Arc<WindowUDF>> =
        LazyLock::new(|| Arc::new(WindowUDF::from(AttributionWeightFunc::new())));
    Arc::clone(&INSTANCE)
}

#[derive(Debug)]
struct AttributionWeightEvaluator {
    model: RuleModel,
}

const FUNCTION: &str = "attribution_weight";

/// The microsecond times of `array` (as `coerce_types` cast them), an error for a NULL.
fn times<'a>(array: &'a ArrayRef, argument: &str) -> Result<&'a [i64]> {
    let Some(times) = array.as_primitive_opt::<TimestampMicrosecondType>() else {
        return exec_err!(
            "{FUNCTION}: argument '{argument}' must be a microsecond timestamp after coercion, got {}",
            array.data_type()
        );
    };
    if times.null_count() > 0 {
        let row = (0..times.len())
            .find(|&row| times.is_null(row))
            .unwrap_or_default();
        return exec_err!(
            "{FUNCTION}: {argument} is NULL on row {} of a partition; every touch and conversion needs a time",
            row + 1
        );
    }
    Ok(times.values())
}

impl PartitionEvaluator for AttributionWeightEvaluator {
    // Default flags (no window frame, no bounded execution, no rank): DataFusion calls
    // `evaluate_all` once per partition with all of its rows, sorted by the ORDER BY.
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let (Some(touch), Some(conversion)) = (values.get(1), values.get(2)) else {
            return exec_err!("{FUNCTION}: expected the touch and conversion times");
        };
        let touch_micros = times(touch, "touch_ts")?;
        let conversion_micros = times(conversion, "conversion_ts")?;
        let Some(&conversion_at) = conversion_micros.first() else {
            return Ok(Arc::new(Float64Array::from(Vec::<f64>::new())));
        };
        if let Some(other) = conversion_micros.iter().find(|&&t| t != conversion_at) {
            return exec_err!(
                "{FUNCTION}: conversion_ts differs within one window partition ({} and {}): partition the window by the conversion (PARTITION BY conversion_id)",
                Micros(conversion_at),
                Micros(*other)
            );
        }
        let decoded_channels = match (self.model.uses_channels(), values.get(3)) {
            (true, Some(channels)) => Some(DecodedChannels::try_new(FUNCTION, channels)?),
            (true, None) => return exec_err!("{FUNCTION}: the model needs a channel argument"),
            (false, _) => None,
        };
        let mut channels = Vec::new();
        if let Some(decoded) = &decoded_channels {
            decoded.read_all(&mut channels);
        }
        let journey = Journey {
            touch_micros,
            channels: &channels,
            conversion_micros: conversion_at,
        };
        let mut weights = Vec::with_capacity(num_rows);
        fill_weights(&FUNCTION, &self.model, &journey, &mut weights)?;
        Ok(Arc::new(Float64Array::from(weights)))
    }
}
