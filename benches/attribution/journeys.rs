//! The attribution benchmark's data: customer journeys over 10 channels, as Parquet.
//!
//! * `journeys`: one row per journey, `journey_id, path` (channels in time order), `touch_ts`
//!   (the touches' times), `conversion_ts`, `conversions` (0 or 1), `revenue`, `nulls`
//!   (1 − conversions): the input of `markov_attribution` and of the heuristics.
//! * `touches`: one row per touch of a converting journey, `conversion_id, touch_id, touch_ts,
//!   conversion_ts, channel`, written in `(conversion_id, touch_ts, touch_id)` order (the order
//!   a journeys model materialises): the input of the rule models' window form.
//! * `touch lists`: exactly the same touches, one row per conversion, `conversion_id, path`
//!   (channels), `touch_ts` (lists in time order), `conversion_ts`: the input of the rule models'
//!   list form (`attribution_weights`).
//! * `aggregated paths`: the journeys aggregated by path as ChannelAttribution gets them (see
//!   `aggregate_paths` in the benchmark), the like-for-like input of `markov_attribution`.
//!
//! Journeys start on a channel drawn by popularity, repeat their last channel 35 % of the time
//! (so collapsing repeats matters) and end with probability 0.3 after each touch; a journey
//! converts with a logistic probability that grows with the effects of the channels it saw, and
//! converting journeys carry a log-normal revenue.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    StringDictionaryBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use crate::common::BenchResult;
use crate::common::random::Rng;

/// Bump when the generated data changes, so that cached files are regenerated.
pub const GENERATOR_VERSION: u32 = 1;
/// The version of the rule models' touches and touch lists: 2 writes their channels
/// dictionary-encoded in the Arrow schema too (the Parquet pages were dictionary pages already).
pub const TOUCHES_VERSION: u32 = 2;
const SEED: u64 = 4_042_026;
const BATCH_ROWS: usize = 65_536;
/// 2026-01-01 00:00:00 UTC, and the 120 days conversions span.
const START_MICROS: i64 = 1_767_225_600_000_000;
const SPAN_MICROS: u64 = 120 * 86_400_000_000;
const LOOKBACK_MICROS: u64 = 30 * 86_400_000_000;

/// Channel, popularity, effect on the conversion log-odds.
pub const CHANNELS: [(&str, f64, f64); 10] = [
    ("paid_search", 0.20, 0.55),
    ("organic", 0.16, 0.35),
    ("direct", 0.14, 0.25),
    ("email", 0.10, 0.45),
    ("paid_social", 0.10, 0.15),
    ("display", 0.09, 0.05),
    ("sms", 0.06, 0.40),
    ("push", 0.06, 0.20),
    ("referral", 0.04, 0.30),
    ("store_visit", 0.05, 0.80),
];
const REPEAT_PROBABILITY: f64 = 0.35;
const END_PROBABILITY: f64 = 0.3;
const MAX_TOUCHES: usize = 40;
const BASE_LOG_ODDS: f64 = -3.2;

/// One journey: channel indexes and touch times in time order, its conversion time and outcome.
#[derive(Default)]
struct Journey {
    channels: Vec<u8>,
    touch_micros: Vec<i64>,
    conversion_micros: i64,
    converted: bool,
    revenue: f64,
}

/// Journey `index`; with `force_conversion` every journey converts (the rule models' input).
fn journey(index: u64, force_conversion: bool, journey: &mut Journey) {
    let mut rng = Rng::new(SEED, index);
    let popularity: Vec<f64> = CHANNELS.iter().map(|c| c.1).collect();
    journey.channels.clear();
    journey.touch_micros.clear();
    loop {
        let channel = match journey.channels.last() {
            Some(&last) if rng.chance(REPEAT_PROBABILITY) => last,
            _ => rng.weighted(&popularity) as u8,
        };
        journey.channels.push(channel);
        if journey.channels.len() == MAX_TOUCHES || rng.chance(END_PROBABILITY) {
            break;
        }
    }
    let mut seen = [false; CHANNELS.len()];
    let mut log_odds = BASE_LOG_ODDS + 0.1 * journey.channels.len() as f64;
    for &channel in &journey.channels {
        if !seen[channel as usize] {
            seen[channel as usize] = true;
            log_odds += CHANNELS[channel as usize].2;
        }
    }
    journey.converted = force_conversion || rng.unit() < 1.0 / (1.0 + (-log_odds).exp());
    // Log-normal revenue around 60 (Box-Muller), in cents.
    let normal =
        (-2.0 * (1.0 - rng.unit()).ln()).sqrt() * (std::f64::consts::TAU * rng.unit()).cos();
    journey.revenue = if journey.converted {
        ((60.0f64.ln() + 0.8 * normal).exp() * 100.0).round() / 100.0
    } else {
        0.0
    };
    journey.conversion_micros = START_MICROS + (LOOKBACK_MICROS + rng.below(SPAN_MICROS)) as i64;
    let mut offsets: Vec<i64> = (0..journey.channels.len())
        .map(|_| 1 + rng.below(LOOKBACK_MICROS) as i64)
        .collect();
    offsets.sort_unstable_by_key(|&offset| std::cmp::Reverse(offset));
    journey.touch_micros.extend(
        offsets
            .iter()
            .map(|offset| journey.conversion_micros - offset),
    );
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The channel type of the touch files: dictionary-encoded, as a warehouse export of a
/// low-cardinality column is. The Arrow schema stored in the Parquet file makes readers that
/// honour it (arrow-rs, so DataFusion) return dictionary arrays straight from the dictionary
/// pages; readers that do not (DuckDB) see plain strings.
fn channel_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Writes the batches `next_batch` returns (until `None`) to `path` through a `.partial` file, so
/// that an interrupted run never leaves a file that looks complete.
pub fn write_parquet(
    path: &Path,
    schema: &SchemaRef,
    mut next_batch: impl FnMut() -> BenchResult<Option<RecordBatch>>,
) -> BenchResult<()> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let partial = path.with_extension("parquet.partial");
    let mut writer = ArrowWriter::try_new(
        File::create(&partial)?,
        Arc::clone(schema),
        Some(properties),
    )?;
    while let Some(batch) = next_batch()? {
        writer.write(&batch)?;
    }
    writer.close()?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

/// The `path` (of `channel` items) and `touch_ts` list columns of the journeys and touch-list
/// files.
fn path_fields(channel: DataType) -> [Field; 2] {
    let list = |item: DataType| DataType::List(Arc::new(Field::new("item", item, true)));
    [
        Field::new("path", list(channel), false),
        Field::new("touch_ts", list(timestamp_type()), false),
    ]
}

pub fn journeys_schema() -> SchemaRef {
    let [path, touch_ts] = path_fields(DataType::Utf8);
    Arc::new(Schema::new(vec![
        Field::new("journey_id", DataType::Int64, false),
        path,
        touch_ts,
        Field::new("conversion_ts", timestamp_type(), false),
        Field::new("conversions", DataType::Float64, false),
        Field::new("revenue", DataType::Float64, false),
        Field::new("nulls", DataType::Float64, false),
    ]))
}

/// Writes `count` journeys to `path` (through a temporary file).
pub fn write_journeys(path: &Path, count: usize) -> BenchResult<()> {
    let schema = journeys_schema();
    let mut current = Journey::default();
    let mut starts = (0..count).step_by(BATCH_ROWS);
    write_parquet(path, &schema, || {
        let Some(start) = starts.next() else {
            return Ok(None);
        };
        let end = (start + BATCH_ROWS).min(count);
        let mut ids = Int64Builder::new();
        let mut paths = ListBuilder::new(StringBuilder::new());
        let mut times = ListBuilder::new(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            .with_field(Arc::new(Field::new("item", timestamp_type(), true)));
        let mut conversion_ts = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut conversions = Float64Builder::new();
        let mut revenue = Float64Builder::new();
        let mut nulls = Float64Builder::new();
        for index in start..end {
            journey(index as u64, false, &mut current);
            ids.append_value(index as i64);
            for &channel in &current.channels {
                paths.values().append_value(CHANNELS[channel as usize].0);
            }
            paths.append(true);
            times.values().append_slice(&current.touch_micros);
            times.append(true);
            conversion_ts.append_value(current.conversion_micros);
            let converted = f64::from(u8::from(current.converted));
            conversions.append_value(converted);
            revenue.append_value(current.revenue);
            nulls.append_value(1.0 - converted);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ids.finish()),
            Arc::new(paths.finish()),
            Arc::new(times.finish()),
            Arc::new(conversion_ts.finish()),
            Arc::new(conversions.finish()),
            Arc::new(revenue.finish()),
            Arc::new(nulls.finish()),
        ];
        Ok(Some(RecordBatch::try_new(Arc::clone(&schema), columns)?))
    })
}

pub fn touches_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("conversion_id", DataType::Int64, false),
        Field::new("touch_id", DataType::Int64, false),
        Field::new("touch_ts", timestamp_type(), false),
        Field::new("conversion_ts", timestamp_type(), false),
        Field::new("channel", channel_type(), false),
    ]))
}

/// The converting journeys of the rule-model benchmark in order, the last one cut so that there are
/// exactly `count` touches: the one source of both touch files, so that they hold the same touches.
struct ConvertingTouches {
    count: usize,
    written: usize,
    conversion: u64,
    current: Journey,
}

/// One conversion of [`ConvertingTouches`]: its id, the id of its first touch, and its journey
/// with the first `touches` touches kept.
struct Conversion<'a> {
    id: u64,
    first_touch: usize,
    journey: &'a Journey,
    touches: usize,
}

impl ConvertingTouches {
    fn new(count: usize) -> Self {
        Self {
            count,
            written: 0,
            conversion: 0,
            current: Journey::default(),
        }
    }

    fn is_done(&self) -> bool {
        self.written == self.count
    }

    fn next_conversion(&mut self) -> Option<Conversion<'_>> {
        if self.is_done() {
            return None;
        }
        let id = self.conversion;
        journey(id, true, &mut self.current);
        let touches = self.current.channels.len().min(self.count - self.written);
        let first_touch = self.written;
        self.written += touches;
        self.conversion += 1;
        Some(Conversion {
            id,
            first_touch,
            journey: &self.current,
            touches,
        })
    }
}

/// Writes the touches of converting journeys until there are exactly `count` touches (the last
/// conversion's path may be cut short).
pub fn write_touches(path: &Path, count: usize) -> BenchResult<()> {
    let schema = touches_schema();
    let mut source = ConvertingTouches::new(count);
    write_parquet(path, &schema, || {
        if source.is_done() {
            return Ok(None);
        }
        let mut conversion_ids = Int64Builder::new();
        let mut touch_ids = Int64Builder::new();
        let mut touch_ts = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut conversion_ts = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut channels = StringDictionaryBuilder::<Int32Type>::new();
        let mut rows = 0;
        while rows < BATCH_ROWS {
            let Some(conversion) = source.next_conversion() else {
                break;
            };
            let journey = conversion.journey;
            let touches = journey.channels.iter().zip(&journey.touch_micros);
            for (offset, (&channel, &at)) in touches.take(conversion.touches).enumerate() {
                conversion_ids.append_value(conversion.id as i64);
                touch_ids.append_value((conversion.first_touch + offset) as i64);
                touch_ts.append_value(at);
                conversion_ts.append_value(journey.conversion_micros);
                channels.append_value(CHANNELS[channel as usize].0);
            }
            rows += conversion.touches;
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(conversion_ids.finish()),
            Arc::new(touch_ids.finish()),
            Arc::new(touch_ts.finish()),
            Arc::new(conversion_ts.finish()),
            Arc::new(channels.finish()),
        ];
        Ok(Some(RecordBatch::try_new(Arc::clone(&schema), columns)?))
    })
}

pub fn touch_lists_schema() -> SchemaRef {
    let [path, touch_ts] = path_fields(channel_type());
    Arc::new(Schema::new(vec![
        Field::new("conversion_id", DataType::Int64, false),
        path,
        touch_ts,
        Field::new("conversion_ts", timestamp_type(), false),
    ]))
}

/// Writes the touches of [`write_touches`] (same `count`, same cut of the last conversion) as one
/// row per conversion with the channels and touch times as lists in `(touch_ts, touch_id)` order:
/// the generator emits a journey's touches in time order and touch ids in emission order.
pub fn write_touch_lists(path: &Path, count: usize) -> BenchResult<()> {
    let schema = touch_lists_schema();
    let mut source = ConvertingTouches::new(count);
    write_parquet(path, &schema, || {
        if source.is_done() {
            return Ok(None);
        }
        let mut conversion_ids = Int64Builder::new();
        let mut paths = ListBuilder::new(StringDictionaryBuilder::<Int32Type>::new())
            .with_field(Arc::new(Field::new("item", channel_type(), true)));
        let mut times = ListBuilder::new(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            .with_field(Arc::new(Field::new("item", timestamp_type(), true)));
        let mut conversion_ts = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut rows = 0;
        while rows < BATCH_ROWS {
            let Some(conversion) = source.next_conversion() else {
                break;
            };
            let (journey, touches) = (conversion.journey, conversion.touches);
            for &channel in &journey.channels[..touches] {
                paths.values().append_value(CHANNELS[channel as usize].0);
            }
            paths.append(true);
            times
                .values()
                .append_slice(&journey.touch_micros[..touches]);
            times.append(true);
            conversion_ids.append_value(conversion.id as i64);
            conversion_ts.append_value(journey.conversion_micros);
            rows += 1;
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(conversion_ids.finish()),
            Arc::new(paths.finish()),
            Arc::new(times.finish()),
            Arc::new(conversion_ts.finish()),
        ];
        Ok(Some(RecordBatch::try_new(Arc::clone(&schema), columns)?))
    })
}
