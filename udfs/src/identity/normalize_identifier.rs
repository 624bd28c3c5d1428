//! `normalize_identifier(id_type, value)`: the canonical form of an identifier of a given type.

use std::fmt;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::new_null_array;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::utils::take_function_args;
use datafusion::common::{Result, ScalarValue, exec_err, internal_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::arguments::string_data;
use crate::identity::normalize_email::normalize_email;
use crate::identity::normalize_phone::{PhoneRegion, normalize_phone};
use crate::string_kernel::{map_string_pairs, map_strings, scalar_str};

#[user_doc(
    doc_section(label = "Identity Functions"),
    description = r#"Normalizes an identifier according to its type, or returns NULL when the value is not a valid identifier of that type (an empty value after trimming is always NULL).

| id_type | canonical form |
|---|---|
| `email` | `normalize_email(value)` |
| `phone` | `normalize_phone(value)` (E.164, region `RU` for numbers without a country code) |
| `anonymous_id` | trimmed, lowercase |
| `device_id` | trimmed, uppercase |
| `app_account_id`, `user_id` | trimmed |
| `loyalty_card` | digits only: spaces and `-` are removed, anything else gives NULL; 8 to 19 digits |

`id_type` names are matched ignoring ASCII case and surrounding whitespace. An unknown `id_type` literal is a planning error. When `id_type` is a column (for example of an identifier configuration table), an unknown value in it is an execution error naming the value rather than a NULL, so that a misspelt type in configuration cannot silently drop every identifier of that type. A NULL `id_type` gives NULL."#,
    syntax_example = "normalize_identifier(id_type, value)",
    sql_example = r#"```sql
> select normalize_identifier('loyalty_card', '1234 5678-9012');
+-------------------------------------------------------------------+
| normalize_identifier(Utf8("loyalty_card"),Utf8("1234 5678-9012")) |
+-------------------------------------------------------------------+
| 123456789012                                                      |
+-------------------------------------------------------------------+
> select id_type, normalize_identifier(id_type, v) from (values ('email', 'Ann@Shop.RU'), ('device_id', ' ab-12 ')) t(id_type, v);
+-----------+-------------------------------------+
| id_type   | normalize_identifier(t.id_type,t.v) |
+-----------+-------------------------------------+
| email     | ann@shop.ru                         |
| device_id | AB-12                               |
+-----------+-------------------------------------+
```"#,
    argument(
        name = "id_type",
        description = "Identifier type: one of `email`, `phone`, `anonymous_id`, `device_id`, `app_account_id`, `user_id`, `loyalty_card`. A string literal or a string column."
    ),
    argument(
        name = "value",
        description = "Identifier as written by the source system. Any string type (`Utf8`, `LargeUtf8`, `Utf8View`, dictionary-encoded)."
    ),
    related_udf(name = "normalize_email"),
    related_udf(name = "normalize_phone"),
    related_udf(name = "hash_identifier")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NormalizeIdentifierFunc {
    signature: Signature,
}

impl Default for NormalizeIdentifierFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl NormalizeIdentifierFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![string_data(), string_data()],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for NormalizeIdentifierFunc {
    fn name(&self) -> &str {
        "normalize_identifier"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("{}: return_field_from_args is used instead", self.name())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        // A literal id_type is validated once, at planning time; a column is checked per row.
        if let Some(Some(id_type)) = args.scalar_arguments.first()
            && let Some(name) = scalar_str(self.name(), id_type)?
        {
            literal_id_type(self.name(), name)?;
        }
        // Nullable: an invalid identifier gives NULL even when the input has no NULLs.
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let [id_type, value] = take_function_args(name, &args.args)?;
        match id_type {
            ColumnarValue::Scalar(id_type) => match scalar_str(name, id_type)? {
                Some(id_type) => {
                    let id_type = literal_id_type(name, id_type)?;
                    map_strings(name, value, |raw, out| id_type.normalize(raw, out))
                }
                None => Ok(match value {
                    ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::Utf8(None)),
                    ColumnarValue::Array(_) => {
                        ColumnarValue::Array(new_null_array(&DataType::Utf8, args.number_rows))
                    }
                }),
            },
            ColumnarValue::Array(_) => map_string_pairs(
                name,
                id_type,
                value,
                args.number_rows,
                |id_type, raw, out| match IdentifierType::from_name(id_type) {
                    Some(id_type) => Ok(id_type.normalize(raw, out)),
                    None => exec_err!(
                        "{name}: unknown id_type '{id_type}' in the id_type column; expected one of {}",
                        IdentifierType::names()
                    ),
                },
            ),
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `normalize_identifier` function, shared by every registration.
pub fn normalize_identifier_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(NormalizeIdentifierFunc::new())));
    Arc::clone(&INSTANCE)
}

fn literal_id_type(function: &str, name: &str) -> Result<IdentifierType> {
    match IdentifierType::from_name(name) {
        Some(id_type) => Ok(id_type),
        None => plan_err!(
            "{function}: unknown id_type '{name}'; expected one of {}",
            IdentifierType::names()
        ),
    }
}

/// The identifier types the identity pipeline knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentifierType {
    Email,
    Phone,
    AnonymousId,
    DeviceId,
    AppAccountId,
    UserId,
    LoyaltyCard,
}

/// Length bounds of a loyalty card number (ISO/IEC 7812 card numbers are 8-19 digits).
const LOYALTY_CARD_DIGITS: std::ops::RangeInclusive<usize> = 8..=19;

impl IdentifierType {
    pub const ALL: [IdentifierType; 7] = [
        Self::Email,
        Self::Phone,
        Self::AnonymousId,
        Self::DeviceId,
        Self::AppAccountId,
        Self::UserId,
        Self::LoyaltyCard,
    ];

    /// The name used in SQL and in the `id_type` columns.
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::AnonymousId => "anonymous_id",
            Self::DeviceId => "device_id",
            Self::AppAccountId => "app_account_id",
            Self::UserId => "user_id",
            Self::LoyaltyCard => "loyalty_card",
        }
    }

    /// The type named `name`, ignoring ASCII case and surrounding whitespace.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// All names, quoted, for error messages.
    fn names() -> String {
        Self::ALL.map(|t| format!("'{}'", t.name())).join(", ")
    }

    /// Writes the canonical form of `raw` into `out` (which it clears) and returns `true`, or
    /// returns `false` when `raw` is not a valid identifier of this type.
    pub fn normalize(self, raw: &str, out: &mut String) -> bool {
        out.clear();
        let value = raw.trim();
        if value.is_empty() {
            return false;
        }
        match self {
            Self::Email => normalize_email(value, out),
            Self::Phone => normalize_phone(value, PhoneRegion::DEFAULT, out),
            Self::AnonymousId => {
                out.extend(value.chars().flat_map(char::to_lowercase));
                true
            }
            Self::DeviceId => {
                out.extend(value.chars().flat_map(char::to_uppercase));
                true
            }
            Self::AppAccountId | Self::UserId => {
                out.push_str(value);
                true
            }
            Self::LoyaltyCard => normalize_loyalty_card(value, out),
        }
    }
}

impl fmt::Display for IdentifierType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn normalize_loyalty_card(value: &str, out: &mut String) -> bool {
    for c in value.chars() {
        if c.is_ascii_digit() {
            out.push(c);
        } else if c != '-' && !c.is_whitespace() {
            return false;
        }
    }
    LOYALTY_CARD_DIGITS.contains(&out.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_harness::{
        all_encodings, assert_maps_in_every_encoding, invoke, literal, strings_of,
    };
    use datafusion::arrow::array::{ArrayRef, StringArray};

    fn normalized(id_type: IdentifierType, raw: &str) -> Option<String> {
        let mut out = String::from("stale");
        id_type.normalize(raw, &mut out).then_some(out)
    }

    #[test]
    fn kernels_by_type() {
        use IdentifierType::*;
        let cases = [
            (Email, " Ann.Lee+x@GMail.com ", Some("annlee@gmail.com")),
            (Email, "not-an-email", None),
            (Phone, "8 (916) 123-45-67", Some("+79161234567")),
            (Phone, "0000000000", None),
            (AnonymousId, " 5F1C-AB9E-Ä ", Some("5f1c-ab9e-ä")),
            (DeviceId, "\t5f1c-ab9e-ä\n", Some("5F1C-AB9E-Ä")),
            (AppAccountId, "  Acc-42 ", Some("Acc-42")),
            (UserId, "User 7", Some("User 7")),
            (LoyaltyCard, " 1234 5678-9012 ", Some("123456789012")),
            (LoyaltyCard, "00001234", Some("00001234")),
            (LoyaltyCard, "1234567", None),
            (
                LoyaltyCard,
                "1234567890123456789",
                Some("1234567890123456789"),
            ),
            (LoyaltyCard, "12345678901234567890", None),
            (LoyaltyCard, "1234-5678-ABCD", None),
            (LoyaltyCard, "1234.5678.9012", None),
            (LoyaltyCard, "١٢٣٤٥٦٧٨٩", None),
        ];
        for (id_type, raw, expected) in cases {
            assert_eq!(
                normalized(id_type, raw).as_deref(),
                expected,
                "{id_type} {raw:?}"
            );
        }
        for id_type in IdentifierType::ALL {
            assert_eq!(normalized(id_type, ""), None, "{id_type}");
            assert_eq!(normalized(id_type, " \t "), None, "{id_type}");
        }
    }

    #[test]
    fn names_round_trip() {
        for id_type in IdentifierType::ALL {
            assert_eq!(IdentifierType::from_name(id_type.name()), Some(id_type));
            assert_eq!(
                IdentifierType::from_name(&format!(" {} ", id_type.name().to_uppercase())),
                Some(id_type)
            );
        }
        assert_eq!(IdentifierType::from_name("e-mail"), None);
        assert_eq!(IdentifierType::from_name(""), None);
    }

    #[test]
    fn literal_id_type_in_every_encoding() -> Result<()> {
        assert_maps_in_every_encoding(
            &NormalizeIdentifierFunc::new(),
            |value| vec![literal("device_id"), value],
            &[Some(" ab-1 "), None, Some("  "), Some("Cd")],
            &[Some("AB-1"), None, None, Some("CD")],
        )?;
        assert_maps_in_every_encoding(
            &NormalizeIdentifierFunc::new(),
            |value| vec![literal("phone"), value],
            &[Some("89161234567"), Some("junk")],
            &[Some("+79161234567"), None],
        )
    }

    #[test]
    fn id_type_column_in_every_encoding() -> Result<()> {
        let id_types = [
            Some("email"),
            Some("phone"),
            None,
            Some("loyalty_card"),
            Some("user_id"),
        ];
        let values = [
            Some("A@B.io"),
            Some("89161234567"),
            Some("x"),
            Some("1234 5678"),
            None,
        ];
        let expected = vec![
            Some("a@b.io".to_string()),
            Some("+79161234567".to_string()),
            None,
            Some("12345678".to_string()),
            None,
        ];
        for id_type_array in all_encodings(&id_types) {
            for value_array in all_encodings(&values) {
                let out = invoke(
                    &NormalizeIdentifierFunc::new(),
                    vec![
                        ColumnarValue::Array(Arc::clone(&id_type_array)),
                        ColumnarValue::Array(value_array),
                    ],
                )?;
                let ColumnarValue::Array(out) = out else {
                    panic!("array expected")
                };
                assert_eq!(
                    strings_of(&out),
                    expected,
                    "id_type as {}",
                    id_type_array.data_type()
                );
            }
            // A constant value against an id_type column.
            let out = invoke(
                &NormalizeIdentifierFunc::new(),
                vec![
                    ColumnarValue::Array(Arc::clone(&id_type_array)),
                    literal(" 1234-5678 "),
                ],
            )?;
            let ColumnarValue::Array(out) = out else {
                panic!("array expected")
            };
            assert_eq!(
                strings_of(&out),
                vec![
                    None,
                    None,
                    None,
                    Some("12345678".into()),
                    Some("1234-5678".into())
                ]
            );
        }
        let out = invoke(
            &NormalizeIdentifierFunc::new(),
            vec![
                ColumnarValue::Array(Arc::new(StringArray::from(vec!["Email", "PHONE"]))),
                ColumnarValue::Array(Arc::new(StringArray::from(vec!["X@Y.ru", "9161234567"]))),
            ],
        )?;
        assert_eq!(
            strings_of(&out.to_array(2)?),
            vec![Some("x@y.ru".into()), Some("+79161234567".into())]
        );
        Ok(())
    }

    #[test]
    fn unknown_id_types() {
        let err = invoke(
            &NormalizeIdentifierFunc::new(),
            vec![literal("e-mail"), literal("a@b.io")],
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("Error during planning"), "{message}");
        assert!(
            message.contains(
                "normalize_identifier: unknown id_type 'e-mail'; expected one of 'email', 'phone'"
            ),
            "{message}"
        );

        let id_types: ArrayRef = Arc::new(StringArray::from(vec!["email", "e-mail"]));
        let err = invoke(
            &NormalizeIdentifierFunc::new(),
            vec![ColumnarValue::Array(id_types), literal("a@b.io")],
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("Execution error"), "{message}");
        assert!(
            message.contains("unknown id_type 'e-mail' in the id_type column"),
            "{message}"
        );
    }

    #[test]
    fn null_id_type_gives_null() -> Result<()> {
        let null = || ColumnarValue::Scalar(ScalarValue::Utf8(None));
        let out = invoke(
            &NormalizeIdentifierFunc::new(),
            vec![null(), literal("a@b.io")],
        )?;
        let ColumnarValue::Scalar(out) = out else {
            panic!("scalar expected")
        };
        assert_eq!(out, ScalarValue::Utf8(None));
        let values: ArrayRef = Arc::new(StringArray::from(vec!["a@b.io", "x"]));
        let out = invoke(
            &NormalizeIdentifierFunc::new(),
            vec![null(), ColumnarValue::Array(values)],
        )?;
        assert_eq!(strings_of(&out.to_array(2)?), vec![None, None]);
        Ok(())
    }
}
