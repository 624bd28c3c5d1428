//! An order-independent checksum of Arrow record batches that one BigQuery query reproduces
//! from the stored table (DESIGN §7: every sync verifies row count and checksum).
//!
//! # Definition
//!
//! Each row becomes a canonical text `R` (below). Its hash is the first 8 bytes of
//! `SHA-256(UTF-8 bytes of R)` read as a big-endian u64. The checksum is the row count and the
//! sum of the row hashes modulo 2^64. A sum (not XOR) so that duplicated rows do not cancel
//! out; modulo 2^64 so it is a plain wrapping add locally.
//!
//! SHA-256 because both sides compute it exactly: BigQuery's `SHA256` and the `sha2` crate.
//! (FARM_FINGERPRINT exists only in BigQuery.) BigQuery cannot add modulo 2^64 with INT64
//! (overflow is an error), so the query splits each hash (as hex text: emulators lack `SUBSTR` on
//! BYTES) into two 32-bit halves and sums each half as INT64 (exact up to 2^31 rows); the
//! caller folds the two sums modulo 2^64 ([`ChecksumValue::from_query_result`]). Folding in
//! SQL with NUMERIC was exact on BigQuery but not on a DuckDB-based emulator, which rounded
//! the 20-digit intermediate through a double.
//!
//! # Canonical row text
//!
//! `R` is the concatenation of the column encodings in schema order. Every encoding is
//! self-delimiting, so no separator is needed and no two different rows share a text:
//! - NULL: `-`
//! - scalar value with text `t`: `<byte length of t>:<t>`
//! - record (struct): `(` + the encodings of its fields + `)`, or `-` when NULL
//! - repeated (list, map): `<element count>[` + the element encodings + `]`; a NULL list is
//!   `0[]` because BigQuery stores a NULL array as an empty one
//! - map entries are records of (key, value).
//!
//! The text `t` of each BigQuery type, and the expression that produces it in BigQuery:
//!
//! | BigQuery type | `t` | BigQuery expression |
//! |---|---|---|
//! | STRING | the string | `x` |
//! | BYTES | lowercase hex | `TO_HEX(x)` |
//! | INT64 | decimal | `CAST(x AS STRING)` |
//! | BOOL | `true` / `false` | `CAST(x AS STRING)` |
//! | FLOAT64 | `%.17g` (C printf); `nan`, `inf`, `-inf`; `0` for ±0 | `FORMAT('%.17g', x)` in a `CASE` |
//! | NUMERIC, BIGNUMERIC | shortest exact decimal: no exponent, no trailing fractional zeros, no `.` for integers | `CAST(x AS STRING)`, trailing zeros stripped by `REGEXP_REPLACE` |
//! | DATE | days since 1970-01-01 | `UNIX_DATE(x)` |
//! | TIMESTAMP | microseconds since the epoch | `UNIX_MICROS(x)` |
//! | DATETIME | microseconds since 1970-01-01T00:00 (wall clock) | `UNIX_MICROS(TIMESTAMP(x, 'UTC'))` |
//! | TIME | microseconds since midnight | `TIME_DIFF(x, TIME '00:00:00', MICROSECOND)` |
//!
//! Covered: every type [`table_schema`](super::schema::table_schema) produces, at any nesting.
//! Dates and times are hashed as integers, so their text formats cannot disagree. Deliberate
//! normalisations: all NaNs are equal, -0.0 equals 0.0, NULL lists equal empty lists, and
//! nanosecond timestamps/times count at microsecond precision (truncated towards negative
//! infinity, see [`timestamp_micros`]) because that is what BigQuery stores; writers must
//! truncate the same way. Not covered: GEOGRAPHY, JSON, INTERVAL (never produced by the
//! mapper; `checksum_sql` rejects them).
//!
//! The float text relies on BigQuery's `FORMAT('%.17g')` following C printf with correct
//! rounding (ties to even), as ZetaSQL's reference implementation (absl::StrFormat) does;
//! it is the one expression here not pinned to integer arithmetic, so the first live sync of
//! a FLOAT64 column is where a discrepancy would surface (as a loud checksum mismatch).

use std::fmt::Write as _;

use datafusion::arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, BinaryArray, BinaryViewArray, BooleanArray,
    FixedSizeBinaryArray, FixedSizeListArray, GenericListArray, GenericListViewArray,
    LargeBinaryArray, LargeStringArray, MapArray, PrimitiveArray, StringArray, StringViewArray,
    StructArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type, DecimalType,
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, SchemaRef,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_schema::TableSchema;
use sha2::{Digest, Sha256};

use super::names::{TableRef, validate_column_name};
use super::schema::{MODE_REPEATED, table_schema};
use super::values::{
    check_batch_values, date64_days, downcast, i32_values, i64_values, is_live, mismatch,
    push_decimal, time_micros, timestamp_micros,
};
use crate::error::ConnectorError;

/// Row count and checksum of a table, as computed locally or read back from BigQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChecksumValue {
    pub rows: u64,
    /// Sum of the row hashes modulo 2^64.
    pub sum: u64,
}

impl ChecksumValue {
    /// From the `row_count`, `high_sum` and `low_sum` columns of the [`checksum_sql`] result:
    /// the sums of the upper and lower 32 bits of the row hashes, folded here modulo 2^64.
    pub fn from_query_result(
        row_count: i64,
        high_sum: i64,
        low_sum: i64,
    ) -> Result<Self, ConnectorError> {
        let rows = u64::try_from(row_count).map_err(|_| ConnectorError::UnexpectedResponse {
            reason: format!("the checksum query returned a negative row count {row_count}"),
        })?;
        if high_sum < 0 || low_sum < 0 {
            return Err(ConnectorError::UnexpectedResponse {
                reason: format!("the checksum query returned negative sums {high_sum}, {low_sum}"),
            });
        }
        let (high, low) = (high_sum.cast_unsigned(), low_sum.cast_unsigned());
        Ok(Self {
            rows,
            sum: (high << 32).wrapping_add(low),
        })
    }
}

impl std::fmt::Display for ChecksumValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} rows, checksum {:016x}", self.rows, self.sum)
    }
}

/// Incremental checksum over the batches of one table; batches may come in any order and
/// any split.
#[derive(Debug, Clone, Default)]
pub struct TableChecksum {
    value: ChecksumValue,
    /// Schema of the first batch; later batches must have the same columns and types.
    schema: Option<SchemaRef>,
}

impl TableChecksum {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the rows of `batch`. Fails if the batch's schema cannot be mapped to BigQuery,
    /// differs from earlier batches, or holds values BigQuery cannot store (the checksum
    /// would then describe data that cannot exist in the table).
    pub fn update(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        match &self.schema {
            None => {
                table_schema(batch.schema_ref())?;
                self.schema = Some(batch.schema());
            }
            Some(expected) => ensure_same_columns(expected, batch)?,
        }
        check_batch_values(batch)?;
        for row in canonical_rows(batch)? {
            self.value.sum = self.value.sum.wrapping_add(row_hash(&row));
        }
        self.value.rows += batch.num_rows() as u64;
        Ok(())
    }

    pub fn value(&self) -> ChecksumValue {
        self.value
    }
}

/// The checksum of a table made of `batches`.
pub fn checksum_batches(batches: &[RecordBatch]) -> Result<ChecksumValue, ConnectorError> {
    let mut checksum = TableChecksum::new();
    for batch in batches {
        checksum.update(batch)?;
    }
    Ok(checksum.value())
}

fn ensure_same_columns(expected: &SchemaRef, batch: &RecordBatch) -> Result<(), ConnectorError> {
    let actual = batch.schema_ref();
    if expected.fields().len() != actual.fields().len() {
        return Err(ConnectorError::InvalidSchema {
            column: String::new(),
            reason: format!(
                "batch has {} columns, earlier batches of the table had {}",
                actual.fields().len(),
                expected.fields().len()
            ),
        });
    }
    for (old, new) in expected.fields().iter().zip(actual.fields()) {
        if old.name() != new.name() || !old.data_type().equals_datatype(new.data_type()) {
            return Err(ConnectorError::InvalidSchema {
                column: new.name().clone(),
                reason: format!(
                    "batch column `{}` {} differs from earlier batches' `{}` {}",
                    new.name(),
                    new.data_type(),
                    old.name(),
                    old.data_type()
                ),
            });
        }
    }
    Ok(())
}

/// First 8 bytes of SHA-256, big-endian.
fn row_hash(row: &str) -> u64 {
    let digest = Sha256::digest(row.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The canonical text of every row of `batch` (module docs).
pub(crate) fn canonical_rows(batch: &RecordBatch) -> Result<Vec<String>, ConnectorError> {
    let mut rows = vec![String::new(); batch.num_rows()];
    for (field, column) in batch.schema_ref().fields().iter().zip(batch.columns()) {
        encode_column(column.as_ref(), field.name(), None, &mut rows)?;
    }
    Ok(rows)
}

/// Appends the encoding of every value of `array` to the matching entry of `out`
/// (`out.len() == array.len()`). Positions where `live` is NULL (an enclosing record is
/// NULL) get nothing: the record's `-` already stands for them.
fn encode_column(
    array: &dyn Array,
    path: &str,
    live: Option<&NullBuffer>,
    out: &mut [String],
) -> Result<(), ConnectorError> {
    let own_nulls = array.logical_nulls();
    let present = NullBuffer::union(live, own_nulls.as_ref());
    let present = present.as_ref();
    let scalars =
        |out: &mut [String],
         text: &mut dyn FnMut(usize, &mut String) -> Result<(), ConnectorError>| {
            encode_scalars(live, present, out, text)
        };

    match array.data_type() {
        DataType::Utf8 => {
            let a = downcast::<StringArray>(array, path)?;
            scalars(out, &mut |i, t| {
                t.push_str(a.value(i));
                Ok(())
            })
        }
        DataType::LargeUtf8 => {
            let a = downcast::<LargeStringArray>(array, path)?;
            scalars(out, &mut |i, t| {
                t.push_str(a.value(i));
                Ok(())
            })
        }
        DataType::Utf8View => {
            let a = downcast::<StringViewArray>(array, path)?;
            scalars(out, &mut |i, t| {
                t.push_str(a.value(i));
                Ok(())
            })
        }
        DataType::Binary => {
            let a = downcast::<BinaryArray>(array, path)?;
            scalars(out, &mut |i, t| {
                push_hex(a.value(i), t);
                Ok(())
            })
        }
        DataType::LargeBinary => {
            let a = downcast::<LargeBinaryArray>(array, path)?;
            scalars(out, &mut |i, t| {
                push_hex(a.value(i), t);
                Ok(())
            })
        }
        DataType::BinaryView => {
            let a = downcast::<BinaryViewArray>(array, path)?;
            scalars(out, &mut |i, t| {
                push_hex(a.value(i), t);
                Ok(())
            })
        }
        DataType::FixedSizeBinary(_) => {
            let a = downcast::<FixedSizeBinaryArray>(array, path)?;
            scalars(out, &mut |i, t| {
                push_hex(a.value(i), t);
                Ok(())
            })
        }
        DataType::Int8 => encode_integers::<Int8Type>(array, path, live, present, out),
        DataType::Int16 => encode_integers::<Int16Type>(array, path, live, present, out),
        DataType::Int32 => encode_integers::<Int32Type>(array, path, live, present, out),
        DataType::Int64 => encode_integers::<Int64Type>(array, path, live, present, out),
        DataType::UInt8 => encode_integers::<UInt8Type>(array, path, live, present, out),
        DataType::UInt16 => encode_integers::<UInt16Type>(array, path, live, present, out),
        DataType::UInt32 => encode_integers::<UInt32Type>(array, path, live, present, out),
        // Values above i64::MAX were rejected by `check_batch_values`; decimal text is the same.
        DataType::UInt64 => encode_integers::<UInt64Type>(array, path, live, present, out),
        DataType::Float16 => {
            let a = downcast::<PrimitiveArray<Float16Type>>(array, path)?;
            scalars(out, &mut |i, t| push_float(a.value(i).to_f64(), t))
        }
        DataType::Float32 => {
            let a = downcast::<PrimitiveArray<Float32Type>>(array, path)?;
            scalars(out, &mut |i, t| push_float(f64::from(a.value(i)), t))
        }
        DataType::Float64 => {
            let a = downcast::<PrimitiveArray<Float64Type>>(array, path)?;
            scalars(out, &mut |i, t| push_float(a.value(i), t))
        }
        DataType::Decimal32(_, scale) => {
            encode_decimals::<Decimal32Type>(array, *scale, path, live, present, out)
        }
        DataType::Decimal64(_, scale) => {
            encode_decimals::<Decimal64Type>(array, *scale, path, live, present, out)
        }
        DataType::Decimal128(_, scale) => {
            encode_decimals::<Decimal128Type>(array, *scale, path, live, present, out)
        }
        DataType::Decimal256(_, scale) => {
            encode_decimals::<Decimal256Type>(array, *scale, path, live, present, out)
        }
        DataType::Boolean => {
            let a = downcast::<BooleanArray>(array, path)?;
            scalars(out, &mut |i, t| {
                t.push_str(if a.value(i) { "true" } else { "false" });
                Ok(())
            })
        }
        DataType::Date32 => {
            let days = i32_values(array).ok_or_else(|| mismatch(path, array.data_type()))?;
            scalars(out, &mut |i, t| {
                push_integer(days[i], t);
                Ok(())
            })
        }
        DataType::Date64 => {
            let millis = i64_values(array).ok_or_else(|| mismatch(path, array.data_type()))?;
            scalars(out, &mut |i, t| {
                let days = date64_days(millis[i])
                    .ok_or_else(|| unrepresentable(path, i, "Date64 value is not a whole day"))?;
                push_integer(days, t);
                Ok(())
            })
        }
        DataType::Timestamp(unit, _) => {
            let values = i64_values(array).ok_or_else(|| mismatch(path, array.data_type()))?;
            scalars(out, &mut |i, t| {
                let micros = timestamp_micros(values[i], *unit)
                    .ok_or_else(|| unrepresentable(path, i, "timestamp overflows microseconds"))?;
                push_integer(micros, t);
                Ok(())
            })
        }
        DataType::Time32(unit) => {
            let values = i32_values(array).ok_or_else(|| mismatch(path, array.data_type()))?;
            scalars(out, &mut |i, t| {
                let micros = time_micros(values[i].into(), *unit)
                    .ok_or_else(|| unrepresentable(path, i, "time outside 00:00 to 24:00"))?;
                push_integer(micros, t);
                Ok(())
            })
        }
        DataType::Time64(unit) => {
            let values = i64_values(array).ok_or_else(|| mismatch(path, array.data_type()))?;
            scalars(out, &mut |i, t| {
                let micros = time_micros(values[i], *unit)
                    .ok_or_else(|| unrepresentable(path, i, "time outside 00:00 to 24:00"))?;
                push_integer(micros, t);
                Ok(())
            })
        }
        DataType::Struct(fields) => {
            let record = downcast::<StructArray>(array, path)?;
            encode_record(
                record,
                |i| format!("{path}.{}", fields[i].name()),
                live,
                present,
                out,
            )
        }
        DataType::List(_) => {
            let list = downcast::<GenericListArray<i32>>(array, path)?;
            encode_repeated(path, live, present, out, |i| list.value(i))
        }
        DataType::LargeList(_) => {
            let list = downcast::<GenericListArray<i64>>(array, path)?;
            encode_repeated(path, live, present, out, |i| list.value(i))
        }
        DataType::ListView(_) => {
            let list = downcast::<GenericListViewArray<i32>>(array, path)?;
            encode_repeated(path, live, present, out, |i| list.value(i))
        }
        DataType::LargeListView(_) => {
            let list = downcast::<GenericListViewArray<i64>>(array, path)?;
            encode_repeated(path, live, present, out, |i| list.value(i))
        }
        DataType::FixedSizeList(_, _) => {
            let list = downcast::<FixedSizeListArray>(array, path)?;
            encode_repeated(path, live, present, out, |i| list.value(i))
        }
        DataType::Map(_, _) => {
            let map = downcast::<MapArray>(array, path)?;
            // Each entry is a (key, value) record, named as in the BigQuery schema.
            encode_repeated(path, live, present, out, |i| {
                std::sync::Arc::new(map.value(i)) as ArrayRef
            })
        }
        DataType::Dictionary(_, value_type) => {
            let values = cast(array, value_type)?;
            encode_column(values.as_ref(), path, live, out)
        }
        other => Err(ConnectorError::UnsupportedType {
            column: path.to_owned(),
            data_type: other.clone(),
            reason: "not covered by the checksum".to_owned(),
        }),
    }
}

/// Writes `-` for NULL and `<len>:<text>` otherwise, skipping positions hidden by `live`.
fn encode_scalars(
    live: Option<&NullBuffer>,
    present: Option<&NullBuffer>,
    out: &mut [String],
    text: &mut dyn FnMut(usize, &mut String) -> Result<(), ConnectorError>,
) -> Result<(), ConnectorError> {
    let mut scratch = String::new();
    for (i, row) in out.iter_mut().enumerate() {
        if !is_live(live, i) {
            continue;
        }
        if !is_live(present, i) {
            row.push('-');
            continue;
        }
        scratch.clear();
        text(i, &mut scratch)?;
        push_integer(scratch.len(), row);
        row.push(':');
        row.push_str(&scratch);
    }
    Ok(())
}

fn encode_integers<T: ArrowPrimitiveType>(
    array: &dyn Array,
    path: &str,
    live: Option<&NullBuffer>,
    present: Option<&NullBuffer>,
    out: &mut [String],
) -> Result<(), ConnectorError>
where
    T::Native: std::fmt::Display,
{
    let a = downcast::<PrimitiveArray<T>>(array, path)?;
    encode_scalars(live, present, out, &mut |i, t| {
        push_integer(a.value(i), t);
        Ok(())
    })
}

fn encode_decimals<T: DecimalType>(
    array: &dyn Array,
    scale: i8,
    path: &str,
    live: Option<&NullBuffer>,
    present: Option<&NullBuffer>,
    out: &mut [String],
) -> Result<(), ConnectorError>
where
    T::Native: std::fmt::Display,
{
    let a = downcast::<PrimitiveArray<T>>(array, path)?;
    let mut unscaled = String::new();
    encode_scalars(live, present, out, &mut |i, t| {
        unscaled.clear();
        push_integer(a.value(i), &mut unscaled);
        push_decimal(&unscaled, scale, t);
        Ok(())
    })
}

/// `(` fields `)` for present records, `-` for NULL ones.
fn encode_record(
    record: &StructArray,
    child_path: impl Fn(usize) -> String,
    live: Option<&NullBuffer>,
    present: Option<&NullBuffer>,
    out: &mut [String],
) -> Result<(), ConnectorError> {
    for (i, row) in out.iter_mut().enumerate() {
        if is_live(live, i) {
            row.push(if is_live(present, i) { '(' } else { '-' });
        }
    }
    for (index, child) in record.columns().iter().enumerate() {
        encode_column(child.as_ref(), &child_path(index), present, out)?;
    }
    for (i, row) in out.iter_mut().enumerate() {
        if is_live(present, i) {
            row.push(')');
        }
    }
    Ok(())
}

/// `<count>[` elements `]`; NULL lists are `0[]` like the empty arrays BigQuery stores.
fn encode_repeated(
    path: &str,
    live: Option<&NullBuffer>,
    present: Option<&NullBuffer>,
    out: &mut [String],
    elements_of: impl Fn(usize) -> ArrayRef,
) -> Result<(), ConnectorError> {
    let mut elements_text = Vec::new();
    for (i, row) in out.iter_mut().enumerate() {
        if !is_live(live, i) {
            continue;
        }
        if !is_live(present, i) {
            row.push_str("0[]");
            continue;
        }
        let elements = elements_of(i);
        elements_text.clear();
        elements_text.resize(elements.len(), String::new());
        encode_column(elements.as_ref(), path, None, &mut elements_text)?;
        push_integer(elements.len(), row);
        row.push('[');
        for element in &elements_text {
            row.push_str(element);
        }
        row.push(']');
    }
    Ok(())
}

fn push_integer(value: impl std::fmt::Display, out: &mut String) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{value}");
}

fn push_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// The FLOAT64 text: `nan`, `inf`, `-inf`, `0` for both zeros, else C's `%.17g`.
fn push_float(value: f64, out: &mut String) -> Result<(), ConnectorError> {
    if value.is_nan() {
        out.push_str("nan");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "inf" } else { "-inf" });
    } else if value == 0.0 {
        out.push('0');
    } else {
        push_g17(value, out)?;
    }
    Ok(())
}

/// C printf `%.17g` for a finite non-zero double: 17 significant digits, correctly rounded
/// (Rust's exact formatting rounds ties to even, as glibc and absl do), in fixed notation
/// when the decimal exponent is in [-4, 17) and scientific otherwise, trailing zeros removed.
fn push_g17(value: f64, out: &mut String) -> Result<(), ConnectorError> {
    const SIGNIFICANT: i32 = 17;
    let scientific = format!("{:.*e}", (SIGNIFICANT - 1) as usize, value);
    let (mantissa, exponent) = scientific.split_once('e').ok_or_else(|| {
        ConnectorError::Arrow(ArrowError::ComputeError(format!(
            "unexpected float formatting {scientific}"
        )))
    })?;
    let exponent: i32 = exponent.parse().map_err(|_| {
        ConnectorError::Arrow(ArrowError::ComputeError(format!(
            "unexpected float formatting {scientific}"
        )))
    })?;
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    if (-4..SIGNIFICANT).contains(&exponent) {
        let (integer, fraction) = if exponent >= 0 {
            let split = (exponent + 1) as usize;
            (digits[..split].to_owned(), digits[split..].to_owned())
        } else {
            let zeros = "0".repeat((-exponent - 1) as usize);
            ("0".to_owned(), format!("{zeros}{digits}"))
        };
        out.push_str(&integer);
        let fraction = fraction.trim_end_matches('0');
        if !fraction.is_empty() {
            out.push('.');
            out.push_str(fraction);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        let rest = rest.trim_end_matches('0');
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
    }
    Ok(())
}

fn unrepresentable(path: &str, row: usize, reason: &str) -> ConnectorError {
    ConnectorError::UnrepresentableValue {
        column: path.to_owned(),
        row,
        reason: reason.to_owned(),
    }
}

/// Quoted range variable for the table's rows; the `-` makes it impossible as a column name.
pub const ROW_ALIAS: &str = "`phygital-row`";

/// The GoogleSQL query returning `row_count`, `high_sum` and `low_sum` (INT64: the sums of
/// the hash halves) for `table`, whose schema is `schema` (as produced by
/// [`table_schema`](super::schema::table_schema) for the source batches). Compare with
/// [`ChecksumValue::from_query_result`].
pub fn checksum_sql(table: &TableRef, schema: &TableSchema) -> Result<String, ConnectorError> {
    checksum_sql_where(table, schema, None)
}

/// Like [`checksum_sql`], over the rows of `table` for which `filter` holds. `filter` is a
/// GoogleSQL boolean expression that may refer to the row as [`ROW_ALIAS`]; the caller builds
/// it from validated names only. Used to verify the slice of a table a merge or a partition
/// replace wrote.
pub fn checksum_sql_where(
    table: &TableRef,
    schema: &TableSchema,
    filter: Option<&str>,
) -> Result<String, ConnectorError> {
    let fields = schema
        .fields
        .as_deref()
        .filter(|fields| !fields.is_empty())
        .ok_or_else(|| ConnectorError::InvalidSchema {
            column: String::new(),
            reason: "a BigQuery table needs at least one column".to_owned(),
        })?;
    let columns = fields
        .iter()
        .map(|field| {
            validate_column_name(&field.name)?;
            field_encoding(
                field,
                &format!("{ROW_ALIAS}.`{}`", field.name),
                &field.name,
                0,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let row_text = columns.join(",\n      ");
    let filter = filter
        .map(|condition| format!("\n  WHERE {condition}"))
        .unwrap_or_default();
    Ok(format!(
        "WITH row_hashes AS (\n\
         \x20 SELECT TO_HEX(SHA256(CONCAT(\n\
         \x20     {row_text}\n\
         \x20 ))) AS row_hash\n\
         \x20 FROM {table} AS {ROW_ALIAS}{filter}\n\
         )\n\
         SELECT\n\
         \x20 COUNT(*) AS row_count,\n\
         \x20 COALESCE(SUM(CAST(CONCAT('0x', SUBSTR(row_hash, 1, 8)) AS INT64)), 0) AS high_sum,\n\
         \x20 COALESCE(SUM(CAST(CONCAT('0x', SUBSTR(row_hash, 9, 8)) AS INT64)), 0) AS low_sum\n\
         FROM row_hashes\n"
    ))
}

/// The STRING expression encoding the field at `reference` (never NULL).
fn field_encoding(
    field: &TableFieldSchema,
    reference: &str,
    path: &str,
    depth: usize,
) -> Result<String, ConnectorError> {
    if field.mode.as_deref() != Some(MODE_REPEATED) {
        return value_encoding(field, reference, path, depth);
    }
    let element = format!("`phygital-element-{depth}`");
    let offset = format!("`phygital-offset-{depth}`");
    let element_encoding = value_encoding(field, &element, path, depth + 1)?;
    Ok(format!(
        "CONCAT(CAST(COALESCE(ARRAY_LENGTH({reference}), 0) AS STRING), '[', \
         ARRAY_TO_STRING(ARRAY(SELECT {element_encoding} FROM UNNEST({reference}) AS {element} \
         WITH OFFSET AS {offset} ORDER BY {offset}), ''), ']')"
    ))
}

/// The encoding of one (non-repeated) value of the field's type at `reference`.
fn value_encoding(
    field: &TableFieldSchema,
    reference: &str,
    path: &str,
    depth: usize,
) -> Result<String, ConnectorError> {
    let text = match field.r#type {
        FieldType::Record | FieldType::Struct => {
            let children = field
                .fields
                .as_deref()
                .filter(|fields| !fields.is_empty())
                .ok_or_else(|| ConnectorError::InvalidSchema {
                    column: path.to_owned(),
                    reason: "a RECORD needs at least one field".to_owned(),
                })?;
            let encodings = children
                .iter()
                .map(|child| {
                    validate_column_name(&child.name)?;
                    field_encoding(
                        child,
                        &format!("{reference}.`{}`", child.name),
                        &format!("{path}.{}", child.name),
                        depth,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(format!(
                "IF({reference} IS NULL, '-', CONCAT('(', {}, ')'))",
                encodings.join(", ")
            ));
        }
        FieldType::String => reference.to_owned(),
        FieldType::Bytes => format!("TO_HEX({reference})"),
        FieldType::Integer | FieldType::Int64 | FieldType::Boolean | FieldType::Bool => {
            format!("CAST({reference} AS STRING)")
        }
        // BigQuery prints NUMERIC without trailing fractional zeros; DuckDB-based emulators print
        // the full scale ("1.250000000"). Stripping them is a no-op on BigQuery and makes the
        // text the shortest exact decimal everywhere.
        FieldType::Numeric | FieldType::Bignumeric => format!(
            "REGEXP_REPLACE(REGEXP_REPLACE(CAST({reference} AS STRING), r'(\\.[0-9]*[1-9])0+$', r'\\1'), r'\\.0*$', '')"
        ),
        FieldType::Float | FieldType::Float64 => format!(
            "CASE WHEN IS_NAN({reference}) THEN 'nan' \
             WHEN IS_INF({reference}) THEN IF({reference} > 0, 'inf', '-inf') \
             WHEN {reference} = 0 THEN '0' \
             ELSE FORMAT('%.17g', {reference}) END"
        ),
        FieldType::Date => format!("CAST(UNIX_DATE({reference}) AS STRING)"),
        FieldType::Timestamp => format!("CAST(UNIX_MICROS({reference}) AS STRING)"),
        FieldType::Datetime => {
            format!("CAST(UNIX_MICROS(TIMESTAMP({reference}, 'UTC')) AS STRING)")
        }
        FieldType::Time => {
            format!("CAST(TIME_DIFF({reference}, TIME '00:00:00', MICROSECOND) AS STRING)")
        }
        FieldType::Geography | FieldType::Json | FieldType::Interval => {
            return Err(ConnectorError::InvalidSchema {
                column: path.to_owned(),
                reason: format!(
                    "BigQuery type {:?} is not covered by the checksum",
                    field.r#type
                ),
            });
        }
    };
    Ok(format!(
        "IF({reference} IS NULL, '-', CONCAT(CAST(BYTE_LENGTH({text}) AS STRING), ':', {text}))"
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
        Int32Array, Int64Array, ListArray, MapArray, StringArray, StructArray,
        Time64NanosecondArray, TimestampMillisecondArray, TimestampNanosecondArray, UInt64Array,
    };
    use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
    use datafusion::arrow::datatypes::{Field, Fields, Schema};

    use super::*;

    fn float_text(value: f64) -> String {
        let mut out = String::new();
        push_float(value, &mut out).unwrap();
        out
    }

    /// Expected texts are Python's `'%.17g' % value` (CPython formats with correctly rounded
    /// C semantics), plus the special values the checksum normalises.
    #[test]
    fn float_text_matches_printf_g17() {
        let cases = [
            (0.1, "0.10000000000000001"),
            (1.0 / 3.0, "0.33333333333333331"),
            (1e21, "1e+21"),
            (1e-5, "1.0000000000000001e-05"),
            (123_456_789_012_345_678.0, "1.2345678901234568e+17"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (0.0001, "0.0001"),
            (0.000_012_34, "1.234e-05"),
            (5e-324, "4.9406564584124654e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            // 1234567890123456.25 exactly: a tie at the 17th digit, rounded to even.
            (1_234_567_890_123_456.0 + 0.25, "1234567890123456.2"),
            (100.0, "100"),
            (-2.5, "-2.5"),
            (9_007_199_254_740_994.0, "9007199254740994"),
            (-1e-300, "-1e-300"),
            (12345.678, "12345.678"),
            (1_000_000_000_000_000.2, "1000000000000000.2"),
            (0.0, "0"),
            (-0.0, "0"),
            (f64::NAN, "nan"),
            (-f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (value, expected) in cases {
            assert_eq!(float_text(value), expected, "{value:e}");
        }
    }

    #[test]
    fn decimal_text_is_the_shortest_exact_form() {
        let cases = [
            ("150", 2, "1.5"),
            ("-5", 2, "-0.05"),
            ("100", 2, "1"),
            ("0", 2, "0"),
            ("-0", 3, "0"),
            ("123456789", 0, "123456789"),
            ("12", -3, "12000"),
            ("0", -3, "0"),
            ("1", 38, "0.00000000000000000000000000000000000001"),
            ("-123450", 4, "-12.345"),
        ];
        for (unscaled, scale, expected) in cases {
            let mut out = String::new();
            push_decimal(unscaled, scale, &mut out);
            assert_eq!(out, expected, "{unscaled} scale {scale}");
        }
    }

    fn item(data_type: DataType) -> Arc<Field> {
        Arc::new(Field::new("item", data_type, true))
    }

    /// Three rows touching every encoding: NULLs, ±0, NaN, infinities, negative decimals,
    /// sub-microsecond and negative timestamps, empty strings and bytes, NULL vs empty
    /// lists, lists of records, records with NULL fields, maps.
    fn fixture() -> RecordBatch {
        let line_fields = Fields::from(vec![
            Field::new("sku", DataType::Utf8, true),
            Field::new("qty", DataType::Int32, true),
        ]);
        let lines = ListArray::new(
            item(DataType::Struct(line_fields.clone())),
            OffsetBuffer::new(ScalarBuffer::from(vec![0, 1, 3, 3])),
            Arc::new(StructArray::new(
                line_fields,
                vec![
                    Arc::new(StringArray::from(vec!["x", "y", "z"])) as ArrayRef,
                    Arc::new(Int32Array::from(vec![Some(2), None, Some(3)])),
                ],
                None,
            )),
            Some(NullBuffer::from(vec![true, true, false])),
        );
        let meta_fields = Fields::from(vec![
            Field::new("src", DataType::Utf8, true),
            Field::new("n", DataType::UInt64, true),
        ]);
        let meta = StructArray::new(
            meta_fields,
            vec![
                Arc::new(StringArray::from(vec![Some("web"), Some("ignored"), None])) as ArrayRef,
                Arc::new(UInt64Array::from(vec![7, 99, i64::MAX as u64])),
            ],
            Some(NullBuffer::from(vec![true, false, true])),
        );
        let attrs = {
            let values = Int64Array::from(vec![1]);
            let map =
                MapArray::new_from_strings(["k"].into_iter(), &values, &[0, 1, 1, 1]).unwrap();
            let (field, offsets, entries, _, sorted) = map.into_parts();
            MapArray::new(
                field,
                offsets,
                entries,
                Some(NullBuffer::from(vec![true, true, false])),
                sorted,
            )
        };
        let tags = {
            let strings = StringArray::from(vec!["a", "bc"]);
            ListArray::new(
                item(DataType::Utf8),
                OffsetBuffer::new(ScalarBuffer::from(vec![0, 2, 2, 2])),
                Arc::new(strings),
                Some(NullBuffer::from(vec![true, false, true])),
            )
        };
        let columns: Vec<(&str, ArrayRef, bool)> = vec![
            (
                "id",
                Arc::new(Int64Array::from(vec![1, -42, 9_007_199_254_740_993])),
                false,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![Some("Zoë"), None, Some("")])),
                true,
            ),
            (
                "price",
                Arc::new(Float64Array::from(vec![0.1, -0.0, 1e21])),
                true,
            ),
            (
                "ratio",
                Arc::new(Float32Array::from(vec![1.5, f32::NAN, f32::NEG_INFINITY])),
                true,
            ),
            (
                "amount",
                Arc::new(
                    Decimal128Array::from(vec![Some(150), Some(-5), None])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
                true,
            ),
            (
                "active",
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
                true,
            ),
            (
                "day",
                Arc::new(Date32Array::from(vec![19_000, -719_162, 0])),
                true,
            ),
            (
                "at",
                Arc::new(
                    TimestampNanosecondArray::from(vec![1_700_000_000_123_456_789, -1, 0])
                        .with_timezone("UTC"),
                ),
                true,
            ),
            (
                "local",
                Arc::new(TimestampMillisecondArray::from(vec![
                    Some(1_000),
                    None,
                    Some(-1),
                ])),
                true,
            ),
            (
                "clock",
                Arc::new(Time64NanosecondArray::from(vec![
                    1_500,
                    86_399_999_999_999,
                    0,
                ])),
                true,
            ),
            (
                "blob",
                Arc::new(BinaryArray::from(vec![
                    Some(&[0xde, 0xad][..]),
                    Some(&[][..]),
                    None,
                ])),
                true,
            ),
            ("tags", Arc::new(tags), true),
            ("lines", Arc::new(lines), true),
            ("meta", Arc::new(meta), true),
            ("attrs", Arc::new(attrs), true),
        ];
        let schema = Schema::new(
            columns
                .iter()
                .map(|(name, array, nullable)| {
                    Field::new(*name, array.data_type().clone(), *nullable)
                })
                .collect::<Vec<_>>(),
        );
        RecordBatch::try_new(
            Arc::new(schema),
            columns.into_iter().map(|(_, array, _)| array).collect(),
        )
        .unwrap()
    }

    /// The canonical texts of `fixture()`, written out by hand from the module docs.
    const FIXTURE_ROWS: [&str; 3] = [
        "1:14:Zoë19:0.100000000000000013:1.53:1.54:true5:1900016:17000000001234567:10000001:14:dead2[1:a2:bc]1[(1:x1:2)](3:web1:7)1[(1:k1:1)]",
        "3:-42-1:03:nan5:-0.055:false7:-7191622:-1-11:863999999990:0[]2[(1:y-)(1:z1:3)]-0[]",
        "16:90071992547409930:5:1e+214:-inf--1:01:05:-10001:0-0[]0[](-19:9223372036854775807)0[]",
    ];

    /// Computed independently with Python:
    /// `sum(int.from_bytes(hashlib.sha256(r.encode()).digest()[:8], 'big') for r in rows) % 2**64`
    const FIXTURE_SUM: u64 = 0x9731_fcf8_6c67_8a62;
    const FIXTURE_ROW_HASHES: [u64; 3] = [
        0xe45d_80c3_9df5_db1b,
        0x0968_80d9_c06a_442a,
        0xa96b_fb5b_0e07_6b1d,
    ];

    #[test]
    fn canonical_rows_follow_the_documented_encoding() {
        let rows = canonical_rows(&fixture()).unwrap();
        assert_eq!(rows, FIXTURE_ROWS);
    }

    #[test]
    fn row_hashes_and_sum_match_an_independent_computation() {
        for (row, expected) in FIXTURE_ROWS.iter().zip(FIXTURE_ROW_HASHES) {
            assert_eq!(row_hash(row), expected, "{row}");
        }
        assert_eq!(
            checksum_batches(&[fixture()]).unwrap(),
            ChecksumValue {
                rows: 3,
                sum: FIXTURE_SUM
            }
        );
    }

    #[test]
    fn checksum_ignores_row_order_and_batch_boundaries() {
        let batch = fixture();
        let whole = checksum_batches(std::slice::from_ref(&batch)).unwrap();
        let reversed = checksum_batches(&[batch.slice(2, 1), batch.slice(0, 2)]).unwrap();
        let singles =
            checksum_batches(&[batch.slice(1, 1), batch.slice(2, 1), batch.slice(0, 1)]).unwrap();
        assert_eq!(whole, reversed);
        assert_eq!(whole, singles);
    }

    #[test]
    fn duplicated_rows_change_the_checksum() {
        let batch = fixture();
        let with_duplicate = checksum_batches(&[batch.clone(), batch.slice(0, 1)]).unwrap();
        assert_eq!(with_duplicate.rows, 4);
        // Python: (FIXTURE_SUM + hash(row 0)) % 2**64
        assert_eq!(with_duplicate.sum, 0x7b8f_7dbc_0a5d_657d);
        let twice = checksum_batches(&[batch.clone(), batch]).unwrap();
        assert_ne!(
            twice.sum, 0,
            "a sum must not cancel pairs the way XOR would"
        );
    }

    #[test]
    fn null_and_empty_lists_hash_alike_but_differ_from_non_empty() {
        let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            None,
            Some(vec![]),
            Some(vec![Some(0)]),
        ]);
        let batch = RecordBatch::try_from_iter(vec![("l", Arc::new(lists) as ArrayRef)]).unwrap();
        let rows = canonical_rows(&batch).unwrap();
        assert_eq!(rows, ["0[]", "0[]", "1[1:0]"]);
    }

    #[test]
    fn empty_input_has_a_zero_checksum() {
        assert_eq!(checksum_batches(&[]).unwrap(), ChecksumValue::default());
        assert_eq!(
            checksum_batches(&[fixture().slice(0, 0)]).unwrap(),
            ChecksumValue { rows: 0, sum: 0 }
        );
    }

    #[test]
    fn batches_with_different_schemas_are_rejected() {
        let a = RecordBatch::try_from_iter(vec![(
            "id",
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
        )])
        .unwrap();
        let b = RecordBatch::try_from_iter(vec![(
            "id",
            Arc::new(Int32Array::from(vec![1])) as ArrayRef,
        )])
        .unwrap();
        let mut checksum = TableChecksum::new();
        checksum.update(&a).unwrap();
        match checksum.update(&b) {
            Err(ConnectorError::InvalidSchema { column, reason }) => {
                assert_eq!(column, "id");
                assert!(reason.contains("Int32"), "{reason}");
            }
            other => panic!("expected InvalidSchema, got {other:?}"),
        }
        // The failed batch left the running value untouched.
        assert_eq!(checksum.value().rows, 1);
    }

    #[test]
    fn unrepresentable_values_and_types_fail_the_checksum() {
        let big = RecordBatch::try_from_iter(vec![(
            "n",
            Arc::new(UInt64Array::from(vec![u64::MAX])) as ArrayRef,
        )])
        .unwrap();
        assert!(matches!(
            checksum_batches(&[big]),
            Err(ConnectorError::UnrepresentableValue { .. })
        ));
        let duration = RecordBatch::try_from_iter(vec![(
            "d",
            Arc::new(datafusion::arrow::array::DurationSecondArray::from(vec![1])) as ArrayRef,
        )])
        .unwrap();
        assert!(matches!(
            checksum_batches(&[duration]),
            Err(ConnectorError::UnsupportedType { .. })
        ));
    }

    #[test]
    fn dictionaries_hash_like_their_values() {
        use datafusion::arrow::array::DictionaryArray;
        use datafusion::arrow::datatypes::Int8Type;
        let plain = RecordBatch::try_from_iter(vec![(
            "s",
            Arc::new(StringArray::from(vec![Some("a"), None, Some("b")])) as ArrayRef,
        )])
        .unwrap();
        let dictionary: DictionaryArray<Int8Type> =
            vec![Some("a"), None, Some("b")].into_iter().collect();
        let encoded =
            RecordBatch::try_from_iter(vec![("s", Arc::new(dictionary) as ArrayRef)]).unwrap();
        assert_eq!(
            checksum_batches(&[plain]).unwrap(),
            checksum_batches(&[encoded]).unwrap()
        );
    }

    #[test]
    fn query_result_round_trips_the_unsigned_sum() {
        // Three rows' halves summed: carries out of the low half and beyond 2^64 fold back.
        let (high, low) = (FIXTURE_SUM >> 32, FIXTURE_SUM & 0xffff_ffff);
        let value =
            ChecksumValue::from_query_result(3, (high + (3 << 32)) as i64, low as i64).unwrap();
        assert_eq!(
            value,
            ChecksumValue {
                rows: 3,
                sum: FIXTURE_SUM
            }
        );
        assert!(matches!(
            ChecksumValue::from_query_result(-1, 0, 0),
            Err(ConnectorError::UnexpectedResponse { .. })
        ));
        assert_eq!(value.to_string(), "3 rows, checksum 9731fcf86c678a62");
    }

    #[test]
    fn checksum_sql_mirrors_the_encoding() {
        let table = TableRef::new("test-proj", "sales", "orders").unwrap();
        let schema = table_schema(fixture().schema_ref()).unwrap();
        let sql = checksum_sql(&table, &schema).unwrap();
        assert!(
            sql.contains("FROM `test-proj.sales.orders` AS `phygital-row`"),
            "{sql}"
        );
        let expected_columns = [
            // id INT64
            "IF(`phygital-row`.`id` IS NULL, '-', CONCAT(CAST(BYTE_LENGTH(CAST(`phygital-row`.`id` AS STRING)) AS STRING), ':', CAST(`phygital-row`.`id` AS STRING)))",
            // price FLOAT64
            "FORMAT('%.17g', `phygital-row`.`price`)",
            "WHEN `phygital-row`.`price` = 0 THEN '0'",
            // local DATETIME, at TIMESTAMP, day DATE, clock TIME
            "CAST(UNIX_MICROS(TIMESTAMP(`phygital-row`.`local`, 'UTC')) AS STRING)",
            "CAST(UNIX_MICROS(`phygital-row`.`at`) AS STRING)",
            "CAST(UNIX_DATE(`phygital-row`.`day`) AS STRING)",
            "CAST(TIME_DIFF(`phygital-row`.`clock`, TIME '00:00:00', MICROSECOND) AS STRING)",
            "TO_HEX(`phygital-row`.`blob`)",
            // lines: REPEATED RECORD, elements in order, fields of each element
            "CONCAT(CAST(COALESCE(ARRAY_LENGTH(`phygital-row`.`lines`), 0) AS STRING), '[', ARRAY_TO_STRING(ARRAY(SELECT IF(`phygital-element-0` IS NULL, '-', CONCAT('(', IF(`phygital-element-0`.`sku` IS NULL",
            "FROM UNNEST(`phygital-row`.`lines`) AS `phygital-element-0` WITH OFFSET AS `phygital-offset-0` ORDER BY `phygital-offset-0`), ''), ']')",
            // meta: nullable RECORD
            "IF(`phygital-row`.`meta` IS NULL, '-', CONCAT('(', IF(`phygital-row`.`meta`.`src` IS NULL",
            // attrs: REPEATED RECORD(key, value)
            "`phygital-element-0`.`key`",
            "`phygital-element-0`.`value`",
        ];
        for expected in expected_columns {
            assert!(sql.contains(expected), "missing {expected}\nin\n{sql}");
        }
        // Column encodings appear in schema order.
        let positions: Vec<usize> = fixture()
            .schema()
            .fields()
            .iter()
            .map(|f| {
                sql.find(&format!("`phygital-row`.`{}`", f.name()))
                    .unwrap_or_else(|| panic!("{} missing", f.name()))
            })
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        assert!(sql.contains("AS row_count"));
        assert!(sql.contains("AS high_sum") && sql.contains("AS low_sum"));
    }

    #[test]
    fn checksum_sql_nests_repeated_fields_inside_elements_with_distinct_aliases() {
        let inner = Fields::from(vec![Field::new(
            "codes",
            DataType::List(item(DataType::Utf8)),
            true,
        )]);
        let schema = Schema::new(vec![Field::new(
            "groups",
            DataType::List(item(DataType::Struct(inner))),
            true,
        )]);
        let sql = checksum_sql(
            &TableRef::new("test-proj", "ds", "t").unwrap(),
            &table_schema(&schema).unwrap(),
        )
        .unwrap();
        assert!(
            sql.contains("FROM UNNEST(`phygital-element-0`.`codes`) AS `phygital-element-1`"),
            "{sql}"
        );
    }

    #[test]
    fn checksum_sql_rejects_types_it_does_not_cover_and_bad_names() {
        let table = TableRef::new("test-proj", "ds", "t").unwrap();
        let geography = TableSchema::new(vec![TableFieldSchema::geography("g")]);
        assert!(matches!(
            checksum_sql(&table, &geography),
            Err(ConnectorError::InvalidSchema { .. })
        ));
        let injected = TableSchema::new(vec![TableFieldSchema::string("a` OR 1=1 --")]);
        assert!(matches!(
            checksum_sql(&table, &injected),
            Err(ConnectorError::InvalidName { .. })
        ));
        assert!(checksum_sql(&table, &TableSchema::default()).is_err());
    }
}
