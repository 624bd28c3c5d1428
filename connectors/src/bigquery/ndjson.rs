//! Arrow record batches → newline-delimited JSON as BigQuery load jobs read it
//! (`sourceFormat: NEWLINE_DELIMITED_JSON`), one object per row, for the schema that
//! [`table_schema`](super::schema::table_schema) maps the batch to.
//!
//! | BigQuery type | JSON |
//! |---|---|
//! | STRING | string |
//! | INT64 | number |
//! | FLOAT64 | number (shortest text that reads back to the same double); `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | NUMERIC, BIGNUMERIC | string with the exact decimal |
//! | BOOL | `true` / `false` |
//! | TIMESTAMP | `"YYYY-MM-DDTHH:MM:SS.ffffffZ"` (µs; nanoseconds truncated as [`timestamp_micros`]) |
//! | DATETIME | `"YYYY-MM-DDTHH:MM:SS.ffffff"` |
//! | DATE | `"YYYY-MM-DD"` |
//! | TIME | `"HH:MM:SS.ffffff"` |
//! | BYTES | base64 string |
//! | RECORD | object |
//! | REPEATED | array (a NULL list is left out: BigQuery stores it as `[]`) |
//!
//! NULL values are left out of their object. Values are checked by
//! [`check_batch_values`](super::values::check_batch_values) before encoding (the checksum
//! does it), so the encoder only meets values BigQuery can store.

use std::fmt::Write as _;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryViewArray, BooleanArray, FixedSizeBinaryArray,
    FixedSizeListArray, GenericListArray, GenericListViewArray, LargeBinaryArray, LargeStringArray,
    MapArray, PrimitiveArray, StringArray, StringViewArray, StructArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type, DecimalType, Field,
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::record_batch::RecordBatch;

use super::values::{
    MICROS_PER_DAY, date64_days, i32_values, i64_values, push_decimal, time_micros,
    timestamp_micros,
};
use crate::error::ConnectorError;

/// Appends one JSON line per row of `batch` to `out`.
pub fn encode_batch(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ConnectorError> {
    let schema = batch.schema();
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| Ok((field.name().as_str(), without_dictionaries(column, field)?)))
        .collect::<Result<Vec<_>, ConnectorError>>()?;
    let mut line = String::with_capacity(256);
    for row in 0..batch.num_rows() {
        line.clear();
        line.push('{');
        let mut first = true;
        for (name, column) in &columns {
            if column.is_null(row) {
                continue;
            }
            if !first {
                line.push(',');
            }
            first = false;
            push_json_string(name, &mut line);
            line.push(':');
            encode_value(column.as_ref(), row, name, &mut line)?;
        }
        line.push_str("}\n");
        out.extend_from_slice(line.as_bytes());
    }
    Ok(())
}

/// Dictionary encoding is invisible to BigQuery: decode it once per column (at any depth).
fn without_dictionaries(column: &ArrayRef, field: &Field) -> Result<ArrayRef, ConnectorError> {
    let plain = plain_type(field.data_type());
    if &plain == field.data_type() {
        Ok(column.clone())
    } else {
        Ok(cast(column.as_ref(), &plain)?)
    }
}

fn plain_type(data_type: &DataType) -> DataType {
    let plain_field = |f: &Field| f.clone().with_data_type(plain_type(f.data_type()));
    match data_type {
        DataType::Dictionary(_, value) => plain_type(value),
        DataType::List(f) => DataType::List(plain_field(f).into()),
        DataType::LargeList(f) => DataType::LargeList(plain_field(f).into()),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(plain_field(f).into(), *n),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| plain_field(f)).collect())
        }
        other => other.clone(),
    }
}

fn mismatch(path: &str, data_type: &DataType) -> ConnectorError {
    ConnectorError::UnsupportedType {
        column: path.to_owned(),
        data_type: data_type.clone(),
        reason: "no JSON encoding for load jobs".to_owned(),
    }
}

fn downcast<'a, T: 'static>(array: &'a dyn Array, path: &str) -> Result<&'a T, ConnectorError> {
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| mismatch(path, array.data_type()))
}

/// The JSON of the (non-null) value at `row`.
fn encode_value(
    array: &dyn Array,
    row: usize,
    path: &str,
    out: &mut String,
) -> Result<(), ConnectorError> {
    match array.data_type() {
        DataType::Utf8 => push_json_string(downcast::<StringArray>(array, path)?.value(row), out),
        DataType::LargeUtf8 => {
            push_json_string(downcast::<LargeStringArray>(array, path)?.value(row), out)
        }
        DataType::Utf8View => {
            push_json_string(downcast::<StringViewArray>(array, path)?.value(row), out)
        }
        DataType::Binary => push_base64(downcast::<BinaryArray>(array, path)?.value(row), out),
        DataType::LargeBinary => {
            push_base64(downcast::<LargeBinaryArray>(array, path)?.value(row), out)
        }
        DataType::BinaryView => {
            push_base64(downcast::<BinaryViewArray>(array, path)?.value(row), out)
        }
        DataType::FixedSizeBinary(_) => push_base64(
            downcast::<FixedSizeBinaryArray>(array, path)?.value(row),
            out,
        ),
        DataType::Int8 => integer::<Int8Type>(array, row, path, out)?,
        DataType::Int16 => integer::<Int16Type>(array, row, path, out)?,
        DataType::Int32 => integer::<Int32Type>(array, row, path, out)?,
        DataType::Int64 => integer::<Int64Type>(array, row, path, out)?,
        DataType::UInt8 => integer::<UInt8Type>(array, row, path, out)?,
        DataType::UInt16 => integer::<UInt16Type>(array, row, path, out)?,
        DataType::UInt32 => integer::<UInt32Type>(array, row, path, out)?,
        DataType::UInt64 => integer::<UInt64Type>(array, row, path, out)?,
        DataType::Float16 => push_float(
            downcast::<PrimitiveArray<Float16Type>>(array, path)?
                .value(row)
                .to_f64(),
            out,
        ),
        DataType::Float32 => push_float(
            f64::from(downcast::<PrimitiveArray<Float32Type>>(array, path)?.value(row)),
            out,
        ),
        DataType::Float64 => push_float(
            downcast::<PrimitiveArray<Float64Type>>(array, path)?.value(row),
            out,
        ),
        DataType::Decimal32(_, scale) => decimal::<Decimal32Type>(array, row, *scale, path, out)?,
        DataType::Decimal64(_, scale) => decimal::<Decimal64Type>(array, row, *scale, path, out)?,
        DataType::Decimal128(_, scale) => decimal::<Decimal128Type>(array, row, *scale, path, out)?,
        DataType::Decimal256(_, scale) => decimal::<Decimal256Type>(array, row, *scale, path, out)?,
        DataType::Boolean => out.push_str(if downcast::<BooleanArray>(array, path)?.value(row) {
            "true"
        } else {
            "false"
        }),
        DataType::Date32 => {
            let days = i32_values(array).ok_or_else(|| mismatch(path, array.data_type()))?[row];
            out.push('"');
            push_date(days.into(), out);
            out.push('"');
        }
        DataType::Date64 => {
            let millis = i64_values(array).ok_or_else(|| mismatch(path, array.data_type()))?[row];
            let days = date64_days(millis).ok_or_else(|| unrepresentable(path, row))?;
            out.push('"');
            push_date(days.into(), out);
            out.push('"');
        }
        DataType::Timestamp(unit, zone) => {
            let value = i64_values(array).ok_or_else(|| mismatch(path, array.data_type()))?[row];
            let micros =
                timestamp_micros(value, *unit).ok_or_else(|| unrepresentable(path, row))?;
            out.push('"');
            push_date(micros.div_euclid(MICROS_PER_DAY), out);
            out.push('T');
            push_time(micros.rem_euclid(MICROS_PER_DAY), out);
            if zone.is_some() {
                out.push('Z');
            }
            out.push('"');
        }
        DataType::Time32(unit) => {
            let value = i32_values(array).ok_or_else(|| mismatch(path, array.data_type()))?[row];
            let micros =
                time_micros(value.into(), *unit).ok_or_else(|| unrepresentable(path, row))?;
            out.push('"');
            push_time(micros, out);
            out.push('"');
        }
        DataType::Time64(unit) => {
            let value = i64_values(array).ok_or_else(|| mismatch(path, array.data_type()))?[row];
            let micros = time_micros(value, *unit).ok_or_else(|| unrepresentable(path, row))?;
            out.push('"');
            push_time(micros, out);
            out.push('"');
        }
        DataType::Struct(fields) => {
            let record = downcast::<StructArray>(array, path)?;
            out.push('{');
            let mut first = true;
            for (field, child) in fields.iter().zip(record.columns()) {
                if child.is_null(row) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                push_json_string(field.name(), out);
                out.push(':');
                encode_value(
                    child.as_ref(),
                    row,
                    &format!("{path}.{}", field.name()),
                    out,
                )?;
            }
            out.push('}');
        }
        DataType::List(_) => {
            let list = downcast::<GenericListArray<i32>>(array, path)?;
            encode_elements(list.value(row).as_ref(), path, out)?;
        }
        DataType::LargeList(_) => {
            let list = downcast::<GenericListArray<i64>>(array, path)?;
            encode_elements(list.value(row).as_ref(), path, out)?;
        }
        DataType::ListView(_) => {
            let list = downcast::<GenericListViewArray<i32>>(array, path)?;
            encode_elements(list.value(row).as_ref(), path, out)?;
        }
        DataType::LargeListView(_) => {
            let list = downcast::<GenericListViewArray<i64>>(array, path)?;
            encode_elements(list.value(row).as_ref(), path, out)?;
        }
        DataType::FixedSizeList(_, _) => {
            let list = downcast::<FixedSizeListArray>(array, path)?;
            encode_elements(list.value(row).as_ref(), path, out)?;
        }
        DataType::Map(_, _) => {
            let map = downcast::<MapArray>(array, path)?;
            let entries = map.value(row);
            out.push('[');
            for i in 0..entries.len() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"key\":");
                encode_value(entries.column(0).as_ref(), i, &format!("{path}.key"), out)?;
                if !entries.column(1).is_null(i) {
                    out.push_str(",\"value\":");
                    encode_value(entries.column(1).as_ref(), i, &format!("{path}.value"), out)?;
                }
                out.push('}');
            }
            out.push(']');
        }
        DataType::Dictionary(_, value_type) => {
            let values = cast(&array.slice(row, 1), value_type)?;
            encode_value(values.as_ref(), 0, path, out)?;
        }
        other => return Err(mismatch(path, other)),
    }
    Ok(())
}

/// A JSON array of the elements (never NULL: `check_batch_values` rejects NULL elements).
fn encode_elements(
    elements: &dyn Array,
    path: &str,
    out: &mut String,
) -> Result<(), ConnectorError> {
    out.push('[');
    for i in 0..elements.len() {
        if i > 0 {
            out.push(',');
        }
        if elements.is_null(i) {
            return Err(ConnectorError::UnrepresentableValue {
                column: path.to_owned(),
                row: i,
                reason: "BigQuery arrays cannot hold NULL elements".to_owned(),
            });
        }
        encode_value(elements, i, path, out)?;
    }
    out.push(']');
    Ok(())
}

fn unrepresentable(path: &str, row: usize) -> ConnectorError {
    ConnectorError::UnrepresentableValue {
        column: path.to_owned(),
        row,
        reason: "the value is outside BigQuery's range".to_owned(),
    }
}

fn integer<T>(
    array: &dyn Array,
    row: usize,
    path: &str,
    out: &mut String,
) -> Result<(), ConnectorError>
where
    T: datafusion::arrow::datatypes::ArrowPrimitiveType,
    T::Native: std::fmt::Display,
{
    let value = array
        .as_primitive_opt::<T>()
        .ok_or_else(|| mismatch(path, array.data_type()))?
        .value(row);
    let _ = write!(out, "{value}");
    Ok(())
}

fn decimal<T: DecimalType>(
    array: &dyn Array,
    row: usize,
    scale: i8,
    path: &str,
    out: &mut String,
) -> Result<(), ConnectorError>
where
    T::Native: std::fmt::Display,
{
    let value = array
        .as_primitive_opt::<T>()
        .ok_or_else(|| mismatch(path, array.data_type()))?
        .value(row);
    out.push('"');
    push_decimal(&value.to_string(), scale, out);
    out.push('"');
    Ok(())
}

/// Rust's `Display` for f64 is the shortest text that parses back to the same value.
fn push_float(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("\"NaN\"");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        let _ = write!(out, "{value}");
    }
}

pub(crate) fn push_json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_base64(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.push('"');
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.push('"');
}

/// `YYYY-MM-DD` of days since 1970-01-01 (proleptic Gregorian; H. Hinnant's civil_from_days).
pub(crate) fn push_date(days: i64, out: &mut String) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(out, "{year:04}-{month:02}-{day:02}");
}

/// `HH:MM:SS.ffffff` of microseconds since midnight.
pub(crate) fn push_time(micros: i64, out: &mut String) {
    let seconds = micros / 1_000_000;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{:06}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        micros % 1_000_000
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        Date32Array, Decimal128Array, DictionaryArray, Float64Array, Int64Array, ListArray,
        StringArray, TimestampNanosecondArray,
    };
    use datafusion::arrow::buffer::OffsetBuffer;
    use datafusion::arrow::datatypes::{Fields, Int32Type, Schema, TimeUnit};

    use super::*;

    fn lines(batch: &RecordBatch) -> Vec<String> {
        let mut out = Vec::new();
        encode_batch(batch, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn encodes_scalars_nulls_and_nested_values() {
        let item_fields = Fields::from(vec![
            Field::new("sku", DataType::Utf8, true),
            Field::new("qty", DataType::Int64, true),
        ]);
        let items = StructArray::new(
            item_fields.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("a\"é"), Some("b"), None])),
                Arc::new(Int64Array::from(vec![Some(2), None, Some(5)])),
            ],
            None,
        );
        let list = ListArray::new(
            Arc::new(Field::new("item", DataType::Struct(item_fields), true)),
            OffsetBuffer::from_lengths([2, 0, 1]),
            Arc::new(items),
            Some(vec![true, false, true].into()),
        );
        let dictionary: DictionaryArray<Int32Type> =
            vec![Some("x"), None, Some("y")].into_iter().collect();
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                true,
            ),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new("f", DataType::Float64, true),
            Field::new("day", DataType::Date32, true),
            Field::new("tag", dictionary.data_type().clone(), true),
            Field::new("items", list.data_type().clone(), true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(
                    TimestampNanosecondArray::from(vec![
                        Some(1_767_323_045_123_456_789),
                        None,
                        Some(-1),
                    ])
                    .with_timezone("UTC"),
                ),
                Arc::new(
                    Decimal128Array::from(vec![Some(125), Some(-5), None])
                        .with_precision_and_scale(12, 2)
                        .unwrap(),
                ),
                Arc::new(Float64Array::from(vec![
                    Some(0.1),
                    Some(f64::NAN),
                    Some(1e21),
                ])),
                Arc::new(Date32Array::from(vec![Some(20_455), Some(-719_162), None])),
                Arc::new(dictionary),
                Arc::new(list),
            ],
        )
        .unwrap();
        assert_eq!(
            lines(&batch),
            [
                r#"{"id":1,"at":"2026-01-02T03:04:05.123456Z","amount":"1.25","f":0.1,"day":"2026-01-02","tag":"x","items":[{"sku":"a\"é","qty":2},{"sku":"b"}]}"#,
                r#"{"id":2,"amount":"-0.05","f":"NaN","day":"0001-01-01"}"#,
                r#"{"id":3,"at":"1969-12-31T23:59:59.999999Z","f":1000000000000000000000,"tag":"y","items":[{"qty":5}]}"#,
            ]
        );
    }

    #[test]
    fn escapes_control_characters_and_encodes_base64() {
        let mut out = String::new();
        push_json_string("a\nb\u{1}\\", &mut out);
        assert_eq!(out, r#""a\nb\u0001\\""#);
        for (bytes, expected) in [
            (&b""[..], "\"\""),
            (b"f", "\"Zg==\""),
            (b"fo", "\"Zm8=\""),
            (b"foo", "\"Zm9v\""),
            (b"\x00\x01\x02", "\"AAEC\""),
        ] {
            let mut out = String::new();
            push_base64(bytes, &mut out);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn dates_and_times_cover_the_range() {
        for (days, expected) in [
            (0, "1970-01-01"),
            (-719_162, "0001-01-01"),
            (2_932_896, "9999-12-31"),
            (19_782, "2024-02-29"),
        ] {
            let mut out = String::new();
            push_date(days, &mut out);
            assert_eq!(out, expected);
        }
        let mut out = String::new();
        push_time(MICROS_PER_DAY - 1, &mut out);
        assert_eq!(out, "23:59:59.999999");
    }
}
