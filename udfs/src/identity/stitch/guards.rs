//! The guards of identity stitching (DESIGN.md §4, in this order): blocklists, degree
//! quarantine, per-type limits per profile, and the component-size circuit breaker. Each action
//! becomes an [`AuditRow`].

use std::collections::HashMap;

use datafusion::common::{Result, exec_err};
use regex::bytes::RegexSet;

use super::graph::Edge;
use super::interner::NameInterner;
use super::options::{BlockMatcher, StitchOptions};
use super::parallel::fold_by_key;

/// One row of the audit output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditRow {
    pub rule: String,
    pub id_type: Option<String>,
    pub id_value: Option<String>,
    pub action: &'static str,
    pub evidence: String,
}

impl AuditRow {
    /// Bytes held by the row, for memory accounting.
    pub(crate) fn allocated_bytes(&self) -> usize {
        size_of::<Self>()
            + self.rule.capacity()
            + self.id_type.as_ref().map_or(0, String::capacity)
            + self.id_value.as_ref().map_or(0, String::capacity)
            + self.evidence.capacity()
    }
}

/// A blocklist rule as applied: its name (`blocked:<name>`) and what it matches.
#[derive(Debug, Clone)]
struct CompiledRule {
    name: String,
    evidence: String,
}

/// The rules of one identifier type.
#[derive(Debug, Clone)]
struct TypeBlocklist {
    /// Exact value → position of its first rule in this type's rule list.
    exact: HashMap<Vec<u8>, usize>,
    regex: RegexSet,
    /// Position in this type's rule list of each pattern of `regex`.
    regex_positions: Vec<usize>,
    /// Position → global rule id.
    rules: Vec<u32>,
}

/// The blocklists of every identifier type present in the data.
#[derive(Debug, Clone)]
pub(crate) struct Blocklist {
    per_type: Vec<Option<TypeBlocklist>>,
    rules: Vec<CompiledRule>,
}

impl Blocklist {
    /// Compiles the options' rules for the types in `types` (ids as interned from the data).
    pub(crate) fn compile(options: &StitchOptions, types: &NameInterner) -> Result<Self> {
        let mut rules: Vec<CompiledRule> = Vec::new();
        let mut per_type = Vec::with_capacity(types.len());
        for id_type in types.names() {
            let Some(type_rules) = options.block.get(id_type).filter(|r| !r.is_empty()) else {
                per_type.push(None);
                continue;
            };
            let mut exact = HashMap::new();
            let mut patterns = Vec::new();
            let mut regex_positions = Vec::new();
            let mut ids = Vec::with_capacity(type_rules.len());
            for (position, rule) in type_rules.iter().enumerate() {
                let evidence = match &rule.matcher {
                    BlockMatcher::Exact(values) => {
                        for value in values {
                            exact.entry(value.as_bytes().to_vec()).or_insert(position);
                        }
                        format!("{id_type} value is in the block list")
                    }
                    BlockMatcher::Regex(pattern) => {
                        patterns.push(pattern.as_str());
                        regex_positions.push(position);
                        format!("{id_type} value matches {pattern}")
                    }
                };
                ids.push(rules.len() as u32);
                rules.push(CompiledRule {
                    name: rule.name.clone(),
                    evidence,
                });
            }
            let regex = match RegexSet::new(&patterns) {
                Ok(regex) => regex,
                Err(e) => return exec_err!("identity_stitch: blocklist of {id_type}: {e}"),
            };
            per_type.push(Some(TypeBlocklist {
                exact,
                regex,
                regex_positions,
                rules: ids,
            }));
        }
        Ok(Self { per_type, rules })
    }

    /// The first rule (in option order) of `type_id` that blocks `value`.
    /// Whether no value of any type can be blocked.
    pub(crate) fn is_empty(&self) -> bool {
        self.per_type.iter().all(Option::is_none)
    }

    pub(crate) fn check(&self, type_id: u32, value: &[u8]) -> Option<u32> {
        let list = self.per_type.get(type_id as usize)?.as_ref()?;
        let exact = list.exact.get(value).copied();
        let regex = if list.regex.is_match(value) {
            list.regex
                .matches(value)
                .iter()
                .map(|i| list.regex_positions[i])
                .min()
        } else {
            None
        };
        let position = match (exact, regex) {
            (Some(e), Some(r)) => e.min(r),
            (e, r) => e.or(r)?,
        };
        Some(list.rules[position])
    }

    pub(crate) fn rule_name(&self, rule: u32) -> &str {
        &self.rules[rule as usize].name
    }

    pub(crate) fn rule_evidence(&self, rule: u32) -> &str {
        &self.rules[rule as usize].evidence
    }

    pub(crate) fn rule_count(&self) -> usize {
        self.rules.len()
    }
}

/// Degree quarantine: per node, the number of distinct neighbours of each limited type.
#[derive(Debug)]
pub(crate) struct DegreeLimits {
    /// Per type id: its slot among the limited neighbour types.
    slot_of_type: Vec<Option<usize>>,
    /// Per slot: the type id and its limit, slots in type-name order (so the reported rule
    /// does not depend on the order types appeared in).
    slots: Vec<(u32, u64)>,
}

/// A node over a degree limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DegreeViolation {
    pub node: u32,
    pub neighbour_type: u32,
    pub distinct_neighbours: u64,
    pub limit: u64,
}

impl DegreeLimits {
    pub(crate) fn new(options: &StitchOptions, types: &NameInterner) -> Self {
        let mut slots: Vec<(u32, u64)> = (0..types.len() as u32)
            .filter_map(|t| options.degree_limit.get(types.name(t)).map(|n| (t, *n)))
            .collect();
        slots.sort_by(|a, b| types.name(a.0).cmp(types.name(b.0)));
        let mut slot_of_type = vec![None; types.len()];
        for (slot, (type_id, _)) in slots.iter().enumerate() {
            slot_of_type[*type_id as usize] = Some(slot);
        }
        Self {
            slot_of_type,
            slots,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes [`Self::violations`] allocates for `nodes` nodes.
    pub(crate) fn counting_bytes(&self, nodes: usize) -> usize {
        nodes * self.slots.len() * size_of::<u32>()
    }

    /// The nodes with more distinct neighbours of a limited type than its limit, in node order;
    /// one violation per node (the first limited type in name order). `distinct` must hold each
    /// linked pair once. Counted on up to `threads` threads, each for a range of nodes.
    pub(crate) fn violations(
        &self,
        distinct: &[Edge],
        node_count: usize,
        threads: usize,
        type_of: impl Fn(u32) -> u32 + Sync,
    ) -> Vec<DegreeViolation> {
        let k = self.slots.len();
        if k == 0 {
            return vec![];
        }
        // Two items per edge: its endpoints, each counting the other as a neighbour.
        let endpoint = |item: usize| {
            let edge = &distinct[item / 2];
            if item.is_multiple_of(2) {
                (edge.a, edge.b)
            } else {
                (edge.b, edge.a)
            }
        };
        let counts = fold_by_key(
            node_count,
            k,
            0u32,
            2 * distinct.len(),
            threads,
            &|item| endpoint(item).0 as usize,
            &|counts, item| {
                if let Some(slot) = self.slot_of_type[type_of(endpoint(item).1) as usize] {
                    counts[slot] = counts[slot].saturating_add(1);
                }
            },
        );
        let mut violations = Vec::new();
        for (node, per_slot) in counts.chunks_exact(k).enumerate() {
            let over = per_slot
                .iter()
                .zip(&self.slots)
                .find(|(count, (_, limit))| u64::from(**count) > *limit);
            if let Some((count, (neighbour_type, limit))) = over {
                violations.push(DegreeViolation {
                    node: node as u32,
                    neighbour_type: *neighbour_type,
                    distinct_neighbours: u64::from(*count),
                    limit: *limit,
                });
            }
        }
        violations
    }
}

/// Per-type limits per profile: how many identifiers of each limited type a component holds.
#[derive(Debug)]
pub(crate) struct ProfileLimits {
    /// Per slot: type id and limit, in type-name order.
    slots: Vec<(u32, u16)>,
    /// `counts[root * k + slot]`, meaningful for roots only.
    counts: Vec<u16>,
}

/// A union refused by a per-type limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LimitBreach {
    pub id_type: u32,
    pub would_hold: u32,
    pub limit: u16,
}

impl ProfileLimits {
    /// Limits for the sets of `node_count` nodes: `type_of` gives each node's type id and
    /// `root_of` its set's root (itself for singletons), whose counts are summed on up to
    /// `threads` threads (saturating, so a set over a limit stays over it).
    pub(crate) fn new(
        options: &StitchOptions,
        types: &NameInterner,
        node_count: usize,
        threads: usize,
        type_of: impl Fn(u32) -> u32 + Sync,
        root_of: impl Fn(u32) -> u32 + Sync,
    ) -> Self {
        let slots = Self::slots(options, types);
        let mut slot_of_type = vec![None; types.len()];
        for (slot, (type_id, _)) in slots.iter().enumerate() {
            slot_of_type[*type_id as usize] = Some(slot);
        }
        let k = slots.len();
        let counts = if k == 0 {
            Vec::new()
        } else {
            fold_by_key(
                node_count,
                k,
                0u16,
                node_count,
                threads,
                &|node| root_of(node as u32) as usize,
                &|counts, node| {
                    if let Some(slot) = slot_of_type[type_of(node as u32) as usize] {
                        counts[slot] = counts[slot].saturating_add(1);
                    }
                },
            )
        };
        Self { slots, counts }
    }

    /// Per limited type of the data: its id and limit, in type-name order.
    fn slots(options: &StitchOptions, types: &NameInterner) -> Vec<(u32, u16)> {
        let mut slots: Vec<(u32, u16)> = (0..types.len() as u32)
            .filter_map(|t| {
                let limit = options.limits.get(types.name(t))?;
                // Options validation keeps limits within u16.
                Some((t, u16::try_from(*limit).unwrap_or(u16::MAX)))
            })
            .collect();
        slots.sort_by(|a, b| types.name(a.0).cmp(types.name(b.0)));
        slots
    }

    /// Whether a limit applies to a type of the data.
    pub(crate) fn apply(options: &StitchOptions, types: &NameInterner) -> bool {
        !Self::slots(options, types).is_empty()
    }

    /// Heap bytes [`Self::new`] allocates for `node_count` nodes.
    pub(crate) fn bytes_for(
        options: &StitchOptions,
        types: &NameInterner,
        node_count: usize,
    ) -> usize {
        node_count * Self::slots(options, types).len() * size_of::<u16>()
    }

    /// The first limit (in type-name order) that joining the components of roots `a` and `b`
    /// would break.
    pub(crate) fn breach(&self, a: u32, b: u32) -> Option<LimitBreach> {
        let k = self.slots.len();
        let (a, b) = (a as usize * k, b as usize * k);
        self.slots
            .iter()
            .enumerate()
            .find_map(|(slot, (id_type, limit))| {
                let would_hold =
                    u32::from(self.counts[a + slot]) + u32::from(self.counts[b + slot]);
                (would_hold > u32::from(*limit)).then_some(LimitBreach {
                    id_type: *id_type,
                    would_hold,
                    limit: *limit,
                })
            })
    }

    /// Whether the component of `root` holds more identifiers of a limited type than allowed
    /// (or so many that the count saturated).
    pub(crate) fn exceeded(&self, root: u32) -> bool {
        let k = self.slots.len();
        let counts = &self.counts[root as usize * k..(root as usize + 1) * k];
        self.slots
            .iter()
            .zip(counts)
            .any(|((_, limit), &count)| count > *limit || count == u16::MAX)
    }

    /// Records that `child`'s component joined `root`'s (after [`Self::breach`] said `None`).
    pub(crate) fn merge(&mut self, root: u32, child: u32) {
        let k = self.slots.len();
        let (root, child) = (root as usize * k, child as usize * k);
        for slot in 0..k {
            // Cannot overflow: the sum is at most the limit, a u16.
            self.counts[root + slot] =
                self.counts[root + slot].saturating_add(self.counts[child + slot]);
        }
    }

    pub(crate) fn allocated_bytes(&self) -> usize {
        self.counts.capacity() * size_of::<u16>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(names: &[&str]) -> NameInterner {
        let mut types = NameInterner::default();
        for name in names {
            types.intern(name.as_bytes()).unwrap();
        }
        types
    }

    #[test]
    fn blocklist_reports_the_first_matching_rule() -> Result<()> {
        let options = StitchOptions::parse(Some(
            r#"{"block": {"phone": ["+74951234567", "+70000000000"]},
                "block_regex": {"email": ["@shop\\.ru$"], "loyalty_card": ["^9"]}}"#,
        ))?;
        let types = types(&["phone", "email", "anonymous_id", "custom"]);
        let list = Blocklist::compile(&options, &types)?;
        let name = |t: u32, v: &str| {
            list.check(t, v.as_bytes())
                .map(|r| list.rule_name(r).to_string())
        };
        assert_eq!(name(0, "+74951234567").as_deref(), Some("block"));
        // a default rule comes before the user's exact list
        assert_eq!(
            name(0, "+70000000000").as_deref(),
            Some("default:repeated_digit")
        );
        assert_eq!(
            name(0, "+79999999999").as_deref(),
            Some("default:repeated_digit")
        );
        assert_eq!(name(0, "0000").as_deref(), Some("default:zeros"));
        assert_eq!(name(0, "+79161234567"), None);
        assert_eq!(
            name(1, "TEST@gmail.com").as_deref(),
            Some("default:test_email")
        );
        assert_eq!(
            name(1, "test42@gmail.com").as_deref(),
            Some("default:test_email")
        );
        assert_eq!(
            name(1, "noemail@mail.ru").as_deref(),
            Some("default:noemail")
        );
        assert_eq!(
            name(1, "no-reply@shop.com").as_deref(),
            Some("default:no_reply")
        );
        assert_eq!(
            name(1, "anna@shop.ru").as_deref(),
            Some(r"block_regex:@shop\.ru$")
        );
        assert_eq!(name(1, "tester.anna@gmail.com"), None);
        assert_eq!(
            name(1, "anna@example.com").as_deref(),
            Some("default:placeholder_domain")
        );
        assert_eq!(
            name(2, "00000000-0000-0000-0000-000000000000").as_deref(),
            Some("default:zeros")
        );
        assert_eq!(name(2, "5f1c-ab9e"), None);
        assert_eq!(name(3, "0"), None, "types without rules are never blocked");
        let rule = list.check(1, b"anna@shop.ru").unwrap();
        assert_eq!(list.rule_evidence(rule), r"email value matches @shop\.ru$");
        let rule = list.check(0, b"+74951234567").unwrap();
        assert_eq!(list.rule_evidence(rule), "phone value is in the block list");
        assert!(list.rule_count() > 5);
        Ok(())
    }

    #[test]
    fn degree_counts_distinct_neighbours_per_type() -> Result<()> {
        let options = StitchOptions::parse(Some(r#"{"degree_limit": {"email": 2, "phone": 1}}"#))?;
        let types = types(&["anonymous_id", "email", "phone"]);
        // node 0: cookie linked to emails 1, 2, 3; node 4: email linked to phones 5 and 6
        let node_types = [0, 1, 1, 1, 1, 2, 2];
        let edge = |a, b| Edge {
            ts: 0,
            a,
            b,
            source: 0,
        };
        let distinct = [edge(0, 1), edge(2, 0), edge(0, 3), edge(4, 5), edge(4, 6)];
        let limits = DegreeLimits::new(&options, &types);
        assert!(!limits.is_empty());
        assert_eq!(limits.counting_bytes(7), 7 * 2 * 4);
        for threads in [1, 2, 3] {
            let violations = limits.violations(&distinct, 7, threads, |n| node_types[n as usize]);
            assert_eq!(
                violations,
                vec![
                    DegreeViolation {
                        node: 0,
                        neighbour_type: 1,
                        distinct_neighbours: 3,
                        limit: 2
                    },
                    DegreeViolation {
                        node: 4,
                        neighbour_type: 2,
                        distinct_neighbours: 2,
                        limit: 1
                    },
                ]
            );
        }
        let none = StitchOptions::parse(Some(r#"{"degree_limit": {}}"#))?;
        assert!(
            DegreeLimits::new(&none, &types)
                .violations(&distinct, 7, 2, |n| node_types[n as usize])
                .is_empty()
        );
        Ok(())
    }

    #[test]
    fn degree_counts_split_over_threads_equal_one_count() -> Result<()> {
        use crate::identity::stitch::parallel::MIN_PARALLEL_ITEMS;
        use crate::identity::stitch::test_graphs::Rng;
        let options = StitchOptions::parse(Some(r#"{"degree_limit": {"email": 3, "phone": 2}}"#))?;
        let types = types(&["anonymous_id", "email", "phone"]);
        let mut rng = Rng(11);
        let n = MIN_PARALLEL_ITEMS + 1000;
        let node_types: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
        // Hubs among the first and the last nodes, so that every thread's range has some.
        let distinct: Vec<Edge> = (0..3 * n)
            .map(|i| {
                let hub = if i % 2 == 0 {
                    rng.below(50)
                } else {
                    n as u64 - 1 - rng.below(50)
                };
                Edge {
                    ts: 0,
                    a: hub as u32,
                    b: rng.below(n as u64) as u32,
                    source: 0,
                }
            })
            .collect();
        let limits = DegreeLimits::new(&options, &types);
        let one = limits.violations(&distinct, n, 1, |node| node_types[node as usize]);
        assert!(one.len() > 50, "hubs at both ends are found");
        for threads in [2, 3] {
            let split = limits.violations(&distinct, n, threads, |node| node_types[node as usize]);
            assert_eq!(split, one, "{threads} threads");
        }
        Ok(())
    }

    #[test]
    fn profile_limits_refuse_unions_over_a_limit() -> Result<()> {
        let options =
            StitchOptions::parse(Some(r#"{"limits": {"app_account_id": 1, "phone": 2}}"#))?;
        let types = types(&["phone", "app_account_id", "email"]);
        let node_types = [1, 1, 0, 0, 0, 2];
        let mut limits =
            ProfileLimits::new(&options, &types, 6, 1, |n| node_types[n as usize], |n| n);
        assert_eq!(
            limits.breach(0, 1),
            Some(LimitBreach {
                id_type: 1,
                would_hold: 2,
                limit: 1
            })
        );
        assert_eq!(limits.breach(2, 3), None);
        limits.merge(2, 3);
        assert_eq!(
            limits.breach(2, 4),
            Some(LimitBreach {
                id_type: 0,
                would_hold: 3,
                limit: 2
            })
        );
        assert_eq!(limits.breach(0, 2), None);
        limits.merge(0, 2);
        assert_eq!(limits.breach(0, 5), None);
        Ok(())
    }

    #[test]
    fn profile_limits_count_whole_sets_on_any_thread_count() -> Result<()> {
        let options = StitchOptions::parse(Some(r#"{"limits": {"phone": 2, "email": 3}}"#))?;
        let types = types(&["phone", "app_account_id", "email"]);
        // Sets of 5 consecutive nodes rooted at their least, types cycling over the three.
        let n = 2 * crate::identity::stitch::parallel::MIN_PARALLEL_ITEMS + 5;
        let type_of = |node: u32| node % 3;
        let root_of = |node: u32| node - node % 5;
        for threads in [1, 2, 4] {
            let limits = ProfileLimits::new(&options, &types, n, threads, type_of, root_of);
            for root in (0..n as u32).step_by(5) {
                let in_set = root..(root + 5).min(n as u32);
                let count = |t: u32| in_set.clone().filter(|node| type_of(*node) == t).count();
                let k = root as usize * 2;
                // Slots in type-name order: email, then phone.
                assert_eq!(
                    (limits.counts[k] as usize, limits.counts[k + 1] as usize),
                    (count(2), count(0)),
                    "root {root}, {threads} threads"
                );
                assert_eq!(limits.exceeded(root), count(0) > 2, "root {root}");
            }
            assert_eq!(limits.counts[7 * 2..7 * 2 + 2], [0, 0], "not a root");
        }
        Ok(())
    }
}
