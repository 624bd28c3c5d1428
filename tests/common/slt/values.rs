//! Turns query results into the text lines of `.slt` files, normalised the way datafusion-sqllogictest
//! does it, so that files stay interchangeable with DataFusion's own runner:
//! NULL → `NULL`, empty string → `(empty)`, booleans `true`/`false`, floats and decimals rounded to 12
//! decimals (ties to even) with trailing zeros trimmed and `-0` → `0`, NaN/±inf → `NaN`/`Infinity`/
//! `-Infinity`, everything else through Arrow's display formatter with DataFusion's default options.
//! A multi-line last value (EXPLAIN plans) becomes one numbered row per line.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float16Type, Float32Type, Float64Type};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions as ArrowFormatOptions};
use datafusion::common::config::FormatOptions;
use datafusion::error::Result;

pub const NULL: &str = "NULL";
pub const EMPTY: &str = "(empty)";
/// datafusion-sqllogictest rounds floats and decimals to this many fractional digits.
const DECIMALS: usize = 12;

/// One `Vec` of values per output row.
pub fn result_rows(batches: &[RecordBatch], workspace_root: &str) -> Result<Vec<Vec<String>>> {
    let format = FormatOptions {
        null: NULL.to_string(),
        ..FormatOptions::default()
    };
    let options = ArrowFormatOptions::try_from(&format)?;
    // plans print object-store paths, which have no leading '/'
    let root = workspace_root.trim_start_matches('/');
    let mut rows = vec![];
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .map(|column| format_column(column.as_ref(), &options))
            .collect::<Result<Vec<_>, ArrowError>>()?;
        for row in 0..batch.num_rows() {
            let mut values: Vec<String> =
                columns.iter().map(|column| column[row].clone()).collect();
            if !root.is_empty() {
                for value in &mut values {
                    if value.contains(root) {
                        *value = value.replace(root, "WORKSPACE_ROOT");
                    }
                }
            }
            expand_multiline_last_value(values, &mut rows);
        }
    }
    Ok(rows)
}

/// `[plan_type, "A\n  B"]` → `[plan_type]`, `["01)A"]`, `["02)--B"]`: one row per line, leading spaces as
/// dashes (the format ignores whitespace differences) and numbered, like datafusion-sqllogictest.
fn expand_multiline_last_value(mut values: Vec<String>, rows: &mut Vec<Vec<String>>) {
    match values.pop() {
        Some(last) if last.contains('\n') => {
            rows.push(values);
            for (index, line) in last.split('\n').enumerate() {
                let content = line.trim_start();
                let indent = "-".repeat(line.len() - content.len());
                rows.push(vec![format!("{:02}){indent}{content}", index + 1)]);
            }
        }
        Some(last) => {
            values.push(last);
            rows.push(values);
        }
        None => rows.push(values),
    }
}

fn format_column(
    column: &dyn Array,
    options: &ArrowFormatOptions<'_>,
) -> Result<Vec<String>, ArrowError> {
    let cells = |text: &dyn Fn(usize) -> String| -> Vec<String> {
        (0..column.len())
            .map(|row| {
                if column.is_null(row) {
                    NULL.to_string()
                } else {
                    text(row)
                }
            })
            .collect()
    };
    Ok(match column.data_type() {
        DataType::Null => vec![NULL.to_string(); column.len()],
        DataType::Boolean => {
            let values = column.as_boolean();
            cells(&|row| values.value(row).to_string())
        }
        DataType::Float16 => {
            let values = column.as_primitive::<Float16Type>();
            cells(&|row| {
                let v = values.value(row);
                float_text(
                    v.is_nan(),
                    v.is_infinite(),
                    v.is_sign_negative(),
                    &v.to_string(),
                )
            })
        }
        DataType::Float32 => {
            let values = column.as_primitive::<Float32Type>();
            cells(&|row| {
                let v = values.value(row);
                float_text(
                    v.is_nan(),
                    v.is_infinite(),
                    v.is_sign_negative(),
                    &v.to_string(),
                )
            })
        }
        DataType::Float64 => {
            let values = column.as_primitive::<Float64Type>();
            cells(&|row| {
                let v = values.value(row);
                float_text(
                    v.is_nan(),
                    v.is_infinite(),
                    v.is_sign_negative(),
                    &v.to_string(),
                )
            })
        }
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => {
            let formatter = ArrayFormatter::try_new(column, options)?;
            cells(&|row| normalize_decimal(&formatter.value(row).to_string()))
        }
        DataType::Utf8 => {
            let values = column.as_string::<i32>();
            cells(&|row| string_text(values.value(row)))
        }
        DataType::LargeUtf8 => {
            let values = column.as_string::<i64>();
            cells(&|row| string_text(values.value(row)))
        }
        DataType::Utf8View => {
            let values = column.as_string_view();
            cells(&|row| string_text(values.value(row)))
        }
        DataType::Dictionary(..) => {
            let dictionary = column.as_any_dictionary();
            let values = format_column(dictionary.values().as_ref(), options)?;
            let keys = dictionary.normalized_keys();
            cells(&|row| values[keys[row]].clone())
        }
        _ => {
            let formatter = ArrayFormatter::try_new(column, options)?;
            cells(&|row| formatter.value(row).to_string())
        }
    })
}

fn string_text(value: &str) -> String {
    if value.is_empty() {
        EMPTY.to_string()
    } else {
        value.trim_end_matches('\n').to_string()
    }
}

/// `shortest` is the float's `Display`, the shortest text that reads back as the same value (never in
/// exponent notation).
fn float_text(nan: bool, infinite: bool, negative: bool, shortest: &str) -> String {
    match (nan, infinite, negative) {
        (true, _, _) => "NaN".to_string(), // the sign of NaN differs between platforms
        (false, true, false) => "Infinity".to_string(),
        (false, true, true) => "-Infinity".to_string(),
        (false, false, _) => normalize_decimal(shortest),
    }
}

/// Rounds a plain decimal (`-12.3450`) to 12 fractional digits, ties to even, trims trailing zeros and
/// the sign of zero: what datafusion-sqllogictest gets from `BigDecimal::round(12).normalized()`.
/// Text that is not a plain decimal is returned unchanged.
pub fn normalize_decimal(text: &str) -> String {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if integer.is_empty() || !is_digits(integer) || !is_digits(fraction) {
        return text.to_string();
    }
    let kept = fraction.len().min(DECIMALS);
    let mut digits: Vec<u8> = integer
        .bytes()
        .chain(fraction.bytes().take(kept))
        .map(|b| b - b'0')
        .collect();
    let dropped = &fraction.as_bytes()[kept..];
    let round_up = match dropped.split_first() {
        None => false,
        Some((&first, rest)) => match first.cmp(&b'5') {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                rest.iter().any(|&b| b != b'0') || digits.last().is_some_and(|d| d % 2 == 1)
            }
        },
    };
    let mut integer_len = integer.len();
    if round_up {
        let mut position = digits.len();
        loop {
            if position == 0 {
                digits.insert(0, 1);
                integer_len += 1;
                break;
            }
            position -= 1;
            if digits[position] == 9 {
                digits[position] = 0;
            } else {
                digits[position] += 1;
                break;
            }
        }
    }
    let to_text = |ds: &[u8]| ds.iter().map(|d| char::from(b'0' + d)).collect::<String>();
    let integer_text = to_text(&digits[..integer_len]);
    let integer_text = match integer_text.trim_start_matches('0') {
        "" => "0".to_string(),
        trimmed => trimmed.to_string(),
    };
    let fraction_text = to_text(&digits[integer_len..]);
    let fraction_text = fraction_text.trim_end_matches('0');
    let is_zero = integer_text == "0" && fraction_text.is_empty();
    let sign = if negative && !is_zero { "-" } else { "" };
    if fraction_text.is_empty() {
        format!("{sign}{integer_text}")
    } else {
        format!("{sign}{integer_text}.{fraction_text}")
    }
}
