//! Disjoint sets over dense node ids: union by size with path halving, in flat vectors; and a
//! forest several threads join at once, for the unions whose order does not matter.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

use super::parallel::{even_ranges, fold_by_key, on_threads};

/// A forest of node ids `0..n`; each tree is one component.
#[derive(Debug)]
pub(crate) struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    /// `n` singleton sets; `n` must fit in `u32` (the interner guarantees it).
    pub(crate) fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    /// The root of `node`'s set, halving the path on the way.
    pub(crate) fn find(&mut self, mut node: u32) -> u32 {
        loop {
            let parent = self.parent[node as usize];
            if parent == node {
                return node;
            }
            let grandparent = self.parent[parent as usize];
            self.parent[node as usize] = grandparent;
            node = grandparent;
        }
    }

    /// The root of `node`'s set, without shortening the path (so it can run on several threads
    /// at once).
    pub(crate) fn root(&self, mut node: u32) -> u32 {
        loop {
            let parent = self.parent[node as usize];
            if parent == node {
                return node;
            }
            node = parent;
        }
    }

    /// The number of nodes in the set whose root is `root`.
    pub(crate) fn size_of_root(&self, root: u32) -> u32 {
        self.size[root as usize]
    }

    /// Joins the sets of two distinct roots; the larger set's root survives (ties: the lower
    /// id, so the result does not depend on argument order). Returns the surviving root.
    pub(crate) fn union_roots(&mut self, a: u32, b: u32) -> u32 {
        let (a_size, b_size) = (self.size[a as usize], self.size[b as usize]);
        let (root, child) = if a_size > b_size || (a_size == b_size && a < b) {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[child as usize] = root;
        self.size[root as usize] = a_size.saturating_add(b_size);
        root
    }

    /// Joins the sets of `a` and `b`; returns the surviving and the absorbed root, or `None` when
    /// they were in one set already.
    #[cfg(test)]
    pub(crate) fn union(&mut self, a: u32, b: u32) -> Option<(u32, u32)> {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return None;
        }
        let root = self.union_roots(ra, rb);
        Some(if root == ra { (ra, rb) } else { (rb, ra) })
    }

    /// Whether `node` is the root of its set.
    pub(crate) fn is_root(&self, node: u32) -> bool {
        self.parent[node as usize] == node
    }

    /// Makes every node for which `isolated` holds a singleton again. `isolated` must hold for
    /// whole sets (all nodes of a set or none), so that no remaining tree passes through them.
    pub(crate) fn isolate(&mut self, isolated: impl Fn(u32) -> bool) {
        for (node, (parent, size)) in self.parent.iter_mut().zip(&mut self.size).enumerate() {
            let node = node as u32;
            if isolated(node) {
                *parent = node;
                *size = 1;
            }
        }
    }

    /// Heap bytes held, for memory accounting.
    pub(crate) fn allocated_bytes(&self) -> usize {
        (self.parent.capacity() + self.size.capacity()) * size_of::<u32>()
    }

    /// Heap bytes a forest of `n` nodes holds, built by [`new`](Self::new) or
    /// [`from_forest`](Self::from_forest) (whose parents reuse the forest's).
    pub(crate) fn bytes_for(n: usize) -> usize {
        2 * n * size_of::<u32>()
    }

    /// The sets `forest` was joined into, every node pointing at its root, on up to `threads`
    /// threads; the parents are the forest's own, flattened in place.
    pub(crate) fn from_forest(forest: ConcurrentForest, threads: usize) -> Self {
        let n = forest.parent.len();
        // A parent has a lower id, so in id order a node's parent in the same range already
        // points at its root; one in a range before is found by walking up, while its thread
        // may be flattening it: any value read there is an ancestor, and ancestors reach the
        // root.
        on_threads(even_ranges(n, threads), &|range: Range<usize>| {
            let first = range.start;
            for node in range {
                let up = forest.parent[node].load(Ordering::Relaxed);
                let root = if up as usize >= first {
                    forest.parent[up as usize].load(Ordering::Relaxed)
                } else {
                    forest.root(up)
                };
                forest.parent[node].store(root, Ordering::Relaxed);
            }
        });
        // In place: the vector keeps its allocation.
        let parent: Vec<u32> = forest
            .parent
            .into_iter()
            .map(AtomicU32::into_inner)
            .collect();
        let size = fold_by_key(
            n,
            1,
            0u32,
            n,
            threads,
            &|node| parent[node] as usize,
            &|size, _| size[0] += 1,
        );
        Self { parent, size }
    }
}

/// Disjoint sets over node ids `0..n` that several threads join at once, without locks: a root
/// is only ever linked under a node of lower id (a compare-and-swap, which fails when another
/// thread linked it first), so parents only point down in id and no interleaving makes a cycle.
/// Each set's root ends as its least node. The sets do not depend on the order of the unions;
/// their sizes are counted after, by [`UnionFind::from_forest`].
#[derive(Debug)]
pub(crate) struct ConcurrentForest {
    parent: Vec<AtomicU32>,
}

impl ConcurrentForest {
    /// `n` singleton sets; `n` must fit in `u32` (the interner guarantees it).
    pub(crate) fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).map(AtomicU32::new).collect(),
        }
    }

    /// The root of `node`'s set, halving the path on the way. Another thread may move a node's
    /// parent at the same time; any ancestor is a valid parent, and ancestors stay ancestors.
    pub(crate) fn find(&self, mut node: u32) -> u32 {
        loop {
            let parent = self.parent[node as usize].load(Ordering::Acquire);
            if parent == node {
                return node;
            }
            let grandparent = self.parent[parent as usize].load(Ordering::Acquire);
            if grandparent != parent {
                self.parent[node as usize].store(grandparent, Ordering::Release);
            }
            node = grandparent;
        }
    }

    /// The root of `node`'s set, without shortening the path.
    fn root(&self, mut node: u32) -> u32 {
        loop {
            let parent = self.parent[node as usize].load(Ordering::Relaxed);
            if parent == node {
                return node;
            }
            node = parent;
        }
    }

    /// Joins the set of `member` (any node of it, ideally its root as found before) with `b`'s.
    /// Returns a node of the joined set, a good `member` for the next union with it.
    pub(crate) fn union(&self, member: u32, b: u32) -> u32 {
        let (mut a, mut b) = (member, self.find(b));
        loop {
            if a == b {
                return a;
            }
            // Linking `high` under `low` joins the sets as long as `high` is still a root; a
            // stale `a` that is not fails, or is the lower and takes `b`'s root under it.
            let (low, high) = if a < b { (a, b) } else { (b, a) };
            match self.parent[high as usize].compare_exchange(
                high,
                low,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return low,
                Err(_) => (a, b) = (self.find(a), self.find(b)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::stitch::parallel::MIN_PARALLEL_ITEMS;

    #[test]
    fn unions_join_sets_and_track_sizes() {
        let mut sets = UnionFind::new(6);
        let r = sets.union_roots(0, 1);
        assert_eq!(r, 0);
        let (a, b) = (sets.find(2), sets.find(3));
        let r2 = sets.union_roots(b, a);
        assert_eq!(
            r2, 2,
            "equal sizes: the lower id survives whatever the order"
        );
        let (x, y) = (sets.find(1), sets.find(3));
        let root = sets.union_roots(x, y);
        assert_eq!(sets.size_of_root(root), 4);
        for node in 0..4 {
            assert_eq!(sets.root(node), root);
            assert_eq!(sets.find(node), root);
        }
        assert_eq!(sets.find(4), 4);
        assert_eq!(sets.size_of_root(5), 1);
        assert_eq!(
            sets.union(5, 0),
            Some((root, 5)),
            "the larger set's root survives"
        );
        assert_eq!(sets.size_of_root(root), 5);
        assert!(sets.allocated_bytes() >= 48);
    }

    #[test]
    fn isolated_sets_become_singletons_and_the_rest_stays() {
        let mut sets = UnionFind::new(7);
        for (a, b) in [(0, 1), (1, 2), (3, 4), (5, 6), (4, 5)] {
            sets.union(a, b);
        }
        let big = sets.find(3);
        assert!(sets.is_root(big) && !sets.is_root(if big == 3 { 4 } else { 3 }));
        sets.isolate(|node| node >= 3);
        for node in 3..7 {
            assert!(sets.is_root(node));
            assert_eq!(sets.size_of_root(node), 1);
        }
        let small = sets.find(0);
        assert_eq!(sets.size_of_root(small), 3);
        assert_eq!((sets.root(1), sets.root(2)), (small, small));
        // The isolated nodes join afresh, as in a new forest.
        assert_eq!(sets.union(3, 4), Some((3, 4)));
        assert_eq!(sets.size_of_root(3), 2);
    }

    /// The components of `edges` over `n` nodes as each node's least node in its set, by a
    /// breadth-first search.
    fn components_by_search(n: usize, edges: &[(u32, u32)]) -> Vec<u32> {
        let mut neighbours = vec![Vec::new(); n];
        for &(a, b) in edges {
            neighbours[a as usize].push(b);
            neighbours[b as usize].push(a);
        }
        let mut least = vec![u32::MAX; n];
        for start in 0..n as u32 {
            if least[start as usize] != u32::MAX {
                continue;
            }
            let mut queue = vec![start];
            least[start as usize] = start;
            while let Some(node) = queue.pop() {
                for &next in &neighbours[node as usize] {
                    if least[next as usize] == u32::MAX {
                        least[next as usize] = start;
                        queue.push(next);
                    }
                }
            }
        }
        least
    }

    #[test]
    fn a_forest_joined_on_threads_holds_the_components_with_their_sizes() {
        // A chain (deep trees), a star and random edges, joined on four threads from both ends;
        // enough nodes that the flattening and sizes run on threads too.
        let n = 3 * MIN_PARALLEL_ITEMS as u32;
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = |below: u32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(below)) as u32
        };
        let mut edges: Vec<(u32, u32)> = (1..2_000).map(|i| (i, i - 1)).collect();
        edges.extend((2_001..3_000).map(|i| (2_000, i)));
        edges.extend((0..120_000).map(|_| (3_000 + random(n - 3_000), 3_000 + random(n - 3_000))));
        let expected = components_by_search(n as usize, &edges);
        for threads in [1, 4] {
            let forest = ConcurrentForest::new(n as usize);
            std::thread::scope(|scope| {
                for part in edges.chunks(edges.len().div_ceil(threads)) {
                    let forest = &forest;
                    scope.spawn(move || {
                        for &(a, b) in part.iter().rev() {
                            let root = forest.find(a);
                            forest.union(root, b);
                        }
                    });
                }
            });
            let mut sets = UnionFind::from_forest(forest, threads);
            let mut sizes = vec![0u32; n as usize];
            for &least in &expected {
                sizes[least as usize] += 1;
            }
            for node in 0..n {
                // Each set's root is its least node, as the search numbers it.
                assert_eq!(sets.root(node), expected[node as usize], "node {node}");
                assert_eq!(sets.find(node), expected[node as usize]);
            }
            for root in 0..n {
                if sets.is_root(root) {
                    assert_eq!(sets.size_of_root(root), sizes[root as usize], "root {root}");
                }
            }
            assert_eq!(sets.size_of_root(0), 2_000);
            assert_eq!(sets.size_of_root(2_000), 1_000);
        }
    }

    #[test]
    fn a_stale_member_still_joins_the_right_sets() {
        let forest = ConcurrentForest::new(6);
        assert_eq!(forest.union(4, 5), 4);
        assert_eq!(forest.union(2, 4), 2);
        // 4 is no root any more: linking it fails and the union looks its root up again.
        assert_eq!(forest.union(4, 3), 2);
        // 5 is no root either: the union finds its root, 2, which goes under the lower 1.
        assert_eq!(forest.union(5, 1), 1);
        assert_eq!(forest.union(5, 1), 1, "one set already");
        let sets = UnionFind::from_forest(forest, 1);
        for node in 1..6 {
            assert_eq!(sets.root(node), 1);
        }
        assert_eq!(
            (sets.root(0), sets.size_of_root(0), sets.size_of_root(1)),
            (0, 1, 5)
        );
    }

    #[test]
    fn long_chains_are_flattened() {
        let n = 100_000;
        let mut sets = UnionFind::new(n);
        for i in 1..n as u32 {
            let (a, b) = (sets.find(i - 1), sets.find(i));
            sets.union_roots(a, b);
        }
        assert_eq!(sets.union(0, n as u32 - 1), None, "one set already");
        let root = sets.find(0);
        for i in 0..n as u32 {
            assert_eq!(sets.find(i), root);
        }
        assert_eq!(sets.size_of_root(root), n as u32);
    }
}
