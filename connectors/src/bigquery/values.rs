//! Values that fit their Arrow type but not the BigQuery type the column maps to.
//!
//! [`table_schema`](super::schema::table_schema) decides types; this module decides values.
//! Writers call [`check_batch_values`] before sending a batch, so that a value BigQuery would
//! reject or alter fails here, naming the column and row, instead of being rejected halfway
//! through a load or changed silently:
//! - UInt64 above `i64::MAX` (the column is INT64);
//! - DATE, DATETIME and TIMESTAMP outside BigQuery's range, 0001-01-01 to 9999-12-31;
//! - Date64 values that are not whole days (Arrow requires them to be; BigQuery has no
//!   time-of-day in a DATE);
//! - Time32/Time64 outside `[00:00, 24:00)`;
//! - decimals with more digits than their declared precision (Arrow does not enforce it, and
//!   the NUMERIC/BIGNUMERIC choice relies on it);
//! - NULL elements of lists, which BigQuery arrays cannot hold;
//! - NULL in a non-nullable (REQUIRED) nested field whose parents are present.
//!
//! Sub-microsecond digits of nanosecond timestamps and times are not an error: BigQuery
//! stores microseconds, and [`timestamp_micros`] / [`time_micros`] define the truncation
//! (towards negative infinity) that writers and the checksum share.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, GenericListViewArray, PrimitiveArray, UInt64Array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal32Type, Decimal64Type,
    Decimal128Type, Decimal256Type, DecimalType, Field, Int32Type, Int64Type,
    Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::ConnectorError;

/// 0001-01-01 and 9999-12-31 as days since 1970-01-01: BigQuery's DATE range.
pub const MIN_DATE_DAYS: i32 = -719_162;
pub const MAX_DATE_DAYS: i32 = 2_932_896;
/// 0001-01-01T00:00:00 and 9999-12-31T23:59:59.999999 as microseconds since the epoch:
/// BigQuery's TIMESTAMP and DATETIME range.
pub const MIN_MICROS: i64 = -62_135_596_800_000_000;
pub const MAX_MICROS: i64 = 253_402_300_799_999_999;
pub const MICROS_PER_DAY: i64 = 86_400_000_000;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// An Arrow timestamp (or wall-clock reading) in microseconds, as BigQuery stores it:
/// nanoseconds are truncated towards negative infinity. `None` if the value overflows i64.
pub fn timestamp_micros(value: i64, unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => value.checked_mul(1_000_000),
        TimeUnit::Millisecond => value.checked_mul(1_000),
        TimeUnit::Microsecond => Some(value),
        TimeUnit::Nanosecond => Some(value.div_euclid(1_000)),
    }
}

/// An Arrow time of day in microseconds since midnight (nanoseconds truncated, as BigQuery
/// stores microseconds). `None` outside `[00:00, 24:00)`.
pub fn time_micros(value: i64, unit: TimeUnit) -> Option<i64> {
    let micros = timestamp_micros(value, unit)?;
    (0..MICROS_PER_DAY).contains(&micros).then_some(micros)
}

/// An Arrow Date64 (milliseconds) as days since the epoch; `None` unless a whole day that
/// fits in i32.
pub fn date64_days(millis: i64) -> Option<i32> {
    if millis % MILLIS_PER_DAY != 0 {
        return None;
    }
    i32::try_from(millis / MILLIS_PER_DAY).ok()
}

pub fn is_bigquery_date(days: i32) -> bool {
    (MIN_DATE_DAYS..=MAX_DATE_DAYS).contains(&days)
}

pub fn is_bigquery_datetime(micros: i64) -> bool {
    (MIN_MICROS..=MAX_MICROS).contains(&micros)
}

/// Checks that every value of `batch` can be stored in the BigQuery schema that
/// [`table_schema`](super::schema::table_schema) maps its schema to. See the module docs for
/// the rules. The error names the column path and the batch row.
pub fn check_batch_values(batch: &RecordBatch) -> Result<(), ConnectorError> {
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        check_column(column.as_ref(), field, field.name(), None)?;
    }
    Ok(())
}

/// A bad value at `index` of the array being checked; callers translate the index to their
/// own rows on the way up, so the top level reports a batch row.
pub(crate) struct Violation {
    column: String,
    index: usize,
    reason: String,
}

impl Violation {
    fn new(column: &str, index: usize, reason: impl Into<String>) -> Self {
        Self {
            column: column.to_owned(),
            index,
            reason: reason.into(),
        }
    }
}

impl From<Violation> for ConnectorError {
    fn from(violation: Violation) -> Self {
        ConnectorError::UnrepresentableValue {
            column: violation.column,
            row: violation.index,
            reason: violation.reason,
        }
    }
}

/// `live` marks the positions whose ancestors are all present; values elsewhere are
/// invisible (Arrow leaves them undefined) and are not checked.
fn check_column(
    array: &dyn Array,
    field: &Field,
    path: &str,
    live: Option<&NullBuffer>,
) -> Result<(), Violation> {
    let own_nulls = array.logical_nulls();
    if !field.is_nullable()
        && !super::schema::is_repeated_type(field.data_type())
        && let Some(nulls) = &own_nulls
        && let Some(index) = (0..array.len()).find(|&i| nulls.is_null(i) && is_live(live, i))
    {
        return Err(Violation::new(
            path,
            index,
            "NULL in a non-nullable (REQUIRED) field",
        ));
    }
    let present = NullBuffer::union(live, own_nulls.as_ref());
    let present = present.as_ref();
    let first_bad = |is_bad: &dyn Fn(usize) -> bool| {
        (0..array.len()).find(|&i| is_live(present, i) && is_bad(i))
    };

    match array.data_type() {
        DataType::UInt64 => {
            let values = downcast::<UInt64Array>(array, path)?.values();
            if let Some(i) = first_bad(&|i| i64::try_from(values[i]).is_err()) {
                return Err(Violation::new(
                    path,
                    i,
                    format!(
                        "{} does not fit BigQuery INT64 (maximum {})",
                        values[i],
                        i64::MAX
                    ),
                ));
            }
        }
        DataType::Date32 => {
            let values = i32_values(array).ok_or_else(|| mismatch(path, array.data_type()))?;
            if let Some(i) = first_bad(&|i| !is_bigquery_date(values[i])) {
                return Err(Violation::new(
                    path,
                    i,
                    format!(
                        "date {} days from 1970-01-01 is outside BigQuery's range 0001-01-01 to \
                         9999-12-31",
                        values[i]
                    ),
                ));
            }
        }
        DataType::Date64 => {
            let values = i64_values(array).ok_or_else(|| mismatch(path, array.data_type()))?;
            if let Some(i) = first_bad(&|i| !date64_days(values[i]).is_some_and(is_bigquery_date)) {
                return Err(Violation::new(
                    path,
                    i,
                    format!(
                        "Date64 value {} ms is not a whole day between 0001-01-01 and 9999-12-31",
                        values[i]
                    ),
                ));
            }
        }
        DataType::Timestamp(unit, _) => {
            let values = i64_values(array).ok_or_else(|| mismatch(path, array.data_type()))?;
            let bad =
                |i: usize| !timestamp_micros(values[i], *unit).is_some_and(is_bigquery_datetime);
            if let Some(i) = first_bad(&bad) {
                return Err(Violation::new(
                    path,
                    i,
                    format!(
                        "timestamp {} {} since 1970-01-01 is outside BigQuery's range \
                         0001-01-01 to 9999-12-31",
                        values[i],
                        unit_name(*unit)
                    ),
                ));
            }
        }
        DataType::Time32(unit) => {
            let values = i32_values(array).ok_or_else(|| mismatch(path, array.data_type()))?;
            if let Some(i) = first_bad(&|i| time_micros(values[i].into(), *unit).is_none()) {
                return Err(time_violation(path, i, values[i].into(), *unit));
            }
        }
        DataType::Time64(unit) => {
            let values = i64_values(array).ok_or_else(|| mismatch(path, array.data_type()))?;
            if let Some(i) = first_bad(&|i| time_micros(values[i], *unit).is_none()) {
                return Err(time_violation(path, i, values[i], *unit));
            }
        }
        DataType::Decimal32(precision, scale) => {
            check_decimal_precision::<Decimal32Type>(array, *precision, *scale, path, present)?
        }
        DataType::Decimal64(precision, scale) => {
            check_decimal_precision::<Decimal64Type>(array, *precision, *scale, path, present)?
        }
        DataType::Decimal128(precision, scale) => {
            check_decimal_precision::<Decimal128Type>(array, *precision, *scale, path, present)?
        }
        DataType::Decimal256(precision, scale) => {
            check_decimal_precision::<Decimal256Type>(array, *precision, *scale, path, present)?
        }
        DataType::Struct(fields) => {
            let array = array
                .as_struct_opt()
                .ok_or_else(|| mismatch(path, array.data_type()))?;
            for (child_field, child) in fields.iter().zip(array.columns()) {
                let child_path = format!("{path}.{}", child_field.name());
                check_column(child.as_ref(), child_field, &child_path, present)?;
            }
        }
        DataType::List(element) => {
            let list = downcast::<GenericListArray<i32>>(array, path)?;
            check_elements(array.len(), present, element, path, |i| list.value(i))?
        }
        DataType::LargeList(element) => {
            let list = downcast::<GenericListArray<i64>>(array, path)?;
            check_elements(array.len(), present, element, path, |i| list.value(i))?
        }
        DataType::ListView(element) => {
            let list = downcast::<GenericListViewArray<i32>>(array, path)?;
            check_elements(array.len(), present, element, path, |i| list.value(i))?
        }
        DataType::LargeListView(element) => {
            let list = downcast::<GenericListViewArray<i64>>(array, path)?;
            check_elements(array.len(), present, element, path, |i| list.value(i))?
        }
        DataType::FixedSizeList(element, _) => {
            let list = array
                .as_fixed_size_list_opt()
                .ok_or_else(|| mismatch(path, array.data_type()))?;
            check_elements(array.len(), present, element, path, |i| list.value(i))?
        }
        DataType::Map(_, _) => {
            let map = array
                .as_map_opt()
                .ok_or_else(|| mismatch(path, array.data_type()))?;
            for i in (0..array.len()).filter(|&i| is_live(present, i)) {
                let entries = map.value(i);
                let [key_field, value_field] = &entries.fields().iter().collect::<Vec<_>>()[..]
                else {
                    return Err(Violation::new(
                        path,
                        i,
                        "map entries are not key/value pairs",
                    ));
                };
                let at_row = |violation: Violation| Violation {
                    index: i,
                    ..violation
                };
                check_column(
                    entries.column(0).as_ref(),
                    key_field,
                    &format!("{path}.key"),
                    entries.nulls(),
                )
                .map_err(at_row)?;
                check_column(
                    entries.column(1).as_ref(),
                    value_field,
                    &format!("{path}.value"),
                    entries.nulls(),
                )
                .map_err(at_row)?;
            }
        }
        DataType::Dictionary(_, value_type) => {
            // Only the dictionary entries that rows refer to matter: materialise them.
            let values = cast(array, value_type).map_err(|error| {
                Violation::new(path, 0, format!("cannot decode dictionary: {error}"))
            })?;
            let value_field = Field::new(
                field.name(),
                value_type.as_ref().clone(),
                field.is_nullable(),
            );
            check_column(values.as_ref(), &value_field, path, live)?;
        }
        _ => {}
    }
    Ok(())
}

/// True unless `live` marks `index` as hidden (an enclosing value is NULL).
pub(crate) fn is_live(live: Option<&NullBuffer>, index: usize) -> bool {
    live.is_none_or(|nulls| nulls.is_valid(index))
}

/// Checks the elements of every present list; elements must not be NULL.
fn check_elements(
    len: usize,
    present: Option<&NullBuffer>,
    element: &Field,
    path: &str,
    value: impl Fn(usize) -> ArrayRef,
) -> Result<(), Violation> {
    for i in (0..len).filter(|&i| is_live(present, i)) {
        let elements = value(i);
        if let Some(nulls) = elements.logical_nulls()
            && let Some(position) = (0..elements.len()).find(|&j| nulls.is_null(j))
        {
            return Err(Violation::new(
                path,
                i,
                format!(
                    "element {position} of the list is NULL; BigQuery arrays cannot contain \
                     NULL elements"
                ),
            ));
        }
        check_column(elements.as_ref(), element, path, None).map_err(|violation| Violation {
            index: i,
            ..violation
        })?;
    }
    Ok(())
}

fn check_decimal_precision<T: DecimalType>(
    array: &dyn Array,
    precision: u8,
    scale: i8,
    path: &str,
    present: Option<&NullBuffer>,
) -> Result<(), Violation>
where
    T::Native: std::fmt::Display,
{
    let values = downcast::<PrimitiveArray<T>>(array, path)?;
    if let Some(i) = (0..array.len()).find(|&i| {
        is_live(present, i) && !T::is_valid_decimal_precision(values.value(i), precision)
    }) {
        return Err(Violation::new(path, i, {
            let mut text = String::new();
            push_decimal(&values.value(i).to_string(), scale, &mut text);
            format!("decimal {text} exceeds the declared precision {precision} (scale {scale})")
        }));
    }
    Ok(())
}

/// The shortest exact decimal text of `unscaled × 10^-scale`, as BigQuery prints NUMERIC and
/// BIGNUMERIC: no exponent, no trailing fractional zeros, no `.` for integers.
pub(crate) fn push_decimal(unscaled: &str, scale: i8, out: &mut String) {
    let (negative, digits) = match unscaled.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, unscaled),
    };
    if digits.bytes().all(|b| b == b'0') {
        out.push('0');
        return;
    }
    if negative {
        out.push('-');
    }
    if scale <= 0 {
        out.push_str(digits);
        for _ in 0..scale.unsigned_abs() {
            out.push('0');
        }
        return;
    }
    let scale = usize::from(scale.unsigned_abs());
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits.to_owned()
    };
    let (integer, fraction) = padded.split_at(padded.len() - scale);
    out.push_str(integer);
    let fraction = fraction.trim_end_matches('0');
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
}

fn time_violation(path: &str, index: usize, value: i64, unit: TimeUnit) -> Violation {
    Violation::new(
        path,
        index,
        format!(
            "time {value} {} since midnight is outside 00:00 to 24:00",
            unit_name(unit)
        ),
    )
}

fn unit_name(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "seconds",
        TimeUnit::Millisecond => "milliseconds",
        TimeUnit::Microsecond => "microseconds",
        TimeUnit::Nanosecond => "nanoseconds",
    }
}

/// The raw values of any array whose physical type is i64 (Int64, Date64, Timestamp of every
/// unit, Time64); the slots of NULL values hold arbitrary numbers.
pub(crate) fn i64_values(array: &dyn Array) -> Option<&[i64]> {
    let any = array.as_any();
    fn raw<T: ArrowPrimitiveType<Native = i64>>(any: &dyn std::any::Any) -> Option<&[i64]> {
        any.downcast_ref::<PrimitiveArray<T>>()
            .map(|array| array.values().as_ref())
    }
    raw::<Int64Type>(any)
        .or_else(|| raw::<Date64Type>(any))
        .or_else(|| raw::<TimestampSecondType>(any))
        .or_else(|| raw::<TimestampMillisecondType>(any))
        .or_else(|| raw::<TimestampMicrosecondType>(any))
        .or_else(|| raw::<TimestampNanosecondType>(any))
        .or_else(|| raw::<Time64MicrosecondType>(any))
        .or_else(|| raw::<Time64NanosecondType>(any))
}

/// The raw values of any array whose physical type is i32 (Int32, Date32, Time32).
pub(crate) fn i32_values(array: &dyn Array) -> Option<&[i32]> {
    let any = array.as_any();
    fn raw<T: ArrowPrimitiveType<Native = i32>>(any: &dyn std::any::Any) -> Option<&[i32]> {
        any.downcast_ref::<PrimitiveArray<T>>()
            .map(|array| array.values().as_ref())
    }
    raw::<Int32Type>(any)
        .or_else(|| raw::<Date32Type>(any))
        .or_else(|| raw::<Time32SecondType>(any))
        .or_else(|| raw::<Time32MillisecondType>(any))
}

/// Downcasts after a match on the data type; a mismatch means a malformed array.
pub(crate) fn downcast<'a, T: 'static>(
    array: &'a dyn Array,
    path: &str,
) -> Result<&'a T, Violation> {
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| mismatch(path, array.data_type()))
}

pub(crate) fn mismatch(path: &str, data_type: &DataType) -> Violation {
    Violation::new(
        path,
        0,
        format!("malformed array: its data does not match its type {data_type}"),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        Date32Array, Date64Array, Decimal128Array, DictionaryArray, Int64Array, ListArray,
        MapArray, StringArray, StructArray, Time32SecondArray, Time64NanosecondArray,
        TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
    };
    use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
    use datafusion::arrow::datatypes::{Fields, Int8Type, Schema};

    use super::*;

    fn batch(field: Field, array: ArrayRef) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![array]).unwrap()
    }

    fn violation(batch: &RecordBatch) -> (String, usize, String) {
        match check_batch_values(batch) {
            Err(ConnectorError::UnrepresentableValue {
                column,
                row,
                reason,
            }) => (column, row, reason),
            other => panic!("expected UnrepresentableValue, got {other:?}"),
        }
    }

    fn single(name: &str, array: ArrayRef) -> RecordBatch {
        batch(Field::new(name, array.data_type().clone(), true), array)
    }

    #[test]
    fn conversions_to_bigquery_units() {
        assert_eq!(timestamp_micros(2, TimeUnit::Second), Some(2_000_000));
        assert_eq!(timestamp_micros(-3, TimeUnit::Millisecond), Some(-3_000));
        assert_eq!(timestamp_micros(7, TimeUnit::Microsecond), Some(7));
        assert_eq!(timestamp_micros(1_999, TimeUnit::Nanosecond), Some(1));
        // Towards negative infinity, not towards zero.
        assert_eq!(timestamp_micros(-1, TimeUnit::Nanosecond), Some(-1));
        assert_eq!(timestamp_micros(-1_000, TimeUnit::Nanosecond), Some(-1));
        assert_eq!(timestamp_micros(-1_001, TimeUnit::Nanosecond), Some(-2));
        assert_eq!(timestamp_micros(i64::MAX, TimeUnit::Second), None);

        assert_eq!(time_micros(86_399, TimeUnit::Second), Some(86_399_000_000));
        assert_eq!(time_micros(86_400, TimeUnit::Second), None);
        assert_eq!(time_micros(-1, TimeUnit::Millisecond), None);
        assert_eq!(
            time_micros(86_399_999_999_999, TimeUnit::Nanosecond),
            Some(86_399_999_999)
        );

        assert_eq!(date64_days(-86_400_000), Some(-1));
        assert_eq!(date64_days(86_400_001), None);

        assert!(is_bigquery_date(MIN_DATE_DAYS) && is_bigquery_date(MAX_DATE_DAYS));
        assert!(!is_bigquery_date(MIN_DATE_DAYS - 1) && !is_bigquery_date(MAX_DATE_DAYS + 1));
        assert_eq!(
            MAX_MICROS + 1,
            (i64::from(MAX_DATE_DAYS) + 1) * MICROS_PER_DAY
        );
        assert_eq!(MIN_MICROS, i64::from(MIN_DATE_DAYS) * MICROS_PER_DAY);
    }

    #[test]
    fn representable_values_pass() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "n",
                Arc::new(UInt64Array::from(vec![
                    Some(i64::MAX as u64),
                    None,
                    Some(0),
                ])) as ArrayRef,
            ),
            (
                "d",
                Arc::new(Date32Array::from(vec![MIN_DATE_DAYS, 0, MAX_DATE_DAYS])),
            ),
            (
                "t",
                Arc::new(TimestampSecondArray::from(vec![
                    MIN_MICROS / 1_000_000,
                    0,
                    MAX_MICROS / 1_000_000,
                ])),
            ),
        ])
        .unwrap();
        check_batch_values(&batch).unwrap();
    }

    #[test]
    fn uint64_above_int64_max_is_rejected() {
        let batch = single(
            "visits",
            Arc::new(UInt64Array::from(vec![
                Some(1),
                None,
                Some(i64::MAX as u64 + 1),
            ])),
        );
        let (column, row, reason) = violation(&batch);
        assert_eq!((column.as_str(), row), ("visits", 2));
        assert!(
            reason.contains("9223372036854775808 does not fit"),
            "{reason}"
        );
    }

    #[test]
    fn dates_and_timestamps_outside_bigquery_range_are_rejected() {
        let (column, row, reason) = violation(&single(
            "born",
            Arc::new(Date32Array::from(vec![0, MAX_DATE_DAYS + 1])),
        ));
        assert_eq!((column.as_str(), row), ("born", 1));
        assert!(reason.contains("outside BigQuery's range"), "{reason}");

        let (_, row, _) = violation(&single(
            "born",
            Arc::new(Date32Array::from(vec![MIN_DATE_DAYS - 1])),
        ));
        assert_eq!(row, 0);

        let (_, row, reason) = violation(&single(
            "at",
            Arc::new(TimestampSecondArray::from(vec![0, i64::MAX])),
        ));
        assert_eq!(row, 1);
        assert!(reason.contains("seconds since 1970-01-01"), "{reason}");

        let (_, row, _) = violation(&single(
            "at",
            Arc::new(
                TimestampMillisecondArray::from(vec![MAX_MICROS / 1_000 + 1]).with_timezone("UTC"),
            ),
        ));
        assert_eq!(row, 0);

        // Nanosecond timestamps cannot leave the range (i64 nanoseconds span 1677-2262).
        check_batch_values(&single(
            "at",
            Arc::new(TimestampNanosecondArray::from(vec![i64::MIN, i64::MAX])),
        ))
        .unwrap();
    }

    #[test]
    fn date64_must_be_whole_days() {
        check_batch_values(&single(
            "d",
            Arc::new(Date64Array::from(vec![86_400_000 * 3, -86_400_000])),
        ))
        .unwrap();
        let (_, row, reason) = violation(&single(
            "d",
            Arc::new(Date64Array::from(vec![0, 86_400_000 + 1])),
        ));
        assert_eq!(row, 1);
        assert!(reason.contains("not a whole day"), "{reason}");
    }

    #[test]
    fn times_must_be_within_a_day() {
        let (_, row, reason) = violation(&single(
            "opens",
            Arc::new(Time32SecondArray::from(vec![0, 86_399, 86_400])),
        ));
        assert_eq!(row, 2);
        assert!(reason.contains("86400 seconds since midnight"), "{reason}");
        let (_, row, _) = violation(&single(
            "opens",
            Arc::new(Time64NanosecondArray::from(vec![-1])),
        ));
        assert_eq!(row, 0);
    }

    #[test]
    fn decimals_must_respect_their_precision() {
        let fine = Decimal128Array::from(vec![99_999, -99_999])
            .with_precision_and_scale(5, 2)
            .unwrap();
        check_batch_values(&single("price", Arc::new(fine))).unwrap();
        let too_long = Decimal128Array::from(vec![1, 100_000])
            .with_precision_and_scale(5, 2)
            .unwrap();
        let (column, row, reason) = violation(&single("price", Arc::new(too_long)));
        assert_eq!((column.as_str(), row), ("price", 1));
        assert!(
            reason.contains("decimal 1000 exceeds the declared precision 5 (scale 2)"),
            "{reason}"
        );
    }

    fn int_list(rows: Vec<Option<Vec<Option<i32>>>>) -> ListArray {
        ListArray::from_iter_primitive::<Int32Type, _, _>(rows)
    }

    #[test]
    fn null_list_elements_are_rejected_but_null_lists_are_not() {
        let ok = int_list(vec![Some(vec![Some(1)]), None, Some(vec![])]);
        check_batch_values(&single("l", Arc::new(ok))).unwrap();

        let bad = int_list(vec![Some(vec![Some(1)]), Some(vec![Some(2), None])]);
        let (column, row, reason) = violation(&single("l", Arc::new(bad)));
        assert_eq!((column.as_str(), row), ("l", 1));
        assert!(reason.contains("element 1 of the list is NULL"), "{reason}");
    }

    #[test]
    fn nested_violations_report_path_and_batch_row() {
        // lines: list<struct<sku: utf8, qty: uint64>>, the bad value in row 1's second line.
        let line_fields = Fields::from(vec![
            Field::new("sku", DataType::Utf8, true),
            Field::new("qty", DataType::UInt64, true),
        ]);
        let lines = StructArray::new(
            line_fields.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
                Arc::new(UInt64Array::from(vec![1, 2, u64::MAX])),
            ],
            None,
        );
        let element = Arc::new(Field::new("item", DataType::Struct(line_fields), true));
        let list = ListArray::new(
            element,
            OffsetBuffer::new(ScalarBuffer::from(vec![0, 1, 3])),
            Arc::new(lines),
            None,
        );
        let (column, row, reason) = violation(&single("lines", Arc::new(list)));
        assert_eq!((column.as_str(), row), ("lines.qty", 1));
        assert!(reason.contains("18446744073709551615"), "{reason}");
    }

    #[test]
    fn values_hidden_by_a_null_parent_are_not_checked() {
        let fields = Fields::from(vec![Field::new("n", DataType::UInt64, false)]);
        let record = StructArray::new(
            fields,
            vec![Arc::new(UInt64Array::from(vec![5, u64::MAX])) as ArrayRef],
            Some(NullBuffer::from(vec![true, false])),
        );
        check_batch_values(&single("s", Arc::new(record))).unwrap();
    }

    #[test]
    fn null_in_required_nested_field_is_rejected() {
        let fields = Fields::from(vec![Field::new("id", DataType::Int64, false)]);
        // Arrow's checked constructors refuse this; data from FFI or unvalidated IPC can
        // still carry it.
        // SAFETY: one child, of the declared type and of the struct's length.
        let record = unsafe {
            StructArray::new_unchecked(
                fields,
                vec![Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef],
                None,
            )
        };
        let (column, row, reason) = violation(&single("s", Arc::new(record)));
        assert_eq!((column.as_str(), row), ("s.id", 1));
        assert!(reason.contains("REQUIRED"), "{reason}");
    }

    #[test]
    fn only_referenced_dictionary_entries_matter() {
        let values = UInt64Array::from(vec![u64::MAX, 3]);
        let unused_bad_entry =
            DictionaryArray::<Int8Type>::try_new(vec![1i8, 1].into(), Arc::new(values.clone()))
                .unwrap();
        check_batch_values(&single("d", Arc::new(unused_bad_entry))).unwrap();
        let used_bad_entry =
            DictionaryArray::<Int8Type>::try_new(vec![1i8, 0].into(), Arc::new(values)).unwrap();
        let (column, row, _) = violation(&single("d", Arc::new(used_bad_entry)));
        assert_eq!((column.as_str(), row), ("d", 1));
    }

    #[test]
    fn map_values_are_checked_under_key_and_value_names() {
        let values = UInt64Array::from(vec![1, u64::MAX]);
        let map = MapArray::new_from_strings(["a", "b"].into_iter(), &values, &[0, 1, 2]).unwrap();
        let (column, row, _) = violation(&single("m", Arc::new(map)));
        assert_eq!((column.as_str(), row), ("m.value", 1));
    }

    #[test]
    fn sliced_batches_report_rows_of_the_slice() {
        let batch = single(
            "n",
            Arc::new(UInt64Array::from(vec![u64::MAX, 1, 2, u64::MAX])),
        );
        check_batch_values(&batch.slice(1, 2)).unwrap();
        let (_, row, _) = violation(&batch.slice(1, 3));
        assert_eq!(row, 2);
        // Values outside a sliced list are not looked at.
        let list = int_list(vec![Some(vec![None]), Some(vec![Some(2)])]);
        check_batch_values(&single("l", Arc::new(list)).slice(1, 1)).unwrap();
    }
}
