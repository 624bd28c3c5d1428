//! `normalize_email(email)`: the canonical form of an e-mail address for identity matching.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::utils::take_function_args;
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion_macros::user_doc;

use crate::arguments::string_data;
use crate::string_kernel::map_strings;

#[user_doc(
    doc_section(label = "Identity Functions"),
    description = r#"Normalizes an e-mail address for identity matching, or returns NULL when the value is not a plausible address.

Rules, in order:
1. Surrounding (Unicode) whitespace is trimmed and the address is lowercased.
2. It must contain exactly one `@`. The local part must be 1-64 bytes of letters, digits (any script) or ``!#$%&'*+-/=?^_`{|}~.``, without a leading, trailing or doubled `.`. The domain must be at most 253 bytes of at least two dot-separated labels of letters, digits (any script) and `-` (1-63 bytes each, not starting or ending with `-`), and the last label must have at least two characters and not be all digits. Anything else, including inner whitespace or control characters, gives NULL.
3. A `+tag` is removed from the local part (for every domain): `ann+promo@shop.ru` becomes `ann@shop.ru`. An address whose local part is empty after that gives NULL.
4. For `gmail.com` and `googlemail.com`, dots are removed from the local part and the domain becomes `gmail.com`.

Syntactically valid junk such as `test@test.com` is kept: blocking it is the job of the identity stitching guards."#,
    syntax_example = "normalize_email(email)",
    sql_example = r#"```sql
> select normalize_email(' John.Doe+promo@GoogleMail.com ');
+----------------------------------------------------------+
| normalize_email(Utf8(" John.Doe+promo@GoogleMail.com ")) |
+----------------------------------------------------------+
| johndoe@gmail.com                                        |
+----------------------------------------------------------+
> select normalize_email('ivan@mail') is null;
+--------------------------------------------+
| normalize_email(Utf8("ivan@mail")) IS NULL |
+--------------------------------------------+
| true                                       |
+--------------------------------------------+
```"#,
    argument(
        name = "email",
        description = "E-mail address as written by the source system. Any string type (`Utf8`, `LargeUtf8`, `Utf8View`, dictionary-encoded)."
    ),
    related_udf(name = "normalize_identifier")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NormalizeEmailFunc {
    signature: Signature,
}

impl Default for NormalizeEmailFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl NormalizeEmailFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![string_data()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for NormalizeEmailFunc {
    fn name(&self) -> &str {
        "normalize_email"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("{}: return_field_from_args is used instead", self.name())
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        // Nullable: an implausible address gives NULL even when the input has no NULLs.
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [email] = take_function_args(self.name(), &args.args)?;
        map_strings(self.name(), email, normalize_email)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The `normalize_email` function, shared by every registration.
pub fn normalize_email_udf() -> Arc<ScalarUDF> {
    static INSTANCE: LazyLock<Arc<ScalarUDF>> =
        LazyLock::new(|| Arc::new(ScalarUDF::from(NormalizeEmailFunc::new())));
    Arc::clone(&INSTANCE)
}

/// RFC 5321 limits, in bytes.
const MAX_LOCAL_PART_LEN: usize = 64;
const MAX_DOMAIN_LEN: usize = 253;
const MAX_DOMAIN_LABEL_LEN: usize = 63;

/// Writes the canonical form of `raw` into `out` (which it clears) and returns `true`, or returns
/// `false` when `raw` is not a plausible e-mail address. See the function documentation above
/// for the rules.
pub fn normalize_email(raw: &str, out: &mut String) -> bool {
    out.clear();
    let address = raw.trim();
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    if domain.contains('@') || !is_plausible_local_part(local) || !is_plausible_domain(domain) {
        return false;
    }
    // No character outside ASCII lowercases to an ASCII letter of these names, so an ASCII
    // comparison decides the same as comparing the lowercased domain.
    let is_gmail =
        domain.eq_ignore_ascii_case("gmail.com") || domain.eq_ignore_ascii_case("googlemail.com");
    let mailbox = local
        .split_once('+')
        .map_or(local, |(mailbox, _tag)| mailbox);
    for c in mailbox.chars().filter(|&c| !(is_gmail && c == '.')) {
        out.extend(c.to_lowercase());
    }
    if out.is_empty() {
        return false;
    }
    out.push('@');
    if is_gmail {
        out.push_str("gmail.com");
    } else {
        for c in domain.chars() {
            out.extend(c.to_lowercase());
        }
    }
    true
}

fn is_plausible_local_part(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= MAX_LOCAL_PART_LEN
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| {
            if c.is_ascii() {
                c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
            } else {
                c.is_alphanumeric()
            }
        })
}

fn is_plausible_domain(domain: &str) -> bool {
    if domain.len() > MAX_DOMAIN_LEN {
        return false;
    }
    let mut labels = 0;
    let mut last_label = "";
    for label in domain.split('.') {
        let plausible = !label.is_empty()
            && label.len() <= MAX_DOMAIN_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c == '-' || c.is_alphanumeric());
        if !plausible {
            return false;
        }
        labels += 1;
        last_label = label;
    }
    labels >= 2
        && last_label.chars().count() >= 2
        && !last_label.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_harness::{assert_maps_in_every_encoding, invoke};
    use datafusion::common::ScalarValue;

    fn normalized(raw: &str) -> Option<String> {
        let mut out = String::from("stale");
        normalize_email(raw, &mut out).then_some(out)
    }

    #[test]
    fn canonical_forms() {
        let cases = [
            (" John.Doe+promo@GMail.com ", "johndoe@gmail.com"),
            ("j.o.h.n.doe@googlemail.com", "johndoe@gmail.com"),
            ("John.Doe+a+b@Example.COM", "john.doe@example.com"),
            ("ann+promo@shop.ru", "ann@shop.ru"),
            ("\u{a0}\tIvan@Mail.Ru\n", "ivan@mail.ru"),
            ("o'brien@example.ie", "o'brien@example.ie"),
            ("user_1-x@sub.domain.co.uk", "user_1-x@sub.domain.co.uk"),
            ("ИВАН@ПОЧТА.РФ", "иван@почта.рф"),
            ("a@b.co", "a@b.co"),
            ("a@xn--p1ai.xn--p1ai", "a@xn--p1ai.xn--p1ai"),
            // Junk that is syntactically fine stays: the stitching guards block it.
            ("test@test.com", "test@test.com"),
            ("noemail@noemail.com", "noemail@noemail.com"),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalized(raw).as_deref(), Some(expected), "{raw:?}");
        }
    }

    #[test]
    fn implausible_addresses_are_null() {
        let long_local = format!("{}@x.com", "a".repeat(65));
        let long_label = format!("a@{}.com", "b".repeat(64));
        let cases = [
            "",
            "   ",
            "no-at-sign",
            "two@@example.com",
            "a@b@example.com",
            "@example.com",
            "user@",
            "user@localhost",
            "user@mail",
            "user@example.c",
            "user@192.168.1.1",
            "user@.example.com",
            "user@example.com.",
            "user@exa..mple.com",
            "user@-example.com",
            "user@example-.com",
            "user@exam_ple.com",
            "us er@example.com",
            "user@exam ple.com",
            "user\u{0}@example.com",
            "user\t@example.com",
            "us\u{200b}er@example.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "\"quoted\"@example.com",
            "a,b@example.com",
            "<user@example.com>",
            "mailto:user@example.com",
            "+tag@example.com",
            "+@gmail.com",
            &long_local,
            &long_label,
        ];
        for raw in cases {
            assert_eq!(normalized(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn gmail_dot_removal_applies_only_to_gmail() {
        assert_eq!(normalized("a.b@gmail.com").as_deref(), Some("ab@gmail.com"));
        assert_eq!(
            normalized("a.b@gmail.com.ru").as_deref(),
            Some("a.b@gmail.com.ru")
        );
        assert_eq!(
            normalized("a.b@mygmail.com").as_deref(),
            Some("a.b@mygmail.com")
        );
    }

    #[test]
    fn every_encoding() -> Result<()> {
        assert_maps_in_every_encoding(
            &NormalizeEmailFunc::new(),
            |email| vec![email],
            &[
                Some(" A.B+x@GMail.com"),
                None,
                Some("junk"),
                Some(""),
                Some("Ivan@Mail.RU"),
            ],
            &[Some("ab@gmail.com"), None, None, None, Some("ivan@mail.ru")],
        )
    }

    #[test]
    fn null_literal_is_null() -> Result<()> {
        let out = invoke(
            &NormalizeEmailFunc::new(),
            vec![ColumnarValue::Scalar(ScalarValue::Null)],
        )?;
        let ColumnarValue::Scalar(out) = out else {
            panic!("scalar expected")
        };
        assert_eq!(out, ScalarValue::Utf8(None));
        Ok(())
    }

    #[test]
    fn wrong_arity_is_an_error() {
        let two = vec![ColumnarValue::Scalar(ScalarValue::from("a")); 2];
        assert!(invoke(&NormalizeEmailFunc::new(), two).is_err());
    }
}
