//! The identity graph's identifiers `(type id, value bytes)` → dense `u32` node ids, interned by
//! hash partition on several threads.
//!
//! With millions of distinct identifiers a single hash table fits in no cache: every lookup paid
//! several misses (table, offsets, values) and interning was half of `identity_stitch`'s time on
//! 16 M edges, all on one core. So endpoints are first appended to one of [`PARTITIONS`] buffers by
//! hash (sequential writes), and every [`CHUNK_ENDPOINTS`] endpoints each partition interns its
//! share into its own small table — which stays in cache — with the partitions spread over the
//! session's threads. Per-node statistics (first/last sighting, edge count) are kept beside each
//! partition's table for the same reason. Node ids are partition-major and assigned when reading
//! ends ([`NodeTableBuilder::finish`]); nothing downstream depends on their order (the resolution
//! orders by content).

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};

use datafusion::common::{DataFusionError, Result, exec_err};
use foldhash::fast::FixedState;
use hashbrown::HashTable;

use super::graph::NO_TS;

const PARTITION_BITS: u32 = 10;
/// Enough partitions that each one's table and values stay in a core's L2 cache up to tens of
/// millions of identifiers.
const PARTITIONS: usize = 1 << PARTITION_BITS;
/// Which hash bits pick the partition: neither the low bits (the table's bucket index) nor the top
/// seven (hashbrown's tag), which must stay uniform within a partition.
const PARTITION_SHIFT: u32 = 32;
/// A node is `local << PARTITION_BITS | partition` until [`NodeTableBuilder::finish`].
const MAX_LOCAL_NODES: usize = 1 << (32 - PARTITION_BITS);
/// Endpoints buffered before the partitions intern them (~40 bytes each plus the value).
const CHUNK_ENDPOINTS: usize = 1 << 21;
/// Endpoint slot that has not been interned yet (only seen if a slot is skipped).
const UNSET: u32 = u32::MAX;
/// [`PendingEndpoint::slot`] of a lone sighting.
const NO_SLOT: u64 = u64::MAX;

/// A fixed seed: node ids, and so everything derived from the order of nodes, are the same in
/// every run for the same input.
const HASHER: FixedState = FixedState::with_seed(0x7068_7967_6974_616c);

fn identifier_hash(id_type: u32, value: &[u8]) -> u64 {
    HASHER.hash_one((id_type, value))
}

fn partition_of(hash: u64) -> usize {
    (hash >> PARTITION_SHIFT) as usize & (PARTITIONS - 1)
}

/// One endpoint waiting to be interned; its value is the next `len` bytes of [`Pending::bytes`].
/// 32 bytes: millions of them are written per chunk.
#[derive(Debug, Clone, Copy)]
struct PendingEndpoint {
    hash: u64,
    /// Microseconds, [`NO_TS`] when unknown.
    ts: i64,
    /// The endpoint slot of an edge (`2 × edge + side`), [`NO_SLOT`] for a lone sighting.
    slot: u64,
    len: u32,
    type_id: u32,
}

#[derive(Debug, Default)]
struct Pending {
    endpoints: Vec<PendingEndpoint>,
    bytes: Vec<u8>,
}

impl Pending {
    fn allocated_bytes(&self) -> usize {
        self.endpoints.capacity() * size_of::<PendingEndpoint>() + self.bytes.capacity()
    }
}

/// The identifiers of one hash partition, with local ids in order of first appearance.
#[derive(Debug, Default)]
struct Partition {
    table: HashTable<u32>,
    /// Per local node: its hash (to grow the table without rehashing values), type, the end of
    /// its value in `values`, and its statistics.
    hashes: Vec<u64>,
    types: Vec<u32>,
    ends: Vec<usize>,
    values: Vec<u8>,
    first_seen: Vec<i64>,
    last_seen: Vec<i64>,
    n_edges: Vec<u32>,
}

impl Partition {
    fn len(&self) -> usize {
        self.types.len()
    }

    fn value(&self, local: usize) -> &[u8] {
        let start = if local == 0 { 0 } else { self.ends[local - 1] };
        &self.values[start..self.ends[local]]
    }

    fn find(&self, hash: u64, id_type: u32, value: &[u8]) -> Option<u32> {
        self.table
            .find(hash, |&local| {
                self.types[local as usize] == id_type && self.value(local as usize) == value
            })
            .copied()
    }

    /// Interns the pending endpoints of this partition, records their statistics and writes the
    /// (packed) node of every edge endpoint into `slots`.
    fn intern(
        &mut self,
        pending: &mut Pending,
        partition: usize,
        slots: &[AtomicU32],
    ) -> Result<()> {
        let mut start = 0;
        for endpoint in &pending.endpoints {
            let end = start + endpoint.len as usize;
            let value = &pending.bytes[start..end];
            start = end;
            let local = match self.find(endpoint.hash, endpoint.type_id, value) {
                Some(local) => local as usize,
                None => self.insert(endpoint.hash, endpoint.type_id, value)?,
            };
            if endpoint.ts != NO_TS {
                self.first_seen[local] = self.first_seen[local].min(endpoint.ts);
                self.last_seen[local] = self.last_seen[local].max(endpoint.ts);
            }
            if endpoint.slot != NO_SLOT {
                let slot = endpoint.slot as usize;
                self.n_edges[local] = self.n_edges[local].saturating_add(1);
                // `local < MAX_LOCAL_NODES`, so the packed id fits.
                let packed = ((local as u32) << PARTITION_BITS) | partition as u32;
                match slots.get(slot) {
                    Some(cell) => cell.store(packed, Ordering::Relaxed),
                    None => {
                        return Err(DataFusionError::Internal(format!(
                            "identity_stitch: endpoint slot {slot} out of range"
                        )));
                    }
                }
            }
        }
        pending.endpoints.clear();
        pending.bytes.clear();
        Ok(())
    }

    fn insert(&mut self, hash: u64, id_type: u32, value: &[u8]) -> Result<usize> {
        let local = self.len();
        if local >= MAX_LOCAL_NODES {
            return exec_err!(
                "identity_stitch: too many distinct identifiers in one call (more than {} in one of {PARTITIONS} hash partitions)",
                MAX_LOCAL_NODES
            );
        }
        self.values.extend_from_slice(value);
        self.ends.push(self.values.len());
        self.types.push(id_type);
        self.hashes.push(hash);
        self.first_seen.push(NO_TS);
        self.last_seen.push(i64::MIN);
        self.n_edges.push(0);
        let hashes = &self.hashes;
        self.table
            .insert_unique(hash, local as u32, |&l| hashes[l as usize]);
        Ok(local)
    }

    fn allocated_bytes(&self) -> usize {
        self.table.allocation_size()
            + self.hashes.capacity() * size_of::<u64>()
            + self.types.capacity() * size_of::<u32>()
            + self.ends.capacity() * size_of::<usize>()
            + self.values.capacity()
            + (self.first_seen.capacity() + self.last_seen.capacity()) * size_of::<i64>()
            + self.n_edges.capacity() * size_of::<u32>()
    }
}

/// Interns the graph's endpoints while the edges are read; [`finish`](Self::finish) numbers the
/// nodes.
#[derive(Debug)]
pub(crate) struct NodeTableBuilder {
    partitions: Vec<Partition>,
    pending: Vec<Pending>,
    pending_endpoints: usize,
    /// The packed node of each edge endpoint, written by the partitions' threads.
    slots: Vec<AtomicU32>,
    threads: usize,
}

impl NodeTableBuilder {
    /// Interning runs on up to `threads` threads.
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            partitions: (0..PARTITIONS).map(|_| Partition::default()).collect(),
            pending: (0..PARTITIONS).map(|_| Pending::default()).collect(),
            pending_endpoints: 0,
            slots: Vec::new(),
            threads: threads.max(1),
        }
    }

    /// Records one sighting of `(id_type, value)` at `ts` (µs, [`NO_TS`] when unknown); `slot` is
    /// `2 × edge + side` when the identifier is an endpoint of an edge, whose node
    /// [`finish`](Self::finish) returns at that index.
    pub(crate) fn push(
        &mut self,
        id_type: u32,
        value: &[u8],
        ts: i64,
        slot: Option<usize>,
    ) -> Result<()> {
        let Ok(len) = u32::try_from(value.len()) else {
            return exec_err!(
                "identity_stitch: an identifier value of {} bytes is longer than the supported 4 GiB",
                value.len()
            );
        };
        let hash = identifier_hash(id_type, value);
        let pending = &mut self.pending[partition_of(hash)];
        pending.bytes.extend_from_slice(value);
        pending.endpoints.push(PendingEndpoint {
            hash,
            ts,
            slot: slot.map_or(NO_SLOT, |slot| slot as u64),
            len,
            type_id: id_type,
        });
        if let Some(slot) = slot
            && slot >= self.slots.len()
        {
            self.slots.resize_with(slot + 1, || AtomicU32::new(UNSET));
        }
        self.pending_endpoints += 1;
        if self.pending_endpoints >= CHUNK_ENDPOINTS {
            self.intern_pending()?;
        }
        Ok(())
    }

    /// Interns every pending endpoint, the partitions spread over the threads.
    fn intern_pending(&mut self) -> Result<()> {
        let slots = self.slots.as_slice();
        let per_thread = PARTITIONS.div_ceil(self.threads);
        let work = self
            .partitions
            .chunks_mut(per_thread)
            .zip(self.pending.chunks_mut(per_thread))
            .enumerate();
        let intern_group =
            |(group, (partitions, pending)): (usize, (&mut [Partition], &mut [Pending]))| {
                partitions
                    .iter_mut()
                    .zip(pending.iter_mut())
                    .enumerate()
                    .try_for_each(|(i, (partition, pending))| {
                        partition.intern(pending, group * per_thread + i, slots)
                    })
            };
        if self.threads == 1 || self.pending_endpoints < 4096 {
            work.map(intern_group).try_for_each(|group| group)?;
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = work
                    .map(|group| scope.spawn(move || intern_group(group)))
                    .collect();
                handles.into_iter().try_for_each(|handle| {
                    handle.join().unwrap_or_else(|_| {
                        Err(DataFusionError::Internal(
                            "identity_stitch: an interning thread panicked".into(),
                        ))
                    })
                })
            })?;
        }
        self.pending_endpoints = 0;
        Ok(())
    }

    /// Room for `edges` more edges' endpoint slots.
    pub(crate) fn reserve_edges(&mut self, edges: usize) {
        self.slots.reserve(2 * edges);
    }

    /// The threads interning may use.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Distinct identifiers interned so far (pending endpoints not counted).
    pub(crate) fn len(&self) -> usize {
        self.partitions.iter().map(Partition::len).sum()
    }

    /// Heap bytes held, for memory accounting.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.partitions
            .iter()
            .map(Partition::allocated_bytes)
            .sum::<usize>()
            + self
                .pending
                .iter()
                .map(Pending::allocated_bytes)
                .sum::<usize>()
            + self.slots.capacity() * size_of::<AtomicU32>()
    }

    /// Bytes [`finish`](Self::finish) allocates beyond what is held: the numbered copy of every
    /// node's value and statistics, and the endpoints' node ids.
    pub(crate) fn finish_extra_bytes(&self) -> usize {
        let values: usize = self.partitions.iter().map(|p| p.values.len()).sum();
        let pending: usize = self.pending.iter().map(|p| p.bytes.len()).sum();
        let per_node = size_of::<usize>() + size_of::<u32>() * 2 + size_of::<i64>() * 2;
        values
            + pending
            + (self.len() + self.pending_endpoints) * per_node
            + self.slots.len() * size_of::<u32>()
    }

    /// Numbers the nodes (partition by partition).
    pub(crate) fn finish(mut self) -> Result<InternedNodes> {
        self.intern_pending()?;
        let mut base = Vec::with_capacity(PARTITIONS + 1);
        let mut total = 0usize;
        for partition in &self.partitions {
            base.push(total as u32);
            total += partition.len();
        }
        if total > u32::MAX as usize - 1 {
            return exec_err!(
                "identity_stitch: more than {} distinct identifiers in one call",
                u32::MAX - 1
            );
        }
        base.push(total as u32);
        let unpack = |packed: u32| -> Result<u32> {
            if packed == UNSET {
                return Err(DataFusionError::Internal(
                    "identity_stitch: an edge endpoint was not interned".into(),
                ));
            }
            let partition = packed as usize & (PARTITIONS - 1);
            Ok(base[partition] + (packed >> PARTITION_BITS))
        };
        let endpoints = self
            .slots
            .into_iter()
            .map(|slot| unpack(slot.into_inner()))
            .collect::<Result<Vec<u32>>>()?;

        let values_len = self.partitions.iter().map(|p| p.values.len()).sum();
        let mut nodes = InternedNodes {
            table: NodeTable {
                values: Vec::with_capacity(values_len),
                ends: Vec::with_capacity(total),
                types: Vec::with_capacity(total),
                tables: Vec::with_capacity(PARTITIONS),
                base,
            },
            first_seen: Vec::with_capacity(total),
            last_seen: Vec::with_capacity(total),
            n_edges: Vec::with_capacity(total),
            endpoints,
        };
        // Partition by partition, releasing each one's vectors as they are copied.
        for partition in self.partitions {
            let table = &mut nodes.table;
            let offset = table.values.len();
            table.values.extend_from_slice(&partition.values);
            table
                .ends
                .extend(partition.ends.iter().map(|end| offset + end));
            table.types.extend_from_slice(&partition.types);
            table.tables.push(partition.table);
            nodes.first_seen.extend_from_slice(&partition.first_seen);
            nodes.last_seen.extend_from_slice(&partition.last_seen);
            nodes.n_edges.extend_from_slice(&partition.n_edges);
        }
        Ok(nodes)
    }
}

/// What [`NodeTableBuilder::finish`] returns: the nodes, their statistics, and the node of every
/// edge endpoint slot.
#[derive(Debug)]
pub(crate) struct InternedNodes {
    pub table: NodeTable,
    /// Per node: earliest and latest timestamp of a row naming it ([`NO_TS`] / `i64::MIN` when
    /// no row had one), and the rows linking it to another identifier.
    pub first_seen: Vec<i64>,
    pub last_seen: Vec<i64>,
    pub n_edges: Vec<u32>,
    /// Indexed by endpoint slot (`2 × edge + side`).
    pub endpoints: Vec<u32>,
}

/// The interned identifiers: dense node ids with their type and value.
#[derive(Debug, Default)]
pub(crate) struct NodeTable {
    values: Vec<u8>,
    ends: Vec<usize>,
    types: Vec<u32>,
    /// Each partition's table (local ids) and its first node id; `base[PARTITIONS]` = node count.
    tables: Vec<HashTable<u32>>,
    base: Vec<u32>,
}

impl NodeTable {
    pub(crate) fn len(&self) -> usize {
        self.types.len()
    }

    /// The value bytes of `node`.
    pub(crate) fn value(&self, node: u32) -> &[u8] {
        let i = node as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.values[start..self.ends[i]]
    }

    /// The type id of `node`.
    pub(crate) fn type_of(&self, node: u32) -> u32 {
        self.types[node as usize]
    }

    /// The node of `(id_type, value)` if it was interned.
    pub(crate) fn get(&self, id_type: u32, value: &[u8]) -> Option<u32> {
        let hash = identifier_hash(id_type, value);
        let partition = partition_of(hash);
        let (table, base) = (self.tables.get(partition)?, *self.base.get(partition)?);
        table
            .find(hash, |&local| {
                let node = base + local;
                self.types[node as usize] == id_type && self.value(node) == value
            })
            .map(|&local| base + local)
    }

    /// Heap bytes held, for memory accounting.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.values.capacity()
            + self.ends.capacity() * size_of::<usize>()
            + self.types.capacity() * size_of::<u32>()
            + self
                .tables
                .iter()
                .map(HashTable::allocation_size)
                .sum::<usize>()
            + self.base.capacity() * size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(threads: usize, rows: &[(u32, &str, i64, Option<usize>)]) -> Result<InternedNodes> {
        let mut builder = NodeTableBuilder::new(threads);
        for &(id_type, value, ts, slot) in rows {
            builder.push(id_type, value.as_bytes(), ts, slot)?;
        }
        builder.finish()
    }

    #[test]
    fn interns_each_identifier_once_per_type_with_its_statistics() -> Result<()> {
        let built = build(
            1,
            &[
                (0, "a", 10, Some(0)),
                (1, "a", NO_TS, Some(1)),
                (0, "a", 5, None),
                (0, "", 20, Some(2)),
                (0, "b", 7, Some(3)),
            ],
        )?;
        let nodes = &built.table;
        assert_eq!(nodes.len(), 4, "(0,a) (1,a) (0,'') (0,b)");
        let node = |id_type: u32, value: &str| nodes.get(id_type, value.as_bytes()).unwrap();
        let a = node(0, "a");
        assert_eq!(
            built.endpoints,
            vec![a, node(1, "a"), node(0, ""), node(0, "b")]
        );
        assert_eq!(nodes.value(a), b"a");
        assert_eq!(nodes.type_of(node(1, "a")), 1);
        assert_eq!(nodes.value(node(0, "")), b"");
        assert_eq!(
            (built.first_seen[a as usize], built.last_seen[a as usize]),
            (5, 10)
        );
        assert_eq!(built.n_edges[a as usize], 1, "the sighting is not an edge");
        let untimed = node(1, "a") as usize;
        assert_eq!(
            (built.first_seen[untimed], built.last_seen[untimed]),
            (NO_TS, i64::MIN)
        );
        assert_eq!(nodes.get(2, b"a"), None);
        assert_eq!(nodes.get(0, b"c"), None);
        Ok(())
    }

    /// Several chunks, several threads: the same nodes, numbered the same way, as one thread.
    #[test]
    fn chunks_and_threads_give_the_same_table() -> Result<()> {
        let n = CHUNK_ENDPOINTS + 1000;
        let values: Vec<String> = (0..n).map(|i| format!("v{}", i % 700_001)).collect();
        let rows: Vec<(u32, &str, i64, Option<usize>)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| ((i % 3) as u32, v.as_str(), i as i64, Some(i)))
            .collect();
        let one = build(1, &rows)?;
        let four = build(4, &rows)?;
        assert_eq!(one.table.len(), four.table.len());
        assert_eq!(one.endpoints, four.endpoints);
        assert_eq!(one.first_seen, four.first_seen);
        assert_eq!(one.n_edges, four.n_edges);
        let last = one.table.len() as u32 - 1;
        for node in [0, 1, last / 2, last] {
            assert_eq!(one.table.value(node), four.table.value(node));
        }
        for (i, &(id_type, value, ts, _)) in rows.iter().enumerate().step_by(9973) {
            let node = one.table.get(id_type, value.as_bytes()).unwrap();
            assert_eq!(one.endpoints[i], node);
            assert!(one.first_seen[node as usize] <= ts);
        }
        Ok(())
    }
}
