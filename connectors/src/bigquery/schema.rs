//! Arrow schema → BigQuery table schema (DESIGN §7).
//!
//! | Arrow | BigQuery |
//! |---|---|
//! | Utf8, LargeUtf8, Utf8View | STRING |
//! | Int8..Int64, UInt8..UInt32 | INT64 |
//! | UInt64 | INT64; values above `i64::MAX` are rejected by [`check_batch_values`] |
//! | Float16, Float32, Float64 | FLOAT64 (widening is exact) |
//! | Decimal32/64/128/256(p, s), s ≤ 9 and p - s ≤ 29 | NUMERIC |
//! | other decimals with s ≤ 38 and p - s ≤ 38 | BIGNUMERIC; beyond that: error |
//! | Boolean | BOOL |
//! | Timestamp(unit, Some(tz)) | TIMESTAMP (an absolute instant) |
//! | Timestamp(unit, None) | DATETIME (a wall-clock reading, like BigQuery's DATETIME) |
//! | Date32, Date64 | DATE |
//! | Time32, Time64 | TIME |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | BYTES |
//! | Dictionary(_, V) | the mapping of V (dictionary encoding is invisible to BigQuery) |
//! | List, LargeList, FixedSizeList, ListView, LargeListView of T | T with mode REPEATED |
//! | Struct | RECORD with the mapped fields |
//! | Map(K, V) | REPEATED RECORD(key REQUIRED K, value V) |
//!
//! Modes: a nullable field is NULLABLE, a non-nullable one REQUIRED, a list REPEATED. Two
//! things Arrow can say have no BigQuery equivalent and are documented rather than mapped:
//! - a NULL list: BigQuery stores a NULL array as an empty one, so NULL and `[]` become the
//!   same value (the checksum treats them alike);
//! - the nullability of list elements: BigQuery arrays cannot hold NULL elements, so a NULL
//!   element is rejected by [`check_batch_values`] instead of being dropped silently.
//!
//! A list of lists (or of maps) is not representable: BigQuery arrays cannot contain arrays.
//! Such columns, and types without a faithful counterpart (Null, Interval, Duration, Union,
//! RunEndEncoded), fail with [`ConnectorError::UnsupportedType`] naming the column path.
//!
//! Precision and scale of decimals choose between NUMERIC and BIGNUMERIC but are not written
//! as type parameters: gcp-bigquery-client's `TableFieldSchema` has no `precision`/`scale`
//! fields. The unparameterised types hold every value the Arrow type can hold (NUMERIC:
//! 29 integer and 9 fractional digits; BIGNUMERIC: 38 and 38), so nothing is lost.
//!
//! Column descriptions come from Arrow field metadata `description` (or `comment`, the key
//! Spark/Hive and some Parquet writers use).
//!
//! [`check_batch_values`]: super::values::check_batch_values

use std::collections::HashMap;

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};
use gcp_bigquery_client::model::field_type::FieldType;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_schema::TableSchema;

use super::names::validate_column_name;
use crate::error::ConnectorError;

/// BigQuery's limit on RECORD nesting.
pub const MAX_RECORD_DEPTH: usize = 15;
/// BigQuery's limit on the number of columns of a table, nested fields included.
pub const MAX_COLUMNS: usize = 10_000;
/// BigQuery's limit on a column description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// Field metadata keys read as the column description, in order of preference.
pub const DESCRIPTION_METADATA_KEYS: [&str; 2] = ["description", "comment"];

pub const MODE_NULLABLE: &str = "NULLABLE";
pub const MODE_REQUIRED: &str = "REQUIRED";
pub const MODE_REPEATED: &str = "REPEATED";

/// Largest NUMERIC: 29 integer digits, 9 fractional digits.
const NUMERIC_INTEGER_DIGITS: i16 = 29;
const NUMERIC_SCALE: i16 = 9;
/// Largest BIGNUMERIC (as a parameterised type): 38 integer digits, 38 fractional digits.
const BIGNUMERIC_INTEGER_DIGITS: i16 = 38;
const BIGNUMERIC_SCALE: i16 = 38;

/// Maps an Arrow schema to the BigQuery table schema that stores it faithfully, validating
/// every column name on the way.
pub fn table_schema(schema: &Schema) -> Result<TableSchema, ConnectorError> {
    if schema.fields().is_empty() {
        return Err(ConnectorError::InvalidSchema {
            column: String::new(),
            reason: "a BigQuery table needs at least one column".to_owned(),
        });
    }
    let mut mapper = SchemaMapper { columns: 0 };
    let fields = mapper.map_fields(schema.fields(), "", 0)?;
    Ok(TableSchema::new(fields))
}

/// The mode a BigQuery field gets for an Arrow field, without mapping its type.
fn mode(field: &Field, repeated: bool) -> &'static str {
    if repeated {
        MODE_REPEATED
    } else if field.is_nullable() {
        MODE_NULLABLE
    } else {
        MODE_REQUIRED
    }
}

/// True for types BigQuery stores as REPEATED: lists and maps, also behind a dictionary.
pub(crate) fn is_repeated_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(_, _)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::Map(_, _) => true,
        DataType::Dictionary(_, value) => is_repeated_type(value),
        _ => false,
    }
}

/// Column description from field metadata; `description` wins over `comment`, blank is none.
pub fn column_description(
    metadata: &HashMap<String, String>,
    column: &str,
) -> Result<Option<String>, ConnectorError> {
    let Some(description) = DESCRIPTION_METADATA_KEYS
        .iter()
        .filter_map(|key| metadata.get(*key))
        .map(|text| text.trim())
        .find(|text| !text.is_empty())
    else {
        return Ok(None);
    };
    let length = description.chars().count();
    if length > MAX_DESCRIPTION_CHARS {
        return Err(ConnectorError::InvalidSchema {
            column: column.to_owned(),
            reason: format!(
                "the column description has {length} characters; BigQuery allows at most \
                 {MAX_DESCRIPTION_CHARS}"
            ),
        });
    }
    Ok(Some(description.to_owned()))
}

fn child_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

fn unsupported(column: &str, data_type: &DataType, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::UnsupportedType {
        column: column.to_owned(),
        data_type: data_type.clone(),
        reason: reason.into(),
    }
}

/// The BigQuery type of a non-repeated value: a scalar or a record with its fields.
enum MappedType {
    Scalar(FieldType),
    Record(Vec<TableFieldSchema>),
}

struct SchemaMapper {
    /// Columns produced so far, nested fields included, for the table-wide limit.
    columns: usize,
}

impl SchemaMapper {
    /// Maps the fields of one record level. `depth` is the number of enclosing RECORDs.
    fn map_fields(
        &mut self,
        fields: &Fields,
        parent: &str,
        depth: usize,
    ) -> Result<Vec<TableFieldSchema>, ConnectorError> {
        // BigQuery column names are case-insensitive: `Id` and `id` collide.
        let mut seen: HashMap<String, &str> = HashMap::with_capacity(fields.len());
        for field in fields {
            if let Some(previous) = seen.insert(field.name().to_ascii_lowercase(), field.name()) {
                return Err(ConnectorError::InvalidSchema {
                    column: child_path(parent, field.name()),
                    reason: format!(
                        "duplicates column `{}`: BigQuery column names are case-insensitive",
                        child_path(parent, previous)
                    ),
                });
            }
        }
        fields
            .iter()
            .map(|field| self.map_field(field, parent, depth))
            .collect()
    }

    fn map_field(
        &mut self,
        field: &Field,
        parent: &str,
        depth: usize,
    ) -> Result<TableFieldSchema, ConnectorError> {
        let path = child_path(parent, field.name());
        validate_column_name(field.name())?;
        self.columns += 1;
        if self.columns > MAX_COLUMNS {
            return Err(ConnectorError::InvalidSchema {
                column: path,
                reason: format!(
                    "the table would have more than {MAX_COLUMNS} columns (nested fields \
                     included), BigQuery's limit"
                ),
            });
        }
        let description = column_description(field.metadata(), &path)?;

        let (mapped, repeated) = match field.data_type() {
            DataType::List(element)
            | DataType::LargeList(element)
            | DataType::FixedSizeList(element, _)
            | DataType::ListView(element)
            | DataType::LargeListView(element) => {
                if is_repeated_type(element.data_type()) {
                    return Err(unsupported(
                        &path,
                        field.data_type(),
                        "a list of lists (or of maps) has no BigQuery equivalent, as BigQuery \
                         arrays cannot contain arrays; wrap the inner list in a struct",
                    ));
                }
                (self.map_value(element.data_type(), &path, depth)?, true)
            }
            DataType::Map(entries, _) => (self.map_entries(entries, &path, depth)?, true),
            data_type => (self.map_value(data_type, &path, depth)?, false),
        };

        let mut table_field = match mapped {
            MappedType::Scalar(field_type) => TableFieldSchema::new(field.name(), field_type),
            MappedType::Record(fields) => TableFieldSchema::record(field.name(), fields),
        };
        table_field.mode = Some(mode(field, repeated).to_owned());
        table_field.description = description;
        Ok(table_field)
    }

    /// Map entries become a record of `key` (REQUIRED: Arrow map keys are never null) and
    /// `value`, whatever the entry fields are called in Arrow (`key`/`value`, `keys`/`values`).
    fn map_entries(
        &mut self,
        entries: &Field,
        path: &str,
        depth: usize,
    ) -> Result<MappedType, ConnectorError> {
        let DataType::Struct(entry_fields) = entries.data_type() else {
            return Err(unsupported(
                path,
                entries.data_type(),
                "map entries must be a struct of key and value",
            ));
        };
        let [key, value] = entry_fields.iter().collect::<Vec<_>>()[..] else {
            return Err(unsupported(
                path,
                entries.data_type(),
                "map entries must be a struct of exactly two fields, key and value",
            ));
        };
        if is_repeated_type(key.data_type()) {
            return Err(unsupported(
                path,
                key.data_type(),
                "map keys that are lists or maps have no BigQuery equivalent",
            ));
        }
        if depth + 1 > MAX_RECORD_DEPTH {
            return Err(too_deep(path));
        }
        let key =
            Field::new("key", key.data_type().clone(), false).with_metadata(key.metadata().clone());
        let value = Field::new("value", value.data_type().clone(), value.is_nullable())
            .with_metadata(value.metadata().clone());
        let fields = [
            self.map_field(&key, path, depth + 1)?,
            self.map_field(&value, path, depth + 1)?,
        ];
        Ok(MappedType::Record(fields.into()))
    }

    /// The BigQuery type of a value that is not itself a list.
    fn map_value(
        &mut self,
        data_type: &DataType,
        path: &str,
        depth: usize,
    ) -> Result<MappedType, ConnectorError> {
        let scalar = |field_type| Ok(MappedType::Scalar(field_type));
        match data_type {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => scalar(FieldType::String),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => scalar(FieldType::Int64),
            DataType::Float16 | DataType::Float32 | DataType::Float64 => scalar(FieldType::Float64),
            DataType::Decimal32(precision, scale)
            | DataType::Decimal64(precision, scale)
            | DataType::Decimal128(precision, scale)
            | DataType::Decimal256(precision, scale) => {
                decimal_type(*precision, *scale, data_type, path).map(MappedType::Scalar)
            }
            DataType::Boolean => scalar(FieldType::Bool),
            DataType::Timestamp(_, Some(_)) => scalar(FieldType::Timestamp),
            DataType::Timestamp(_, None) => scalar(FieldType::Datetime),
            DataType::Date32 | DataType::Date64 => scalar(FieldType::Date),
            DataType::Time32(_) | DataType::Time64(_) => scalar(FieldType::Time),
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => scalar(FieldType::Bytes),
            DataType::Struct(fields) => {
                if fields.is_empty() {
                    return Err(unsupported(
                        path,
                        data_type,
                        "a struct without fields has no BigQuery equivalent (a RECORD needs \
                         at least one field)",
                    ));
                }
                if depth + 1 > MAX_RECORD_DEPTH {
                    return Err(too_deep(path));
                }
                Ok(MappedType::Record(self.map_fields(
                    fields,
                    path,
                    depth + 1,
                )?))
            }
            DataType::Dictionary(_, value) => {
                if is_repeated_type(value) {
                    return Err(unsupported(
                        path,
                        data_type,
                        "dictionary-encoded lists and maps are not supported",
                    ));
                }
                self.map_value(value, path, depth)
            }
            DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(_, _)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
            | DataType::Map(_, _) => Err(unsupported(
                path,
                data_type,
                "a list of lists (or of maps) has no BigQuery equivalent, as BigQuery arrays \
                 cannot contain arrays; wrap the inner list in a struct",
            )),
            DataType::Null => Err(unsupported(
                path,
                data_type,
                "a column of type Null carries no values; cast it to the type it should have",
            )),
            DataType::Interval(_) => Err(unsupported(
                path,
                data_type,
                "Arrow intervals and BigQuery INTERVAL differ in range and normalisation; \
                 cast to a number of days, months or microseconds",
            )),
            DataType::Duration(_) => Err(unsupported(
                path,
                data_type,
                "BigQuery has no duration type; cast to an integer count of the unit",
            )),
            DataType::Union(_, _) => Err(unsupported(
                path,
                data_type,
                "BigQuery has no union type; split the variants into separate columns",
            )),
            DataType::RunEndEncoded(_, _) => Err(unsupported(
                path,
                data_type,
                "run-end encoded arrays are not supported; cast to the value type first",
            )),
        }
    }
}

fn too_deep(path: &str) -> ConnectorError {
    ConnectorError::InvalidSchema {
        column: path.to_owned(),
        reason: format!("records nest deeper than BigQuery's limit of {MAX_RECORD_DEPTH} levels"),
    }
}

/// NUMERIC holds 29 integer and 9 fractional digits, BIGNUMERIC 38 and 38. A negative Arrow
/// scale (values multiplied by 10^-scale) needs `precision - scale` integer digits and no
/// fractional digit.
fn decimal_type(
    precision: u8,
    scale: i8,
    data_type: &DataType,
    path: &str,
) -> Result<FieldType, ConnectorError> {
    let scale = i16::from(scale);
    let integer_digits = i16::from(precision) - scale;
    let fractional_digits = scale.max(0);
    if fractional_digits <= NUMERIC_SCALE && integer_digits <= NUMERIC_INTEGER_DIGITS {
        Ok(FieldType::Numeric)
    } else if fractional_digits <= BIGNUMERIC_SCALE && integer_digits <= BIGNUMERIC_INTEGER_DIGITS {
        Ok(FieldType::Bignumeric)
    } else {
        Err(unsupported(
            path,
            data_type,
            format!(
                "needs {integer_digits} integer and {fractional_digits} fractional digits; \
                 BIGNUMERIC holds at most {BIGNUMERIC_INTEGER_DIGITS} of each"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{IntervalUnit, TimeUnit, UnionFields, UnionMode};
    use serde_json::{Value, json};

    use super::*;
    use crate::error::NameKind;

    fn mapped(schema: Schema) -> Value {
        serde_json::to_value(table_schema(&schema).unwrap()).unwrap()
    }

    /// The REST JSON of the single column a one-field schema maps to.
    fn column(field: Field) -> Value {
        mapped(Schema::new(vec![field]))["fields"][0].clone()
    }

    fn column_type(data_type: DataType) -> Value {
        column(Field::new("c", data_type, true))["type"].clone()
    }

    fn unsupported_error(schema: Schema) -> (String, DataType, String) {
        match table_schema(&schema) {
            Err(ConnectorError::UnsupportedType {
                column,
                data_type,
                reason,
            }) => (column, data_type, reason),
            other => panic!("expected UnsupportedType, got {other:?}"),
        }
    }

    fn invalid_schema_error(schema: Schema) -> (String, String) {
        match table_schema(&schema) {
            Err(ConnectorError::InvalidSchema { column, reason }) => (column, reason),
            other => panic!("expected InvalidSchema, got {other:?}"),
        }
    }

    fn item(data_type: DataType) -> Arc<Field> {
        Arc::new(Field::new("item", data_type, true))
    }

    #[test]
    fn strings_map_to_string() {
        for data_type in [
            DataType::Utf8,
            DataType::LargeUtf8,
            DataType::Utf8View,
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            DataType::Dictionary(Box::new(DataType::UInt8), Box::new(DataType::LargeUtf8)),
        ] {
            assert_eq!(
                column_type(data_type.clone()),
                json!("STRING"),
                "{data_type}"
            );
        }
    }

    #[test]
    fn integers_map_to_int64() {
        for data_type in [
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::UInt8,
            DataType::UInt16,
            DataType::UInt32,
            DataType::UInt64,
        ] {
            assert_eq!(
                column_type(data_type.clone()),
                json!("INT64"),
                "{data_type}"
            );
        }
    }

    #[test]
    fn floats_map_to_float64() {
        for data_type in [DataType::Float16, DataType::Float32, DataType::Float64] {
            assert_eq!(
                column_type(data_type.clone()),
                json!("FLOAT64"),
                "{data_type}"
            );
        }
    }

    #[test]
    fn decimals_choose_numeric_or_bignumeric() {
        let cases = [
            (DataType::Decimal128(38, 9), "NUMERIC"),
            (DataType::Decimal128(10, 2), "NUMERIC"),
            (DataType::Decimal32(9, 0), "NUMERIC"),
            (DataType::Decimal64(18, 9), "NUMERIC"),
            (DataType::Decimal128(29, 0), "NUMERIC"),
            (DataType::Decimal128(5, -2), "NUMERIC"), // 7 integer digits
            (DataType::Decimal128(38, 10), "BIGNUMERIC"), // scale above 9
            (DataType::Decimal128(30, 0), "BIGNUMERIC"), // 30 integer digits
            (DataType::Decimal128(38, 0), "BIGNUMERIC"),
            (DataType::Decimal256(76, 38), "BIGNUMERIC"),
            (DataType::Decimal256(50, 20), "BIGNUMERIC"),
            (DataType::Decimal128(30, -8), "BIGNUMERIC"), // 38 integer digits
        ];
        for (data_type, expected) in cases {
            assert_eq!(
                column_type(data_type.clone()),
                json!(expected),
                "{data_type}"
            );
        }
    }

    #[test]
    fn decimals_beyond_bignumeric_are_rejected() {
        for (data_type, digits) in [
            (DataType::Decimal256(76, 0), "76 integer and 0 fractional"),
            (DataType::Decimal256(50, 10), "40 integer and 10 fractional"),
            (DataType::Decimal256(45, 39), "6 integer and 39 fractional"),
            (DataType::Decimal128(31, -8), "39 integer and 0 fractional"),
        ] {
            let (column, found, reason) = unsupported_error(Schema::new(vec![Field::new(
                "amount",
                data_type.clone(),
                true,
            )]));
            assert_eq!(column, "amount");
            assert_eq!(found, data_type);
            assert!(reason.contains(digits), "{reason}");
        }
    }

    #[test]
    fn scalars_of_other_kinds() {
        let cases = [
            (DataType::Boolean, "BOOL"),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                "TIMESTAMP",
            ),
            (
                DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
                "TIMESTAMP",
            ),
            (
                DataType::Timestamp(TimeUnit::Second, Some("Europe/Paris".into())),
                "TIMESTAMP",
            ),
            (DataType::Timestamp(TimeUnit::Millisecond, None), "DATETIME"),
            (DataType::Timestamp(TimeUnit::Nanosecond, None), "DATETIME"),
            (DataType::Date32, "DATE"),
            (DataType::Date64, "DATE"),
            (DataType::Time32(TimeUnit::Second), "TIME"),
            (DataType::Time32(TimeUnit::Millisecond), "TIME"),
            (DataType::Time64(TimeUnit::Microsecond), "TIME"),
            (DataType::Time64(TimeUnit::Nanosecond), "TIME"),
            (DataType::Binary, "BYTES"),
            (DataType::LargeBinary, "BYTES"),
            (DataType::BinaryView, "BYTES"),
            (DataType::FixedSizeBinary(16), "BYTES"),
            (
                DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Date32)),
                "DATE",
            ),
        ];
        for (data_type, expected) in cases {
            assert_eq!(
                column_type(data_type.clone()),
                json!(expected),
                "{data_type}"
            );
        }
    }

    #[test]
    fn nullability_gives_the_mode() {
        assert_eq!(
            column(Field::new("a", DataType::Int64, true)),
            json!({"name": "a", "type": "INT64", "mode": "NULLABLE"})
        );
        assert_eq!(
            column(Field::new("a", DataType::Int64, false)),
            json!({"name": "a", "type": "INT64", "mode": "REQUIRED"})
        );
    }

    #[test]
    fn lists_are_repeated_whatever_their_nullability() {
        for data_type in [
            DataType::List(item(DataType::Utf8)),
            DataType::LargeList(item(DataType::Utf8)),
            DataType::FixedSizeList(item(DataType::Utf8), 3),
            DataType::ListView(item(DataType::Utf8)),
            DataType::LargeListView(item(DataType::Utf8)),
        ] {
            for nullable in [true, false] {
                assert_eq!(
                    column(Field::new("tags", data_type.clone(), nullable)),
                    json!({"name": "tags", "type": "STRING", "mode": "REPEATED"}),
                    "{data_type}"
                );
            }
        }
    }

    #[test]
    fn structs_become_records_and_nest_inside_lists() {
        let line = DataType::Struct(Fields::from(vec![
            Field::new("sku", DataType::Utf8, false),
            Field::new("quantity", DataType::Int32, true),
            Field::new(
                "discounts",
                DataType::List(item(DataType::Decimal128(10, 2))),
                true,
            ),
            Field::new(
                "shipping",
                DataType::Struct(Fields::from(vec![Field::new(
                    "shipped_at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    true,
                )])),
                true,
            ),
        ]));
        let schema = Schema::new(vec![
            Field::new("order_id", DataType::Int64, false),
            Field::new("lines", DataType::List(item(line)), true),
        ]);
        assert_eq!(
            mapped(schema),
            json!({"fields": [
                {"name": "order_id", "type": "INT64", "mode": "REQUIRED"},
                {"name": "lines", "type": "RECORD", "mode": "REPEATED", "fields": [
                    {"name": "sku", "type": "STRING", "mode": "REQUIRED"},
                    {"name": "quantity", "type": "INT64", "mode": "NULLABLE"},
                    {"name": "discounts", "type": "NUMERIC", "mode": "REPEATED"},
                    {"name": "shipping", "type": "RECORD", "mode": "NULLABLE", "fields": [
                        {"name": "shipped_at", "type": "TIMESTAMP", "mode": "NULLABLE"}
                    ]}
                ]}
            ]})
        );
    }

    #[test]
    fn maps_become_repeated_key_value_records() {
        let entries = Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::List(item(DataType::Float64)), true),
            ])),
            false,
        );
        let schema = Schema::new(vec![Field::new(
            "attributes",
            DataType::Map(Arc::new(entries), false),
            true,
        )]);
        assert_eq!(
            mapped(schema),
            json!({"fields": [
                {"name": "attributes", "type": "RECORD", "mode": "REPEATED", "fields": [
                    {"name": "key", "type": "STRING", "mode": "REQUIRED"},
                    {"name": "value", "type": "FLOAT64", "mode": "REPEATED"}
                ]}
            ]})
        );
    }

    #[test]
    fn descriptions_come_from_metadata() {
        let described = |pairs: &[(&str, &str)]| {
            Field::new("c", DataType::Utf8, true).with_metadata(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        assert_eq!(
            column(described(&[("description", "Customer e-mail")]))["description"],
            json!("Customer e-mail")
        );
        assert_eq!(
            column(described(&[("comment", "From Hive")]))["description"],
            json!("From Hive")
        );
        assert_eq!(
            column(described(&[
                ("comment", "second"),
                ("description", "first")
            ]))["description"],
            json!("first")
        );
        assert_eq!(
            column(described(&[("description", "  "), ("comment", "fallback")]))["description"],
            json!("fallback")
        );
        assert_eq!(
            column(described(&[("other", "x")])).get("description"),
            None
        );

        let long = "é".repeat(MAX_DESCRIPTION_CHARS + 1);
        let (column, reason) =
            invalid_schema_error(Schema::new(vec![described(&[("description", &long)])]));
        assert_eq!(column, "c");
        assert!(reason.contains("1025 characters"), "{reason}");
        // Exactly the limit, counted in characters rather than bytes, is fine.
        let at_limit = "é".repeat(MAX_DESCRIPTION_CHARS);
        table_schema(&Schema::new(vec![described(&[("description", &at_limit)])])).unwrap();
    }

    #[test]
    fn list_of_lists_is_rejected_with_its_path() {
        let inner = DataType::Struct(Fields::from(vec![Field::new(
            "matrix",
            DataType::List(item(DataType::LargeList(item(DataType::Int64)))),
            true,
        )]));
        let schema = Schema::new(vec![Field::new("outer", inner, true)]);
        let (column, _, reason) = unsupported_error(schema);
        assert_eq!(column, "outer.matrix");
        assert!(reason.contains("list of lists"), "{reason}");

        let list_of_maps = DataType::List(item(DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Utf8, true),
                ])),
                false,
            )),
            false,
        )));
        let (column, _, _) =
            unsupported_error(Schema::new(vec![Field::new("m", list_of_maps, true)]));
        assert_eq!(column, "m");

        let dictionary_of_list = DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::List(item(DataType::Utf8))),
        );
        let (column, _, reason) =
            unsupported_error(Schema::new(vec![Field::new("d", dictionary_of_list, true)]));
        assert_eq!(column, "d");
        assert!(reason.contains("dictionary-encoded"), "{reason}");
    }

    #[test]
    fn unsupported_types_name_the_full_path() {
        let union = DataType::Union(
            UnionFields::try_new(
                vec![0, 1],
                vec![
                    Field::new("i", DataType::Int32, true),
                    Field::new("s", DataType::Utf8, true),
                ],
            )
            .unwrap(),
            UnionMode::Dense,
        );
        let run_end_encoded = DataType::RunEndEncoded(
            Arc::new(Field::new("run_ends", DataType::Int32, false)),
            Arc::new(Field::new("values", DataType::Utf8, true)),
        );
        for (data_type, reason_part) in [
            (DataType::Null, "Null"),
            (DataType::Interval(IntervalUnit::MonthDayNano), "INTERVAL"),
            (DataType::Duration(TimeUnit::Second), "duration"),
            (union, "union"),
            (run_end_encoded, "run-end"),
        ] {
            let nested = Schema::new(vec![Field::new(
                "a",
                DataType::Struct(Fields::from(vec![Field::new(
                    "b",
                    DataType::List(item(DataType::Struct(Fields::from(vec![Field::new(
                        "c",
                        data_type.clone(),
                        true,
                    )])))),
                    true,
                )])),
                true,
            )]);
            let (column, found, reason) = unsupported_error(nested);
            assert_eq!(column, "a.b.c");
            assert_eq!(found, data_type);
            assert!(reason.contains(reason_part), "{reason}");
        }
    }

    #[test]
    fn column_names_are_validated_at_every_level() {
        let schema = Schema::new(vec![Field::new(
            "ok",
            DataType::Struct(Fields::from(vec![Field::new(
                "bad-name",
                DataType::Int32,
                true,
            )])),
            true,
        )]);
        match table_schema(&schema) {
            Err(ConnectorError::InvalidName { kind, name, .. }) => {
                assert_eq!(kind, NameKind::Column);
                assert_eq!(name, "bad-name");
            }
            other => panic!("expected InvalidName, got {other:?}"),
        }
        let reserved = Schema::new(vec![Field::new("_PARTITIONTIME", DataType::Int32, true)]);
        assert!(matches!(
            table_schema(&reserved),
            Err(ConnectorError::InvalidName { .. })
        ));
    }

    #[test]
    fn case_insensitive_duplicates_are_rejected() {
        let (column, reason) = invalid_schema_error(Schema::new(vec![
            Field::new("Id", DataType::Int64, true),
            Field::new("id", DataType::Int64, true),
        ]));
        assert_eq!(column, "id");
        assert!(reason.contains("duplicates column `Id`"), "{reason}");

        let nested = Schema::new(vec![Field::new(
            "s",
            DataType::Struct(Fields::from(vec![
                Field::new("x", DataType::Int64, true),
                Field::new("X", DataType::Int64, true),
            ])),
            true,
        )]);
        let (column, _) = invalid_schema_error(nested);
        assert_eq!(column, "s.X");
    }

    #[test]
    fn empty_schema_and_empty_struct_are_rejected() {
        let (_, reason) = invalid_schema_error(Schema::empty());
        assert!(reason.contains("at least one column"), "{reason}");
        let (column, _, _) = unsupported_error(Schema::new(vec![Field::new(
            "s",
            DataType::Struct(Fields::empty()),
            true,
        )]));
        assert_eq!(column, "s");
    }

    fn nested_records(levels: usize) -> Schema {
        let mut data_type = DataType::Int64;
        for level in (0..levels).rev() {
            data_type = DataType::Struct(Fields::from(vec![Field::new(
                format!("l{level}"),
                data_type,
                true,
            )]));
        }
        Schema::new(vec![Field::new("root", data_type, true)])
    }

    #[test]
    fn record_nesting_is_limited_to_fifteen_levels() {
        table_schema(&nested_records(MAX_RECORD_DEPTH)).unwrap();
        let (column, reason) = invalid_schema_error(nested_records(MAX_RECORD_DEPTH + 1));
        assert!(column.starts_with("root.l0.l1."), "{column}");
        assert!(reason.contains("15 levels"), "{reason}");
    }

    #[test]
    fn column_count_is_limited() {
        let fields: Vec<Field> = (0..MAX_COLUMNS)
            .map(|i| Field::new(format!("c{i}"), DataType::Int8, true))
            .collect();
        table_schema(&Schema::new(fields.clone())).unwrap();
        let mut too_many = fields;
        too_many.push(Field::new("one_more", DataType::Int8, true));
        let (column, reason) = invalid_schema_error(Schema::new(too_many));
        assert_eq!(column, "one_more");
        assert!(reason.contains("10000 columns"), "{reason}");
    }
}
