//! `hash_identifier(value, key)`: a keyed pseudonym (HMAC-SHA256) of an identifier.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::utils::take_function_args;
use datafusion::common::{Result, internal_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion_macros::user_doc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::arguments::{invoked_literal, planned_literal, string_data, string_literal};
use crate::string_kernel::map_strings;

#[user_doc(
    doc_section(label = "Identity Functions"),
    description = r#"Pseudonymizes an identifier: returns HMAC-SHA256(`key`, `value`) as 64 lowercase hexadecimal characters, or NULL when `value` is NULL.

Use it on identifiers before they leave the warehouse (exports, BigQuery sync, sharing with partners): the same value and key always give the same pseudonym, so joins and counts still work, while the identifier cannot be recovered, and unlike a plain SHA-256 of a phone number or an e-mail address it cannot be confirmed by hashing guesses without the key. Hash the normalized identifier (`hash_identifier(normalize_email(email), key)`) so that spelling variants get one pseudonym. The value is hashed as its UTF-8 bytes, exactly as given. Keep the key secret and stable: changing it changes every pseudonym. The key is part of the query text, so it also appears in query plans and logs of that query."#,
    syntax_example = "hash_identifier(value, key)",
    sql_example = r#"```sql
> select hash_identifier('+79161234567', 'secret');
+------------------------------------------------------------------+
| hash_identifier(Utf8("+79161234567"),Utf8("secret"))             |
+------------------------------------------------------------------+
| 76e55caf2a5d6ab657355ccb276e1944fb3ab201681f4d4e3c30528212ef2972 |
+------------------------------------------------------------------+
```"#,
    argument(
        name = "value",
        description = "Identifier to pseudonymize. Any string type (`Utf8`, `LargeUtf8`, `Utf8View`, dictionary-encoded)."
    ),
    argument(
        name = "key",
        description = "Secret HMAC key: a non-empty string literal (its UTF-8 bytes are the key). An empty, NULL or non-literal key is a planning error."
    ),
    related_udf(name = "normalize_identifier")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HashIdentifierFunc {
    signature: Signature,
}

impl Default for HashIdentifierFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl HashIdentifierFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![string_data(), string_literal()],
                Volatility::Immutable,
            ),
        }
    }
}

const KEY_ARGUMENT: &str = "key";

impl ScalarUDFImpl for HashIdentifierFunc {
    fn name(&self) -> &str {
        "hash_identifier"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("{}: return_field_from_args is used instead", self.name())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        // Validates the key once, at planning time.
        IdentifierHasher::new(
            self.name(),
            planned_literal(self.name(), KEY_ARGUMENT, &args, 1)?,
        )?;
        // Every non-NULL value has a hash: the result is NULL exactly where the value is.
        let nullable = args
            .arg_fields
            .first()
            .is_none_or(|field| field.is_nullable());
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, nullable)))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let hasher = IdentifierHasher::new(
            self.name(),
            invoked_literal(self.name(), KEY_ARGUMENT, &args.args, 1)?,
        )?;
        let [value, _key] = take_function_args(self.name(), &args.args)?;
        map_strings(self.name(), value, |value, out| {
            hasher.hash(value, out);
            true
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `hash_identifier` function, shared by every registration.
pub fn hash_identifier_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(HashIdentifierFunc::new())));
    Arc::clone(&INSTANCE)
}

/// HMAC-SHA256 keyed once; each value starts from a copy of the keyed state, which saves
/// hashing the key pads again for every row.
#[derive(Clone)]
pub struct IdentifierHasher {
    keyed: Hmac<Sha256>,
}

impl IdentifierHasher {
    /// A hasher for `key`; a NULL or empty key is a plan error of `function`.
    pub fn new(function: &str, key: Option<&str>) -> Result<Self> {
        let key = match key {
            Some(key) if !key.is_empty() => key,
            Some(_) => return plan_err!("{function}: argument '{KEY_ARGUMENT}' must not be empty"),
            None => return plan_err!("{function}: argument '{KEY_ARGUMENT}' must not be NULL"),
        };
        match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
            Ok(keyed) => Ok(Self { keyed }),
            Err(err) => plan_err!("{function}: unusable key: {err}"),
        }
    }

    /// Appends HMAC-SHA256(key, `value`) as lowercase hex to `out`.
    pub fn hash(&self, value: &str, out: &mut String) {
        const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.keyed.clone();
        mac.update(value.as_bytes());
        for byte in mac.finalize().into_bytes() {
            out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_harness::{assert_maps_in_every_encoding, invoke, literal};
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::common::ScalarValue;

    fn hashed(key: &str, value: &str) -> String {
        let mut out = String::new();
        IdentifierHasher::new("t", Some(key))
            .expect("valid key")
            .hash(value, &mut out);
        out
    }

    #[test]
    fn rfc_4231_test_vectors() {
        // RFC 4231 test case 2 (key "Jefe") and a case with a key longer than the block size.
        assert_eq!(
            hashed("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let long_key = "k".repeat(200);
        let expected = {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(long_key.as_bytes()).expect("any key length");
            mac.update(b"x");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(hashed(&long_key, "x"), expected);
    }

    #[test]
    fn deterministic_and_keyed() {
        assert_eq!(hashed("k1", "+79161234567"), hashed("k1", "+79161234567"));
        assert_ne!(hashed("k1", "+79161234567"), hashed("k2", "+79161234567"));
        assert_ne!(hashed("k1", "+79161234567"), hashed("k1", "+79161234568"));
        let empty_value = hashed("k1", "");
        assert_eq!(empty_value.len(), 64);
        assert!(
            empty_value
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn every_encoding() -> Result<()> {
        let a = hashed("Jefe", "a@b.io");
        let empty = hashed("Jefe", "");
        assert_maps_in_every_encoding(
            &HashIdentifierFunc::new(),
            |value| vec![value, literal("Jefe")],
            &[Some("a@b.io"), None, Some(""), Some("a@b.io")],
            &[Some(&a), None, Some(&empty), Some(&a)],
        )
    }

    #[test]
    fn nullability_follows_the_value() -> Result<()> {
        let function = HashIdentifierFunc::new();
        let key = ScalarValue::from("k");
        for nullable in [true, false] {
            let fields = [
                Arc::new(Field::new("v", DataType::Utf8View, nullable)),
                Arc::new(Field::new("k", DataType::Utf8, false)),
            ];
            let field = function.return_field_from_args(ReturnFieldArgs {
                arg_fields: &fields,
                scalar_arguments: &[None, Some(&key)],
            })?;
            assert_eq!(field.is_nullable(), nullable);
        }
        Ok(())
    }

    #[test]
    fn bad_keys_are_plan_errors() {
        let value = || ColumnarValue::Scalar(ScalarValue::from("v"));
        for (key, expected) in [
            (
                literal(""),
                "hash_identifier: argument 'key' must not be empty",
            ),
            (
                ColumnarValue::Scalar(ScalarValue::Utf8(None)),
                "hash_identifier: argument 'key' must not be NULL",
            ),
            (
                ColumnarValue::Array(Arc::new(StringArray::from(vec!["k"])) as ArrayRef),
                "hash_identifier: argument 'key' must be a constant string literal",
            ),
        ] {
            let message = invoke(&HashIdentifierFunc::new(), vec![value(), key])
                .unwrap_err()
                .to_string();
            assert!(message.starts_with("Error during planning"), "{message}");
            assert!(message.contains(expected), "{message}");
        }
    }
}
