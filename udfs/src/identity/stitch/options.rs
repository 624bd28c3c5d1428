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
//!   "max_component_size": 1000,
//!   "block_query": "SELECT 'phone' AS id_type, normalize_phone(phone_raw) AS id_value FROM stores",
//!   "previous": "identity_map",
//!   "run_id": "2026-11-22"
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

use crate::query_argument::QueryArgument;

/// The function whose options these are, for messages (`identity_explain` shares them).
const STITCH: &str = "identity_stitch";

/// Largest accepted per-type limit: per-component counts are kept in `u16`.
pub(crate) const MAX_TYPE_LIMIT: u64 = u16::MAX as u64;

/// Which relation `identity_stitch` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputSelector {
    /// One row per identifier: the identity map.
    Map,
    /// One row per guard action: the audit log.
    Audit,
    /// One row per change against the previous identity map: the change log.
    Changes,
}

impl OutputSelector {
    const NAMES: &'static str = "'map', 'audit', 'changes'";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "map" => Some(Self::Map),
            "audit" => Some(Self::Audit),
            "changes" => Some(Self::Changes),
            _ => None,
        }
    }

    /// The name used in options and `EXPLAIN`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Map => "map",
            Self::Audit => "audit",
            Self::Changes => "changes",
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

const KEYS: &str = "output, default_blocklist, block, block_regex, block_query, degree_limit, limits, priority, max_component_size, previous, run_id";

/// Options that only `identity_stitch` reads (they select or name its output).
const STITCH_ONLY_KEYS: [&str; 3] = ["output", "previous", "run_id"];

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
    /// A query or table of `(id_type, id_value [, rule])` rows added to the exact blocklist at
    /// execution (e.g. the stores' own phone numbers).
    pub block_query: Option<String>,
    /// The previous identity map (a query or table of `id_type, id_value, customer_id
    /// [, first_seen]`): incremental mode keeps its customer ids.
    pub previous: Option<String>,
    /// The `run_id` of the change log; `None` = a digest of the inputs.
    pub run_id: Option<String>,
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
            block_query: None,
            previous: None,
            run_id: None,
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
    /// Parses the options JSON of `identity_stitch`; `None` (argument omitted) gives the
    /// defaults.
    pub fn parse(json: Option<&str>) -> Result<Self> {
        Self::parse_for(STITCH, json)
    }

    /// Parses the options of `function`: `identity_stitch`, or a function that runs the same
    /// guards over the same graph (`identity_explain`), which refuses the output options.
    pub fn parse_for(function: &str, json: Option<&str>) -> Result<Self> {
        let Some(json) = json else {
            return Ok(Self::default());
        };
        let value: Value = match serde_json::from_str(json) {
            Ok(value) => value,
            Err(e) => return plan_err!("{function}: options are not valid JSON ({e}): {json}"),
        };
        let Value::Object(object) = value else {
            return plan_err!("{function}: options must be a JSON object, got {value}");
        };
        for key in object.keys() {
            if !KEYS.split(", ").any(|known| known == key) {
                return plan_err!("{function}: unknown option '{key}'; known options: {KEYS}");
            }
            if function != STITCH && STITCH_ONLY_KEYS.contains(&key.as_str()) {
                return plan_err!("{function}: option '{key}' only applies to identity_stitch");
            }
        }
        let string_option = |key: &str| -> Result<Option<String>> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) if !text.trim().is_empty() => Ok(Some(text.clone())),
                Some(other) => {
                    plan_err!("{function}: option '{key}' must be a non-empty string, got {other}")
                }
            }
        };

        let mut options = Self::default();
        if let Some(value) = object.get("output") {
            let name = value.as_str().unwrap_or_default();
            options.output = match OutputSelector::from_name(name) {
                Some(output) => output,
                None => {
                    return plan_err!(
                        "{function}: option 'output' must be one of {}, got {value}",
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
                        "{function}: option 'default_blocklist' must be true or false, got {other}"
                    );
                }
            }
        }
        for (id_type, values) in string_lists(function, &object, "block")? {
            options.block.entry(id_type).or_default().push(BlockRule {
                name: "block".to_string(),
                matcher: BlockMatcher::Exact(values),
            });
        }
        for (id_type, patterns) in string_lists(function, &object, "block_regex")? {
            for pattern in patterns {
                if let Err(e) = RegexSet::new([&pattern]) {
                    return plan_err!(
                        "{function}: option 'block_regex.{id_type}': invalid regular expression {pattern:?}: {e}"
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
        if let Some(limits) = count_map(function, &object, "degree_limit", u64::MAX)? {
            options.degree_limit = limits;
        }
        if let Some(limits) = count_map(function, &object, "limits", MAX_TYPE_LIMIT)? {
            options.limits = limits;
        }
        if let Some(value) = object.get("priority") {
            let types = string_list(value).filter(|types| !types.is_empty());
            let Some(types) = types else {
                return plan_err!(
                    "{function}: option 'priority' must be a non-empty list of identifier types, got {value}"
                );
            };
            for (i, id_type) in types.iter().enumerate() {
                if types[..i].contains(id_type) {
                    return plan_err!(
                        "{function}: option 'priority' lists '{id_type}' more than once"
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
                            "{function}: option 'max_component_size' must be an integer >= 2 or null (no limit), got {other}"
                        );
                    }
                },
            };
        }
        options.block_query = string_option("block_query")?;
        options.previous = string_option("previous")?;
        options.run_id = string_option("run_id")?;
        for (key, text) in [
            ("block_query", &options.block_query),
            ("previous", &options.previous),
        ] {
            if let Some(text) = text {
                // Checked here so that a bad query text is an error naming the option.
                QueryArgument::parse(function, key, text)?;
            }
        }
        Ok(options)
    }
}

/// `{"<type>": ["v", ...], ...}` under `key`, or nothing when the key is absent.
fn string_lists(
    function: &str,
    object: &Map<String, Value>,
    key: &str,
) -> Result<Vec<(String, Vec<String>)>> {
    let Some(value) = object.get(key) else {
        return Ok(vec![]);
    };
    let Value::Object(per_type) = value else {
        return plan_err!(
            "{function}: option '{key}' must be an object of identifier type -> list of strings, got {value}"
        );
    };
    let mut lists = Vec::with_capacity(per_type.len());
    for (id_type, values) in per_type {
        let Some(values) = string_list(values) else {
            return plan_err!(
                "{function}: option '{key}.{id_type}' must be a list of strings, got {values}"
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
    function: &str,
    object: &Map<String, Value>,
    key: &str,
    max: u64,
) -> Result<Option<BTreeMap<String, u64>>> {
    let Some(value) = object.get(key) else {
        return Ok(None);
    };
    let Value::Object(per_type) = value else {
        return plan_err!(
            "{function}: option '{key}' must be an object of identifier type -> positive integer, got {value}"
        );
    };
    let mut limits = BTreeMap::new();
    for (id_type, n) in per_type {
        match n.as_u64().filter(|n| (1..=max).contains(n)) {
            Some(n) => limits.insert(id_type.clone(), n),
            None => {
                return plan_err!(
                    "{function}: option '{key}.{id_type}' must be an integer from 1 to {max}, got {n}"
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
    fn query_options_and_the_run_id() -> Result<()> {
        let options = StitchOptions::parse(Some(
            r#"{"output": "changes", "block_query": "SELECT 'phone' AS id_type, p AS id_value FROM s",
                "previous": "identity_map", "run_id": "r1"}"#,
        ))?;
        assert_eq!(options.output, OutputSelector::Changes);
        assert_eq!(options.previous.as_deref(), Some("identity_map"));
        assert_eq!(options.run_id.as_deref(), Some("r1"));
        assert!(options.block_query.is_some());
        let defaults = StitchOptions::parse(Some(r#"{"previous": null}"#))?;
        assert_eq!(defaults, StitchOptions::default());
        Ok(())
    }

    #[test]
    fn other_functions_refuse_the_output_options() -> Result<()> {
        let options = StitchOptions::parse_for(
            "identity_explain",
            Some(r#"{"block": {"phone": ["+1"]}, "block_query": "stores"}"#),
        )?;
        assert_eq!(options.block_query.as_deref(), Some("stores"));
        for key in ["output", "previous", "run_id"] {
            let json = format!(r#"{{"{key}": "map"}}"#);
            let err = StitchOptions::parse_for("identity_explain", Some(&json))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!(
                    "identity_explain: option '{key}' only applies to identity_stitch"
                )),
                "{err}"
            );
        }
        let err = StitchOptions::parse_for("identity_explain", Some("{"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("identity_explain: options are not valid JSON"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn errors_name_the_option() {
        let cases = [
            ("{", "options are not valid JSON"),
            ("[1]", "options must be a JSON object"),
            (r#"{"degree_limits": {}}"#, "unknown option 'degree_limits'"),
            (
                r#"{"output": "change"}"#,
                "option 'output' must be one of 'map', 'audit', 'changes'",
            ),
            (
                r#"{"block_query": 1}"#,
                "option 'block_query' must be a non-empty string, got 1",
            ),
            (
                r#"{"block_query": "stores; drop table x"}"#,
                "argument 'block_query' must be a query (SELECT, WITH or VALUES) or a table name",
            ),
            (
                r#"{"previous": " "}"#,
                "option 'previous' must be a non-empty string",
            ),
            (
                r#"{"run_id": ["r1"]}"#,
                "option 'run_id' must be a non-empty string",
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
