//! The options of `identity_stitch`: a JSON object, parsed and validated once at planning time.
//!
//! ```json
//! {
//!   "output": "map",
//!   "default_blocklist": true,
//!   "block": {"phone": ["+74951234567"]},
//!   "block_regex": {"email": ["@mystore\\.ru$"]},
//!   "degree_limit": {"email": 10, "phone": 10},
//!   "limits": {"app_account_id": 1, "phone": 3},
//!   "priority": ["app_account_id", "user_id", "loyalty_card", "email", "phone"],
//!   "max_component_size": 1000
//! }
//! ```
//!
//! Every key is optional. `block` and `block_regex` add to the shipped blocklist (switch it off
//! with `"default_blocklist": false`); `degree_limit`, `limits` and `priority` replace their
//! defaults as a whole; `"max_component_size": null` switches the circuit breaker off. Unknown keys
//! and values of the wrong type are planning errors naming the key, so that a misspelt option
//! cannot silently leave a guard off.

use std::collections::BTreeMap;

use datafusion::common::{Result, plan_err};
use regex::bytes::RegexSet;
use serde_json::{Map, Value};

/// The function name used in error messages.
const FUNCTION: &str = "identity_stitch";

/// Largest accepted per-type limit: per-component counts are kept in `u16`.
pub(crate) const MAX_TYPE_LIMIT: u64 = u16::MAX as u64;

/// Which relation `identity_stitch` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputSelector {
    /// One row per identifier: the identity map.
    Map,
    /// One row per guard action: the audit log.
    Audit,
}

impl OutputSelector {
    const NAMES: &'static str = "'map', 'audit'";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "map" => Some(Self::Map),
            "audit" => Some(Self::Audit),
            _ => None,
        }
    }
}

/// One blocklist rule of an identifier type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlockRule {
    /// The rule name written into `status` (`blocked:<name>`) and the audit.
    pub name: String,
    pub matcher: BlockMatcher,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BlockMatcher {
    /// One of these exact values.
    Exact(Vec<String>),
    /// A regular expression (matched anywhere in the value unless anchored).
    Regex(String),
}

/// The shipped retail blocklist: placeholder values that tills, forms and SDKs write when the
/// real identifier is unknown, and which would otherwise glue thousands of customers together.
/// `(rule name, identifier types, pattern)`.
const DEFAULT_BLOCKLIST: &[(&str, &[&str], &str)] = &[
    // "0", "000000", "---", the all-zero advertising id 00000000-0000-0000-0000-000000000000.
    (
        "zeros",
        &[
            "phone",
            "loyalty_card",
            "device_id",
            "anonymous_id",
            "app_account_id",
            "user_id",
        ],
        r"^\+?[0-]*$",
    ),
    // One digit repeated (after an optional one-digit country code): +79999999999, 11111111.
    (
        "repeated_digit",
        &["phone", "loyalty_card"],
        r"^\+?[0-9]?(?:0{6,}|1{6,}|2{6,}|3{6,}|4{6,}|5{6,}|6{6,}|7{6,}|8{6,}|9{6,})$",
    ),
    ("test_email", &["email"], r"(?i)^test[0-9]*@"),
    (
        "noemail",
        &["email"],
        r"(?i)^(?:no[-_.]?e?-?mail|none|null|unknown|noname)@",
    ),
    (
        "no_reply",
        &["email"],
        r"(?i)^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply)@",
    ),
    (
        "placeholder_domain",
        &["email"],
        r"(?i)@(?:example\.(?:com|org|net|ru)|test\.(?:com|ru)|email\.com|mail\.test)$",
    ),
];

/// Identifier types in the default anchor / processing priority, most trusted first.
const DEFAULT_PRIORITY: &[&str] = &[
    "app_account_id",
    "user_id",
    "loyalty_card",
    "email",
    "phone",
    "device_id",
    "anonymous_id",
];

/// Default degree quarantine: an identifier linked to more than N distinct identifiers of a
/// person-unique type is shared (a till phone, a shop tablet's cookie).
const DEFAULT_DEGREE_LIMIT: &[(&str, u64)] = &[
    ("app_account_id", 10),
    ("user_id", 10),
    ("loyalty_card", 10),
    ("email", 10),
    ("phone", 10),
];

/// Default per-profile limits ("never merge two app accounts").
const DEFAULT_LIMITS: &[(&str, u64)] = &[("app_account_id", 1), ("user_id", 1), ("phone", 3)];

const DEFAULT_MAX_COMPONENT_SIZE: u64 = 1000;

const KEYS: &str = "output, default_blocklist, block, block_regex, degree_limit, limits, priority, max_component_size";

/// Validated options of one `identity_stitch` call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StitchOptions {
    pub output: OutputSelector,
    /// Blocklist rules per identifier type, in evaluation order (the first match names the rule).
    pub block: BTreeMap<String, Vec<BlockRule>>,
    /// Neighbour type → N: more than N distinct neighbours of that type quarantines a node.
    pub degree_limit: BTreeMap<String, u64>,
    /// Identifier type → at most this many identifiers of the type per customer.
    pub limits: BTreeMap<String, u64>,
    /// Identifier types, most trusted first; unlisted types follow in name order.
    pub priority: Vec<String>,
    /// Largest component the circuit breaker lets a union create; `None` = no limit.
    pub max_component_size: Option<u64>,
}

impl Default for StitchOptions {
    fn default() -> Self {
        let mut block: BTreeMap<String, Vec<BlockRule>> = BTreeMap::new();
        add_default_blocklist(&mut block);
        Self {
            output: OutputSelector::Map,
            block,
            degree_limit: limit_map(DEFAULT_DEGREE_LIMIT),
            limits: limit_map(DEFAULT_LIMITS),
            priority: DEFAULT_PRIORITY.iter().map(|t| t.to_string()).collect(),
            max_component_size: Some(DEFAULT_MAX_COMPONENT_SIZE),
        }
    }
}

fn limit_map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn add_default_blocklist(block: &mut BTreeMap<String, Vec<BlockRule>>) {
    for (name, types, pattern) in DEFAULT_BLOCKLIST {
        for id_type in *types {
            block
                .entry(id_type.to_string())
                .or_default()
                .push(BlockRule {
                    name: format!("default:{name}"),
                    matcher: BlockMatcher::Regex(pattern.to_string()),
                });
        }
    }
}

impl StitchOptions {
    /// Parses the options JSON; `None` (argument omitted) gives the defaults.
    pub fn parse(json: Option<&str>) -> Result<Self> {
        let Some(json) = json else {
            return Ok(Self::default());
        };
        let value: Value = match serde_json::from_str(json) {
            Ok(value) => value,
            Err(e) => return plan_err!("{FUNCTION}: options are not valid JSON ({e}): {json}"),
        };
        let Value::Object(object) = value else {
            return plan_err!("{FUNCTION}: options must be a JSON object, got {value}");
        };
        for key in object.keys() {
            if !KEYS.split(", ").any(|known| known == key) {
                return plan_err!("{FUNCTION}: unknown option '{key}'; known options: {KEYS}");
            }
        }

        let mut options = Self::default();
        if let Some(value) = object.get("output") {
            let name = value.as_str().unwrap_or_default();
            options.output = match OutputSelector::from_name(name) {
                Some(output) => output,
                None => {
                    return plan_err!(
                        "{FUNCTION}: option 'output' must be one of {}, got {value}",
                        OutputSelector::NAMES
                    );
                }
            };
        }
        if let Some(value) = object.get("default_blocklist") {
            match value {
                Value::Bool(true) => {}
                Value::Bool(false) => options.block.clear(),
                other => {
                    return plan_err!(
                        "{FUNCTION}: option 'default_blocklist' must be true or false, got {other}"
                    );
                }
            }
        }
        for (id_type, values) in string_lists(&object, "block")? {
            options.block.entry(id_type).or_default().push(BlockRule {
                name: "block".to_string(),
                matcher: BlockMatcher::Exact(values),
            });
        }
        for (id_type, patterns) in string_lists(&object, "block_regex")? {
            for pattern in patterns {
                if let Err(e) = RegexSet::new([&pattern]) {
                    return plan_err!(
                        "{FUNCTION}: option 'block_regex.{id_type}': invalid regular expression {pattern:?}: {e}"
                    );
                }
                options
                    .block
                    .entry(id_type.clone())
                    .or_default()
                    .push(BlockRule {
                        name: format!("block_regex:{pattern}"),
                        matcher: BlockMatcher::Regex(pattern),
                    });
            }
        }
        if let Some(limits) = count_map(&object, "degree_limit", u64::MAX)? {
            options.degree_limit = limits;
        }
        if let Some(limits) = count_map(&object, "limits", MAX_TYPE_LIMIT)? {
            options.limits = limits;
        }
        if let Some(value) = object.get("priority") {
            let types = string_list(value).filter(|types| !types.is_empty());
            let Some(types) = types else {
                return plan_err!(
                    "{FUNCTION}: option 'priority' must be a non-empty list of identifier types, got {value}"
                );
            };
            for (i, id_type) in types.iter().enumerate() {
                if types[..i].contains(id_type) {
                    return plan_err!(
                        "{FUNCTION}: option 'priority' lists '{id_type}' more than once"
                    );
                }
            }
            options.priority = types;
        }
        if let Some(value) = object.get("max_component_size") {
            options.max_component_size = match value {
                Value::Null => None,
                other => match other.as_u64().filter(|n| *n >= 2) {
                    Some(n) => Some(n),
                    None => {
                        return plan_err!(
                            "{FUNCTION}: option 'max_component_size' must be an integer >= 2 or null (no limit), got {other}"
                        );
                    }
                },
            };
        }
        Ok(options)
    }
}

/// `{"<type>": ["v", ...], ...}` under `key`, or nothing when the key is absent.
fn string_lists(object: &Map<String, Value>, key: &str) -> Result<Vec<(String, Vec<String>)>> {
    let Some(value) = object.get(key) else {
        return Ok(vec![]);
    };
    let Value::Object(per_type) = value else {
        return plan_err!(
            "{FUNCTION}: option '{key}' must be an object of identifier type -> list of strings, got {value}"
        );
    };
    let mut lists = Vec::with_capacity(per_type.len());
    for (id_type, values) in per_type {
        let Some(values) = string_list(values) else {
            return plan_err!(
                "{FUNCTION}: option '{key}.{id_type}' must be a list of strings, got {values}"
            );
        };
        lists.push((id_type.clone(), values));
    }
    Ok(lists)
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// `{"<type>": N, ...}` under `key` with `1 <= N <= max`.
fn count_map(
    object: &Map<String, Value>,
    key: &str,
    max: u64,
) -> Result<Option<BTreeMap<String, u64>>> {
    let Some(value) = object.get(key) else {
        return Ok(None);
    };
    let Value::Object(per_type) = value else {
        return plan_err!(
            "{FUNCTION}: option '{key}' must be an object of identifier type -> positive integer, got {value}"
        );
    };
    let mut limits = BTreeMap::new();
    for (id_type, n) in per_type {
        match n.as_u64().filter(|n| (1..=max).contains(n)) {
            Some(n) => limits.insert(id_type.clone(), n),
            None => {
                return plan_err!(
                    "{FUNCTION}: option '{key}.{id_type}' must be an integer from 1 to {max}, got {n}"
                );
            }
        };
    }
    Ok(Some(limits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        StitchOptions::parse(Some(json)).unwrap_err().to_string()
    }

    #[test]
    fn defaults_when_absent_or_empty() -> Result<()> {
        let defaults = StitchOptions::parse(None)?;
        assert_eq!(StitchOptions::parse(Some("{}"))?, defaults);
        assert_eq!(defaults.output, OutputSelector::Map);
        assert_eq!(defaults.limits.get("app_account_id"), Some(&1));
        assert_eq!(defaults.max_component_size, Some(1000));
        assert!(
            defaults.block["phone"]
                .iter()
                .any(|r| r.name == "default:zeros")
        );
        assert!(
            defaults.block["email"]
                .iter()
                .any(|r| r.name == "default:test_email")
        );
        // every shipped pattern compiles
        for rules in defaults.block.values() {
            for rule in rules {
                if let BlockMatcher::Regex(p) = &rule.matcher {
                    RegexSet::new([p]).unwrap();
                }
            }
        }
        Ok(())
    }

    #[test]
    fn user_values_add_to_or_replace_defaults() -> Result<()> {
        let options = StitchOptions::parse(Some(
            r#"{"output": "audit", "block": {"phone": ["+74951234567"]},
                "block_regex": {"email": ["@shop\\.ru$"]},
                "degree_limit": {"email": 3}, "limits": {}, "priority": ["email", "phone"],
                "max_component_size": null}"#,
        ))?;
        assert_eq!(options.output, OutputSelector::Audit);
        let phone = &options.block["phone"];
        assert_eq!(phone[0].name, "default:zeros");
        assert_eq!(
            phone.last().unwrap().matcher,
            BlockMatcher::Exact(vec!["+74951234567".into()])
        );
        assert_eq!(
            options.block["email"].last().unwrap().name,
            r"block_regex:@shop\.ru$"
        );
        assert_eq!(options.degree_limit, limit_map(&[("email", 3)]));
        assert!(options.limits.is_empty());
        assert_eq!(options.priority, vec!["email", "phone"]);
        assert_eq!(options.max_component_size, None);

        let no_defaults = StitchOptions::parse(Some(r#"{"default_blocklist": false}"#))?;
        assert!(no_defaults.block.is_empty());
        Ok(())
    }

    #[test]
    fn errors_name_the_option() {
        let cases = [
            ("{", "options are not valid JSON"),
            ("[1]", "options must be a JSON object"),
            (r#"{"degree_limits": {}}"#, "unknown option 'degree_limits'"),
            (
                r#"{"output": "changes"}"#,
                "option 'output' must be one of 'map', 'audit'",
            ),
            (r#"{"output": 1}"#, "option 'output' must be one of"),
            (
                r#"{"default_blocklist": "no"}"#,
                "'default_blocklist' must be true or false",
            ),
            (r#"{"block": ["x"]}"#, "option 'block' must be an object"),
            (
                r#"{"block": {"phone": "x"}}"#,
                "option 'block.phone' must be a list of strings",
            ),
            (
                r#"{"block_regex": {"email": ["("]}}"#,
                "'block_regex.email': invalid regular expression",
            ),
            (
                r#"{"degree_limit": {"email": 0}}"#,
                "'degree_limit.email' must be an integer from 1",
            ),
            (
                r#"{"limits": {"phone": 70000}}"#,
                "'limits.phone' must be an integer from 1 to 65535",
            ),
            (
                r#"{"limits": {"phone": "3"}}"#,
                "'limits.phone' must be an integer",
            ),
            (r#"{"priority": []}"#, "'priority' must be a non-empty list"),
            (r#"{"priority": ["a", "a"]}"#, "lists 'a' more than once"),
            (
                r#"{"max_component_size": 1}"#,
                "'max_component_size' must be an integer >= 2",
            ),
        ];
        for (json, expected) in cases {
            let message = error(json);
            assert!(message.contains(expected), "{json}: {message}");
            assert!(
                message.contains("Error during planning"),
                "{json}: {message}"
            );
        }
    }
}
