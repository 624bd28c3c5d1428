//! From the identity graph to the identity map: guards, union-find, anchors.
//!
//! Steps (DESIGN.md §4 order):
//! 1. blocklists mark identifiers `blocked`; their edges are dropped;
//! 2. edges are deduplicated to distinct pairs (keeping the earliest evidence), and identifiers
//!    with too many distinct neighbours of a limited type are quarantined, i.e. isolated;
//! 3. the remaining pairs are sorted canonically, by the priority of their weaker endpoint type,
//!    then the stronger, then time, then the identifiers' content, so that strong evidence
//!    merges first and the result depends on the data only; union-find then refuses unions that
//!    break a per-type limit or the component size cap (that component is held and flagged).
//!    Only the edges of components that break a limit or the cap when joined freely need that
//!    order; the others are joined directly;
//! 4. every component is named after its anchor (see [`super::anchor`]).

use std::cmp::Ordering;
use std::ops::Range;

use datafusion::arrow::temporal_conversions::timestamp_us_to_datetime;
use datafusion::common::Result;

use super::anchor::{AnchorCandidate, CUSTOMER_ID_BYTES, anchor_order, customer_id};
use super::distinct_pairs::distinct_pairs;
use super::graph::{Edge, Graph, NO_SOURCE, NO_TS};
use super::guards::{AuditRow, Blocklist, DegreeLimits, ProfileLimits};
use super::options::StitchOptions;
use super::parallel::{
    MIN_PARALLEL_ITEMS, any_parallel, even_ranges, fill_parallel, fold_by_key, map_parallel,
    on_threads, retain_parallel, sort_unstable_by_parallel, split_ranges,
};
use super::union_find::{ConcurrentForest, UnionFind};

/// The outcome for one identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeStatus {
    Linked,
    /// Blocked by a blocklist rule (an id of [`Blocklist`]); not part of any customer.
    Blocked(u32),
    /// Over the degree limit for neighbours of this type id: an isolated identifier.
    Quarantined(u32),
    /// In a component the size circuit breaker stopped growing.
    Held,
}

impl NodeStatus {
    fn is_blocked(self) -> bool {
        matches!(self, Self::Blocked(_))
    }
}

/// How many audit rows may be added between two memory reports.
const AUDIT_REPORT_EVERY: usize = 1024;

/// "No node" / "no component".
const NONE: u32 = u32::MAX;

/// The identity map and audit of one graph.
#[derive(Debug)]
pub(crate) struct Resolution {
    pub status: Vec<NodeStatus>,
    /// Per node: index into `customer_ids`, [`NONE`] for blocked identifiers.
    pub component: Vec<u32>,
    pub customer_ids: Vec<[u8; CUSTOMER_ID_BYTES]>,
    /// Per component: its anchor node (the identifier `customer_ids` hashes).
    pub anchors: Vec<u32>,
    pub blocklist: Blocklist,
    pub audit: Vec<AuditRow>,
    /// With [`resolve_keeping_edges`]: the distinct edges the guards let through (every edge of
    /// the final components, refused unions excluded), with their earliest evidence.
    pub kept_edges: Vec<Edge>,
}

impl Resolution {
    /// The customer id of `node`, `None` for a blocked identifier.
    pub(crate) fn customer_id(&self, node: u32) -> Option<&[u8; CUSTOMER_ID_BYTES]> {
        let component = self.component[node as usize];
        (component != NONE).then(|| &self.customer_ids[component as usize])
    }

    /// The component of `node`, `None` for a blocked identifier.
    pub(crate) fn component_of(&self, node: u32) -> Option<u32> {
        let component = self.component[node as usize];
        (component != NONE).then_some(component)
    }

    pub(crate) fn allocated_bytes(&self) -> usize {
        self.audit
            .iter()
            .map(AuditRow::allocated_bytes)
            .sum::<usize>()
            + self.status.capacity() * size_of::<NodeStatus>()
            + self.component.capacity() * size_of::<u32>()
            + self.customer_ids.capacity() * CUSTOMER_ID_BYTES
            + self.anchors.capacity() * size_of::<u32>()
            + self.kept_edges.capacity() * size_of::<Edge>()
    }
}

/// Per identifier type: rank in the priority order (unlisted types after the listed ones, in name
/// order). Distinct per type.
pub(crate) fn type_ranks(graph: &Graph, options: &StitchOptions) -> Vec<u32> {
    let names = graph.types.names();
    let mut unlisted: Vec<usize> = (0..names.len())
        .filter(|t| !options.priority.contains(&names[*t]))
        .collect();
    unlisted.sort_by(|a, b| names[*a].cmp(&names[*b]));
    let mut ranks = vec![0; names.len()];
    for (t, name) in names.iter().enumerate() {
        if let Some(p) = options.priority.iter().position(|p| p == name) {
            ranks[t] = p as u32;
        }
    }
    for (i, t) in unlisted.into_iter().enumerate() {
        ranks[t] = (options.priority.len() + i) as u32;
    }
    ranks
}

/// The canonical processing order of an edge: the priority class of its endpoint types (weaker
/// first, then stronger), its time, then its endpoints' content keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct CanonicalKey {
    class: u64,
    ts: i64,
    key_a: u64,
    key_b: u64,
}

/// A content hash of an identifier (FNV-1a 64 over type, separator, value): a fixed, portable
/// tie-breaker for the canonical edge order. Equal keys fall back to comparing the bytes.
pub(crate) fn content_key(id_type: &str, value: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id_type.bytes().chain([0xff]).chain(value.iter().copied()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Reports the memory `resolve` holds beyond the graph (a total, in bytes) to the caller's pool.
pub(crate) type MemoryReport<'a> = &'a mut dyn FnMut(usize) -> Result<()>;

/// Applies the guards and computes components and customer ids.
pub(crate) fn resolve(
    graph: &Graph,
    options: &StitchOptions,
    memory: MemoryReport,
) -> Result<Resolution> {
    resolve_with(graph, options, memory, false)
}

/// [`resolve`], also keeping the edges the guards let through ([`Resolution::kept_edges`]), the
/// graph `identity_explain` searches.
pub(crate) fn resolve_keeping_edges(
    graph: &Graph,
    options: &StitchOptions,
    memory: MemoryReport,
) -> Result<Resolution> {
    resolve_with(graph, options, memory, true)
}

fn resolve_with(
    graph: &Graph,
    options: &StitchOptions,
    memory: MemoryReport,
    keep_edges: bool,
) -> Result<Resolution> {
    let n = graph.node_count();
    let types = &graph.types;
    let type_of = |node: u32| graph.nodes.type_of(node);
    let type_name = |node: u32| types.name(type_of(node));
    let ranks = type_ranks(graph, options);
    let mut audit = dropped_audit(graph);

    let mut status = vec![NodeStatus::Linked; n];
    let mut held_bytes = status.capacity() * size_of::<NodeStatus>();
    memory(held_bytes)?;

    // 1. Blocklists (a regular expression per value of a type can be costly: on all threads).
    let blocklist = Blocklist::compile(options, types)?;
    let mut blocked_rows = Vec::new();
    // The blocked nodes in node order: few, so looking one up beats reading `status` at random.
    let mut blocked_nodes = Vec::new();
    let rules = if blocklist.is_empty() {
        Vec::new()
    } else {
        on_threads(even_ranges(n, graph.threads), &|range: Range<usize>| {
            // A copy per thread: threads sharing a regex take turns on its one fast cache and
            // wait on a lock for the others, value after value.
            let blocklist = blocklist.clone();
            range
                .map(|node| {
                    let node = node as u32;
                    blocklist.check(type_of(node), graph.nodes.value(node))
                })
                .collect::<Vec<_>>()
        })
    };
    for (node, rule) in rules.into_iter().flatten().enumerate() {
        if let Some(rule) = rule {
            let node = node as u32;
            status[node as usize] = NodeStatus::Blocked(rule);
            blocked_nodes.push(node);
            blocked_rows.push(AuditRow {
                rule: blocklist.rule_name(rule).to_string(),
                id_type: Some(type_name(node).to_string()),
                id_value: Some(value_text(graph, node)),
                action: "blocked",
                evidence: format!(
                    "{}; {} edge row(s) dropped",
                    blocklist.rule_evidence(rule),
                    graph.n_edges[node as usize]
                ),
            });
        }
    }
    let any_blocked = !blocked_nodes.is_empty();
    sort_node_rows(&mut blocked_rows);
    audit.append(&mut blocked_rows);

    let rank_of = |node: u32| ranks[type_of(node) as usize];
    let threads = graph.threads;
    let degree = DegreeLimits::new(options, types);
    // `held`: per root, whether the size cap stopped its component (empty when there is no cap).
    let (sets, held, kept_edges) = if degree.is_empty()
        && !keep_edges
        && options.max_component_size.is_none()
        && !ProfileLimits::apply(options, types)
    {
        // No guard can refuse a union, so the components do not depend on the order of the
        // unions: no distinct pairs, no canonical order, just union-find over the edges.
        held_bytes += UnionFind::bytes_for(n);
        memory(held_bytes)?;
        let sets = join_freely(n, &graph.edges, threads, &|edge: &Edge| {
            any_blocked
                && (status[edge.a as usize].is_blocked() || status[edge.b as usize].is_blocked())
        });
        (sets, Vec::new(), Vec::new())
    } else {
        // 2. Distinct pairs (lo < hi by node id), earliest evidence first, without blocked nodes.
        let source_ranks = source_ranks(graph);
        let edge_bytes = graph.edges.len() * size_of::<Edge>();
        let source_rank = |source: u32| {
            if source == NO_SOURCE {
                u32::MAX
            } else {
                source_ranks[source as usize]
            }
        };
        // The pair sort holds a second copy of the edges.
        memory(held_bytes + 2 * edge_bytes)?;
        let mut distinct = distinct_pairs(&graph.edges, n, threads, &source_rank, &|node| {
            blocked_nodes.binary_search(&node).is_err()
        })?;

        if !degree.is_empty() {
            memory(held_bytes + edge_bytes + degree.counting_bytes(n))?;
            let mut quarantined_rows = Vec::new();
            // In node order, as the violations come.
            let mut quarantined_nodes = Vec::new();
            for v in degree.violations(&distinct, n, threads, type_of) {
                status[v.node as usize] = NodeStatus::Quarantined(v.neighbour_type);
                quarantined_nodes.push(v.node);
                let neighbour_type = types.name(v.neighbour_type);
                quarantined_rows.push(AuditRow {
                    rule: format!("degree_limit:{neighbour_type}"),
                    id_type: Some(type_name(v.node).to_string()),
                    id_value: Some(value_text(graph, v.node)),
                    action: "quarantined",
                    evidence: format!(
                        "linked to {} distinct {neighbour_type} identifiers (limit {}); kept as an isolated identifier",
                        v.distinct_neighbours, v.limit
                    ),
                });
            }
            // `distinct` has no blocked node: the quarantined ones are the others to drop.
            if !quarantined_nodes.is_empty() {
                retain_parallel(&mut distinct, threads, &|e: &Edge| {
                    quarantined_nodes.binary_search(&e.a).is_err()
                        && quarantined_nodes.binary_search(&e.b).is_err()
                });
            }
            sort_node_rows(&mut quarantined_rows);
            audit.append(&mut quarantined_rows);
        }

        // 3. Only a component that breaks the size cap or a per-type limit when joined without
        // guards needs the canonical order: within any other, every union is accepted whatever
        // the order (its sets only grow up to the component). So those are joined directly here,
        // and only the breaking components' edges go on (with `keep_edges`, every edge does: the
        // kept edges are what `identity_explain` searches).
        let mut sets = if keep_edges {
            let sets = UnionFind::new(n);
            held_bytes += sets.allocated_bytes();
            memory(held_bytes + edge_bytes)?;
            sets
        } else {
            held_bytes += UnionFind::bytes_for(n);
            memory(held_bytes + edge_bytes + ProfileLimits::bytes_for(options, types, n))?;
            let mut plain = join_freely(n, &distinct, threads, &|_: &Edge| false);
            let plain_limits =
                ProfileLimits::new(options, types, n, threads, type_of, |node| plain.root(node));
            let breaks = |root: u32| {
                plain_limits.exceeded(root)
                    || options
                        .max_component_size
                        .is_some_and(|max| u64::from(plain.size_of_root(root)) > max)
            };
            // The components that join freely are final. The breaking ones start again from
            // singletons, exactly as if only the other components' edges had been joined:
            // usually none breaks, and no edge is left to order.
            let any_breaks = any_parallel(n, threads, &|node| {
                plain.is_root(node as u32) && breaks(node as u32)
            });
            if any_breaks {
                let breaking: Vec<bool> =
                    map_parallel(n, threads, &|node| breaks(plain.root(node as u32)));
                distinct.retain(|edge| breaking[edge.a as usize]);
                plain.isolate(|node| breaking[node as usize]);
            } else {
                distinct.clear();
            }
            plain
        };

        // 4. Canonical order, then union-find with per-type limits and the size circuit breaker.
        // Content keys of the ordered edges' endpoints only (other entries stay 0, unread).
        let keys: Vec<u64> = if distinct.is_empty() {
            Vec::new()
        } else {
            let mut endpoint = vec![false; n];
            for edge in &distinct {
                endpoint[edge.a as usize] = true;
                endpoint[edge.b as usize] = true;
            }
            let endpoints: Vec<u32> = (0..n as u32)
                .filter(|node| endpoint[*node as usize])
                .collect();
            drop(endpoint);
            let endpoint_keys = map_parallel(endpoints.len(), threads, &|i| {
                let node = endpoints[i];
                content_key(type_name(node), graph.nodes.value(node))
            });
            let mut keys = vec![0; n];
            for (node, key) in endpoints.into_iter().zip(endpoint_keys) {
                keys[node as usize] = key;
            }
            keys
        };
        held_bytes += keys.capacity() * size_of::<u64>();
        memory(held_bytes + edge_bytes)?;
        let content_order = |a: u32, b: u32| {
            keys[a as usize]
                .cmp(&keys[b as usize])
                .then_with(|| type_name(a).cmp(type_name(b)))
                .then_with(|| graph.nodes.value(a).cmp(graph.nodes.value(b)))
        };
        // Sort keys computed once per edge; comparing bytes is left for (astronomically rare)
        // content-key collisions.
        let mut ordered: Vec<(CanonicalKey, Edge)> = Vec::with_capacity(distinct.len());
        memory(held_bytes + edge_bytes + distinct.len() * size_of::<(CanonicalKey, Edge)>())?;
        for mut edge in distinct {
            if content_order(edge.a, edge.b) == Ordering::Greater {
                std::mem::swap(&mut edge.a, &mut edge.b);
            }
            let (ra, rb) = (rank_of(edge.a), rank_of(edge.b));
            let key = CanonicalKey {
                class: (u64::from(ra.max(rb)) << 32) | u64::from(ra.min(rb)),
                ts: edge.ts,
                key_a: keys[edge.a as usize],
                key_b: keys[edge.b as usize],
            };
            ordered.push((key, edge));
        }
        sort_unstable_by_parallel(&mut ordered, threads, &|(kx, x), (ky, y)| {
            kx.cmp(ky)
                .then_with(|| content_order(x.a, y.a))
                .then_with(|| content_order(x.b, y.b))
        });
        let distinct: Vec<Edge> = ordered.into_iter().map(|(_, edge)| edge).collect();

        // The breaking components' nodes are untouched so far: their counts start afresh.
        // (None when no edge is left to replay.)
        let replayed_nodes = if distinct.is_empty() { 0 } else { n };
        let mut limits =
            ProfileLimits::new(options, types, replayed_nodes, threads, type_of, |node| {
                node
            });
        let mut held = vec![false; replayed_nodes];
        held_bytes += limits.allocated_bytes() + held.capacity();
        memory(held_bytes + edge_bytes)?;
        let describe_edge = |e: &Edge| {
            let ts = if e.ts == NO_TS {
                "no ts".to_string()
            } else {
                format_ts(e.ts)
            };
            let source = if e.source == NO_SOURCE {
                "NULL"
            } else {
                graph.sources.name(e.source)
            };
            format!(
                "edge {}:{} - {}:{} (source {source}, {ts})",
                type_name(e.a),
                value_text(graph, e.a),
                type_name(e.b),
                value_text(graph, e.b)
            )
        };
        // The endpoint reported for a refused union: the less trusted one, which would have bridged.
        let weaker = |e: &Edge| {
            if rank_of(e.a) > rank_of(e.b) {
                e.a
            } else {
                e.b
            }
        };
        // Audit rows are reserved too: a junk hub can refuse one union per edge.
        let mut audit_bytes: usize = audit.iter().map(AuditRow::allocated_bytes).sum();
        let mut unreported_audit_rows = 0usize;
        // Refusals into a component that is already held are counted, not listed: once a component
        // reached the cap, every further edge into it would otherwise add a row.
        let mut refused_into_held: u64 = 0;
        let mut kept_edges = Vec::new();
        if keep_edges {
            held_bytes += distinct.len() * size_of::<Edge>();
            memory(held_bytes + edge_bytes)?;
            kept_edges.reserve_exact(distinct.len());
        }
        for edge in &distinct {
            let (ra, rb) = (sets.find(edge.a), sets.find(edge.b));
            if ra == rb {
                if keep_edges {
                    kept_edges.push(*edge);
                }
                continue;
            }
            let row = if let Some(breach) = limits.breach(ra, rb) {
                let node = weaker(edge);
                let limited = types.name(breach.id_type);
                AuditRow {
                    rule: format!("limits:{limited}"),
                    id_type: Some(type_name(node).to_string()),
                    id_value: Some(value_text(graph, node)),
                    action: "refused_union",
                    evidence: format!(
                        "{}: the customer would hold {} {limited} identifiers (limit {})",
                        describe_edge(edge),
                        breach.would_hold,
                        breach.limit
                    ),
                }
            } else {
                let (size_a, size_b) = (sets.size_of_root(ra), sets.size_of_root(rb));
                let merged_size = u64::from(size_a) + u64::from(size_b);
                match options.max_component_size {
                    Some(max) if merged_size > max => {
                        let already_held = held[ra as usize] || held[rb as usize];
                        held[ra as usize] = true;
                        held[rb as usize] = true;
                        if already_held {
                            refused_into_held += 1;
                            continue;
                        }
                        let node = weaker(edge);
                        AuditRow {
                            rule: "max_component_size".to_string(),
                            id_type: Some(type_name(node).to_string()),
                            id_value: Some(value_text(graph, node)),
                            action: "refused_union",
                            evidence: format!(
                                "{}: would join components of {size_a} and {size_b} identifiers (limit {max}); both held",
                                describe_edge(edge)
                            ),
                        }
                    }
                    _ => {
                        if keep_edges {
                            kept_edges.push(*edge);
                        }
                        let root = sets.union_roots(ra, rb);
                        let child = if root == ra { rb } else { ra };
                        limits.merge(root, child);
                        held[root as usize] |= held[child as usize];
                        continue;
                    }
                }
            };
            audit_bytes += row.allocated_bytes();
            audit.push(row);
            unreported_audit_rows += 1;
            if unreported_audit_rows == AUDIT_REPORT_EVERY {
                unreported_audit_rows = 0;
                memory(held_bytes + edge_bytes + audit_bytes)?;
            }
        }
        if refused_into_held > 0 {
            audit.push(AuditRow {
                rule: "max_component_size".to_string(),
                id_type: None,
                id_value: None,
                action: "refused_union",
                evidence: format!(
                    "{refused_into_held} more union(s) into components already held were refused"
                ),
            });
        }
        drop(distinct);
        drop(limits);
        drop(keys);
        (sets, held, kept_edges)
    };

    // Each node's root, read-only and so on every thread; then the anchors and components.
    let roots = map_parallel(n, threads, &|node| sets.root(node as u32));
    drop(sets);
    let candidate = |node: u32| AnchorCandidate {
        first_seen: graph.first_seen[node as usize],
        type_rank: rank_of(node),
        value: graph.nodes.value(node),
    };
    memory(held_bytes + n * (3 * size_of::<u32>() + size_of::<(i64, u32)>()))?;
    // Per root: its anchor so far, beside that anchor's first sighting (what decides most
    // comparisons), so a node reads one place; the rest of the order only on equal sightings.
    // The anchor order is total, so the least candidate does not depend on who compares.
    let best = fold_by_key(
        n,
        1,
        (i64::MAX, NONE),
        n,
        threads,
        &|node| roots[node] as usize,
        &|best, node| {
            if status[node].is_blocked() {
                return;
            }
            let seen = graph.first_seen[node];
            let node = node as u32;
            let (best_seen, best_node) = &mut best[0];
            let better = *best_node == NONE
                || match seen.cmp(best_seen) {
                    Ordering::Equal => {
                        anchor_order(&candidate(node), &candidate(*best_node)) == Ordering::Less
                    }
                    order => order == Ordering::Less,
                };
            if better {
                (*best_seen, *best_node) = (seen, node);
            }
        },
    );
    // Components are numbered in the order of their roots (blocked identifiers belong to none):
    // each range of nodes numbers its roots from 0 and lists their anchors, then its numbers
    // move up by the roots of the ranges before it.
    let node_ranges = even_ranges(n, threads);
    let mut number = vec![0; n];
    let number_roots = |(first, part): (usize, &mut [u32])| {
        let mut anchors = Vec::new();
        for (i, number) in part.iter_mut().enumerate() {
            let node = first + i;
            *number = if roots[node] as usize == node && !status[node].is_blocked() {
                anchors.push(best[node].1);
                anchors.len() as u32 - 1
            } else {
                NONE
            };
        }
        anchors
    };
    let anchor_parts = on_threads(split_ranges(&mut number, 1, &node_ranges), &number_roots);
    drop(best);
    let offsets = anchor_parts.iter().scan(0, |before, anchors| {
        let offset = *before;
        *before += anchors.len() as u32;
        Some(offset)
    });
    let parts: Vec<_> = split_ranges(&mut number, 1, &node_ranges)
        .into_iter()
        .zip(offsets)
        .collect();
    on_threads(parts, &|((_, part), offset): ((usize, &mut [u32]), u32)| {
        for number in part.iter_mut().filter(|number| **number != NONE) {
            *number += offset;
        }
    });
    let anchors = anchor_parts.concat();
    let component = map_parallel(n, threads, &|node| {
        if status[node].is_blocked() {
            NONE
        } else {
            number[roots[node] as usize]
        }
    });
    drop(number);
    // Usually no component is held: then no node needs looking up.
    if held.contains(&true) {
        fill_parallel(&mut status, 1, threads, &|first, part| {
            for (i, status) in part.iter_mut().enumerate() {
                if *status == NodeStatus::Linked && held[roots[first + i] as usize] {
                    *status = NodeStatus::Held;
                }
            }
        });
    }
    let customer_ids = map_parallel(anchors.len(), threads, &|component| {
        let anchor = anchors[component];
        customer_id(type_name(anchor), graph.nodes.value(anchor))
    });
    let resolution = Resolution {
        status,
        component,
        customer_ids,
        anchors,
        blocklist,
        audit,
        kept_edges,
    };
    memory(resolution.allocated_bytes())?;
    Ok(resolution)
}

/// The sets of `edges` over `n` nodes (but those `skip` holds for), joined on up to `threads`
/// threads, a contiguous part of the edges each: only for unions no guard can refuse, whose
/// order does not matter. A run of edges with the same `a` (`distinct_pairs` sorts by it) looks
/// its root up once.
fn join_freely(
    n: usize,
    edges: &[Edge],
    threads: usize,
    skip: &(dyn Fn(&Edge) -> bool + Sync),
) -> UnionFind {
    let forest = ConcurrentForest::new(n);
    let join = |part: &[Edge]| {
        let (mut run_node, mut member) = (NONE, NONE);
        for edge in part.iter().filter(|edge| !skip(edge)) {
            if edge.a != run_node {
                (run_node, member) = (edge.a, forest.find(edge.a));
            }
            member = forest.union(member, edge.b);
        }
    };
    let threads = if edges.len() < MIN_PARALLEL_ITEMS {
        1
    } else {
        threads.max(1)
    };
    on_threads(
        edges.chunks(edges.len().div_ceil(threads).max(1)).collect(),
        &join,
    );
    UnionFind::from_forest(forest, threads)
}

/// Audit rows for endpoints dropped while reading, by type name.
fn dropped_audit(graph: &Graph) -> Vec<AuditRow> {
    let mut rows: Vec<AuditRow> = graph
        .dropped
        .empty_value
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(type_id, count)| AuditRow {
            rule: "null_or_empty_value".to_string(),
            id_type: Some(graph.types.name(type_id as u32).to_string()),
            id_value: None,
            action: "dropped",
            evidence: format!("{count} endpoint(s) with a NULL or empty value"),
        })
        .collect();
    rows.sort_by(|a, b| a.id_type.cmp(&b.id_type));
    let dropped = &graph.dropped;
    if dropped.empty_type > 0 {
        rows.push(AuditRow {
            rule: "null_or_empty_type".to_string(),
            id_type: None,
            id_value: None,
            action: "dropped",
            evidence: format!(
                "{} endpoint(s) with a value but a NULL or empty type",
                dropped.empty_type
            ),
        });
    }
    if dropped.empty_rows > 0 {
        rows.push(AuditRow {
            rule: "empty_row".to_string(),
            id_type: None,
            id_value: None,
            action: "dropped",
            evidence: format!("{} row(s) without any identifier", dropped.empty_rows),
        });
    }
    rows
}

/// Per source id: its rank in name order (evidence ties are broken by source name, not by the
/// order sources appeared in).
fn source_ranks(graph: &Graph) -> Vec<u32> {
    let names = graph.sources.names();
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|a, b| names[*a].cmp(&names[*b]));
    let mut ranks = vec![0; names.len()];
    for (rank, source) in order.into_iter().enumerate() {
        ranks[source] = rank as u32;
    }
    ranks
}

fn sort_node_rows(rows: &mut [AuditRow]) {
    rows.sort_by(|a, b| (&a.id_type, &a.id_value).cmp(&(&b.id_type, &b.id_value)));
}

/// The value of `node` as text (interned values come from Arrow string arrays: valid UTF-8).
pub(crate) fn value_text(graph: &Graph, node: u32) -> String {
    String::from_utf8_lossy(graph.nodes.value(node)).into_owned()
}

fn format_ts(micros: i64) -> String {
    match timestamp_us_to_datetime(micros) {
        Some(ts) => format!("{}", ts.format("%Y-%m-%dT%H:%M:%S%.fZ")),
        None => format!("{micros} µs"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    use super::*;
    use crate::identity::stitch::graph::GraphBuilder;

    /// SplitMix64: a small seeded generator, so failures reproduce.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
            for i in (1..items.len()).rev() {
                items.swap(i, self.below(i as u64 + 1) as usize);
            }
        }
    }

    /// `(a_type, a_value, b_type, b_value, ts, source)`; empty b = single-node row.
    pub(crate) type Row = (String, String, String, String, Option<i64>, String);

    pub(crate) fn row(a: (&str, &str), b: (&str, &str), ts: i64, source: &str) -> Row {
        (
            a.0.into(),
            a.1.into(),
            b.0.into(),
            b.1.into(),
            Some(ts),
            source.into(),
        )
    }

    /// The graph of `rows`, read by two readers taking turns in runs of rows and submitting
    /// small chunks, as `identity_stitch` reads two input partitions.
    pub(crate) fn graph_of(rows: &[Row]) -> Graph {
        let graph = GraphBuilder::with_chunk(2, 64, 2);
        let mut readers = [graph.reader().unwrap(), graph.reader().unwrap()];
        let opt = |s: &String| (!s.is_empty()).then(|| s.as_bytes().to_vec());
        for (i, (at, av, bt, bv, ts, source)) in rows.iter().enumerate() {
            let (at, av, bt, bv) = (opt(at), opt(av), opt(bt), opt(bv));
            readers[(i / 7) % 2]
                .add_row(
                    &graph,
                    (at.as_deref(), av.as_deref()),
                    (bt.as_deref(), bv.as_deref()),
                    *ts,
                    Some(source.as_bytes()),
                )
                .unwrap();
        }
        for reader in readers {
            reader.done(&graph).unwrap();
        }
        graph.finish().unwrap()
    }

    pub(crate) fn no_guards() -> StitchOptions {
        StitchOptions::parse(Some(
            r#"{"default_blocklist": false, "degree_limit": {}, "limits": {}, "max_component_size": null}"#,
        ))
        .unwrap()
    }

    /// Identifier → (customer id hex or "-", status), independent of node ids.
    type Map = BTreeMap<(String, String), (String, String)>;

    fn stitch(rows: &[Row], options: &StitchOptions) -> (Map, Vec<AuditRow>) {
        let graph = graph_of(rows);
        let mut peak = 0;
        let resolution = resolve(&graph, options, &mut |bytes| {
            peak = peak.max(bytes);
            Ok(())
        })
        .unwrap();
        assert!(peak > 0, "memory is reported");
        let mut map = Map::new();
        for node in 0..graph.node_count() as u32 {
            let id = resolution
                .customer_id(node)
                .map_or_else(|| "-".to_string(), hex::encode);
            let status = match resolution.status[node as usize] {
                NodeStatus::Linked => "linked".to_string(),
                NodeStatus::Blocked(rule) => {
                    format!("blocked:{}", resolution.blocklist.rule_name(rule))
                }
                NodeStatus::Quarantined(t) => format!("quarantined:{}", graph.types.name(t)),
                NodeStatus::Held => "held".to_string(),
            };
            let key = (
                graph.types.name(graph.nodes.type_of(node)).to_string(),
                value_text(&graph, node),
            );
            map.insert(key, (id, status));
        }
        (map, resolution.audit)
    }

    /// Groups of identifiers sharing a customer id.
    fn partition(map: &Map) -> BTreeSet<BTreeSet<(String, String)>> {
        let mut groups: HashMap<&str, BTreeSet<(String, String)>> = HashMap::new();
        for (key, (id, _)) in map {
            groups.entry(id).or_default().insert(key.clone());
        }
        groups.into_values().collect()
    }

    /// Connected components by breadth-first search over the rows.
    pub(crate) fn bfs_partition(rows: &[Row]) -> BTreeSet<BTreeSet<(String, String)>> {
        let mut adjacency: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
        for (at, av, bt, bv, _, _) in rows {
            let a = (at.clone(), av.clone());
            adjacency.entry(a.clone()).or_default();
            if !bt.is_empty() {
                let b = (bt.clone(), bv.clone());
                adjacency.entry(a.clone()).or_default().push(b.clone());
                adjacency.entry(b).or_default().push(a);
            }
        }
        let mut seen = BTreeSet::new();
        let mut components = BTreeSet::new();
        for start in adjacency.keys() {
            if seen.contains(start) {
                continue;
            }
            let mut component = BTreeSet::new();
            let mut queue = std::collections::VecDeque::from([start.clone()]);
            seen.insert(start.clone());
            while let Some(node) = queue.pop_front() {
                for next in &adjacency[&node] {
                    if seen.insert(next.clone()) {
                        queue.push_back(next.clone());
                    }
                }
                component.insert(node);
            }
            components.insert(component);
        }
        components
    }

    pub(crate) fn random_rows(rng: &mut Rng, nodes: u64, edges: usize) -> Vec<Row> {
        let types = ["app_account_id", "email", "phone", "anonymous_id"];
        let node = |rng: &mut Rng| {
            let i = rng.below(nodes);
            (types[(i % 4) as usize].to_string(), format!("v{i}"))
        };
        (0..edges)
            .map(|_| {
                let a = node(rng);
                let ts = Some(rng.below(50) as i64);
                let source = format!("s{}", rng.below(3));
                if rng.below(10) == 0 {
                    (a.0, a.1, String::new(), String::new(), ts, source)
                } else {
                    let b = node(rng);
                    (a.0, a.1, b.0, b.1, ts, source)
                }
            })
            .collect()
    }

    #[test]
    fn components_equal_breadth_first_search_on_random_graphs() {
        let mut rng = Rng(42);
        for round in 0..60 {
            let nodes = 2 + rng.below(200);
            let edges = rng.below(300) as usize;
            let rows = random_rows(&mut rng, nodes, edges);
            let (map, audit) = stitch(&rows, &no_guards());
            assert_eq!(partition(&map), bfs_partition(&rows), "round {round}");
            assert!(audit.is_empty(), "no guard, no audit: {audit:?}");
            assert!(map.values().all(|(_, status)| status == "linked"));
        }
    }

    /// Without a guard that can refuse a union the edges are joined directly (no distinct pairs,
    /// no canonical order); with a size cap no component reaches, the guarded path runs. Both
    /// give the same map, blocked identifiers included.
    #[test]
    fn direct_unions_equal_the_guarded_path_when_no_guard_binds() {
        let direct = StitchOptions::parse(Some(
            r#"{"default_blocklist": false, "degree_limit": {}, "limits": {}, "max_component_size": null,
                "block": {"phone": ["v2", "v6"]}}"#,
        ))
        .unwrap();
        let mut guarded = direct.clone();
        guarded.max_component_size = Some(u64::MAX);
        let mut rng = Rng(11);
        for round in 0..40 {
            let nodes = 2 + rng.below(150);
            let edges = rng.below(300) as usize;
            let rows = random_rows(&mut rng, nodes, edges);
            let (map, audit) = stitch(&rows, &direct);
            assert_eq!((map, audit), stitch(&rows, &guarded), "round {round}");
        }
    }

    /// Guards that bind on `random_rows` graphs: limits, a degree limit, a size cap, blocks.
    fn binding_guards() -> StitchOptions {
        StitchOptions::parse(Some(
            r#"{"limits": {"app_account_id": 1, "phone": 2}, "degree_limit": {"email": 4},
                "max_component_size": 12, "block": {"phone": ["v2", "v6"]}}"#,
        ))
        .unwrap()
    }

    /// Components that break no guard are joined directly; `resolve_keeping_edges` still orders
    /// every edge canonically. Both give the same map and audit, with binding guards.
    #[test]
    fn direct_components_equal_the_canonical_order_with_binding_guards() {
        let options = binding_guards();
        let mut rng = Rng(23);
        let mut refusals = 0;
        for round in 0..40 {
            let nodes = 2 + rng.below(150);
            let edges = rng.below(300) as usize;
            let graph = graph_of(&random_rows(&mut rng, nodes, edges));
            let direct = resolve(&graph, &options, &mut |_| Ok(())).unwrap();
            let ordered = resolve_keeping_edges(&graph, &options, &mut |_| Ok(())).unwrap();
            assert_eq!(direct.status, ordered.status, "round {round}");
            assert_eq!(direct.component, ordered.component, "round {round}");
            assert_eq!(direct.customer_ids, ordered.customer_ids, "round {round}");
            assert_eq!(direct.audit, ordered.audit, "round {round}");
            refusals += direct
                .audit
                .iter()
                .filter(|row| row.action == "refused_union")
                .count();
        }
        assert!(refusals > 20, "the guards bind: {refusals} refusals");
    }

    #[test]
    fn output_does_not_depend_on_input_order_even_with_guards() {
        let options = binding_guards();
        let mut rng = Rng(7);
        for round in 0..40 {
            let nodes = 2 + rng.below(120);
            let edges = rng.below(250) as usize;
            let mut rows = random_rows(&mut rng, nodes, edges);
            let expected = stitch(&rows, &options);
            for _ in 0..3 {
                rng.shuffle(&mut rows);
                // swapping the endpoints of an edge changes nothing either
                for r in rows.iter_mut().filter(|r| !r.2.is_empty()) {
                    if rng.below(2) == 0 {
                        std::mem::swap(&mut r.0, &mut r.2);
                        std::mem::swap(&mut r.1, &mut r.3);
                    }
                }
                assert_eq!(stitch(&rows, &options), expected, "round {round}");
            }
        }
    }

    #[test]
    fn customer_id_is_the_hash_of_the_anchor() {
        let rows = [
            row(("email", "ann@x.ru"), ("phone", "+7916"), 20, "web"),
            row(("phone", "+7916"), ("loyalty_card", "1234"), 10, "pos"),
            row(
                ("app_account_id", "A1"),
                ("loyalty_card", "1234"),
                10,
                "app",
            ),
            row(("email", "bob@x.ru"), ("", ""), 5, "web"),
        ];
        let (map, _) = stitch(&rows, &no_guards());
        let ann = hex::encode(customer_id("app_account_id", b"A1"));
        for key in [
            ("email", "ann@x.ru"),
            ("phone", "+7916"),
            ("loyalty_card", "1234"),
        ] {
            let key = (key.0.to_string(), key.1.to_string());
            assert_eq!(
                map[&key].0, ann,
                "first seen at 10: app_account_id wins the tie on priority"
            );
        }
        let bob = &map[&("email".to_string(), "bob@x.ru".to_string())].0;
        assert_eq!(bob, &hex::encode(customer_id("email", b"bob@x.ru")));
    }

    fn status_of<'a>(map: &'a Map, id_type: &str, value: &str) -> &'a (String, String) {
        &map[&(id_type.to_string(), value.to_string())]
    }

    #[test]
    fn blocked_identifiers_belong_to_nobody() {
        let rows = [
            row(("email", "ann@x.ru"), ("phone", "+74951234567"), 1, "pos"),
            row(("email", "bob@x.ru"), ("phone", "+74951234567"), 2, "pos"),
            row(("email", "bob@x.ru"), ("phone", "+70000000000"), 3, "pos"),
        ];
        let options =
            StitchOptions::parse(Some(r#"{"block": {"phone": ["+74951234567"]}}"#)).unwrap();
        let (map, audit) = stitch(&rows, &options);
        assert_eq!(
            status_of(&map, "phone", "+74951234567"),
            &("-".into(), "blocked:block".into())
        );
        assert_eq!(
            status_of(&map, "phone", "+70000000000").1,
            "blocked:default:repeated_digit"
        );
        assert_ne!(
            status_of(&map, "email", "ann@x.ru").0,
            status_of(&map, "email", "bob@x.ru").0
        );
        assert_eq!(audit.len(), 2);
        assert_eq!(audit[0].rule, "default:repeated_digit");
        assert_eq!(audit[1].rule, "block");
        assert_eq!(audit[1].action, "blocked");
        assert_eq!(
            audit[1].evidence,
            "phone value is in the block list; 2 edge row(s) dropped"
        );
    }

    #[test]
    fn degree_quarantine_isolates_shared_identifiers() {
        let mut rows: Vec<Row> = (0..4)
            .map(|i| {
                row(
                    ("anonymous_id", "tablet"),
                    ("email", &format!("p{i}@x.ru")),
                    i,
                    "web",
                )
            })
            .collect();
        rows.push(row(("email", "p0@x.ru"), ("phone", "+7916"), 9, "crm"));
        let options = StitchOptions::parse(Some(r#"{"degree_limit": {"email": 3}}"#)).unwrap();
        let (map, audit) = stitch(&rows, &options);
        let tablet = status_of(&map, "anonymous_id", "tablet");
        assert_eq!(tablet.1, "quarantined:email");
        assert_eq!(
            tablet.0,
            hex::encode(customer_id("anonymous_id", b"tablet"))
        );
        assert_eq!(
            status_of(&map, "email", "p0@x.ru").0,
            status_of(&map, "phone", "+7916").0
        );
        assert_ne!(
            status_of(&map, "email", "p0@x.ru").0,
            status_of(&map, "email", "p1@x.ru").0
        );
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].rule, "degree_limit:email");
        assert_eq!(
            audit[0].evidence,
            "linked to 4 distinct email identifiers (limit 3); kept as an isolated identifier"
        );
        // exactly at the limit is fine; duplicate edges count once
        rows.truncate(3);
        rows.push(rows[0].clone());
        let (map, audit) = stitch(&rows, &options);
        assert_eq!(status_of(&map, "anonymous_id", "tablet").1, "linked");
        assert!(audit.is_empty());
    }

    /// Two people share a phone; the phone edges are older than the strong links.
    pub(crate) fn shared_phone() -> Vec<Row> {
        vec![
            row(("phone", "+7916"), ("email", "ann@x.ru"), 1, "pos"),
            row(("phone", "+7916"), ("email", "bob@x.ru"), 2, "pos"),
            row(("app_account_id", "A1"), ("email", "ann@x.ru"), 5, "app"),
            row(("app_account_id", "A2"), ("email", "bob@x.ru"), 6, "app"),
        ]
    }

    #[test]
    fn limits_refuse_the_weak_link_even_when_it_comes_first() {
        let rows = shared_phone();
        let options = StitchOptions::parse(Some(
            r#"{"limits": {"app_account_id": 1}, "degree_limit": {}}"#,
        ))
        .unwrap();
        let (map, audit) = stitch(&rows, &options);
        let ann = &status_of(&map, "email", "ann@x.ru").0;
        let bob = &status_of(&map, "email", "bob@x.ru").0;
        assert_ne!(ann, bob);
        assert_eq!(&status_of(&map, "app_account_id", "A1").0, ann);
        assert_eq!(&status_of(&map, "app_account_id", "A2").0, bob);
        // the earliest weak edge merged the phone into ann's customer; bob's was refused
        assert_eq!(&status_of(&map, "phone", "+7916").0, ann);
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].rule, "limits:app_account_id");
        assert_eq!(audit[0].action, "refused_union");
        assert_eq!(audit[0].id_value.as_deref(), Some("+7916"));
        assert_eq!(
            audit[0].evidence,
            "edge email:bob@x.ru - phone:+7916 (source pos, 1970-01-01T00:00:00.000002Z): \
             the customer would hold 2 app_account_id identifiers (limit 1)"
        );
        assert!(map.values().all(|(_, status)| status == "linked"));
    }

    #[test]
    fn size_cap_holds_and_flags_components() {
        let rows: Vec<Row> = (0..5)
            .map(|i| {
                row(
                    ("anonymous_id", &format!("c{i}")),
                    ("anonymous_id", &format!("c{}", i + 1)),
                    i,
                    "web",
                )
            })
            .chain([row(("email", "x@x.ru"), ("phone", "+1"), 1, "crm")])
            .collect();
        let options = StitchOptions::parse(Some(r#"{"max_component_size": 3}"#)).unwrap();
        let (map, audit) = stitch(&rows, &options);
        let held: Vec<_> = map.iter().filter(|(_, (_, s))| s == "held").collect();
        assert_eq!(held.len(), 6, "the chain c0..c5 stopped at 3 + 3: {map:?}");
        assert_eq!(partition(&map).len(), 3);
        assert_eq!(status_of(&map, "email", "x@x.ru").1, "linked");
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].rule, "max_component_size");
        assert!(
            audit[0]
                .evidence
                .ends_with("would join components of 3 and 1 identifiers (limit 3); both held"),
            "{}",
            audit[0].evidence
        );

        // a hub past the cap: one listed refusal, the rest counted in one row
        let star: Vec<Row> = (0..50)
            .map(|i| {
                row(
                    ("anonymous_id", "hub"),
                    ("email", &format!("e{i}@x.ru")),
                    i,
                    "web",
                )
            })
            .collect();
        let options =
            StitchOptions::parse(Some(r#"{"max_component_size": 10, "degree_limit": {}}"#))
                .unwrap();
        let (map, audit) = stitch(&star, &options);
        assert_eq!(map.values().filter(|(_, s)| s == "held").count(), 51);
        assert_eq!(partition(&map).len(), 42, "the hub's 10 and 41 singletons");
        assert_eq!(audit.len(), 2, "{audit:?}");
        assert_eq!(audit[1].id_value, None);
        assert_eq!(
            audit[1].evidence,
            "40 more union(s) into components already held were refused"
        );
    }

    #[test]
    fn dropped_endpoints_are_counted_in_the_audit() {
        let rows = [
            row(("email", ""), ("phone", "+1"), 1, "pos"),
            row(("email", "  "), ("", ""), 1, "pos"),
            row(("", "v"), ("phone", "+1"), 1, "pos"),
            row(("", ""), ("", ""), 1, "pos"),
        ];
        let (map, audit) = stitch(&rows, &no_guards());
        assert_eq!(map.len(), 1);
        let rules: Vec<(&str, Option<&str>, &str)> = audit
            .iter()
            .map(|r| (r.rule.as_str(), r.id_type.as_deref(), r.evidence.as_str()))
            .collect();
        assert_eq!(
            rules,
            vec![
                (
                    "null_or_empty_value",
                    Some("email"),
                    "2 endpoint(s) with a NULL or empty value"
                ),
                (
                    "null_or_empty_type",
                    None,
                    "1 endpoint(s) with a value but a NULL or empty type"
                ),
                ("empty_row", None, "1 row(s) without any identifier"),
            ]
        );
    }

    #[test]
    fn memory_errors_stop_the_resolution() {
        let rows = [row(("email", "a"), ("phone", "b"), 1, "s")];
        let graph = graph_of(&rows);
        let err = resolve(&graph, &no_guards(), &mut |bytes| {
            if bytes > 8 {
                datafusion::common::exec_err!("pool full at {bytes}")
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("pool full"), "{err}");
    }
}
