//! `normalize_phone(phone [, default_region])`: a phone number in E.164 form, parsed and validated
//! with `phonenumber` (a port of Google's libphonenumber and its metadata).

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, internal_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TypeSignature, Volatility,
};
use datafusion_macros::user_doc;
use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;

use crate::arguments::{invoked_literal, planned_literal, string_data, string_literal};
use crate::string_kernel::map_strings;

#[user_doc(
    doc_section(label = "Identity Functions"),
    description = r#"Normalizes a phone number to E.164 (`+79161234567`), or returns NULL when it is not a valid number.

The value is parsed with libphonenumber's rules and metadata (the `phonenumber` crate): formatting characters, a leading `+` or international dialling prefix, national trunk prefixes (Russian `8`) and extensions are understood. A number without a country code is read as a number of `default_region`. The result is the number in E.164 when libphonenumber considers it valid (its length and number ranges exist in that country's numbering plan), else NULL; an extension is dropped. With the default region `RU`, `8 (916) 123-45-67`, `+7 916 123-45-67`, `89161234567`, `9161234567` and `7 916 123 45 67` all give `+79161234567`, and `0000000000` gives NULL."#,
    syntax_example = "normalize_phone(phone[, default_region])",
    sql_example = r#"```sql
> select normalize_phone('8 (916) 123-45-67');
+--------------------------------------------+
| normalize_phone(Utf8("8 (916) 123-45-67")) |
+--------------------------------------------+
| +79161234567                               |
+--------------------------------------------+
> select normalize_phone('030 123456', 'DE');
+------------------------------------------------+
| normalize_phone(Utf8("030 123456"),Utf8("DE")) |
+------------------------------------------------+
| +4930123456                                    |
+------------------------------------------------+
```"#,
    argument(
        name = "phone",
        description = "Phone number as typed by a person or a source system. Any string type (`Utf8`, `LargeUtf8`, `Utf8View`, dictionary-encoded)."
    ),
    argument(
        name = "default_region",
        description = "Optional string literal: the ISO 3166-1 alpha-2 code (case-insensitive) of the country whose numbering plan applies to numbers written without a country code. Defaults to `'RU'`. An unknown code, a NULL or a non-literal is a planning error."
    ),
    related_udf(name = "normalize_identifier")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NormalizePhoneFunc {
    signature: Signature,
}

impl Default for NormalizePhoneFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl NormalizePhoneFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![string_data()]),
                    TypeSignature::Coercible(vec![string_data(), string_literal()]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for NormalizePhoneFunc {
    fn name(&self) -> &str {
        "normalize_phone"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("{}: return_field_from_args is used instead", self.name())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        // Validates the region once, at planning time.
        if args.arg_fields.len() == 2 {
            region_argument(
                self.name(),
                planned_literal(self.name(), REGION_ARGUMENT, &args, 1)?,
            )?;
        }
        // Nullable: an invalid number gives NULL even when the input has no NULLs.
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let region = match args.args.len() {
            1 => PhoneRegion::DEFAULT,
            2 => region_argument(
                self.name(),
                invoked_literal(self.name(), REGION_ARGUMENT, &args.args, 1)?,
            )?,
            n => return plan_err!("{}: expected 1 or 2 arguments, got {n}", self.name()),
        };
        map_strings(self.name(), &args.args[0], |phone, out| {
            normalize_phone(phone, region, out)
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `normalize_phone` function, shared by every registration.
pub fn normalize_phone_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(NormalizePhoneFunc::new())));
    Arc::clone(&INSTANCE)
}

const REGION_ARGUMENT: &str = "default_region";

fn region_argument(function: &str, code: Option<&str>) -> Result<PhoneRegion> {
    let Some(code) = code else {
        return plan_err!("{function}: argument '{REGION_ARGUMENT}' must not be NULL");
    };
    match PhoneRegion::from_code(code) {
        Some(region) => Ok(region),
        None => plan_err!(
            "{function}: unknown region '{code}' for argument '{REGION_ARGUMENT}'; expected an ISO 3166-1 alpha-2 country code with phone metadata, such as 'RU' or 'DE'"
        ),
    }
}

/// A country whose numbering plan applies to numbers written without a country code.
///
/// Only regions present in the phone metadata can be constructed, so parsing never looks up a
/// missing region (which the `phonenumber` parser would treat as a bug and panic on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PhoneRegion(Id);

impl PhoneRegion {
    /// The region used when none is given: the product's first market.
    pub const DEFAULT: PhoneRegion = PhoneRegion(Id::RU);

    /// The region of an ISO 3166-1 alpha-2 code (case-insensitive), if it has phone metadata.
    pub fn from_code(code: &str) -> Option<Self> {
        if code.len() != 2 {
            return None;
        }
        let id = Id::from_str(&code.to_ascii_uppercase()).ok()?;
        // The first lookup loads the phone metadata (a process-wide lazy static), so planning a
        // query pays that cost instead of its first batch.
        DATABASE.by_id(id.as_ref())?;
        Some(Self(id))
    }
}

impl fmt::Display for PhoneRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_ref())
    }
}

/// Writes the E.164 form of `raw` into `out` (which it clears) and returns `true`, or returns
/// `false` when `raw` is not a valid phone number; numbers without a country code are read as
/// numbers of `region`.
pub fn normalize_phone(raw: &str, region: PhoneRegion, out: &mut String) -> bool {
    out.clear();
    if raw.trim().is_empty() {
        return false;
    }
    let Ok(number) = phonenumber::parse(Some(region.0), raw) else {
        return false;
    };
    if !number.is_valid() {
        return false;
    }
    // E.164 is `+`, the country code and the national significant number (including the leading
    // zeros some countries keep). Written directly: the crate's formatter allocates and matches
    // formatting patterns that E.164 does not use.
    write!(out, "+{}{}", number.code().value(), number.national()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_harness::{assert_maps_in_every_encoding, invoke, literal};
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::common::ScalarValue;

    fn normalized(raw: &str, region: &str) -> Option<String> {
        let region = PhoneRegion::from_code(region).expect("known region");
        let mut out = String::from("stale");
        normalize_phone(raw, region, &mut out).then_some(out)
    }

    #[test]
    fn russian_forms_with_default_region() {
        for raw in [
            "8 (916) 123-45-67",
            "+7 916 123-45-67",
            "89161234567",
            "9161234567",
            "+7(916)1234567",
            "7 916 123 45 67",
            "8-916-123-45-67",
            "+7 916 1234567",
            "  +7 (916) 123-45-67  ",
            "79161234567",
            "8 916 123 45 67 ext. 12",
        ] {
            assert_eq!(
                normalized(raw, "RU").as_deref(),
                Some("+79161234567"),
                "{raw:?}"
            );
        }
        assert_eq!(
            normalized("8 (495) 123-45-67", "RU").as_deref(),
            Some("+74951234567")
        );
    }

    #[test]
    fn invalid_numbers_are_null() {
        for raw in [
            "",
            "   ",
            "0000000000",
            "00000000000",
            "1111111111",
            "123",
            "8 (000) 000-00-00",
            "+7 916 123-45-6",
            "+7 916 123-45-678",
            "not a phone",
            "-",
            "+",
            "++79161234567junk+",
            "  2 22#:",
        ] {
            assert_eq!(normalized(raw, "RU"), None, "{raw:?}");
        }
    }

    #[test]
    fn international_numbers_keep_their_country() {
        assert_eq!(
            normalized("+49 30 123456", "RU").as_deref(),
            Some("+4930123456")
        );
        assert_eq!(
            normalized("+1 650-253-0000", "RU").as_deref(),
            Some("+16502530000")
        );
        assert_eq!(
            normalized("+44 20 7946 0958", "RU").as_deref(),
            Some("+442079460958")
        );
        assert_eq!(
            normalized("030 123456", "DE").as_deref(),
            Some("+4930123456")
        );
        assert_eq!(
            normalized("(650) 253-0000", "us").as_deref(),
            Some("+16502530000")
        );
        // Italy keeps the leading zero of fixed lines in E.164.
        assert_eq!(
            normalized("02 1234 5678", "IT").as_deref(),
            Some("+390212345678")
        );
        // Kazakhstan shares +7 with Russia.
        assert_eq!(
            normalized("+7 701 123 4567", "RU").as_deref(),
            Some("+77011234567")
        );
    }

    #[test]
    fn region_codes() {
        assert_eq!(PhoneRegion::from_code("ru"), Some(PhoneRegion::DEFAULT));
        assert_eq!(
            PhoneRegion::from_code("DE")
                .map(|r| r.to_string())
                .as_deref(),
            Some("DE")
        );
        for bad in ["", "R", "RUS", "XX", "ZZ", "001", " RU"] {
            assert_eq!(PhoneRegion::from_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_encoding_with_and_without_region() -> Result<()> {
        let input = [
            Some("8 (916) 123-45-67"),
            None,
            Some("0000000000"),
            Some(""),
            Some("030 123456"),
        ];
        assert_maps_in_every_encoding(
            &NormalizePhoneFunc::new(),
            |phone| vec![phone],
            &input,
            &[Some("+79161234567"), None, None, None, None],
        )?;
        assert_maps_in_every_encoding(
            &NormalizePhoneFunc::new(),
            |phone| vec![phone, literal("DE")],
            &input,
            &[
                Some("+4989161234567"),
                None,
                None,
                None,
                Some("+4930123456"),
            ],
        )
    }

    #[test]
    fn bad_region_arguments_are_plan_errors() {
        let phone = || ColumnarValue::Scalar(ScalarValue::from("89161234567"));
        let err = invoke(&NormalizePhoneFunc::new(), vec![phone(), literal("XX")]).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("Error during planning"), "{message}");
        assert!(
            message.contains("normalize_phone: unknown region 'XX'"),
            "{message}"
        );

        let err = invoke(
            &NormalizePhoneFunc::new(),
            vec![phone(), ColumnarValue::Scalar(ScalarValue::Utf8(None))],
        )
        .unwrap_err();
        assert!(err.to_string().contains("must not be NULL"), "{err}");

        let regions: ArrayRef = Arc::new(StringArray::from(vec!["RU"]));
        let err = invoke(
            &NormalizePhoneFunc::new(),
            vec![phone(), ColumnarValue::Array(regions)],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("must be a constant string literal"),
            "{err}"
        );
    }
}
