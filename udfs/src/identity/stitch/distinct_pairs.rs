//! The distinct pairs of the identity graph: every linked pair once, with its earliest evidence.
//! Millions of edges: one pass groups them by the high bits of their lower endpoint into buckets
//! small enough to sort in cache, each bucket is sorted by pair alone (the earliest evidence is
//! kept while deduplicating, not sorted for), on all threads.

use datafusion::common::Result;

use super::graph::Edge;
use super::parallel::{MIN_PARALLEL_ITEMS, close_gaps, on_threads, partition_parallel};

/// About this many edges per bucket: a bucket (24 bytes an edge) sorts in the L2 cache.
const BUCKET_EDGES_LOG2: u32 = 13;
/// At most 2^12 buckets: each thread keeps a write position per bucket while partitioning.
const MAX_BUCKET_BITS: u32 = 12;

/// The distinct pairs of `edges` whose endpoints are both `linked`, as edges with `a < b` (node
/// ids below `node_count`) sorted by `(a, b)`, each with its earliest evidence: the smallest
/// `(ts, source_rank(source))` ([`super::graph::NO_TS`] is the latest time; `source_rank` must
/// give distinct sources distinct ranks, so the evidence kept does not depend on input order).
pub(crate) fn distinct_pairs<R, L>(
    edges: &[Edge],
    node_count: usize,
    threads: usize,
    source_rank: &R,
    linked: &L,
) -> Result<Vec<Edge>>
where
    R: Fn(u32) -> u32 + Sync,
    L: Fn(u32) -> bool + Sync,
{
    let node_bits = u64::BITS - (node_count.saturating_sub(1) as u64).leading_zeros();
    let bucket_bits = (usize::BITS - (edges.len() >> BUCKET_EDGES_LOG2).leading_zeros())
        .min(MAX_BUCKET_BITS)
        .min(node_bits);
    let shift = node_bits - bucket_bits;
    let bucket_of = |e: &Edge| (u64::from(e.a.min(e.b)) >> shift) as usize;
    let ordered = |e: &Edge| Edge {
        a: e.a.min(e.b),
        b: e.a.max(e.b),
        ..*e
    };
    let (mut pairs, starts) =
        partition_parallel(edges, 1 << bucket_bits, threads, &bucket_of, &ordered)?;
    // Threads take runs of whole buckets of about equal size; the buckets are in pair order.
    let threads = if edges.len() < MIN_PARALLEL_ITEMS {
        1
    } else {
        threads.max(1)
    };
    let mut ranges: Vec<(&mut [Edge], Vec<usize>)> = Vec::with_capacity(threads);
    let mut rest = &mut pairs[..];
    let mut bucket = 0;
    for thread in 1..=threads {
        let goal = edges.len() * thread / threads;
        let first = starts[bucket];
        let mut lengths = Vec::new();
        while bucket + 1 < starts.len() && starts[bucket] < goal {
            lengths.push(starts[bucket + 1] - starts[bucket]);
            bucket += 1;
        }
        let (range, tail) = std::mem::take(&mut rest).split_at_mut(starts[bucket] - first);
        ranges.push((range, lengths));
        rest = tail;
    }
    let dedup = |(range, lengths): (&mut [Edge], Vec<usize>)| {
        let mut bucket_start = 0;
        for length in lengths {
            let bucket = &mut range[bucket_start..bucket_start + length];
            bucket.sort_unstable_by_key(|e| (u64::from(e.a) << 32) | u64::from(e.b));
            bucket_start += length;
        }
        keep_earliest(range, source_rank, linked)
    };
    let kept = on_threads(ranges, &dedup);
    close_gaps(&mut pairs, &kept);
    Ok(pairs)
}

/// Deduplicates `pairs` (sorted by pair, `a < b`) in place, keeping per pair the earliest
/// evidence, and dropping the pairs with an endpoint not `linked`. Returns `pairs.len()` and
/// the number kept (at the front).
fn keep_earliest<R, L>(pairs: &mut [Edge], source_rank: &R, linked: &L) -> (usize, usize)
where
    R: Fn(u32) -> u32,
    L: Fn(u32) -> bool,
{
    // `kept <= i`: no edge is overwritten before it is read. Blocked pairs are dropped here,
    // once per pair, rather than looked up for every edge.
    let mut kept = 0;
    let mut run: Option<(u32, u32, bool)> = None;
    for i in 0..pairs.len() {
        let edge = pairs[i];
        match run {
            Some((a, b, keep)) if (a, b) == (edge.a, edge.b) => {
                if keep {
                    let best = &mut pairs[kept - 1];
                    if (edge.ts, source_rank(edge.source)) < (best.ts, source_rank(best.source)) {
                        best.ts = edge.ts;
                        best.source = edge.source;
                    }
                }
            }
            _ => {
                let keep = linked(edge.a) && linked(edge.b);
                if keep {
                    pairs[kept] = edge;
                    kept += 1;
                }
                run = Some((edge.a, edge.b, keep));
            }
        }
    }
    (pairs.len(), kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::stitch::graph::{NO_SOURCE, NO_TS};
    use crate::identity::stitch::test_graphs::Rng;

    /// The reference: sort by pair and evidence, keep each pair's first edge.
    fn naive(
        edges: &[Edge],
        source_rank: &impl Fn(u32) -> u32,
        linked: &impl Fn(u32) -> bool,
    ) -> Vec<Edge> {
        let mut pairs: Vec<Edge> = edges
            .iter()
            .filter(|e| linked(e.a) && linked(e.b))
            .map(|e| Edge {
                a: e.a.min(e.b),
                b: e.a.max(e.b),
                ..*e
            })
            .collect();
        pairs.sort_by_key(|e| (e.a, e.b, e.ts, source_rank(e.source)));
        pairs.dedup_by_key(|e| (e.a, e.b));
        pairs
    }

    #[test]
    fn keeps_the_earliest_evidence_of_each_linked_pair() -> Result<()> {
        let mut rng = Rng(7);
        // Sources 0..4 ranked in reverse id order, NULL last.
        let source_rank = |source: u32| {
            if source == NO_SOURCE {
                u32::MAX
            } else {
                3 - source
            }
        };
        for (nodes, edge_count) in [
            (1, 10),
            (2, 50),
            (40, 3000),
            (5000, 200_000),
            (1 << 20, 100_000),
        ] {
            let blocked: Vec<bool> = (0..nodes).map(|_| rng.below(50) == 0).collect();
            let linked = |node: u32| !blocked[node as usize];
            let edges: Vec<Edge> = (0..edge_count)
                .map(|_| {
                    let a = rng.below(nodes as u64) as u32;
                    let mut b = rng.below(nodes as u64) as u32;
                    if nodes > 1 {
                        while b == a {
                            b = rng.below(nodes as u64) as u32;
                        }
                    }
                    Edge {
                        // Few distinct times, so equal times fall back to the source.
                        ts: match rng.below(5) {
                            0 => NO_TS,
                            t => t as i64 * 1_000_000,
                        },
                        a,
                        b,
                        source: match rng.below(5) {
                            4 => NO_SOURCE,
                            s => s as u32,
                        },
                    }
                })
                .collect();
            let expected = naive(&edges, &source_rank, &linked);
            assert!(
                expected.len() < edges.len() || nodes > 4096,
                "duplicates are tested"
            );
            for threads in [1, 2, 3] {
                let pairs = distinct_pairs(&edges, nodes, threads, &source_rank, &linked)?;
                assert_eq!(pairs, expected, "{nodes} nodes, {threads} threads");
            }
            // The input order does not matter.
            let mut shuffled = edges.clone();
            rng.shuffle(&mut shuffled);
            assert_eq!(
                distinct_pairs(&shuffled, nodes, 2, &source_rank, &linked)?,
                expected
            );
        }
        assert!(distinct_pairs(&[], 0, 2, &source_rank, &|_| true)?.is_empty());
        Ok(())
    }
}
