//! `attribution_channel_credit(model, path, touch_ts, conversion_ts [, revenue [, parameter]])`,
//! or `attribution_channel_credit(model, path [, revenue [, parameter]])` for the models that
//! read no times: the rule-based credit of every channel, summed over the conversions of a group
//! straight from the paths as lists.
//!
//! The list form `attribution_weights` gives one weight per touch, which a channel table then
//! has to `unnest` next to the channels and group by the channel string: one row and one string
//! hash per touch. This aggregate adds each touch's weight to its channel's slot instead: channel
//! names are interned to small ids once per batch (once per distinct dictionary value for
//! dictionary-encoded paths), so the per-touch work is the weight kernel and one addition. The
//! form without times reads no time column at all (for a Parquet scan, neither is decoded).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, ListArray, OffsetSizeTrait, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion_macros::user_doc;

use crate::attribution::attribution_weights::{
    LengthWeights, PADDED_LENGTH, PathsForm, TimedPaths, coerce_rule_paths, for_each_untimed_row,
};
use crate::attribution::channel_paths::{DecodedPaths, PathColumn, PathOffsets};
use crate::attribution::paths_input::{
    ChannelDictionary, NULL_CHANNEL, UNATTRIBUTED, UNSEEN, USED, mark_used_keys,
};
use crate::attribution::weights::{Micros, RuleModel, check_parameter_type};
use crate::string_kernel::scalar_str;

#[user_doc(
    doc_section(label = "Attribution Functions"),
    description = r#"Aggregate: the credit each channel earns under a rule-based model, summed over the conversions of a group, from paths already grouped into lists (one row per conversion) — the channel table of `attribution_weights` without unnesting the touches. Works with and without `GROUP BY` (e.g. per conversion date) and in parallel.

The result is a list with one entry per channel, sorted by channel: `{channel, credit}`, or `{channel, credit, revenue}` when `revenue` is given; `unnest` it for a channel table. `credit` sums the weights of the channel's touches (conversions credited to it) and `revenue` the weights times each conversion's revenue. Models, parameters and rules are those of `attribution_weights`; for every model but `participation` the credits of a group sum to its number of conversions and the revenue credits to its revenue. A conversion with an empty path is credited to the channel `(unattributed)` (so it is never dropped); a NULL channel in a path keeps its credit under a NULL channel, listed last.

Every model but `time_decay` depends only on the touches' positions (and channels): for them `touch_ts` and `conversion_ts` may be left out, `attribution_channel_credit(model, path [, revenue [, parameter]])`, which reads no time column at all (much faster over Parquet) and skips the time checks. The third argument tells the forms apart: a list is `touch_ts`. `time_decay` without the times is a planning error.

Execution errors: a NULL path, touch list, conversion time or revenue (use an empty list for a conversion without touches, 0 for one without revenue), a negative or non-finite revenue, a channel named `(unattributed)`, and the errors of `attribution_weights` (lists of different lengths, a NULL touch time, touches not in time order, a touch after the conversion). An unknown model or a bad parameter is an error before any row is read."#,
    syntax_example = "attribution_channel_credit(model, path, touch_ts, conversion_ts[, revenue[, parameter]]), or without times: attribution_channel_credit(model, path[, revenue[, parameter]])",
    sql_example = r#"```sql
> select c['channel'] as channel, c['credit'] as credit, c['revenue'] as revenue
  from (select unnest(attribution_channel_credit('position_based', path, touch_ts, conversion_ts, revenue)) as c
        from (values (['email', 'search', 'email'],
                      [timestamp '2026-11-01 10:00:00', timestamp '2026-11-02 10:00:00', timestamp '2026-11-03 09:00:00'],
                      timestamp '2026-11-03 10:00:00', 50.0),
                     ([], [], timestamp '2026-11-04 10:00:00', 20.0))
             as t(path, touch_ts, conversion_ts, revenue));
+----------------+--------+---------+
| channel        | credit | revenue |
+----------------+--------+---------+
| (unattributed) | 1.0    | 20.0    |
| email          | 0.8    | 40.0    |
| search         | 0.2    | 10.0    |
+----------------+--------+---------+
> select c['channel'] as channel, c['credit'] as credit
  from (select unnest(attribution_channel_credit('linear', path)) as c
        from (values (['email', 'search']), (['search'])) as t(path));
+---------+--------+
| channel | credit |
+---------+--------+
| email   | 0.5    |
| search  | 1.5    |
+---------+--------+
```"#,
    argument(
        name = "model",
        description = "String literal: the model name, as for `attribution_weight`."
    ),
    argument(
        name = "path",
        description = "The conversion's touches' channels in time order, a list (any list type) of strings (any string type); an empty list for a conversion without touches."
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
        name = "revenue",
        description = "Optional number: the conversion's revenue, credited like the conversion. `NULL` (the literal) for no revenue, to give a `parameter` alone."
    ),
    argument(
        name = "parameter",
        description = "Optional literal: the half-life of `time_decay` (`INTERVAL '3 days'` or a number of days, default 7 days) or the shares `'first,middle,last'` of `custom`."
    ),
    related_udf(name = "attribution_weights")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AttributionChannelCreditFunc {
    signature: Signature,
}

impl Default for AttributionChannelCreditFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl AttributionChannelCreditFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

const FUNCTION: &str = "attribution_channel_credit";
const USAGE: &str = "attribution_channel_credit(model, path, touch_ts, conversion_ts [, revenue [, parameter]]), or attribution_channel_credit(model, path [, revenue [, parameter]]) for a model that reads no times";

/// The fields of one entry of the result.
fn credit_fields(with_revenue: bool) -> Fields {
    let mut fields = vec![
        Field::new("channel", DataType::Utf8, true),
        Field::new("credit", DataType::Float64, false),
    ];
    if with_revenue {
        fields.push(Field::new("revenue", DataType::Float64, false));
    }
    Fields::from(fields)
}

/// The type of the result (and of the partial state): a list of entries.
fn credit_list_type(with_revenue: bool) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(
        DataType::Struct(credit_fields(with_revenue)),
        false,
    )))
}

/// The index of the revenue argument; the parameter follows it.
fn revenue_index(form: PathsForm) -> usize {
    form.fixed_arguments()
}

/// Whether the (coerced) arguments include a revenue: a `NULL` literal stands for none.
fn has_revenue(arg_types: &[DataType]) -> bool {
    arg_types
        .get(revenue_index(PathsForm::of(arg_types)))
        .is_some_and(|data_type| !data_type.is_null())
}

/// The value of a literal argument, after constant folding.
fn literal(expr: &dyn PhysicalExpr) -> Option<&ScalarValue> {
    expr.downcast_ref::<Literal>().map(Literal::value)
}

/// The model and its parameter from the literal arguments of a call in `form`.
fn model_of(exprs: &[Arc<dyn PhysicalExpr>], form: PathsForm) -> Result<RuleModel> {
    let Some(model) = exprs.first().and_then(|expr| literal(expr.as_ref())) else {
        return plan_err!("{FUNCTION}: argument 'model' must be a string literal; usage: {USAGE}");
    };
    let Ok(Some(name)) = scalar_str(FUNCTION, model) else {
        return plan_err!(
            "{FUNCTION}: argument 'model' must be a non-NULL string literal, got {model}"
        );
    };
    let parameter = match exprs.get(revenue_index(form) + 1) {
        None => None,
        Some(expr) => match literal(expr.as_ref()) {
            Some(value) => Some(value),
            None => return plan_err!("{FUNCTION}: the model parameter must be a literal"),
        },
    };
    RuleModel::parse(FUNCTION, name, parameter)
}

impl AggregateUDFImpl for AttributionChannelCreditFunc {
    fn name(&self) -> &str {
        FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let (_, mut types, rest) = coerce_rule_paths(FUNCTION, USAGE, arg_types, 2, "path")?;
        if let Some(revenue) = rest.first() {
            types.push(match revenue {
                DataType::Null => DataType::Null,
                number if number.is_numeric() => DataType::Float64,
                other => {
                    return plan_err!(
                        "{FUNCTION}: argument 'revenue' must be a number (the conversion's revenue) or the literal NULL for none, got {other}"
                    );
                }
            });
        }
        if let Some(parameter) = rest.get(1) {
            check_parameter_type(FUNCTION, parameter)?;
            types.push(parameter.clone());
        }
        Ok(types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(credit_list_type(has_revenue(arg_types)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        // The partial state is the partial result: channels with their summed credit.
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "credit"),
            args.return_field.data_type().clone(),
            true,
        ))])
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let arg_types: Vec<DataType> = args
            .expr_fields
            .iter()
            .map(|field| field.data_type().clone())
            .collect();
        let form = PathsForm::of(&arg_types);
        let model = model_of(args.exprs, form)?;
        form.check_model(FUNCTION, &model)?;
        let with_revenue = has_revenue(&arg_types);
        if args.return_field.data_type() != &credit_list_type(with_revenue) {
            return internal_err!(
                "{FUNCTION}: return type {} does not match the arguments",
                args.return_field.data_type()
            );
        }
        Ok(Box::new(ChannelCreditAccumulator::new(
            model,
            form,
            with_revenue,
        )))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `attribution_channel_credit` function, shared by every registration.
pub fn attribution_channel_credit_udaf() -> Arc<AggregateUDF> {
    static INSTANCE: LazyLock<Arc<AggregateUDF>> =
        LazyLock::new(|| Arc::new(AggregateUDF::from(AttributionChannelCreditFunc::new())));
    Arc::clone(&INSTANCE)
}

/// The summed credit of one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Credit {
    credit: f64,
    revenue: f64,
}

impl Credit {
    fn add(&mut self, credit: f64, revenue: f64) {
        self.credit += credit;
        self.revenue += revenue;
    }
}

/// The summed credit of every channel of a group.
#[derive(Debug, Default)]
struct ChannelCredits {
    /// The credit of channel id `i`.
    by_channel: Vec<Credit>,
    /// Touches with a NULL channel.
    null_channel: Option<Credit>,
    /// Conversions with an empty path.
    unattributed: Option<Credit>,
}

impl ChannelCredits {
    /// Adds a conversion with `revenue` whose touches have the channel ids `ids` and the
    /// weights `weights` (as many).
    fn add_conversion(&mut self, ids: &[u32], weights: &[f64], revenue: f64) {
        if weights.is_empty() {
            self.unattributed.get_or_insert_default().add(1.0, revenue);
            return;
        }
        for (&id, &weight) in ids.iter().zip(weights) {
            let slot = match self.by_channel.get_mut(id as usize) {
                Some(slot) => slot,
                // Only the id of a NULL channel is past the channels.
                None => self.null_channel.get_or_insert_default(),
            };
            slot.add(weight, weight * revenue);
        }
    }
}

#[derive(Debug)]
struct ChannelCreditAccumulator {
    model: RuleModel,
    form: PathsForm,
    with_revenue: bool,
    /// Channel names to ids; `(unattributed)` is refused as a name, it is
    /// [`ChannelCredits::unattributed`].
    channels: ChannelDictionary,
    credits: ChannelCredits,
    /// Scratch: the channel id of each list value of a batch.
    ids: Vec<u32>,
    /// Scratch: the credit of each channel (or value of the channel dictionary) of a batch, in
    /// [`BANKS`] copies.
    slot_sums: Vec<Credit>,
    touch_shares: TouchShares,
}

impl ChannelCreditAccumulator {
    fn new(model: RuleModel, form: PathsForm, with_revenue: bool) -> Self {
        Self {
            model,
            form,
            with_revenue,
            channels: ChannelDictionary::new(&[UNATTRIBUTED]),
            credits: ChannelCredits::default(),
            ids: Vec::new(),
            slot_sums: Vec::new(),
            touch_shares: TouchShares::default(),
        }
    }

    /// The slot of channel `name` (`None` for a NULL channel).
    fn slot(&mut self, name: Option<&str>) -> Result<&mut Credit> {
        let credits = &mut self.credits;
        Ok(match name {
            None => credits.null_channel.get_or_insert_default(),
            Some(UNATTRIBUTED) => credits.unattributed.get_or_insert_default(),
            Some(name) => {
                let id = self.channels.intern(FUNCTION, name)? as usize;
                if id >= credits.by_channel.len() {
                    credits.by_channel.resize(id + 1, Credit::default());
                }
                &mut credits.by_channel[id]
            }
        })
    }

    /// The channels and their credit as a one-row list, sorted by channel, NULL last.
    fn credit_list(&self) -> Result<ScalarValue> {
        let names = self.channels.names();
        let mut rows: Vec<(Option<&str>, Credit)> = names
            .iter()
            .enumerate()
            .map(|(id, name)| {
                let credit = self.credits.by_channel.get(id).copied().unwrap_or_default();
                (Some(name.as_str()), credit)
            })
            .chain(
                self.credits
                    .unattributed
                    .map(|credit| (Some(UNATTRIBUTED), credit)),
            )
            .collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        rows.extend(self.credits.null_channel.map(|credit| (None, credit)));

        let mut channel = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
        for (name, _) in &rows {
            channel.append_option(*name);
        }
        let credit: Float64Array = rows.iter().map(|(_, c)| Some(c.credit)).collect();
        let mut columns: Vec<ArrayRef> = vec![Arc::new(channel.finish()), Arc::new(credit)];
        if self.with_revenue {
            let revenue: Float64Array = rows.iter().map(|(_, c)| Some(c.revenue)).collect();
            columns.push(Arc::new(revenue));
        }
        let fields = credit_fields(self.with_revenue);
        let entries = StructArray::try_new(fields.clone(), columns, None)?;
        let list = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Struct(fields), false)),
            OffsetBuffer::from_lengths([rows.len()]),
            Arc::new(entries),
            None,
        )?;
        Ok(ScalarValue::List(Arc::new(list)))
    }

    /// The revenue column of a batch, when the call has one.
    fn revenue_of<'a>(&self, values: &'a [ArrayRef]) -> Result<Option<&'a Float64Array>> {
        if !self.with_revenue {
            return Ok(None);
        }
        let Some(column) = values.get(revenue_index(self.form)) else {
            return internal_err!("{FUNCTION}: the revenue column is missing");
        };
        match column.as_primitive_opt::<Float64Type>() {
            Some(revenue) => Ok(Some(revenue)),
            None => internal_err!(
                "{FUNCTION}: revenue must be Float64 after coercion, got {}",
                column.data_type()
            ),
        }
    }

    /// Interns the channels the rows of `paths` use into `self.ids` and makes room for their
    /// credits; returns the index of the first channel used (where `self.ids` starts).
    fn map_batch_channels(&mut self, paths: &PathColumn<'_>) -> Result<usize> {
        self.channels.map_channels(FUNCTION, paths, &mut self.ids)?;
        self.credits
            .by_channel
            .resize(self.channels.names().len(), Credit::default());
        Ok(paths.channels_used().start)
    }

    /// Adds the conversions of a batch of the form with times.
    fn update_timed(
        &mut self,
        path: &ArrayRef,
        touch: &ArrayRef,
        conversion: &ArrayRef,
        revenue: Option<&Float64Array>,
    ) -> Result<()> {
        let timed = TimedPaths::try_new(FUNCTION, path, touch, conversion)?;
        let first = self.map_batch_channels(&timed.paths())?;
        let Self {
            model,
            credits,
            ids,
            ..
        } = self;
        timed.for_each_row(model, |row, weighted| {
            let Some((range, weights)) = weighted else {
                return null_row_error(&timed, row);
            };
            let revenue = match revenue {
                Some(revenue) => conversion_revenue(revenue, row, || timed.conversion_micros(row))?,
                None => 0.0,
            };
            credits.add_conversion(
                &ids[range.start - first..range.end - first],
                weights,
                revenue,
            );
            Ok(())
        })
    }

    /// Adds the conversions of a batch of the form without times.
    fn update_untimed(&mut self, path: &ArrayRef, revenue: Option<&Float64Array>) -> Result<()> {
        let decoded = DecodedPaths::try_new(FUNCTION, path)?;
        let paths = decoded.column();
        if !self.model.uses_channels() {
            return self.update_by_length(&paths, revenue);
        }
        let first = self.map_batch_channels(&paths)?;
        let Self {
            model,
            credits,
            ids,
            ..
        } = self;
        for_each_untimed_row(FUNCTION, &paths, model, |row, weighted| {
            let Some((range, weights)) = weighted else {
                return null_path_error();
            };
            let revenue = match revenue {
                Some(revenue) => conversion_revenue(revenue, row, || None)?,
                None => 0.0,
            };
            credits.add_conversion(
                &ids[range.start - first..range.end - first],
                weights,
                revenue,
            );
            Ok(())
        })
    }
}

impl ChannelCreditAccumulator {
    /// Adds the conversions of a batch of the form without times under a model whose weights
    /// depend only on the number of touches (every one but `last_non_direct` and
    /// `participation`): one loop over the touches that adds each weight to its channel's slot.
    /// Dictionary-encoded channels without NULLs are summed by dictionary key and the keys'
    /// sums added to their channels once per batch, so no channel id is looked up per touch.
    fn update_by_length(
        &mut self,
        paths: &PathColumn<'_>,
        revenue: Option<&Float64Array>,
    ) -> Result<()> {
        if paths.has_null_path() {
            return null_path_error();
        }
        let used = paths.channels_used();
        let Self {
            model,
            channels,
            credits,
            ids,
            slot_sums,
            touch_shares,
            ..
        } = self;
        let mut weights = LengthWeights::new(FUNCTION, model);
        // A touch's slot: its dictionary key, or its channel id. The keys' channel ids are
        // looked up after the loop, for the values used.
        let (slots, keys) = match paths.channel_keys() {
            Some(keys) if keys.null_count() == 0 => {
                let keys = &keys.values()[used];
                (keys, Some(keys))
            }
            _ => {
                channels.map_channels(FUNCTION, paths, ids)?;
                credits
                    .by_channel
                    .resize(channels.names().len(), Credit::default());
                (&ids[..], None)
            }
        };
        let slot_count = match keys {
            Some(_) => paths.distinct_channel_count(),
            None => credits.by_channel.len(),
        };
        slot_sums.clear();
        slot_sums.resize(slot_count * BANKS, Credit::default());
        let mut past_end = None;
        let sums = SlotSums {
            slots,
            sums: slot_sums,
            past_end: &mut past_end,
            unattributed: &mut credits.unattributed,
            shares: touch_shares,
        };
        add_by_length(paths.list_offsets(), sums, &mut weights, revenue)?;
        let table = match keys {
            Some(keys) => Some(channels.map_marked_values(FUNCTION, paths, |table| {
                // Weights are ≥ 0, so a value with a credit was used; one without may have
                // been used only by touches of weight 0 (first_touch's later touches), and only
                // then are the keys read again.
                let mut unsure = false;
                for (entry, sums) in table.iter_mut().zip(slot_sums.chunks_exact(BANKS)) {
                    if sums.iter().any(|sum| sum.credit != 0.0) {
                        *entry = USED;
                    } else {
                        unsure = true;
                    }
                }
                if unsure {
                    mark_used_keys(table, keys);
                }
            })?),
            None => None,
        };
        for (slot, sums) in slot_sums.chunks_exact(BANKS).enumerate() {
            let id = match table {
                Some(table) => table.get(slot).copied().unwrap_or(UNSEEN),
                None => slot as u32,
            };
            let credit = match id {
                UNSEEN => continue,
                NULL_CHANNEL => credits.null_channel.get_or_insert_default(),
                id => {
                    let id = id as usize;
                    if id >= credits.by_channel.len() {
                        credits.by_channel.resize(id + 1, Credit::default());
                    }
                    &mut credits.by_channel[id]
                }
            };
            sums.iter()
                .for_each(|sum| credit.add(sum.credit, sum.revenue));
        }
        // A NULL channel, or a dictionary key past the dictionary (read as NULL everywhere).
        if let Some(credit) = past_end {
            credits
                .null_channel
                .get_or_insert_default()
                .add(credit.credit, credit.revenue);
        }
        Ok(())
    }
}

/// The copies of each slot's sum [`add_by_length`] keeps: consecutive touches add to different
/// copies, so that an addition does not wait for the previous one's store when touches in a row
/// share a channel (four `Credit`s are one cache line).
const BANKS: usize = 4;
const _: () = assert!(BANKS.is_power_of_two());

/// Adds the credit of every row of `offsets` (no NULL path) to `sums` (see [`SlotSums`]).
fn add_by_length(
    offsets: PathOffsets<'_>,
    mut sums: SlotSums<'_>,
    weights: &mut LengthWeights<'_>,
    revenue: Option<&Float64Array>,
) -> Result<()> {
    // One loop per offset width, and one without the revenue products when there is none.
    match (offsets, revenue) {
        (PathOffsets::Small(offsets), None) => sums.add_rows(offsets, weights, |_| Ok(0.0), false),
        (PathOffsets::Large(offsets), None) => sums.add_rows(offsets, weights, |_| Ok(0.0), false),
        (PathOffsets::Small(offsets), Some(revenue)) => sums.add_rows(
            offsets,
            weights,
            |row| conversion_revenue(revenue, row, || None),
            true,
        ),
        (PathOffsets::Large(offsets), Some(revenue)) => sums.add_rows(
            offsets,
            weights,
            |row| conversion_revenue(revenue, row, || None),
            true,
        ),
    }
}

/// What [`add_by_length`] adds to: touch `i` of the list values (counted from the first row's)
/// adds its weight to copy `i % BANKS` of slot `slots[i]` (`sums[slots[i] * BANKS..][..BANKS]`),
/// or to `past_end` when the slot is past `sums` (a NULL channel); an empty path adds 1 to
/// `unattributed`.
struct SlotSums<'a> {
    slots: &'a [u32],
    sums: &'a mut [Credit],
    past_end: &'a mut Option<Credit>,
    unattributed: &'a mut Option<Credit>,
    shares: &'a mut TouchShares,
}

/// Scratch of [`SlotSums::add_rows`]: the weight of every touch of a batch, and its share of
/// the conversion's revenue.
#[derive(Debug, Default)]
struct TouchShares {
    credit: Vec<f64>,
    revenue: Vec<f64>,
}

impl TouchShares {
    fn bytes(&self) -> usize {
        (self.credit.capacity() + self.revenue.capacity()) * size_of::<f64>()
    }
}

impl SlotSums<'_> {
    /// Two loops: the first writes each touch's weight (and revenue share) row by row, the
    /// second adds them to the slots touch by touch. A path of at most [`PADDED_LENGTH`]
    /// touches (most are) writes a whole padded row, so that neither loop has a branch on a
    /// path's length; one path after another has a different length, and such a branch was
    /// mispredicted about once per path.
    // Not inlined: in its own function the loops keep their values in registers.
    #[inline(never)]
    fn add_rows<O: OffsetSizeTrait>(
        &mut self,
        offsets: &[O],
        weights: &mut LengthWeights<'_>,
        revenue_of: impl Fn(usize) -> Result<f64>,
        with_revenue: bool,
    ) -> Result<()> {
        let Some((first, ends)) = offsets.split_first() else {
            return Ok(());
        };
        let first = first.as_usize();
        let values = ends
            .last()
            .map_or(0, |last| last.as_usize().wrapping_sub(first));
        let Some(slots) = self.slots.get(..values) else {
            return internal_err!(
                "{FUNCTION}: {values} list values, past the {} channels read",
                self.slots.len()
            );
        };
        // No path is longer than the batch: every length up to that (or the longest kept) is
        // looked up with arithmetic alone.
        let (short, mut long) = weights.split(values)?;
        // A padded row written at the last touch ends `PADDED_LENGTH` past it. The padding is
        // zeros, and each later path writes over it; every touch is written by its own path,
        // so the scratch is not cleared (the previous batch's values are all overwritten).
        let TouchShares { credit, revenue } = &mut *self.shares;
        let scratch = values + PADDED_LENGTH;
        if credit.len() < scratch {
            credit.resize(scratch, 0.0);
        }
        if with_revenue && revenue.len() < scratch {
            revenue.resize(scratch, 0.0);
        }
        let mut start = 0;
        for (row, end) in ends.iter().enumerate() {
            let end = end.as_usize().wrapping_sub(first);
            let conversion_revenue = revenue_of(row)?;
            let touches = end.wrapping_sub(start);
            // Both scratch vectors hold `values + PADDED_LENGTH` (the second with revenue).
            let written = match short.padded(touches) {
                Some(padded) if start <= values => {
                    credit[start..start + PADDED_LENGTH].copy_from_slice(padded);
                    if with_revenue {
                        let out = &mut revenue[start..start + PADDED_LENGTH];
                        for (out, weight) in out.iter_mut().zip(padded) {
                            *out = weight * conversion_revenue;
                        }
                    }
                    true
                }
                _ if touches == 0 => {
                    self.unattributed
                        .get_or_insert_default()
                        .add(1.0, conversion_revenue);
                    true
                }
                // A longer path; or offsets that decrease or pass the batch's (not a valid
                // list).
                _ if start < end && end <= values => {
                    let weights = match short.get(touches) {
                        Some(weights) => weights,
                        None => long.get(touches)?,
                    };
                    credit[start..end].copy_from_slice(weights);
                    if with_revenue {
                        for (out, weight) in revenue[start..end].iter_mut().zip(weights) {
                            *out = weight * conversion_revenue;
                        }
                    }
                    true
                }
                _ => false,
            };
            if !written {
                return internal_err!(
                    "{FUNCTION}: list values {start}..{end} outside the {values} of the batch"
                );
            }
            start = end;
        }
        // Offsets of a valid list never decrease, so every row wrote the touches it owns last.
        let touches = slots.iter().zip(&credit[..values]).enumerate();
        if with_revenue {
            for ((index, (&slot, &weight)), &share) in touches.zip(&revenue[..values]) {
                let sum = slot_sum(self.sums, self.past_end, slot, index);
                sum.credit += weight;
                sum.revenue += share;
            }
        } else {
            for (index, (&slot, &weight)) in touches {
                slot_sum(self.sums, self.past_end, slot, index).credit += weight;
            }
        }
        Ok(())
    }
}

/// Copy `index % BANKS` of slot `slot` of `sums`, or `past_end` when the slot is past `sums`.
#[inline(always)]
fn slot_sum<'a>(
    sums: &'a mut [Credit],
    past_end: &'a mut Option<Credit>,
    slot: u32,
    index: usize,
) -> &'a mut Credit {
    // `BANKS` is a power of two, so `|` adds the copy; a slot too large to multiply stays past
    // the end.
    match sums.get_mut((slot as usize).saturating_mul(BANKS) | (index % BANKS)) {
        Some(sum) => sum,
        None => past_end.get_or_insert_default(),
    }
}

/// How to fix a NULL path.
const NULL_PATH_HINT: &str = "use an empty list for a conversion without touches (credited to '(unattributed)'), or filter the row out";

/// The error for a NULL path in the form without times.
fn null_path_error() -> Result<()> {
    exec_err!("{FUNCTION}: argument 'path' is NULL for a conversion; {NULL_PATH_HINT}")
}

/// The revenue of the conversion on `row`: a finite number ≥ 0. `at` gives the conversion's
/// time for the error message, when known.
fn conversion_revenue(
    revenue: &Float64Array,
    row: usize,
    at: impl FnOnce() -> Option<i64>,
) -> Result<f64> {
    let value = revenue.value(row);
    if revenue.is_valid(row) && value.is_finite() && value >= 0.0 {
        return Ok(value);
    }
    let at = at()
        .map(|at| format!(" for the conversion at {}", Micros(at)))
        .unwrap_or_default();
    if revenue.is_null(row) {
        exec_err!(
            "{FUNCTION}: argument 'revenue' is NULL{at}; use 0 for a conversion without revenue"
        )
    } else {
        exec_err!("{FUNCTION}: argument 'revenue' must be a finite number >= 0, got {value}{at}")
    }
}

/// The error for a row whose path, touch times or conversion time is NULL.
fn null_row_error(paths: &TimedPaths, row: usize) -> Result<()> {
    let (argument, hint) = if paths.paths().channel_range(row).is_none() {
        ("path", NULL_PATH_HINT)
    } else if paths.touch_is_null(row) {
        (
            "touch_ts",
            "give the touch times of the path (an empty list for an empty path)",
        )
    } else {
        ("conversion_ts", "every conversion needs its time")
    };
    exec_err!("{FUNCTION}: argument '{argument}' is NULL for a conversion; {hint}")
}

impl Accumulator for ChannelCreditAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let revenue = self.revenue_of(values)?;
        match (self.form, values) {
            (PathsForm::Timed, [_, path, touch, conversion, ..]) => {
                self.update_timed(path, touch, conversion, revenue)
            }
            (PathsForm::Untimed, [_, path, ..]) => self.update_untimed(path, revenue),
            _ => internal_err!(
                "{FUNCTION}: expected at least {} argument columns, got {}",
                self.form.fixed_arguments(),
                values.len()
            ),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [state] = states else {
            return internal_err!(
                "{FUNCTION}: expected one state column, got {}",
                states.len()
            );
        };
        let Some(lists) = state.as_list_opt::<i32>() else {
            return internal_err!("{FUNCTION}: unexpected state type {}", state.data_type());
        };
        let entries = lists.values().as_struct();
        let (Some(names), Some(credits)) = (
            entries.column(0).as_string_opt::<i32>(),
            entries.column(1).as_primitive_opt::<Float64Type>(),
        ) else {
            return internal_err!(
                "{FUNCTION}: unexpected state entries {}",
                entries.data_type()
            );
        };
        let revenues = match entries.columns().get(2) {
            Some(column) => column.as_primitive_opt::<Float64Type>(),
            None => None,
        };
        let offsets = lists.value_offsets();
        for row in 0..lists.len() {
            if lists.is_null(row) {
                continue;
            }
            for index in offsets[row] as usize..offsets[row + 1] as usize {
                let name = names.is_valid(index).then(|| names.value(index));
                let revenue = revenues.map_or(0.0, |revenues| revenues.value(index));
                self.slot(name)?.add(credits.value(index), revenue);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.credit_list()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.credit_list()
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.channels.bytes()
            + self.credits.by_channel.capacity() * size_of::<Credit>()
            + self.ids.capacity() * size_of::<u32>()
            + self.slot_sums.capacity() * size_of::<Credit>()
            + self.touch_shares.bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::attribution::attribution_weights::AttributionWeightsFunc;
    use crate::attribution::channel_paths::DecodedPaths;
    use crate::attribution::test_paths::{
        TestPath, invoke_path_function, path, path_array_in_every_encoding,
    };
    use crate::test_harness::literal;
    use datafusion::arrow::array::{
        DictionaryArray, Int32Array, ListArray, StringArray, TimestampMicrosecondArray,
        new_null_array,
    };
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{Int32Type, Schema, TimeUnit, TimestampMicrosecondType};
    use datafusion::logical_expr::ColumnarValue;
    use datafusion::physical_expr::expressions::Column;

    const DAY: i64 = 86_400_000_000;

    /// One channel of a result: name, credit, revenue credit (`None` without revenue).
    type Row = (Option<String>, f64, Option<f64>);

    /// The input columns of a batch: path, touch_ts and conversion_ts (none in the form without
    /// times) and optionally revenue.
    struct Batch {
        path: ArrayRef,
        times: Option<(ArrayRef, ArrayRef)>,
        revenue: Option<ArrayRef>,
    }

    impl Batch {
        /// `touch_days[i]` are the touch times of row `i` in days (NULL list for `None`);
        /// conversions at day 30.
        fn new(
            path: ArrayRef,
            touch_days: &[Option<Vec<i64>>],
            revenue: Option<Vec<Option<f64>>>,
        ) -> Self {
            let touch = ListArray::from_iter_primitive::<TimestampMicrosecondType, _, _>(
                touch_days.iter().map(|days| {
                    days.as_ref()
                        .map(|d| d.iter().map(|d| Some(d * DAY)).collect::<Vec<_>>())
                }),
            );
            let conversion = TimestampMicrosecondArray::from(vec![30 * DAY; touch_days.len()]);
            Self {
                path,
                times: Some((Arc::new(touch), Arc::new(conversion))),
                revenue: revenue.map(|r| Arc::new(Float64Array::from(r)) as ArrayRef),
            }
        }

        /// The same conversions in the form without times.
        fn untimed(&self) -> Self {
            Self {
                path: Arc::clone(&self.path),
                times: None,
                revenue: self.revenue.clone(),
            }
        }

        fn touch(&self) -> &ArrayRef {
            &self.times.as_ref().unwrap().0
        }

        fn conversion(&self) -> &ArrayRef {
            &self.times.as_ref().unwrap().1
        }

        fn arg_types(&self, parameter: Option<&ScalarValue>) -> Vec<DataType> {
            let mut types = vec![DataType::Utf8, self.path.data_type().clone()];
            if let Some((touch, conversion)) = &self.times {
                types.extend([touch.data_type().clone(), conversion.data_type().clone()]);
            }
            match (&self.revenue, parameter) {
                (Some(revenue), _) => types.push(revenue.data_type().clone()),
                (None, Some(_)) => types.push(DataType::Null),
                (None, None) => {}
            }
            types.extend(parameter.map(ScalarValue::data_type));
            types
        }

        /// The argument columns as the planner passes them (coerced).
        fn values(&self, coerced: &[DataType]) -> Vec<ArrayRef> {
            let rows = self.path.len();
            let mut values = vec![
                new_null_array(&DataType::Utf8, rows),
                Arc::clone(&self.path),
            ];
            if let Some((touch, conversion)) = &self.times {
                values.extend([Arc::clone(touch), Arc::clone(conversion)]);
            }
            if let Some(revenue_type) = coerced.get(revenue_index(PathsForm::of(coerced))) {
                values.push(match &self.revenue {
                    Some(revenue) => cast(revenue, revenue_type).unwrap(),
                    None => new_null_array(&DataType::Null, rows),
                });
            }
            values
        }

        fn slice(&self, offset: usize, length: usize) -> Self {
            Self {
                path: self.path.slice(offset, length),
                times: self.times.as_ref().map(|(touch, conversion)| {
                    (
                        touch.slice(offset, length),
                        conversion.slice(offset, length),
                    )
                }),
                revenue: self.revenue.as_ref().map(|r| r.slice(offset, length)),
            }
        }
    }

    /// An accumulator made the way the physical planner makes it.
    fn accumulator(
        model: &str,
        parameter: Option<&ScalarValue>,
        arg_types: &[DataType],
    ) -> Result<(Box<dyn Accumulator>, Vec<DataType>)> {
        let function = AttributionChannelCreditFunc::new();
        let coerced = function.coerce_types(arg_types)?;
        let return_type = function.return_type(&coerced)?;
        let parameter_index = revenue_index(PathsForm::of(&coerced)) + 1;
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> =
            vec![Arc::new(Literal::new(ScalarValue::from(model)))];
        for index in 1..coerced.len() {
            exprs.push(match parameter {
                Some(value) if index == parameter_index => Arc::new(Literal::new(value.clone())),
                _ => Arc::new(Column::new("column", index)),
            });
        }
        let expr_fields: Vec<FieldRef> = coerced
            .iter()
            .enumerate()
            .map(|(i, t)| Arc::new(Field::new(format!("a{i}"), t.clone(), true)))
            .collect();
        let schema = Schema::empty();
        let accumulator = function.accumulator(AccumulatorArgs {
            return_field: Arc::new(Field::new(FUNCTION, return_type, true)),
            schema: &schema,
            ignore_nulls: false,
            order_bys: &[],
            is_reversed: false,
            name: FUNCTION,
            is_distinct: false,
            exprs: &exprs,
            expr_fields: &expr_fields,
        })?;
        Ok((accumulator, coerced))
    }

    fn rows_of(result: &ScalarValue) -> Vec<Row> {
        let ScalarValue::List(list) = result else {
            panic!("expected a list, got {result:?}")
        };
        assert_eq!(list.len(), 1);
        let entries = list.value(0);
        let entries = entries.as_struct();
        let names = entries.column(0).as_string::<i32>();
        let credits = entries.column(1).as_primitive::<Float64Type>();
        let revenues = entries
            .columns()
            .get(2)
            .map(|c| c.as_primitive::<Float64Type>());
        (0..entries.len())
            .map(|i| {
                (
                    names.is_valid(i).then(|| names.value(i).to_string()),
                    credits.value(i),
                    revenues.map(|r| r.value(i)),
                )
            })
            .collect()
    }

    /// The credit of `batches` in one accumulator.
    fn credit(model: &str, parameter: Option<&ScalarValue>, batches: &[Batch]) -> Result<Vec<Row>> {
        let (mut accumulator, coerced) =
            accumulator(model, parameter, &batches[0].arg_types(parameter))?;
        for batch in batches {
            accumulator.update_batch(&batch.values(&coerced))?;
        }
        Ok(rows_of(&accumulator.evaluate()?))
    }

    /// The credit of `batch` as partial aggregates of `parts` slices merged into a final one,
    /// the way `target_partitions > 1` runs it.
    fn credit_in_parts(
        model: &str,
        parameter: Option<&ScalarValue>,
        batch: &Batch,
        parts: usize,
    ) -> Vec<Row> {
        let arg_types = batch.arg_types(parameter);
        let rows = batch.path.len();
        let mut states: Vec<ArrayRef> = vec![];
        for part in 0..parts {
            let (start, end) = (rows * part / parts, rows * (part + 1) / parts);
            let (mut partial, coerced) = accumulator(model, parameter, &arg_types).unwrap();
            partial
                .update_batch(&batch.slice(start, end - start).values(&coerced))
                .unwrap();
            let [state] = partial.state().unwrap().try_into().unwrap();
            states.push(state.to_array().unwrap());
        }
        let (mut merged, _) = accumulator(model, parameter, &arg_types).unwrap();
        for state in states {
            merged.merge_batch(&[state]).unwrap();
        }
        rows_of(&merged.evaluate().unwrap())
    }

    /// The credit the unnest form computes: `attribution_weights` per row, summed by channel.
    fn unnest_form(model: &str, parameter: Option<&ScalarValue>, batch: &Batch) -> Vec<Row> {
        let mut args = vec![
            literal(model),
            ColumnarValue::Array(Arc::clone(&batch.path)),
            ColumnarValue::Array(Arc::clone(batch.touch())),
            ColumnarValue::Array(Arc::clone(batch.conversion())),
        ];
        args.extend(parameter.map(|p| ColumnarValue::Scalar(p.clone())));
        let weights = invoke_path_function(&AttributionWeightsFunc::new(), args)
            .to_array(batch.path.len())
            .unwrap();
        let weights = weights.as_list::<i32>();
        let decoded = DecodedPaths::try_new("test", &batch.path).unwrap();
        let paths = decoded.column();
        let revenue = batch
            .revenue
            .as_ref()
            .map(|r| r.as_primitive::<Float64Type>());
        let mut sums: BTreeMap<(bool, Option<String>), (f64, f64)> = BTreeMap::new();
        let mut channels = vec![];
        for row in 0..batch.path.len() {
            paths.read(row, &mut channels);
            let conversion_revenue = revenue.map_or(0.0, |r| r.value(row));
            let row_weights = weights.value(row);
            let row_weights = row_weights.as_primitive::<Float64Type>();
            if channels.is_empty() {
                let sum = sums.entry((false, Some(UNATTRIBUTED.into()))).or_default();
                sum.0 += 1.0;
                sum.1 += conversion_revenue;
            }
            for (channel, &weight) in channels.iter().zip(row_weights.values()) {
                // NULL channels sort last
                let sum = sums
                    .entry((channel.is_none(), channel.map(str::to_string)))
                    .or_default();
                sum.0 += weight;
                sum.1 += weight * conversion_revenue;
            }
        }
        sums.into_iter()
            .map(|((_, name), (credit, revenue))| {
                (name, credit, batch.revenue.is_some().then_some(revenue))
            })
            .collect()
    }

    /// Asserts that the credit of `batch` in one accumulator, and split over 2, 3 and 7
    /// partial accumulators merged, equals `expected`; returns the one-accumulator credit.
    fn assert_credit_in_parts(
        model: &str,
        parameter: &Option<ScalarValue>,
        batch: &Batch,
        expected: &[Row],
        context: &str,
    ) -> Vec<Row> {
        let single = credit(model, parameter.as_ref(), std::slice::from_ref(batch)).unwrap();
        assert_close(&single, expected, context);
        for parts in [2, 3, 7] {
            let merged = credit_in_parts(model, parameter.as_ref(), batch, parts);
            assert_close(&merged, expected, &format!("{context}, {parts} partitions"));
        }
        single
    }

    fn assert_close(actual: &[Row], expected: &[Row], context: &str) {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert_eq!(
            actual.len(),
            expected.len(),
            "{context}: {actual:?} vs {expected:?}"
        );
        for (a, e) in actual.iter().zip(expected) {
            assert!(
                a.0 == e.0
                    && close(a.1, e.1)
                    && a.2.is_some() == e.2.is_some()
                    && close(a.2.unwrap_or(0.0), e.2.unwrap_or(0.0)),
                "{context}: {actual:?} vs {expected:?}"
            );
        }
    }

    fn owned(rows: &[(Option<&str>, f64, Option<f64>)]) -> Vec<Row> {
        rows.iter()
            .map(|(n, c, r)| (n.map(str::to_string), *c, *r))
            .collect()
    }

    #[test]
    fn credits_channels_in_every_path_encoding() -> Result<()> {
        let paths: Vec<TestPath<'_>> = vec![
            path("email > Direct > direct"),
            Some(vec![]),
            Some(vec![Some("direct"), None]),
            path("search > email"),
        ];
        let touches = [
            Some(vec![1, 2, 3]),
            Some(vec![]),
            Some(vec![1, 2]),
            Some(vec![5, 6]),
        ];
        let revenue = Some(vec![Some(10.0), Some(4.0), Some(3.0), Some(2.0)]);
        for array in path_array_in_every_encoding(&paths) {
            let data_type = array.data_type().clone();
            let batch = Batch::new(array, &touches, revenue.clone());
            assert_eq!(
                credit("last_non_direct", None, std::slice::from_ref(&batch))?,
                owned(&[
                    (Some("(unattributed)"), 1.0, Some(4.0)),
                    (Some("Direct"), 0.0, Some(0.0)),
                    (Some("direct"), 0.0, Some(0.0)),
                    (Some("email"), 2.0, Some(12.0)),
                    (Some("search"), 0.0, Some(0.0)),
                    (None, 1.0, Some(3.0)),
                ]),
                "{data_type}"
            );
            // The form without times reads the same channels the same way.
            assert_eq!(
                credit("last_non_direct", None, &[batch.untimed()])?,
                credit("last_non_direct", None, std::slice::from_ref(&batch))?,
                "{data_type}"
            );
            let linear = credit("linear", None, std::slice::from_ref(&batch))?;
            assert_close(
                &linear,
                &unnest_form("linear", None, &batch),
                &data_type.to_string(),
            );
            assert_eq!(
                credit("linear", None, &[batch.untimed()])?,
                linear,
                "{data_type}"
            );
            let no_revenue = Batch {
                revenue: None,
                ..batch
            };
            assert_eq!(
                credit("first_touch", None, &[no_revenue])?,
                owned(&[
                    (Some("(unattributed)"), 1.0, None),
                    (Some("Direct"), 0.0, None),
                    (Some("direct"), 1.0, None),
                    (Some("email"), 1.0, None),
                    (Some("search"), 1.0, None),
                    (None, 0.0, None),
                ]),
                "{data_type}"
            );
        }
        Ok(())
    }

    #[test]
    fn no_rows_give_an_empty_list_and_batches_add_up() -> Result<()> {
        let (mut accumulator, _) = accumulator(
            "linear",
            None,
            &[
                DataType::Utf8,
                DataType::new_list(DataType::Utf8View, true),
                DataType::new_list(DataType::Timestamp(TimeUnit::Nanosecond, None), true),
                DataType::Date32,
            ],
        )?;
        assert_eq!(rows_of(&accumulator.evaluate()?), vec![]);
        let batch = |text: &str| {
            let array = path_array_in_every_encoding(&[path(text)]).remove(0);
            Batch::new(array, &[Some(vec![1, 2])], Some(vec![Some(6.0)]))
        };
        assert_eq!(
            credit("linear", None, &[batch("a > b"), batch("b > c")])?,
            owned(&[
                (Some("a"), 0.5, Some(3.0)),
                (Some("b"), 1.0, Some(6.0)),
                (Some("c"), 0.5, Some(3.0)),
            ])
        );
        Ok(())
    }

    /// SplitMix64: a seeded generator, so a failure reproduces.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % bound
        }
    }

    /// Conversions as columns: paths, touch days, revenue.
    type Conversions = (
        Vec<TestPath<'static>>,
        Vec<Option<Vec<i64>>>,
        Vec<Option<f64>>,
    );

    /// Random conversions: paths of 0 to 30 touches, and one in 50 of 65 to 104 (longer than
    /// the lengths whose weights are kept), over a few channels (some direct, some NULL), with
    /// revenue.
    fn random_batch(seed: u64, rows: usize) -> Conversions {
        const CHANNELS: [Option<&str>; 7] = [
            Some("direct"),
            Some("email"),
            Some("paid_search"),
            Some("(direct)"),
            Some("store_visit"),
            Some("a channel name longer than sixteen bytes"),
            None,
        ];
        let mut random = SplitMix64(seed);
        let mut paths = vec![];
        let mut touches = vec![];
        let mut revenue = vec![];
        for _ in 0..rows {
            let n = match random.below(50) {
                0 => 65 + random.below(40) as usize,
                _ => random.below(31) as usize,
            };
            paths.push(Some(
                (0..n)
                    .map(|_| CHANNELS[random.below(CHANNELS.len() as u64) as usize])
                    .collect(),
            ));
            let mut days: Vec<i64> = (0..n).map(|_| random.below(30) as i64).collect();
            days.sort_unstable();
            touches.push(Some(days));
            revenue.push(Some(random.below(10_000) as f64 / 7.0));
        }
        (paths, touches, revenue)
    }

    fn every_model() -> Vec<(&'static str, Option<ScalarValue>)> {
        vec![
            ("first_touch", None),
            ("last_touch", None),
            ("last_non_direct", None),
            ("linear", None),
            ("position_based", None),
            ("j_shaped", None),
            ("inverse_j", None),
            ("time_decay", None),
            ("time_decay", Some(ScalarValue::Int64(Some(2)))),
            ("custom", Some(ScalarValue::from("0.1,0.3,0.6"))),
            ("participation", None),
        ]
    }

    #[test]
    fn equals_the_unnest_form_and_reconciles_on_random_data_in_parallel() {
        let (paths, touches, revenue) = random_batch(20_261_122, 2_000);
        let total_revenue: f64 = revenue.iter().flatten().sum();
        // The first and a dictionary encoding (every encoding is read by the same decoder).
        let encodings = path_array_in_every_encoding(&paths);
        for array in [&encodings[0], &encodings[7]] {
            let batch = Batch::new(Arc::clone(array), &touches, Some(revenue.clone()));
            for (model, parameter) in every_model() {
                let context = format!("{model} over {}", array.data_type());
                let expected = unnest_form(model, parameter.as_ref(), &batch);
                let single = assert_credit_in_parts(model, &parameter, &batch, &expected, &context);
                if model != "participation" {
                    let credit: f64 = single.iter().map(|r| r.1).sum();
                    let revenue: f64 = single.iter().filter_map(|r| r.2).sum();
                    assert!(
                        (credit - paths.len() as f64).abs() < 1e-9,
                        "{context}: {credit}"
                    );
                    assert!(
                        (revenue - total_revenue).abs() < 1e-9 * total_revenue,
                        "{context}: {revenue} vs {total_revenue}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_rows_are_errors_naming_the_argument() {
        let run =
            |paths: &[TestPath<'_>], touches: &[Option<Vec<i64>>], revenue: Vec<Option<f64>>| {
                let array = path_array_in_every_encoding(paths).remove(0);
                credit("linear", None, &[Batch::new(array, touches, Some(revenue))])
                    .unwrap_err()
                    .to_string()
            };
        let err = run(&[None], &[Some(vec![])], vec![Some(1.0)]);
        assert!(
            err.contains("attribution_channel_credit: argument 'path' is NULL for a conversion; use an empty list"),
            "{err}"
        );
        let err = run(&[path("a")], &[None], vec![Some(1.0)]);
        assert!(err.contains("argument 'touch_ts' is NULL"), "{err}");
        let err = run(&[path("a")], &[Some(vec![1])], vec![None]);
        assert!(
            err.contains(
                "argument 'revenue' is NULL for the conversion at 1970-01-31 00:00:00; use 0"
            ),
            "{err}"
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let err = run(&[Some(vec![])], &[Some(vec![])], vec![Some(bad)]);
            assert!(
                err.contains(&format!(
                    "argument 'revenue' must be a finite number >= 0, got {bad}"
                )),
                "{err}"
            );
        }
        let err = run(
            &[path("a > (unattributed)")],
            &[Some(vec![1, 2])],
            vec![Some(1.0)],
        );
        assert!(
            err.contains("'(unattributed)' cannot be a channel name"),
            "{err}"
        );
        let err = run(&[path("a > b")], &[Some(vec![1, 31])], vec![Some(1.0)]);
        assert!(
            err.contains("attribution_channel_credit: touch 2 of 2 at 1970-02-01 00:00:00 is after its conversion"),
            "{err}"
        );
        let err = run(&[path("a > b")], &[Some(vec![1])], vec![Some(1.0)]);
        assert!(
            err.contains("a path has 2 channels but 1 touch times"),
            "{err}"
        );

        let batch = Batch::new(
            path_array_in_every_encoding(&[path("a")]).remove(0),
            &[Some(vec![1])],
            None,
        );
        let (mut accumulator, coerced) =
            accumulator("linear", None, &batch.arg_types(None)).unwrap();
        let mut values = batch.values(&coerced);
        values[3] = Arc::new(TimestampMicrosecondArray::from(vec![None]));
        let err = accumulator.update_batch(&values).unwrap_err().to_string();
        assert!(err.contains("argument 'conversion_ts' is NULL"), "{err}");
    }

    #[test]
    fn bad_arguments_are_planning_errors() {
        let types = |extra: &[DataType]| {
            let mut types = vec![
                DataType::Utf8,
                DataType::new_list(DataType::Utf8, true),
                DataType::new_list(DataType::Timestamp(TimeUnit::Microsecond, None), true),
                DataType::Timestamp(TimeUnit::Microsecond, None),
            ];
            types.extend_from_slice(extra);
            types
        };
        let error = |model: &str, parameter: Option<ScalarValue>, arg_types: Vec<DataType>| {
            accumulator(model, parameter.as_ref(), &arg_types)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let err = error("u_shaped", None, types(&[]));
        assert!(
            err.contains("attribution_channel_credit: unknown attribution model 'u_shaped'; valid models: first_touch,"),
            "{err}"
        );
        let err = error("linear", None, types(&[DataType::Utf8]));
        assert!(err.contains("argument 'revenue' must be a number"), "{err}");
        let err = error(
            "linear",
            Some(ScalarValue::Int64(Some(3))),
            types(&[DataType::Float64, DataType::Int64]),
        );
        assert!(err.contains("model 'linear' takes no parameter"), "{err}");
        let err = error(
            "linear",
            None,
            types(&[DataType::Float64, DataType::Int64, DataType::Int64]),
        );
        assert!(err.contains("expected 4 to 6 arguments, got 7"), "{err}");
        let err = error("linear", None, vec![DataType::Utf8, DataType::Utf8]);
        assert!(
            err.contains("argument 'path' must be a list of channel names"),
            "{err}"
        );
        let err = error("linear", None, vec![DataType::Utf8]);
        assert!(
            err.contains("expected 2 to 4 arguments without touch times, got 1"),
            "{err}"
        );
        let err = error(
            "linear",
            None,
            vec![
                DataType::Utf8,
                DataType::Utf8,
                DataType::new_list(DataType::Date32, true),
                DataType::Date32,
            ],
        );
        assert!(
            err.contains("argument 'path' must be a list of channel names"),
            "{err}"
        );

        // A model that is not a literal.
        let function = AttributionChannelCreditFunc::new();
        let exprs: Vec<Arc<dyn PhysicalExpr>> = (0..4)
            .map(|i| Arc::new(Column::new("c", i)) as Arc<dyn PhysicalExpr>)
            .collect();
        let err = model_of(&exprs, PathsForm::Timed).unwrap_err().to_string();
        assert!(
            err.contains("argument 'model' must be a string literal"),
            "{err}"
        );
        // a half-life given alone, with a NULL revenue
        let (_, coerced) = accumulator(
            "time_decay",
            Some(&ScalarValue::Int64(Some(3))),
            &types(&[DataType::Null, DataType::Int64]),
        )
        .unwrap();
        assert_eq!(
            function.return_type(&coerced).unwrap(),
            credit_list_type(false)
        );
    }

    /// The models that read no times, with their parameters.
    fn untimed_models() -> Vec<(&'static str, Option<ScalarValue>)> {
        every_model()
            .into_iter()
            .filter(|(model, _)| *model != "time_decay")
            .collect()
    }

    #[test]
    fn the_form_without_times_equals_the_timed_form_on_random_data_in_parallel() {
        let (paths, touches, revenue) = random_batch(20_261_123, 2_000);
        let mut encodings = path_array_in_every_encoding(&paths);
        // A list view is read as a list.
        let item = Arc::new(Field::new_list_field(DataType::Utf8, true));
        encodings.push(cast(&encodings[0], &DataType::ListView(item)).unwrap());
        for array in encodings {
            let timed = Batch::new(Arc::clone(&array), &touches, Some(revenue.clone()));
            let untimed = timed.untimed();
            for (model, parameter) in untimed_models() {
                let context = format!("{model} over {}", array.data_type());
                let expected =
                    credit(model, parameter.as_ref(), std::slice::from_ref(&timed)).unwrap();
                assert_credit_in_parts(model, &parameter, &untimed, &expected, &context);
            }
        }
    }

    #[test]
    fn the_form_without_times_sums_dictionary_keys_like_the_timed_form() -> Result<()> {
        // Int32 keys without NULLs (Parquet's encoding) are summed per key: the dictionary has
        // a value no row uses, a NULL value and a value used only in the middle of a path (no
        // credit under first_touch and last_touch, yet a channel of the result), one row is
        // past the cached path lengths, and the rows read are a slice (the keys start past the
        // first list value).
        let values = StringArray::from(vec![
            Some("email"),
            Some("unused"),
            None,
            Some("paid_search"),
            Some("unused_too"),
            Some("middle_only"),
        ]);
        let rows: Vec<Vec<i32>> = vec![
            vec![1, 4],
            vec![0, 3],
            vec![2],
            vec![],
            (0..70).map(|i| [0, 3, 2][i % 3]).collect(),
            vec![3, 3, 0],
            vec![0, 5, 3],
            vec![4],
        ];
        let keys = Int32Array::from(rows.concat());
        let dictionary = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values))?;
        let item = Arc::new(Field::new_list_field(dictionary.data_type().clone(), true));
        let path: ArrayRef = Arc::new(ListArray::try_new(
            item,
            OffsetBuffer::from_lengths(rows.iter().map(Vec::len)),
            Arc::new(dictionary),
            None,
        )?);
        let days: Vec<_> = rows.iter().map(|row| Some(vec![1; row.len()])).collect();
        let revenue = (0..rows.len()).map(|row| Some(row as f64 * 10.5)).collect();
        let timed = Batch::new(path, &days, Some(revenue)).slice(1, rows.len() - 2);
        for (model, parameter) in untimed_models() {
            let expected = credit(model, parameter.as_ref(), std::slice::from_ref(&timed))?;
            let context = format!("{model} over dictionary keys");
            let actual =
                assert_credit_in_parts(model, &parameter, &timed.untimed(), &expected, &context);
            let names: Vec<_> = actual.iter().map(|row| row.0.as_deref()).collect();
            assert!(!names.contains(&Some("unused")), "{context}: {names:?}");
            assert!(!names.contains(&Some("unused_too")), "{context}: {names:?}");
            assert!(
                names.contains(&None),
                "{context}: the NULL value is a channel"
            );
            assert!(names.contains(&Some("middle_only")), "{context}: {names:?}");
        }
        Ok(())
    }

    #[test]
    fn the_form_without_times_takes_revenue_and_parameters_in_their_places() -> Result<()> {
        let array = path_array_in_every_encoding(&[path("a > b > c"), Some(vec![])]).remove(0);
        let batch = Batch::new(array, &[Some(vec![1, 2, 3]), Some(vec![])], None).untimed();
        let custom = ScalarValue::from("0.1,0.3,0.6");
        assert_eq!(
            credit("custom", Some(&custom), std::slice::from_ref(&batch))?,
            owned(&[
                (Some("(unattributed)"), 1.0, None),
                (Some("a"), 0.1, None),
                (Some("b"), 0.3, None),
                (Some("c"), 0.6, None),
            ])
        );
        let with_revenue = Batch {
            revenue: Some(Arc::new(Float64Array::from(vec![10.0, 4.0]))),
            ..batch
        };
        assert_eq!(
            credit("last_touch", None, &[with_revenue])?,
            owned(&[
                (Some("(unattributed)"), 1.0, Some(4.0)),
                (Some("a"), 0.0, Some(0.0)),
                (Some("b"), 0.0, Some(0.0)),
                (Some("c"), 1.0, Some(10.0)),
            ])
        );
        let function = AttributionChannelCreditFunc::new();
        let list = DataType::new_list(DataType::Utf8, true);
        assert_eq!(
            function.return_type(&function.coerce_types(&[DataType::Utf8, list.clone()])?)?,
            credit_list_type(false)
        );
        assert_eq!(
            function.return_type(&function.coerce_types(&[
                DataType::Utf8,
                list.clone(),
                DataType::Int32
            ])?)?,
            credit_list_type(true)
        );
        // An untyped NULL before a time is a NULL touch list of the timed form; before a
        // parameter, no revenue.
        let timestamp = DataType::Timestamp(TimeUnit::Microsecond, None);
        let coerced = function.coerce_types(&[
            DataType::Utf8,
            list.clone(),
            DataType::Null,
            timestamp.clone(),
        ])?;
        assert_eq!(PathsForm::of(&coerced), PathsForm::Timed);
        let coerced =
            function.coerce_types(&[DataType::Utf8, list, DataType::Null, DataType::Utf8])?;
        assert_eq!(PathsForm::of(&coerced), PathsForm::Untimed);
        assert_eq!(function.return_type(&coerced)?, credit_list_type(false));
        Ok(())
    }

    #[test]
    fn the_form_without_times_errors() {
        let list = DataType::new_list(DataType::Utf8, true);
        let err = accumulator("time_decay", None, &[DataType::Utf8, list.clone()])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("attribution_channel_credit: model 'time_decay' needs the touch times: pass touch_ts and conversion_ts after the path"),
            "{err}"
        );
        let err = accumulator(
            "linear",
            None,
            &[
                DataType::Utf8,
                list.clone(),
                DataType::Float64,
                DataType::Utf8,
                DataType::Utf8,
            ],
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("expected 2 to 4 arguments without touch times, got 5"),
            "{err}"
        );
        let err = accumulator("linear", None, &[DataType::Utf8, list, DataType::Utf8])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("argument 'revenue' must be a number"), "{err}");

        let run = |paths: &[TestPath<'_>], revenue: Vec<Option<f64>>| {
            let array = path_array_in_every_encoding(paths).remove(0);
            let touches = vec![Some(vec![]); paths.len()];
            let batch = Batch::new(array, &touches, Some(revenue)).untimed();
            credit("linear", None, &[batch]).unwrap_err().to_string()
        };
        let err = run(&[None], vec![Some(1.0)]);
        assert!(
            err.contains("attribution_channel_credit: argument 'path' is NULL for a conversion; use an empty list"),
            "{err}"
        );
        let err = run(&[Some(vec![])], vec![None]);
        assert!(
            err.contains("argument 'revenue' is NULL; use 0 for a conversion without revenue"),
            "{err}"
        );
        let err = run(&[Some(vec![])], vec![Some(-2.0)]);
        assert!(
            err.contains("argument 'revenue' must be a finite number >= 0, got -2"),
            "{err}"
        );
        let err = run(&[path("(unattributed)")], vec![Some(1.0)]);
        assert!(
            err.contains("'(unattributed)' cannot be a channel name"),
            "{err}"
        );
    }
}
