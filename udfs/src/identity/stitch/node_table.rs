//! The identity graph's identifiers `(type id, value bytes)` → dense `u32` node ids, interned by
//! hash partition on several threads.
//!
//! With millions of distinct identifiers a single hash table fits in no cache: every lookup paid
//! several misses (table, offsets, values) and interning was half of `identity_stitch`'s time on
//! 16 M edges, all on one core. So endpoints are first appended to one of [`PARTITIONS`] buffers by
//! hash (sequential writes), and every [`CHUNK_ENDPOINTS`] endpoints each partition interns its
//! share into its own small table — which stays in cache — with the partitions spread over the
//! session's threads. Per-node statistics (first/last sighting, edge count) are kept beside each
//! partition's table for the same reason. Node ids are assigned when reading ends
//! ([`NodeTableBuilder::finish`]), in order of first appearance, as one table would have: the
//! resolution orders by content, so results do not depend on them, but the map's row order and
//! the memory locality of everything indexed by node do.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use datafusion::common::{DataFusionError, Result, exec_err, internal_err};
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
/// Fewer endpoints than this are renumbered on one thread.
const MIN_PARALLEL_ENDPOINTS: usize = 1 << 16;
/// Endpoint slot that has not been interned yet (only seen if a slot is skipped).
const UNSET: u32 = u32::MAX;
/// [`PendingEndpoint::slot`] of a lone sighting.
const NO_SLOT: u32 = u32::MAX;
/// The most endpoints in one chunk: their slots and positions within it must fit in `u32`.
const MAX_CHUNK_ENDPOINTS: usize = 1 << 30;

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
    /// The endpoint slot of an edge (`2 × edge + side`) relative to the chunk's first slot,
    /// [`NO_SLOT`] for a lone sighting.
    slot: u32,
    /// Position of the endpoint in its chunk.
    position: u32,
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
    /// Per local node: the position of its first endpoint among all endpoints pushed, which
    /// numbers the nodes in order of first appearance.
    first_endpoint: Vec<u64>,
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

    /// Interns the pending endpoints of this partition (of a chunk after `chunk_start` endpoints),
    /// records their statistics and writes the (packed) node of every edge endpoint into `slots`.
    fn intern(
        &mut self,
        pending: &mut Pending,
        partition: usize,
        chunk_start: u64,
        slots: &[AtomicU32],
    ) -> Result<()> {
        let mut start = 0;
        for endpoint in &pending.endpoints {
            let end = start + endpoint.len as usize;
            let value = &pending.bytes[start..end];
            start = end;
            let local = match self.find(endpoint.hash, endpoint.type_id, value) {
                Some(local) => local as usize,
                None => self.insert(
                    endpoint.hash,
                    endpoint.type_id,
                    value,
                    chunk_start + u64::from(endpoint.position),
                )?,
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

    fn insert(
        &mut self,
        hash: u64,
        id_type: u32,
        value: &[u8],
        first_endpoint: u64,
    ) -> Result<usize> {
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
        self.first_endpoint.push(first_endpoint);
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
            + self.first_endpoint.capacity() * size_of::<u64>()
    }
}

/// Interns a chunk's pending endpoints (`endpoints` of them, after `chunk_start` endpoints) into
/// their partitions, the partitions spread over up to `threads` threads.
fn intern_chunk(
    partitions: &mut [Partition],
    pending: &mut [Pending],
    slots: &[AtomicU32],
    threads: usize,
    chunk_start: u64,
    endpoints: usize,
) -> Result<()> {
    let per_thread = PARTITIONS.div_ceil(threads);
    let work = partitions
        .chunks_mut(per_thread)
        .zip(pending.chunks_mut(per_thread))
        .enumerate();
    let intern_group =
        |(group, (partitions, pending)): (usize, (&mut [Partition], &mut [Pending]))| {
            partitions
                .iter_mut()
                .zip(pending.iter_mut())
                .enumerate()
                .try_for_each(|(i, (partition, pending))| {
                    partition.intern(pending, group * per_thread + i, chunk_start, slots)
                })
        };
    if threads == 1 || endpoints < 4096 {
        return work.map(intern_group).try_for_each(|group| group);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .map(|group| scope.spawn(move || intern_group(group)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|handle| handle.join().unwrap_or_else(|_| Err(thread_panicked())))
    })
}

fn thread_panicked() -> DataFusionError {
    DataFusionError::Internal("identity_stitch: an interning thread panicked".into())
}

/// `n` endpoint slots, none interned yet.
fn unset_slots(n: usize) -> Vec<AtomicU32> {
    (0..n).map(|_| AtomicU32::new(UNSET)).collect()
}

/// A chunk of endpoints interned in the background, with the partitions it interns into.
#[derive(Debug)]
struct ChunkJob {
    partitions: Vec<Partition>,
    pending: Vec<Pending>,
    chunk_start: u64,
    endpoints: usize,
    /// The packed node of each endpoint slot of the chunk (relative to its first slot).
    slots: Vec<AtomicU32>,
}

/// Interns the graph's endpoints while the edges are read; [`finish`](Self::finish) numbers the
/// nodes.
///
/// With more than one thread, a full chunk is interned in the background while the next one is
/// filled (double buffering): reading and interning overlap instead of taking turns. Chunks are
/// interned one after the other, in order, so the result does not depend on the timing.
#[derive(Debug)]
pub(crate) struct NodeTableBuilder {
    /// The partitions' tables; `None` while a chunk is interned in the background.
    partitions: Option<Vec<Partition>>,
    /// The chunk being filled, and the emptied buffers of the chunk interned before it.
    pending: Vec<Pending>,
    spare: Vec<Pending>,
    pending_endpoints: usize,
    /// Endpoints pushed before the chunk being filled.
    chunk_start: u64,
    /// Endpoint slots before the chunk being filled, and the chunk's own (its highest + 1).
    chunk_first_slot: usize,
    chunk_slots: usize,
    /// The packed node of every endpoint slot of the chunks interned so far.
    endpoints: Vec<u32>,
    in_flight: Option<JoinHandle<Result<ChunkJob>>>,
    /// Distinct identifiers and the partitions' heap bytes when the last chunk was interned, and
    /// the buffers of the chunk in flight.
    interned: usize,
    partition_bytes: usize,
    in_flight_bytes: usize,
    threads: usize,
    chunk_endpoints: usize,
}

impl NodeTableBuilder {
    /// Interning runs on up to `threads` threads.
    pub(crate) fn new(threads: usize) -> Self {
        Self::with_chunk(threads, CHUNK_ENDPOINTS)
    }

    /// A builder interning every `chunk_endpoints` endpoints.
    fn with_chunk(threads: usize, chunk_endpoints: usize) -> Self {
        let buffers = || (0..PARTITIONS).map(|_| Pending::default()).collect();
        Self {
            partitions: Some((0..PARTITIONS).map(|_| Partition::default()).collect()),
            pending: buffers(),
            spare: buffers(),
            pending_endpoints: 0,
            chunk_start: 0,
            chunk_first_slot: 0,
            chunk_slots: 0,
            endpoints: Vec::new(),
            in_flight: None,
            interned: 0,
            partition_bytes: 0,
            in_flight_bytes: 0,
            threads: threads.max(1),
            chunk_endpoints: chunk_endpoints.clamp(1, MAX_CHUNK_ENDPOINTS),
        }
    }

    /// Records one sighting of `(id_type, value)` at `ts` (µs, [`NO_TS`] when unknown); `slot` is
    /// `2 × edge + side` when the identifier is an endpoint of an edge, whose node
    /// [`finish`](Self::finish) returns at that index. Slots are pushed in increasing order.
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
        let slot = match slot {
            Some(slot) => {
                let Some(local) = slot.checked_sub(self.chunk_first_slot) else {
                    return internal_err!(
                        "identity_stitch: endpoint slot {slot} pushed after slot {}",
                        self.chunk_first_slot
                    );
                };
                self.chunk_slots = self.chunk_slots.max(local + 1);
                // Slots are consecutive, so a chunk spans at most one more than its endpoints.
                match u32::try_from(local) {
                    Ok(local) if local != NO_SLOT => local,
                    _ => {
                        return internal_err!(
                            "identity_stitch: endpoint slot {slot} skips ahead of the chunk"
                        );
                    }
                }
            }
            None => NO_SLOT,
        };
        let hash = identifier_hash(id_type, value);
        let pending = &mut self.pending[partition_of(hash)];
        pending.bytes.extend_from_slice(value);
        pending.endpoints.push(PendingEndpoint {
            hash,
            ts,
            slot,
            // Below `chunk_endpoints` ≤ MAX_CHUNK_ENDPOINTS.
            position: self.pending_endpoints as u32,
            len,
            type_id: id_type,
        });
        self.pending_endpoints += 1;
        if self.pending_endpoints >= self.chunk_endpoints {
            self.intern_chunk()?;
        }
        Ok(())
    }

    /// Interns the chunk filled so far: in the background with several threads (after waiting
    /// for the chunk before it), here with one.
    fn intern_chunk(&mut self) -> Result<()> {
        if self.threads == 1 {
            return self.intern_chunk_here();
        }
        self.wait_for_chunk()?;
        let Some(partitions) = self.partitions.take() else {
            return internal_err!("identity_stitch: the partitions are being interned");
        };
        let mut job = ChunkJob {
            partitions,
            pending: std::mem::replace(&mut self.pending, std::mem::take(&mut self.spare)),
            chunk_start: self.chunk_start,
            endpoints: self.pending_endpoints,
            slots: unset_slots(self.chunk_slots),
        };
        self.in_flight_bytes = job
            .pending
            .iter()
            .map(Pending::allocated_bytes)
            .sum::<usize>()
            + job.slots.len() * size_of::<AtomicU32>();
        let threads = self.threads;
        let handle = std::thread::Builder::new()
            .name("identity_stitch interning".into())
            .spawn(move || {
                intern_chunk(
                    &mut job.partitions,
                    &mut job.pending,
                    &job.slots,
                    threads,
                    job.chunk_start,
                    job.endpoints,
                )
                .map(|()| job)
            })
            .map_err(|e| {
                DataFusionError::Execution(format!(
                    "identity_stitch: cannot start an interning thread: {e}"
                ))
            })?;
        self.in_flight = Some(handle);
        self.next_chunk();
        Ok(())
    }

    /// Interns the chunk filled so far on this thread (and its scoped helpers).
    fn intern_chunk_here(&mut self) -> Result<()> {
        self.wait_for_chunk()?;
        let slots = unset_slots(self.chunk_slots);
        let Some(partitions) = self.partitions.as_mut() else {
            return internal_err!("identity_stitch: the partitions are being interned");
        };
        intern_chunk(
            partitions,
            &mut self.pending,
            &slots,
            self.threads,
            self.chunk_start,
            self.pending_endpoints,
        )?;
        self.chunk_interned(slots);
        self.next_chunk();
        Ok(())
    }

    /// Waits for the chunk interned in the background, if any, and takes its results.
    fn wait_for_chunk(&mut self) -> Result<()> {
        let Some(handle) = self.in_flight.take() else {
            return Ok(());
        };
        let job = handle.join().unwrap_or_else(|_| Err(thread_panicked()))?;
        self.partitions = Some(job.partitions);
        self.spare = job.pending;
        self.in_flight_bytes = 0;
        self.chunk_interned(job.slots);
        Ok(())
    }

    /// Records an interned chunk: the nodes of its slots and the partitions' new size.
    fn chunk_interned(&mut self, slots: Vec<AtomicU32>) {
        self.endpoints
            .extend(slots.into_iter().map(AtomicU32::into_inner));
        if let Some(partitions) = &self.partitions {
            self.interned = partitions.iter().map(Partition::len).sum();
            self.partition_bytes = partitions.iter().map(Partition::allocated_bytes).sum();
        }
    }

    fn next_chunk(&mut self) {
        self.chunk_start += self.pending_endpoints as u64;
        self.chunk_first_slot += self.chunk_slots;
        self.chunk_slots = 0;
        self.pending_endpoints = 0;
    }

    /// The threads interning may use.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Distinct identifiers interned so far (the chunks being filled or interned not counted).
    pub(crate) fn len(&self) -> usize {
        self.interned
    }

    /// Heap bytes held, for memory accounting (the partitions as of the last interned chunk).
    pub(crate) fn allocated_bytes(&self) -> usize {
        let buffers =
            |pending: &[Pending]| -> usize { pending.iter().map(Pending::allocated_bytes).sum() };
        self.partition_bytes
            + buffers(&self.pending)
            + buffers(&self.spare)
            + self.in_flight_bytes
            + self.endpoints.capacity() * size_of::<u32>()
    }

    /// Bytes [`finish`](Self::finish) allocates beyond what is held: the numbered copy of every
    /// node's value and statistics, and the endpoints' node ids. Waits for the chunk interned in
    /// the background.
    pub(crate) fn finish_extra_bytes(&mut self) -> Result<usize> {
        self.wait_for_chunk()?;
        let values: usize = self
            .partitions
            .iter()
            .flatten()
            .map(|p| p.values.len())
            .sum();
        let pending: usize = self.pending.iter().map(|p| p.bytes.len()).sum();
        // The copy (value end, type, statistics), the node of each local id and the order.
        let per_node = size_of::<usize>() + size_of::<u32>() * 4 + size_of::<i64>() * 2;
        let first_bits = (self.chunk_start as usize + self.pending_endpoints).div_ceil(64) * 12;
        Ok(values
            + pending
            + first_bits
            + (self.interned + self.pending_endpoints) * per_node
            + (self.endpoints.len() + self.chunk_slots) * size_of::<u32>())
    }

    /// Numbers the nodes in order of first appearance, as one table would have: the identity
    /// map comes out in the order of its input (which keeps it clustered by time in Parquet) and
    /// nodes linked by nearby rows get nearby ids, which the union-find's accesses profit from.
    pub(crate) fn finish(mut self) -> Result<InternedNodes> {
        self.intern_chunk_here()?;
        let Some(partitions) = self.partitions else {
            return internal_err!("identity_stitch: the partitions are being interned");
        };
        let total: usize = partitions.iter().map(Partition::len).sum();
        if total > u32::MAX as usize - 1 {
            return exec_err!(
                "identity_stitch: more than {} distinct identifiers in one call",
                u32::MAX - 1
            );
        }
        // A node's id is the rank of its first endpoint among the first endpoints of all nodes:
        // a bit per endpoint marks the firsts, and a count per 64-bit word ranks them.
        let pushed = usize::try_from(self.chunk_start).map_err(|_| {
            DataFusionError::Execution("identity_stitch: too many endpoints in one call".into())
        })?;
        let mut firsts = vec![0u64; pushed.div_ceil(64)];
        for partition in &partitions {
            for &first in &partition.first_endpoint {
                firsts[(first / 64) as usize] |= 1 << (first % 64);
            }
        }
        let mut ranked = 0u32;
        let firsts_before: Vec<u32> = firsts
            .iter()
            .map(|word| {
                let before = ranked;
                ranked += word.count_ones();
                before
            })
            .collect();
        if ranked as usize != total {
            return internal_err!(
                "identity_stitch: {ranked} first sightings for {total} identifiers"
            );
        }
        let rank = |first: u64| {
            let (word, bit) = ((first / 64) as usize, first % 64);
            firsts_before[word] + (firsts[word] & ((1u64 << bit) - 1)).count_ones()
        };
        let node_of_local: Vec<Vec<u32>> = partitions
            .iter()
            .map(|partition| partition.first_endpoint.iter().map(|&f| rank(f)).collect())
            .collect();
        drop((firsts, firsts_before));

        let unpack = |packed: u32| -> Result<u32> {
            let partition = packed as usize & (PARTITIONS - 1);
            match node_of_local[partition].get((packed >> PARTITION_BITS) as usize) {
                Some(&node) if packed != UNSET => Ok(node),
                _ => internal_err!("identity_stitch: an edge endpoint was not interned"),
            }
        };
        // In place, a range per thread: there are two per edge.
        let mut endpoints = self.endpoints;
        let per_thread = endpoints
            .len()
            .div_ceil(self.threads)
            .max(MIN_PARALLEL_ENDPOINTS);
        let unpack_range = |range: &mut [u32]| {
            range.iter_mut().try_for_each(|endpoint| {
                *endpoint = unpack(*endpoint)?;
                Ok::<_, DataFusionError>(())
            })
        };
        if endpoints.len() <= per_thread {
            unpack_range(&mut endpoints)?;
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = endpoints
                    .chunks_mut(per_thread)
                    .map(|range| scope.spawn(|| unpack_range(range)))
                    .collect();
                handles
                    .into_iter()
                    .try_for_each(|handle| handle.join().unwrap_or_else(|_| Err(thread_panicked())))
            })?;
        }

        // Node by node in the new order, each partition read front to back.
        let mut order = vec![(0u32, 0u32); total];
        for (partition, nodes) in node_of_local.iter().enumerate() {
            for (local, &node) in nodes.iter().enumerate() {
                order[node as usize] = (partition as u32, local as u32);
            }
        }
        let values_len = partitions.iter().map(|p| p.values.len()).sum();
        let mut table = NodeTable {
            values: Vec::with_capacity(values_len),
            ends: Vec::with_capacity(total),
            types: Vec::with_capacity(total),
            tables: Vec::with_capacity(PARTITIONS),
            node_of_local,
        };
        let mut first_seen = Vec::with_capacity(total);
        let mut last_seen = Vec::with_capacity(total);
        let mut n_edges = Vec::with_capacity(total);
        for (partition, local) in order {
            let (partition, local) = (&partitions[partition as usize], local as usize);
            table.values.extend_from_slice(partition.value(local));
            table.ends.push(table.values.len());
            table.types.push(partition.types[local]);
            first_seen.push(partition.first_seen[local]);
            last_seen.push(partition.last_seen[local]);
            n_edges.push(partition.n_edges[local]);
        }
        table.tables = partitions.into_iter().map(|p| p.table).collect();
        Ok(InternedNodes {
            table,
            first_seen,
            last_seen,
            n_edges,
            endpoints,
        })
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
    /// Each partition's table (local ids) and the node of each local id.
    tables: Vec<HashTable<u32>>,
    node_of_local: Vec<Vec<u32>>,
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
        let (table, nodes) = (
            self.tables.get(partition)?,
            self.node_of_local.get(partition)?,
        );
        table
            .find(hash, |&local| {
                let node = nodes[local as usize];
                self.types[node as usize] == id_type && self.value(node) == value
            })
            .map(|&local| nodes[local as usize])
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
            + self
                .node_of_local
                .iter()
                .map(|nodes| nodes.capacity() * size_of::<u32>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(threads: usize, rows: &[(u32, &str, i64, Option<usize>)]) -> Result<InternedNodes> {
        build_in_chunks(threads, CHUNK_ENDPOINTS, rows)
    }

    fn build_in_chunks(
        threads: usize,
        chunk: usize,
        rows: &[(u32, &str, i64, Option<usize>)],
    ) -> Result<InternedNodes> {
        let mut builder = NodeTableBuilder::with_chunk(threads, chunk);
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

    /// Many small chunks interned in the background while the next ones fill, with lone
    /// sightings (no slot) anywhere, also at chunk edges: the same result as one thread in one
    /// chunk, and the memory estimate stays consistent.
    #[test]
    fn background_chunks_give_the_same_table() -> Result<()> {
        let values: Vec<String> = (0..20_000)
            .map(|i| format!("x{}", (i * 7) % 3001))
            .collect();
        let mut slot = 0;
        let rows: Vec<(u32, &str, i64, Option<usize>)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let slot = (i % 5 != 3).then(|| {
                    slot += 1;
                    slot - 1
                });
                ((i % 2) as u32, v.as_str(), (i % 977) as i64, slot)
            })
            .collect();
        let reference = build_in_chunks(1, usize::MAX, &rows)?;
        for (threads, chunk) in [
            (1, 1),
            (1, 999),
            (2, 1),
            (2, 4),
            (2, 1000),
            (4, 4096),
            (3, 7),
        ] {
            let built = build_in_chunks(threads, chunk, &rows)?;
            let label = format!("{threads} threads, chunks of {chunk}");
            assert_eq!(built.table.len(), reference.table.len(), "{label}");
            assert_eq!(built.endpoints, reference.endpoints, "{label}");
            assert_eq!(built.first_seen, reference.first_seen, "{label}");
            assert_eq!(built.last_seen, reference.last_seen, "{label}");
            assert_eq!(built.n_edges, reference.n_edges, "{label}");
            assert_eq!(built.table.values, reference.table.values, "{label}");
        }
        let mut builder = NodeTableBuilder::with_chunk(2, 100);
        for &(id_type, value, ts, slot) in &rows[..1000] {
            builder.push(id_type, value.as_bytes(), ts, slot)?;
        }
        assert!(builder.allocated_bytes() > 0);
        assert!(builder.finish_extra_bytes()? > 0);
        assert!(builder.len() > 0, "the chunks in flight were waited for");
        Ok(())
    }

    #[test]
    fn slots_out_of_order_are_an_internal_error() -> Result<()> {
        let mut builder = NodeTableBuilder::with_chunk(2, 2);
        builder.push(0, b"a", 1, Some(0))?;
        builder.push(0, b"b", 1, Some(1))?;
        let err = builder.push(0, b"c", 1, Some(0)).unwrap_err();
        assert!(err.to_string().contains("pushed after slot"), "{err}");
        Ok(())
    }

    #[test]
    fn nodes_are_numbered_in_order_of_first_appearance() -> Result<()> {
        let values: Vec<String> = (0..5000).map(|i| format!("n{}", (i * 13) % 1777)).collect();
        let rows: Vec<(u32, &str, i64, Option<usize>)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (0, v.as_str(), 0, (i % 3 != 0).then(|| i - i / 3 - 1)))
            .collect();
        let mut first_appearance: Vec<&str> = Vec::new();
        for v in &values {
            if !first_appearance.contains(&v.as_str()) {
                first_appearance.push(v);
            }
        }
        for (threads, chunk) in [(1, CHUNK_ENDPOINTS), (2, 64), (4, 1)] {
            let built = build_in_chunks(threads, chunk, &rows)?;
            let numbered: Vec<&[u8]> = (0..built.table.len() as u32)
                .map(|node| built.table.value(node))
                .collect();
            let expected: Vec<&[u8]> = first_appearance.iter().map(|v| v.as_bytes()).collect();
            assert_eq!(numbered, expected, "{threads} threads, chunks of {chunk}");
        }
        Ok(())
    }
}
