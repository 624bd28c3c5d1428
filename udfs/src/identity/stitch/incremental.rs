//! Incremental mode (DESIGN.md §4 "Stable ids"): the components of this run keep the customer
//! ids of the previous identity map, and the change log records what happened to them.
//!
//! The edges are the whole evidence, not a delta: components come from the edges alone, and the
//! previous map only names them. Per previous customer `p`:
//! - its *home* is the component now holding its oldest identifier (earliest `first_seen` in the
//!   previous map, else in this run; ties by type priority, then value);
//! - a component that is the home of one or more previous customers keeps the id of the oldest
//!   of them (earliest `first_seen` over the customer's identifiers in the previous map, unknown
//!   last; ties by the smaller id): the *survivor*. The others are `merged` into it. The
//!   survivor is `accreted` when the component holds any identifier that was not its own;
//! - a component that is nobody's home gets a fresh id (the hash of its anchor, as without a
//!   previous map): `born` if none of its identifiers was known, else `split` off from each
//!   previous customer it holds identifiers of (named in `merged_into`).
//!
//! A fresh id that equals an id of the previous map (possible when the data changed under an
//! anchor) is replaced by a salted hash of the anchor, so an id never names two customers.
//! Every decision depends on the data only, never on input order.

use std::cmp::Ordering;

use datafusion::common::{Result, exec_err};
use sha2::{Digest, Sha256};

use super::anchor::{
    AnchorCandidate, CUSTOMER_ID_BYTES, anchor_order, customer_id, salted_customer_id,
};
use super::graph::{Graph, NO_SOURCE, NO_TS};
use super::interner::{IdentifierInterner, NameInterner};
use super::resolve::{MemoryReport, Resolution, content_key};

/// "No customer" / "no node" / "no component".
const NONE: u32 = u32::MAX;

/// The previous identity map: identifier → customer id, with the identifier's `first_seen`.
#[derive(Debug, Default)]
pub(crate) struct PreviousMap {
    types: NameInterner,
    identifiers: IdentifierInterner,
    customers: NameInterner,
    /// Per identifier: its customer (an id of `customers`).
    customer_of: Vec<u32>,
    /// Per identifier: earliest `first_seen` in µs, [`NO_TS`] when unknown.
    first_seen: Vec<i64>,
    /// Order-independent digest of the rows, for the default `run_id`.
    digest: u64,
}

impl PreviousMap {
    /// Adds one row of the previous map; rows without a type, value or customer (blocked
    /// identifiers) name no customer and are skipped. An identifier listed with two different
    /// customers is an error naming it.
    pub(crate) fn add_row(
        &mut self,
        id_type: Option<&[u8]>,
        value: Option<&[u8]>,
        customer: Option<&[u8]>,
        first_seen: Option<i64>,
    ) -> Result<()> {
        let (Some(id_type), Some(value), Some(customer)) =
            (present(id_type), present(value), present(customer))
        else {
            return Ok(());
        };
        let first_seen = first_seen.unwrap_or(NO_TS);
        let (type_id, _) = self.types.intern(id_type)?;
        let (identifier, new) = self.identifiers.intern(type_id, value)?;
        let (customer_id, _) = self.customers.intern(customer)?;
        let i = identifier as usize;
        if new {
            self.customer_of.push(customer_id);
            self.first_seen.push(first_seen);
        } else if self.customer_of[i] != customer_id {
            // Sorted: which of the two rows came first depends on partitioning.
            let mut ids = [
                self.customers.name(self.customer_of[i]),
                self.customers.name(customer_id),
            ];
            ids.sort_unstable();
            return exec_err!(
                "identity_stitch: option 'previous': identifier {} {:?} has two customer ids, {:?} and {:?}",
                self.types.name(type_id),
                String::from_utf8_lossy(value),
                ids[0],
                ids[1]
            );
        } else {
            self.first_seen[i] = self.first_seen[i].min(first_seen);
        }
        let row = mix(content_key(self.types.name(type_id), value))
            ^ mix(content_key("", customer).rotate_left(17))
            ^ mix(first_seen as u64);
        self.digest = self.digest.wrapping_add(mix(row));
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.customer_of.is_empty()
    }

    pub(crate) fn allocated_bytes(&self) -> usize {
        self.types.allocated_bytes()
            + self.identifiers.allocated_bytes()
            + self.customers.allocated_bytes()
            + (self.customer_of.capacity() + self.first_seen.capacity() * 2) * size_of::<u32>()
    }

    /// The previous customer id `customer`.
    pub(crate) fn customer_name(&self, customer: u32) -> &str {
        self.customers.name(customer)
    }
}

/// `value` unless it is NULL, empty or blank.
fn present(value: Option<&[u8]>) -> Option<&[u8]> {
    value.filter(|v| !v.iter().all(u8::is_ascii_whitespace))
}

/// SplitMix64's finaliser: spreads a 64-bit value over all bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The default `run_id`: SHA-256 (16 bytes, hex) over order-independent digests of the edges
/// (each row's identifiers, timestamp and source; each identifier's sightings) and the previous
/// map, so the same inputs in any order give the same run id.
pub(crate) fn default_run_id(graph: &Graph, previous: &PreviousMap) -> String {
    let keys: Vec<u64> = (0..graph.node_count() as u32)
        .map(|node| {
            content_key(
                graph.types.name(graph.nodes.type_of(node)),
                graph.nodes.value(node),
            )
        })
        .collect();
    let mut edges: u64 = 0;
    for edge in &graph.edges {
        let (a, b) = (keys[edge.a as usize], keys[edge.b as usize]);
        let source = if edge.source == NO_SOURCE {
            0
        } else {
            content_key("", graph.sources.name(edge.source).as_bytes())
        };
        let row = mix(a.min(b)) ^ mix(a.max(b).rotate_left(23)) ^ mix(edge.ts as u64) ^ source;
        edges = edges.wrapping_add(mix(row));
    }
    let mut nodes: u64 = 0;
    for (node, key) in keys.iter().enumerate() {
        let row = mix(*key)
            ^ mix(graph.first_seen[node] as u64).rotate_left(7)
            ^ mix(graph.last_seen[node] as u64).rotate_left(13);
        nodes = nodes.wrapping_add(mix(row));
    }
    let mut hasher = Sha256::new();
    for part in [edges, nodes, previous.digest] {
        hasher.update(part.to_be_bytes());
    }
    hex::encode(&hasher.finalize()[..CUSTOMER_ID_BYTES])
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChangeRow {
    pub customer_id: String,
    pub event: &'static str,
    pub merged_into: Option<String>,
    /// The newest timestamp of the component (µs), `None` when no row of it had one.
    pub at: Option<i64>,
}

impl ChangeRow {
    fn allocated_bytes(&self) -> usize {
        size_of::<Self>()
            + self.customer_id.capacity()
            + self.merged_into.as_ref().map_or(0, String::capacity)
    }
}

/// The customer ids of an incremental run.
#[derive(Debug, Default)]
pub(crate) struct IncrementalIds {
    /// Per component: the previous customer whose id it keeps, or [`NONE`] for a fresh id (in
    /// `Resolution::customer_ids`).
    kept: Vec<u32>,
    pub changes: Vec<ChangeRow>,
}

impl IncrementalIds {
    /// The previous customer whose id `component` keeps.
    pub(crate) fn kept(&self, component: u32) -> Option<u32> {
        self.kept
            .get(component as usize)
            .copied()
            .filter(|c| *c != NONE)
    }

    pub(crate) fn allocated_bytes(&self) -> usize {
        self.kept.capacity() * size_of::<u32>()
            + self
                .changes
                .iter()
                .map(ChangeRow::allocated_bytes)
                .sum::<usize>()
    }
}

/// Names the components of `resolution` after the previous map (see the module docs): fresh ids
/// that collide with a previous id are replaced in `resolution.customer_ids`. With
/// `with_changes`, also builds the change log (sorted by customer id, event, `merged_into`).
pub(crate) fn assign_ids(
    graph: &Graph,
    resolution: &mut Resolution,
    previous: &PreviousMap,
    ranks: &[u32],
    with_changes: bool,
    memory: MemoryReport,
) -> Result<IncrementalIds> {
    let n = graph.node_count();
    let components = resolution.customer_ids.len();
    let customers = previous.customers.len();
    let mut held = (2 * n + 2 * customers + components) * size_of::<u32>();
    memory(held)?;

    // Per node: its identifier in the previous map.
    let previous_type: Vec<Option<u32>> = graph
        .types
        .names()
        .iter()
        .map(|name| previous.types.get(name.as_bytes()))
        .collect();
    let previous_identifier: Vec<u32> = (0..n as u32)
        .map(|node| {
            if resolution.component[node as usize] == NONE {
                return NONE;
            }
            previous_type[graph.nodes.type_of(node) as usize]
                .and_then(|t| previous.identifiers.get(t, graph.nodes.value(node)))
                .unwrap_or(NONE)
        })
        .collect();
    let customer_of_node = |node: usize| match previous_identifier[node] {
        NONE => NONE,
        identifier => previous.customer_of[identifier as usize],
    };

    // Each previous customer's oldest identifier present now, and its customer-level age.
    let age = |node: usize| match previous.first_seen[previous_identifier[node] as usize] {
        NO_TS => graph.first_seen[node],
        ts => ts,
    };
    let candidate = |node: usize| AnchorCandidate {
        first_seen: age(node),
        type_rank: ranks[graph.nodes.type_of(node as u32) as usize],
        value: graph.nodes.value(node as u32),
    };
    let mut oldest_node = vec![NONE; customers];
    for node in 0..n {
        let customer = customer_of_node(node);
        if customer == NONE {
            continue;
        }
        let best = &mut oldest_node[customer as usize];
        if *best == NONE || anchor_order(&candidate(node), &candidate(*best as usize)).is_lt() {
            *best = node as u32;
        }
    }
    let mut customer_first_seen = vec![NO_TS; customers];
    for (identifier, customer) in previous.customer_of.iter().enumerate() {
        let first = &mut customer_first_seen[*customer as usize];
        *first = (*first).min(previous.first_seen[identifier]);
    }
    let older = |a: u32, b: u32| {
        customer_first_seen[a as usize]
            .cmp(&customer_first_seen[b as usize])
            .then_with(|| previous.customer_name(a).cmp(previous.customer_name(b)))
    };

    // The survivor of every component that is somebody's home.
    let home = |customer: usize| match oldest_node[customer] {
        NONE => NONE,
        node => resolution.component[node as usize],
    };
    let mut kept = vec![NONE; components];
    for customer in 0..customers as u32 {
        let component = home(customer as usize);
        if component == NONE {
            continue;
        }
        let survivor = &mut kept[component as usize];
        if *survivor == NONE || older(customer, *survivor) == Ordering::Less {
            *survivor = customer;
        }
    }

    // Fresh ids must not reuse an id of the previous map.
    for (component, survivor) in kept.iter().enumerate() {
        if *survivor != NONE {
            continue;
        }
        let taken = |id: &[u8; CUSTOMER_ID_BYTES]| {
            previous.customers.get(hex::encode(id).as_bytes()).is_some()
        };
        let anchor = resolution.anchors[component];
        let id_type = graph.types.name(graph.nodes.type_of(anchor));
        let value = graph.nodes.value(anchor);
        let mut id = customer_id(id_type, value);
        let mut salt = 0;
        while taken(&id) {
            salt += 1;
            id = salted_customer_id(id_type, value, salt);
        }
        resolution.customer_ids[component] = id;
    }

    let mut ids = IncrementalIds {
        kept,
        changes: vec![],
    };
    if !with_changes {
        return Ok(ids);
    }

    // Per component: the newest timestamp, whether it holds identifiers that were not its
    // survivor's, and the previous customers it holds identifiers of.
    let mut at = vec![i64::MIN; components];
    let mut gained = vec![false; components];
    let mut holds: Vec<(u32, u32)> = Vec::new();
    for node in 0..n {
        let component = resolution.component[node];
        if component == NONE {
            continue;
        }
        let k = component as usize;
        at[k] = at[k].max(graph.last_seen[node]);
        let customer = customer_of_node(node);
        gained[k] |= customer != ids.kept[k];
        if customer != NONE {
            holds.push((component, customer));
        }
    }
    holds.sort_unstable();
    holds.dedup();
    held += components * (size_of::<i64>() + 1) + holds.capacity() * size_of::<(u32, u32)>();
    memory(held)?;

    let name = |component: usize| match ids.kept[component] {
        NONE => hex::encode(resolution.customer_ids[component]),
        customer => previous.customer_name(customer).to_string(),
    };
    let at_of = |component: usize| (at[component] != i64::MIN).then_some(at[component]);
    let mut changes = Vec::new();
    let mut change_bytes = 0;
    let mut held_by = holds.iter().peekable();
    for (component, gained) in gained.iter().enumerate() {
        let mut previous_here = Vec::new();
        while let Some((_, customer)) = held_by.next_if(|(k, _)| *k as usize == component) {
            previous_here.push(*customer);
        }
        let id = name(component);
        let survivor = ids.kept[component];
        let mut push = |event: &'static str, merged_into: Option<String>| {
            let row = ChangeRow {
                customer_id: id.clone(),
                event,
                merged_into,
                at: at_of(component),
            };
            change_bytes += row.allocated_bytes();
            changes.push(row);
        };
        if survivor == NONE {
            if previous_here.is_empty() {
                push("born", None);
            }
            for customer in &previous_here {
                push("split", Some(previous.customer_name(*customer).to_string()));
            }
            continue;
        }
        if *gained {
            push("accreted", None);
        }
        for customer in previous_here {
            if customer != survivor && home(customer as usize) == component as u32 {
                let row = ChangeRow {
                    customer_id: previous.customer_name(customer).to_string(),
                    event: "merged",
                    merged_into: Some(id.clone()),
                    at: at_of(component),
                };
                change_bytes += row.allocated_bytes();
                changes.push(row);
            }
        }
        // Change rows are reserved as they grow, not only at the end.
        if component % 4096 == 4095 {
            memory(held + change_bytes)?;
        }
    }
    memory(held + change_bytes)?;
    changes.sort_unstable_by(|a, b| {
        (&a.customer_id, a.event, &a.merged_into).cmp(&(&b.customer_id, b.event, &b.merged_into))
    });
    ids.changes = changes;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::identity::stitch::options::StitchOptions;
    use crate::identity::stitch::resolve::tests::{
        Rng, Row, bfs_partition, graph_of, no_guards, random_rows, row,
    };
    use crate::identity::stitch::resolve::{resolve, type_ranks};

    type Key = (String, String);
    /// `(identifier, customer id, first_seen)`: a map row.
    type MapRow = (Key, String, Option<i64>);

    struct Run {
        /// Identifier → customer id, for identifiers that have one.
        map: BTreeMap<Key, String>,
        rows: Vec<MapRow>,
        changes: Vec<ChangeRow>,
        /// Per component index: the plain anchor id.
        plain: BTreeMap<Key, String>,
    }

    fn key(id_type: &str, value: &str) -> Key {
        (id_type.to_string(), value.to_string())
    }

    fn run(rows: &[Row], options: &StitchOptions, previous_rows: &[MapRow]) -> Result<Run> {
        let graph = graph_of(rows);
        let mut resolution = resolve(&graph, options, &mut |_| Ok(()))?;
        let plain_ids = resolution.customer_ids.clone();
        let mut previous = PreviousMap::default();
        for ((id_type, value), customer, first_seen) in previous_rows {
            previous.add_row(
                Some(id_type.as_bytes()),
                Some(value.as_bytes()),
                Some(customer.as_bytes()),
                *first_seen,
            )?;
        }
        let ranks = type_ranks(&graph, options);
        let mut peak = 0;
        let ids = assign_ids(&graph, &mut resolution, &previous, &ranks, true, &mut |b| {
            peak = peak.max(b);
            Ok(())
        })?;
        assert!(peak > 0 || graph.node_count() == 0, "memory is reported");
        let mut map = BTreeMap::new();
        let mut plain = BTreeMap::new();
        let mut map_rows = Vec::new();
        for node in 0..graph.node_count() as u32 {
            let Some(component) = resolution.component_of(node) else {
                continue;
            };
            let id = match ids.kept(component) {
                Some(customer) => previous.customer_name(customer).to_string(),
                None => hex::encode(resolution.customer_ids[component as usize]),
            };
            let k = key(
                graph.types.name(graph.nodes.type_of(node)),
                &String::from_utf8_lossy(graph.nodes.value(node)),
            );
            let first = graph.first_seen[node as usize];
            map_rows.push((k.clone(), id.clone(), (first != NO_TS).then_some(first)));
            map.insert(k.clone(), id);
            plain.insert(k, hex::encode(plain_ids[component as usize]));
        }
        Ok(Run {
            map,
            rows: map_rows,
            changes: ids.changes,
            plain,
        })
    }

    fn events(run: &Run) -> Vec<(String, &'static str, Option<String>)> {
        run.changes
            .iter()
            .map(|c| (c.customer_id.clone(), c.event, c.merged_into.clone()))
            .collect()
    }

    #[test]
    fn without_a_previous_map_every_customer_is_born_with_the_plain_id() -> Result<()> {
        let mut rng = Rng(11);
        for _ in 0..20 {
            let (nodes, edges) = (2 + rng.below(80), rng.below(120) as usize);
            let rows = random_rows(&mut rng, nodes, edges);
            let first = run(&rows, &StitchOptions::default(), &[])?;
            assert_eq!(first.map, first.plain);
            let customers: BTreeSet<&String> = first.map.values().collect();
            assert_eq!(first.changes.len(), customers.len());
            assert!(first.changes.iter().all(|c| c.event == "born"));
        }
        Ok(())
    }

    /// Run 1 on a subset of the edges, run 2 on all of them with run 1's map as `previous`.
    #[test]
    fn a_second_run_keeps_surviving_ids_and_merges_into_the_oldest() -> Result<()> {
        let mut rng = Rng(2026);
        let options = no_guards();
        for round in 0..60 {
            let nodes = 2 + rng.below(150);
            let edges = rng.below(200) as usize;
            let mut rows = random_rows(&mut rng, nodes, edges);
            let subset = rng.below(rows.len() as u64 + 1) as usize;
            let first = run(&rows[..subset], &options, &[])?;
            let second = run(&rows, &options, &first.rows)?;

            // components are the connected components of all edges
            let mut groups: BTreeMap<&String, BTreeSet<Key>> = BTreeMap::new();
            for (k, id) in &second.map {
                groups.entry(id).or_default().insert(k.clone());
            }
            let partition: BTreeSet<BTreeSet<Key>> = groups.values().cloned().collect();
            assert_eq!(partition, bfs_partition(&rows), "round {round}");

            let first_ids: BTreeSet<&String> = first.map.values().collect();
            let second_ids: BTreeSet<&String> = second.map.values().collect();
            let first_seen_of = |customer: &String| {
                first
                    .rows
                    .iter()
                    .filter(|(_, c, _)| c == customer)
                    .map(|(_, _, ts)| ts.unwrap_or(i64::MAX))
                    .min()
            };
            for (customer, members) in &groups {
                let previous: BTreeSet<&String> =
                    members.iter().filter_map(|k| first.map.get(k)).collect();
                match previous
                    .iter()
                    .min_by_key(|c| (first_seen_of(c), (**c).clone()))
                {
                    // the oldest previous customer survives
                    Some(oldest) => assert_eq!(customer, oldest, "round {round}"),
                    None => assert!(!first_ids.contains(customer), "round {round}"),
                }
            }
            // a surviving previous id still names all of its identifiers
            for (k, customer) in &first.map {
                if second_ids.contains(customer) {
                    assert_eq!(&second.map[k], customer, "round {round}");
                }
            }
            // every other previous id was merged into a survivor holding its identifiers
            for customer in first_ids.difference(&second_ids) {
                let merged: Vec<_> = second
                    .changes
                    .iter()
                    .filter(|c| &&c.customer_id == customer)
                    .collect();
                assert_eq!(merged.len(), 1, "round {round}: {customer}");
                assert_eq!(merged[0].event, "merged");
                let survivor = merged[0].merged_into.as_ref().unwrap();
                assert!(second_ids.contains(survivor), "round {round}");
                for (k, c) in &first.map {
                    if c == *customer {
                        assert_eq!(&second.map[k], survivor, "round {round}");
                    }
                }
            }
            assert!(second.changes.iter().all(|c| c.event != "split"));

            // input order changes nothing
            rng.shuffle(&mut rows);
            let shuffled = run(&rows, &options, &first.rows)?;
            assert_eq!(shuffled.map, second.map, "round {round}");
            assert_eq!(shuffled.changes, second.changes, "round {round}");
        }
        Ok(())
    }

    #[test]
    fn born_accreted_merged_and_split() -> Result<()> {
        let options = no_guards();
        let previous = vec![
            (key("email", "ann@x.ru"), "ANN".to_string(), Some(10)),
            (key("phone", "+7916"), "ANN".to_string(), Some(20)),
            (key("email", "ann2@x.ru"), "ANN2".to_string(), Some(5)),
            (key("email", "bob@x.ru"), "BOB".to_string(), Some(30)),
            (key("phone", "+7903"), "BOB".to_string(), Some(31)),
            (key("email", "cat@x.ru"), "CAT".to_string(), Some(40)),
        ];
        let rows = [
            // ANN and ANN2 now share a phone: ANN2 is older and survives
            row(("email", "ann@x.ru"), ("phone", "+7916"), 50, "pos"),
            row(("email", "ann2@x.ru"), ("phone", "+7916"), 51, "pos"),
            // BOB's phone is now with a new e-mail, apart from BOB's e-mail: a split
            row(("email", "bob@x.ru"), ("", ""), 52, "web"),
            row(("phone", "+7903"), ("email", "bob.new@x.ru"), 53, "pos"),
            // CAT gains a card
            row(("email", "cat@x.ru"), ("loyalty_card", "77"), 54, "pos"),
            // someone new
            row(("email", "dan@x.ru"), ("", ""), 55, "web"),
        ];
        let second = run(&rows, &options, &previous)?;
        let id = |t: &str, v: &str| second.map[&key(t, v)].clone();
        assert_eq!(id("email", "ann@x.ru"), "ANN2");
        assert_eq!(id("phone", "+7916"), "ANN2");
        assert_eq!(
            id("email", "bob@x.ru"),
            "BOB",
            "BOB keeps its oldest identifier"
        );
        let split = id("phone", "+7903");
        // the anchor of the new part: its e-mail (same time, higher priority)
        assert_eq!(split, hex::encode(customer_id("email", b"bob.new@x.ru")));
        assert_eq!(id("loyalty_card", "77"), "CAT");
        let dan = id("email", "dan@x.ru");
        let mut expected = vec![
            ("ANN".to_string(), "merged", Some("ANN2".to_string())),
            ("ANN2".to_string(), "accreted", None),
            ("CAT".to_string(), "accreted", None),
            (split, "split", Some("BOB".to_string())),
            (dan, "born", None),
        ];
        expected.sort();
        assert_eq!(events(&second), expected);
        let at: BTreeMap<&str, Option<i64>> = second
            .changes
            .iter()
            .map(|c| (c.customer_id.as_str(), c.at))
            .collect();
        assert_eq!(at["ANN"], Some(51), "the newest timestamp of the component");
        assert_eq!(at["CAT"], Some(54));
        Ok(())
    }

    #[test]
    fn a_fresh_id_never_reuses_a_previous_id() -> Result<()> {
        // The previous map named another customer with the hash of "x@x.ru".
        let taken = hex::encode(customer_id("email", b"x@x.ru"));
        let previous = vec![(key("email", "old@x.ru"), taken.clone(), Some(1))];
        let rows = [
            row(("email", "old@x.ru"), ("", ""), 1, "web"),
            row(("email", "x@x.ru"), ("", ""), 2, "web"),
        ];
        let second = run(&rows, &no_guards(), &previous)?;
        assert_eq!(second.map[&key("email", "old@x.ru")], taken);
        assert_eq!(
            second.map[&key("email", "x@x.ru")],
            hex::encode(salted_customer_id("email", b"x@x.ru", 1))
        );
        Ok(())
    }

    #[test]
    fn previous_rows_with_two_customers_are_an_error() {
        let mut previous = PreviousMap::default();
        let add = |p: &mut PreviousMap, c: &str| {
            p.add_row(Some(b"email"), Some(b"a@x.ru"), Some(c.as_bytes()), None)
        };
        add(&mut previous, "C1").unwrap();
        add(&mut previous, "C1").unwrap();
        // rows without a customer (blocked identifiers) are skipped
        previous
            .add_row(Some(b"phone"), Some(b"+1"), None, None)
            .unwrap();
        let err = add(&mut previous, "C2").unwrap_err().to_string();
        assert!(
            err.contains(
                "option 'previous': identifier email \"a@x.ru\" has two customer ids, \"C1\" and \"C2\""
            ),
            "{err}"
        );
    }

    #[test]
    fn the_default_run_id_depends_on_the_data_not_its_order() {
        let rows = vec![
            row(("email", "a@x.ru"), ("phone", "+1"), 1, "web"),
            row(("email", "b@x.ru"), ("", ""), 2, "pos"),
        ];
        let previous = PreviousMap::default();
        let id = default_run_id(&graph_of(&rows), &previous);
        assert_eq!(id.len(), 32);
        let mut reversed = rows.clone();
        reversed.reverse();
        let r = &mut reversed[1];
        std::mem::swap(&mut r.0, &mut r.2);
        std::mem::swap(&mut r.1, &mut r.3);
        assert_eq!(default_run_id(&graph_of(&reversed), &previous), id);
        let mut later = rows.clone();
        later[1].4 = Some(3);
        assert_ne!(default_run_id(&graph_of(&later), &previous), id);
    }
}
