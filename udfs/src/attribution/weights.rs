//! The rule-based attribution models: which share of one conversion each of its touches earns.
//! Shared by the window form `attribution_weight` and the list form `attribution_weights`, so
//! both give the same weights and the same errors.
//!
//! For every model but `participation`, a conversion's weights sum to 1 (to a few ulps): each
//! weight is one correctly rounded division of exact inputs (`1 / n`, `20 / (100 (n − 2))`,
//! `0.5^x / Σ`), and the time-decay sum is compensated.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::temporal_conversions::timestamp_us_to_datetime;
use datafusion::common::{Result, ScalarValue, exec_err, internal_err, plan_err};

use crate::string_kernel::scalar_str;

/// Microseconds per day.
const MICROS_PER_DAY: f64 = 86_400_000_000.0;
/// The default time-decay half-life: 7 days, as in Google Ads and Adobe Analytics.
const DEFAULT_HALF_LIFE_DAYS: f64 = 7.0;

/// A model as named in SQL, before its parameter is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelName {
    FirstTouch,
    LastTouch,
    LastNonDirect,
    Linear,
    PositionBased,
    JShaped,
    InverseJ,
    TimeDecay,
    Custom,
    Participation,
}

impl ModelName {
    /// Every model with its SQL name, in the order documentation and errors list them.
    const ALL: [(&'static str, Self); 10] = [
        ("first_touch", Self::FirstTouch),
        ("last_touch", Self::LastTouch),
        ("last_non_direct", Self::LastNonDirect),
        ("linear", Self::Linear),
        ("position_based", Self::PositionBased),
        ("j_shaped", Self::JShaped),
        ("inverse_j", Self::InverseJ),
        ("time_decay", Self::TimeDecay),
        ("custom", Self::Custom),
        ("participation", Self::Participation),
    ];

    /// The model called `name` (ASCII case-insensitive); a planning error listing the valid
    /// names otherwise.
    pub(crate) fn parse(function: &str, name: &str) -> Result<Self> {
        match Self::ALL
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
        {
            Some((_, model)) => Ok(*model),
            None => plan_err!(
                "{function}: unknown attribution model '{name}'; valid models: {}",
                Self::ALL.map(|(known, _)| known).join(", ")
            ),
        }
    }

    fn sql_name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, model)| *model == self)
            .map_or("", |(name, _)| name)
    }

    /// Whether the model reads the touches' channels.
    pub(crate) fn uses_channels(self) -> bool {
        matches!(self, Self::LastNonDirect | Self::Participation)
    }

    /// The model with its optional `parameter` (a literal): the half-life of `time_decay` as an
    /// interval or a number of days (default 7 days), the weights of `custom` as
    /// `'first,middle,last'`. The other models take no parameter.
    pub(crate) fn with_parameter(
        self,
        function: &str,
        parameter: Option<&ScalarValue>,
    ) -> Result<RuleModel> {
        let model = match self {
            Self::FirstTouch => RuleModel::FirstTouch,
            Self::LastTouch => RuleModel::LastTouch,
            Self::LastNonDirect => RuleModel::LastNonDirect,
            Self::Linear => RuleModel::Linear,
            Self::PositionBased => RuleModel::Positional(PositionShares::POSITION_BASED),
            Self::JShaped => RuleModel::Positional(PositionShares::J_SHAPED),
            Self::InverseJ => RuleModel::Positional(PositionShares::INVERSE_J),
            Self::Participation => RuleModel::Participation,
            Self::TimeDecay => {
                let half_life_micros = match parameter {
                    None => DEFAULT_HALF_LIFE_DAYS * MICROS_PER_DAY,
                    Some(value) => half_life_micros(function, value)?,
                };
                return Ok(RuleModel::TimeDecay { half_life_micros });
            }
            Self::Custom => {
                let text = match parameter {
                    Some(value) => scalar_str(function, value).ok().flatten(),
                    None => None,
                };
                let Some(text) = text else {
                    return plan_err!(
                        "{function}: model 'custom' needs its weights as a string 'first,middle,last', e.g. '0.3,0.4,0.3'"
                    );
                };
                return Ok(RuleModel::Positional(PositionShares::parse(
                    function, text,
                )?));
            }
        };
        match parameter {
            None => Ok(model),
            Some(parameter) => plan_err!(
                "{function}: model '{}' takes no parameter, got {parameter}; only time_decay (half-life) and custom (weights) do",
                self.sql_name()
            ),
        }
    }
}

/// Shares of the first, middle and last touches, in any unit (`40, 20, 40` or `0.3, 0.4, 0.3`):
/// weights are computed as `part / total`, so the exact percentages of the named models give
/// exact splits (`20 / 80 = ¼`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PositionShares {
    first: f64,
    middle: f64,
    last: f64,
}

impl PositionShares {
    const POSITION_BASED: Self = Self::new(40.0, 20.0, 40.0);
    const J_SHAPED: Self = Self::new(20.0, 20.0, 60.0);
    const INVERSE_J: Self = Self::new(60.0, 20.0, 20.0);

    const fn new(first: f64, middle: f64, last: f64) -> Self {
        Self {
            first,
            middle,
            last,
        }
    }

    /// Parses `custom`'s parameter `'first,middle,last'`: three non-negative numbers summing to
    /// 1 (within 1e-9).
    fn parse(function: &str, text: &str) -> Result<Self> {
        let parts: Vec<f64> = text
            .split(',')
            .map(|part| part.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .unwrap_or_default();
        match parts.as_slice() {
            &[first, middle, last]
                if parts.iter().all(|p| p.is_finite() && *p >= 0.0)
                    && (first + middle + last - 1.0).abs() <= 1e-9 =>
            {
                Ok(Self::new(first, middle, last))
            }
            _ => plan_err!(
                "{function}: model 'custom' takes its weights as a string 'first,middle,last' of three non-negative numbers summing to 1, e.g. '0.3,0.4,0.3'; got '{text}'"
            ),
        }
    }

    /// Fills `weights` (one per touch, at least one).
    fn fill(&self, weights: &mut [f64]) {
        let n = weights.len();
        match n {
            0 => {}
            1 => weights[0] = 1.0,
            2 => {
                let ends = self.first + self.last;
                if ends > 0.0 {
                    weights[0] = self.first / ends;
                    weights[1] = self.last / ends;
                } else {
                    // Only a middle share: with no middle touch, split evenly.
                    weights.fill(0.5);
                }
            }
            _ => {
                let total = self.first + self.middle + self.last;
                let middle = self.middle / (total * (n - 2) as f64);
                weights.fill(middle);
                weights[0] = self.first / total;
                weights[n - 1] = self.last / total;
            }
        }
    }
}

/// A rule-based attribution model with its parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RuleModel {
    FirstTouch,
    LastTouch,
    /// The last touch whose channel is not direct; the last touch on an all-direct path.
    LastNonDirect,
    Linear,
    /// First, middle and last shares: `position_based`, `j_shaped`, `inverse_j` and `custom`.
    Positional(PositionShares),
    /// Weight `2^(−Δt / half_life)` with `Δt` the time from touch to conversion, normalised.
    TimeDecay {
        half_life_micros: f64,
    },
    /// 1 for the first touch of each distinct channel: credit deliberately sums to the number
    /// of channels, not to 1.
    Participation,
}

impl RuleModel {
    /// The model `name` with its optional `parameter` (see [`ModelName::with_parameter`]).
    pub(crate) fn parse(
        function: &str,
        name: &str,
        parameter: Option<&ScalarValue>,
    ) -> Result<Self> {
        ModelName::parse(function, name)?.with_parameter(function, parameter)
    }

    /// Whether the model reads the touches' channels.
    pub(crate) fn uses_channels(&self) -> bool {
        matches!(self, Self::LastNonDirect | Self::Participation)
    }

    /// Whether the model reads the touch and conversion times: only `time_decay` does.
    pub(crate) fn uses_times(&self) -> bool {
        matches!(self, Self::TimeDecay { .. })
    }
}

/// The half-life literal of `time_decay`: an interval without months (months have no fixed
/// length), or a number of days; positive and finite.
fn half_life_micros(function: &str, value: &ScalarValue) -> Result<f64> {
    let micros = match value {
        ScalarValue::IntervalMonthDayNano(Some(interval)) if interval.months == 0 => {
            f64::from(interval.days) * MICROS_PER_DAY + interval.nanoseconds as f64 / 1_000.0
        }
        ScalarValue::IntervalDayTime(Some(interval)) => {
            f64::from(interval.days) * MICROS_PER_DAY + f64::from(interval.milliseconds) * 1_000.0
        }
        number if number.data_type().is_numeric() && !number.is_null() => {
            match number.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(Some(days)) => days * MICROS_PER_DAY,
                _ => f64::NAN,
            }
        }
        _ => f64::NAN,
    };
    if micros.is_finite() && micros > 0.0 {
        Ok(micros)
    } else {
        plan_err!(
            "{function}: the half-life of time_decay must be a positive interval without months (INTERVAL '7 days') or a positive number of days, got {value}"
        )
    }
}

/// The type both SQL forms cast touch and conversion times to: microseconds, in UTC when any
/// of them carries a time zone (naive times are then read as UTC), naive otherwise. Dates are
/// midnight.
pub(crate) fn common_time_type(function: &str, times: &[(&str, &DataType)]) -> Result<DataType> {
    let mut zoned = false;
    for (argument, data_type) in times {
        match data_type {
            DataType::Timestamp(_, zone) => zoned |= zone.is_some(),
            DataType::Date32 | DataType::Date64 => {}
            other => {
                return plan_err!(
                    "{function}: argument '{argument}' must be a timestamp or a date, got {other}"
                );
            }
        }
    }
    Ok(DataType::Timestamp(
        TimeUnit::Microsecond,
        zoned.then(|| Arc::from("UTC")),
    ))
}

/// Checks the type of a model parameter argument at planning time: a string (custom weights),
/// a number or an interval (half-life), or NULL; its value is checked with the model.
pub(crate) fn check_parameter_type(function: &str, data_type: &DataType) -> Result<()> {
    match data_type {
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Null
        | DataType::Interval(_) => Ok(()),
        numeric if numeric.is_numeric() => Ok(()),
        other => plan_err!(
            "{function}: the model parameter must be a literal interval, number or string, got {other}"
        ),
    }
}

/// Whether `channel` is direct traffic for `last_non_direct`: `direct` or `(direct)` (GA's
/// source name), ignoring ASCII case.
pub(crate) fn is_direct(channel: &str) -> bool {
    channel.eq_ignore_ascii_case("direct") || channel.eq_ignore_ascii_case("(direct)")
}

/// The touches of one conversion, in time order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Journey<'a> {
    /// Touch times, microseconds since the epoch.
    pub(crate) touch_micros: &'a [i64],
    /// The touches' channels (`None` for NULL); only read by models that
    /// [use channels](RuleModel::uses_channels), and then as long as `touch_micros`.
    pub(crate) channels: &'a [Option<&'a str>],
    /// Conversion time, microseconds since the epoch.
    pub(crate) conversion_micros: i64,
}

/// A time in microseconds since the epoch, displayed as a date and time in messages.
pub(crate) struct Micros(pub(crate) i64);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match timestamp_us_to_datetime(self.0) {
            Some(datetime) => write!(f, "{datetime}"),
            None => write!(f, "{} µs", self.0),
        }
    }
}

/// Replaces `weights` with the weight of each touch of `journey` under `model`.
///
/// Errors (naming `context`, e.g. the function and row): touches out of time order (the window
/// was not ordered by the touch time, or a list was not built in time order), a touch after the
/// conversion, channels missing for a model that needs them.
pub(crate) fn fill_weights(
    context: &dyn fmt::Display,
    model: &RuleModel,
    journey: &Journey<'_>,
    weights: &mut Vec<f64>,
) -> Result<()> {
    let n = journey.touch_micros.len();
    for (index, pair) in journey.touch_micros.windows(2).enumerate() {
        if pair[1] < pair[0] {
            return exec_err!(
                "{context}: touches are not in time order: touch {} at {} comes after touch {} at {}; order the window by the touch time (ORDER BY touch_ts), or build the lists in time order (array_agg(... ORDER BY touch_ts))",
                index + 2,
                Micros(pair[1]),
                index + 1,
                Micros(pair[0])
            );
        }
    }
    if let Some(&last) = journey.touch_micros.last()
        && last > journey.conversion_micros
    {
        let position = journey
            .touch_micros
            .iter()
            .position(|&t| t > journey.conversion_micros)
            .map_or(n, |p| p + 1);
        return exec_err!(
            "{context}: touch {position} of {n} at {} is after its conversion at {}; a conversion's touches must precede it (filter touch_ts <= conversion_ts when building journeys)",
            Micros(journey.touch_micros[position - 1]),
            Micros(journey.conversion_micros)
        );
    }
    if model.uses_channels() && journey.channels.len() != n {
        return exec_err!(
            "{context}: {n} touch times but {} channels",
            journey.channels.len()
        );
    }

    let RuleModel::TimeDecay { half_life_micros } = model else {
        return fill_untimed_weights(context, model, n, journey.channels, weights);
    };
    weights.clear();
    weights.resize(n, 0.0);
    if n == 0 {
        return Ok(());
    }
    // Exponents relative to the latest touch (Δt ≥ 0 there) keep its raw weight at 1, so the
    // sum cannot underflow to 0 however old the journey is.
    let latest = journey.touch_micros[n - 1];
    for (weight, &touch) in weights.iter_mut().zip(journey.touch_micros) {
        *weight = (-((latest - touch) as f64) / half_life_micros).exp2();
    }
    let total = compensated_sum(weights);
    weights.iter_mut().for_each(|weight| *weight /= total);
    Ok(())
}

/// Replaces `weights` with the weight of each of `touches` touches under a model that does not
/// read touch times (every model but `time_decay`, an internal error here): the weights depend
/// only on positions and, for the models that [use channels](RuleModel::uses_channels), on
/// `channels` (as long as the path then).
pub(crate) fn fill_untimed_weights(
    context: &dyn fmt::Display,
    model: &RuleModel,
    touches: usize,
    channels: &[Option<&str>],
    weights: &mut Vec<f64>,
) -> Result<()> {
    let n = touches;
    if model.uses_channels() && channels.len() != n {
        return exec_err!("{context}: {n} touches but {} channels", channels.len());
    }
    weights.clear();
    weights.resize(n, 0.0);
    if n == 0 {
        return Ok(());
    }
    match model {
        RuleModel::FirstTouch => weights[0] = 1.0,
        RuleModel::LastTouch => weights[n - 1] = 1.0,
        RuleModel::LastNonDirect => {
            let credited = channels
                .iter()
                .rposition(|channel| !channel.is_some_and(is_direct))
                .unwrap_or(n - 1);
            weights[credited] = 1.0;
        }
        RuleModel::Linear => weights.fill(1.0 / n as f64),
        RuleModel::Positional(shares) => shares.fill(weights),
        RuleModel::TimeDecay { .. } => {
            return internal_err!("{context}: time_decay needs the touch times");
        }
        RuleModel::Participation => {
            let mut seen = HashSet::with_capacity(n);
            for (weight, channel) in weights.iter_mut().zip(channels) {
                if seen.insert(*channel) {
                    *weight = 1.0;
                }
            }
        }
    }
    Ok(())
}

/// Neumaier's compensated sum.
pub(crate) fn compensated_sum(values: &[f64]) -> f64 {
    let mut sum = 0.0_f64;
    let mut compensation = 0.0_f64;
    for &value in values {
        let next = sum + value;
        compensation += if sum.abs() >= value.abs() {
            (sum - next) + value
        } else {
            (value - next) + sum
        };
        sum = next;
    }
    sum + compensation
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::IntervalMonthDayNano;

    const DAY: i64 = 86_400_000_000;

    fn model(name: &str) -> RuleModel {
        RuleModel::parse("t", name, None).unwrap()
    }

    fn weights_of(model: &RuleModel, touch_days: &[i64], channels: &[Option<&str>]) -> Vec<f64> {
        let touch_micros: Vec<i64> = touch_days.iter().map(|d| d * DAY).collect();
        let journey = Journey {
            touch_micros: &touch_micros,
            channels,
            conversion_micros: 30 * DAY,
        };
        let mut weights = vec![];
        fill_weights(&"t", model, &journey, &mut weights).unwrap();
        weights
    }

    fn assert_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn positional_models_and_their_short_path_rules() {
        let position = model("position_based");
        assert_eq!(weights_of(&position, &[1], &[]), [1.0]);
        assert_eq!(weights_of(&position, &[1, 2], &[]), [0.5, 0.5]);
        assert_close(&weights_of(&position, &[1, 2, 3], &[]), &[0.4, 0.2, 0.4]);
        assert_close(
            &weights_of(&position, &[1, 2, 3, 4], &[]),
            &[0.4, 0.1, 0.1, 0.4],
        );
        let j = model("j_shaped");
        assert_eq!(weights_of(&j, &[1, 2], &[]), [0.25, 0.75]);
        assert_close(&weights_of(&j, &[1, 2, 3, 4], &[]), &[0.2, 0.1, 0.1, 0.6]);
        let inverse_j = model("inverse_j");
        assert_eq!(weights_of(&inverse_j, &[1, 2], &[]), [0.75, 0.25]);
        assert_close(&weights_of(&inverse_j, &[1, 2, 3], &[]), &[0.6, 0.2, 0.2]);
        let custom =
            RuleModel::parse("t", "custom", Some(&ScalarValue::from("0.3, 0.4, 0.3"))).unwrap();
        assert_close(&weights_of(&custom, &[1, 2, 3], &[]), &[0.3, 0.4, 0.3]);
        assert_close(&weights_of(&custom, &[1, 2], &[]), &[0.5, 0.5]);
        let middle_only =
            RuleModel::parse("t", "custom", Some(&ScalarValue::from("0,1,0"))).unwrap();
        assert_eq!(weights_of(&middle_only, &[1, 2], &[]), [0.5, 0.5]);
        assert_close(
            &weights_of(&middle_only, &[1, 2, 3, 4], &[]),
            &[0.0, 0.5, 0.5, 0.0],
        );
    }

    #[test]
    fn single_touch_models() {
        let days = [1, 2, 3];
        assert_eq!(
            weights_of(&model("first_touch"), &days, &[]),
            [1.0, 0.0, 0.0]
        );
        assert_eq!(
            weights_of(&model("LAST_TOUCH"), &days, &[]),
            [0.0, 0.0, 1.0]
        );
        let last_non_direct = model("last_non_direct");
        assert_eq!(
            weights_of(
                &last_non_direct,
                &days,
                &[Some("email"), Some("Direct"), Some("(direct)")]
            ),
            [1.0, 0.0, 0.0]
        );
        assert_eq!(
            weights_of(
                &last_non_direct,
                &days,
                &[Some("DIRECT"), Some("direct"), Some("Direct")]
            ),
            [0.0, 0.0, 1.0],
            "an all-direct path credits its last touch"
        );
        assert_eq!(
            weights_of(
                &last_non_direct,
                &days,
                &[Some("email"), None, Some("direct")]
            ),
            [0.0, 1.0, 0.0],
            "a NULL channel is not direct"
        );
    }

    #[test]
    fn adobe_time_decay_example() {
        // Adobe Analytics, "Attribution models": paid search 9 days, social 6 days, email and
        // display 0 days before the conversion, 7-day half-life → 13.8 %, 18.6 %, 33.8 %, 33.8 %.
        let weights = weights_of(&model("time_decay"), &[21, 24, 30, 30], &[]);
        let percent: Vec<f64> = weights
            .iter()
            .map(|w| (w * 1000.0).round() / 10.0)
            .collect();
        assert_eq!(percent, [13.8, 18.6, 33.8, 33.8]);
        let dollars: Vec<f64> = weights
            .iter()
            .map(|w| (w * 5000.0).round() / 100.0)
            .collect();
        assert_eq!(dollars, [6.92, 9.32, 16.88, 16.88]);
    }

    #[test]
    fn half_life_parameters() {
        let interval = ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, 14, 0)));
        let by_interval = RuleModel::parse("t", "time_decay", Some(&interval)).unwrap();
        let by_days =
            RuleModel::parse("t", "time_decay", Some(&ScalarValue::Int64(Some(14)))).unwrap();
        assert_eq!(by_interval, by_days);
        // one half-life apart: weights 1/3 and 2/3
        assert_close(
            &weights_of(&by_days, &[16, 30], &[]),
            &[1.0 / 3.0, 2.0 / 3.0],
        );
        // ancient journeys do not underflow
        let ancient = Journey {
            touch_micros: &[0, 10 * DAY],
            channels: &[],
            conversion_micros: 100_000 * DAY,
        };
        let mut weights = vec![];
        fill_weights(&"t", &model("time_decay"), &ancient, &mut weights).unwrap();
        assert_close(
            &weights,
            &[
                0.5_f64.powf(10.0 / 7.0) / (1.0 + 0.5_f64.powf(10.0 / 7.0)),
                1.0 / (1.0 + 0.5_f64.powf(10.0 / 7.0)),
            ],
        );
        for bad in [
            ScalarValue::Int64(Some(0)),
            ScalarValue::Float64(Some(-1.0)),
            ScalarValue::Int64(None),
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(1, 0, 0))),
            ScalarValue::from("7 days"),
        ] {
            let err = RuleModel::parse("f", "time_decay", Some(&bad))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("f: the half-life of time_decay must be"),
                "{err}"
            );
        }
    }

    #[test]
    fn model_names_and_models_agree_on_channels() {
        let weights = ScalarValue::from("0.2,0.6,0.2");
        for (name, model_name) in ModelName::ALL {
            let parameter = (model_name == ModelName::Custom).then_some(&weights);
            let model = model_name.with_parameter("t", parameter).unwrap();
            assert_eq!(model_name.uses_channels(), model.uses_channels(), "{name}");
            assert_eq!(model_name.sql_name(), name);
        }
    }

    #[test]
    fn participation_credits_each_channel_once() {
        let weights = weights_of(
            &model("participation"),
            &[1, 2, 3, 4, 5],
            &[Some("a"), Some("b"), Some("a"), None, None],
        );
        assert_eq!(weights, [1.0, 1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn bad_models_and_parameters_are_planning_errors() {
        let err = RuleModel::parse("f", "u_shaped", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("f: unknown attribution model 'u_shaped'; valid models: first_touch, last_touch, last_non_direct, linear, position_based, j_shaped, inverse_j, time_decay, custom, participation"), "{err}");
        let err = RuleModel::parse("f", "linear", Some(&ScalarValue::from("x")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("model 'linear' takes no parameter"), "{err}");
        let err = RuleModel::parse("f", "custom", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model 'custom' needs its weights"), "{err}");
        for bad in ["0.5,0.5", "0.5,0.5,0.5", "a,b,c", "-0.2,0.6,0.6", "NaN,0,1"] {
            let err = RuleModel::parse("f", "custom", Some(&ScalarValue::from(bad)))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("got '{bad}'")), "{err}");
        }
    }

    #[test]
    fn touches_out_of_order_or_after_the_conversion_are_errors() {
        let mut weights = vec![];
        let late = Journey {
            touch_micros: &[DAY, 3 * DAY],
            channels: &[],
            conversion_micros: 2 * DAY,
        };
        let err = fill_weights(&"f (row 4)", &model("linear"), &late, &mut weights)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f (row 4): touch 2 of 2 at 1970-01-04 00:00:00 is after its conversion at 1970-01-03 00:00:00"),
            "{err}"
        );
        let unordered = Journey {
            touch_micros: &[2 * DAY, DAY],
            channels: &[],
            conversion_micros: 2 * DAY,
        };
        let err = fill_weights(&"f", &model("linear"), &unordered, &mut weights)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("touches are not in time order: touch 2"),
            "{err}"
        );
        let missing_channels = Journey {
            touch_micros: &[DAY],
            channels: &[],
            conversion_micros: 2 * DAY,
        };
        let err = fill_weights(
            &"f",
            &model("participation"),
            &missing_channels,
            &mut weights,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("1 touch times but 0 channels"), "{err}");
    }

    /// SplitMix64: a seeded generator, so a failure reproduces.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    #[test]
    fn reconciliation_weights_sum_to_one_on_random_journeys() {
        const CHANNELS: [&str; 6] = [
            "direct",
            "email",
            "paid_search",
            "Direct",
            "store_visit",
            "qr_scan",
        ];
        let mut random = SplitMix64(20_261_122);
        let custom =
            RuleModel::parse("t", "custom", Some(&ScalarValue::from("0.15,0.35,0.5"))).unwrap();
        let hourly = RuleModel::parse(
            "t",
            "time_decay",
            Some(&ScalarValue::Float64(Some(1.0 / 24.0))),
        )
        .unwrap();
        let models: Vec<RuleModel> = ModelName::ALL
            .iter()
            .filter(|(name, _)| !matches!(*name, "custom" | "participation"))
            .map(|(name, _)| model(name))
            .chain([custom, hourly])
            .collect();
        let mut weights = vec![];
        for _ in 0..2_000 {
            let n = match random.below(10) {
                0 => 1 + random.below(2_000) as usize,
                _ => 1 + random.below(12) as usize,
            };
            let conversion_micros = 1_800_000_000_000_000 + random.below(1_000 * DAY as u64) as i64;
            let mut touch_micros: Vec<i64> = (0..n)
                .map(|_| conversion_micros - random.below(60 * DAY as u64) as i64)
                .collect();
            touch_micros.sort_unstable();
            let channels: Vec<Option<&str>> = (0..n)
                .map(|_| match random.below(8) as usize {
                    i if i < CHANNELS.len() => Some(CHANNELS[i]),
                    _ => None,
                })
                .collect();
            let journey = Journey {
                touch_micros: &touch_micros,
                channels: &channels,
                conversion_micros,
            };
            for model in &models {
                fill_weights(&"t", model, &journey, &mut weights).unwrap();
                assert!(
                    weights.iter().all(|w| w.is_finite() && *w >= 0.0),
                    "{model:?}"
                );
                let total = compensated_sum(&weights);
                assert!(
                    (total - 1.0).abs() <= 1e-12,
                    "{model:?} over {n} touches sums to {total}"
                );
            }
            fill_weights(&"t", &model("participation"), &journey, &mut weights).unwrap();
            let distinct: HashSet<_> = channels.iter().collect();
            assert_eq!(compensated_sum(&weights), distinct.len() as f64);
        }
    }
}
