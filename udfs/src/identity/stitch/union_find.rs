//! Disjoint sets over dense node ids: union by size with path halving, in flat vectors.

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
