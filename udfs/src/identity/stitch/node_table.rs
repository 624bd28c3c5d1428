//! The identity graph's identifiers `(type id, value bytes)` → dense `u32` node ids, interned by
//! hash partition on several threads.
//!
//! With millions of distinct identifiers a single hash table fits in no cache: every lookup paid
//! several misses (table, offsets, values) and interning was half of `identity_stitch`'s time on
//! 16 M edges, all on one core. So endpoints are first appended to one of [`PARTITIONS`] buffers by
//! hash (sequential writes), and every [`CHUNK_ENDPOINTS`] endpoints each partition interns its
//! share into its own table, with the partitions spread over the session's threads. Per-node
//! statistics (first/last sighting, edge count) sit beside the place of its value in one record.
//! At tens of millions of identifiers even a partition's table, records and values do not stay
//! in cache from one chunk to the next, so interning loads them a few endpoints ahead
//! ([`IdTable`]). Node ids are assigned when reading ends
//! ([`NodeTableBuilder::finish`]), in order of first appearance, as one table would have: the
//! resolution orders by content, so results do not depend on them, but the map's row order and
//! the memory locality of everything indexed by node do.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use datafusion::common::{DataFusionError, Result, exec_err, internal_err};
use foldhash::fast::FixedState;

use super::graph::NO_TS;
use super::id_table::{IdTable, prefetch};
use super::parallel::{fill_parallel, on_threads};

const PARTITION_BITS: u32 = 8;
/// Enough partitions to spread interning over the threads; few enough that the readers' writes
/// to the partitions' buffers (two streams each) stay cached. At 16 M edges 256 took 9 % less
/// CPU than 1024, whose tables were smaller but are loaded ahead anyway.
const PARTITIONS: usize = 1 << PARTITION_BITS;
/// Which hash bits pick the partition: not the low 32, the table's tags, which must stay uniform
/// within a partition.
const PARTITION_SHIFT: u32 = 32;
/// A node is `local << PARTITION_BITS | partition` until [`NodeTableBuilder::finish`].
const MAX_LOCAL_NODES: usize = 1 << (32 - PARTITION_BITS);
/// How many endpoints ahead interning starts loading what an endpoint needs: enough to cover a
/// memory access with the work of the endpoints in between.
const AHEAD: usize = 16;
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

/// What a partition keeps per local node and reads on every sighting: the type and the place
/// of the value (to compare) and the statistics (to update), in one 32-byte record, so that a
/// sighting of a known identifier touches one line of it rather than one per vector.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct NodeRecord {
    first_seen: i64,
    last_seen: i64,
    /// The value is `values[start..start + len]`.
    start: u32,
    len: u32,
    type_id: u32,
    n_edges: u32,
}

/// The identifiers of one hash partition, with local ids in order of first appearance.
#[derive(Debug, Default)]
struct Partition {
    table: IdTable,
    records: Vec<NodeRecord>,
    values: Vec<u8>,
    /// Per local node: the position of its first endpoint among all endpoints pushed, which
    /// numbers the nodes in order of first appearance.
    first_endpoint: Vec<u64>,
}

impl Partition {
    fn len(&self) -> usize {
        self.records.len()
    }

    fn value_of(&self, record: &NodeRecord) -> &[u8] {
        let start = record.start as usize;
        &self.values[start..start + record.len as usize]
    }

    fn value(&self, local: usize) -> &[u8] {
        self.value_of(&self.records[local])
    }

    fn find(&self, hash: u64, id_type: u32, value: &[u8]) -> Option<u32> {
        self.table.find(hash, |local| {
            let record = &self.records[local as usize];
            record.type_id == id_type && self.value_of(record) == value
        })
    }

    /// Starts loading what interning the endpoints after `endpoints[next]` reads, in the order
    /// it needs them: the table slot ([`AHEAD`] endpoints ahead), the record of the likely match
    /// (half as far) and its value (a quarter as far), each once the step before has loaded.
    #[inline]
    fn prefetch(&self, endpoints: &[PendingEndpoint], next: usize) {
        if let Some(endpoint) = endpoints.get(next + AHEAD) {
            self.table.prefetch(endpoint.hash);
        }
        let likely = |ahead: usize| {
            let endpoint = endpoints.get(next + ahead)?;
            self.records.get(self.table.likely(endpoint.hash)? as usize)
        };
        if let Some(record) = likely(AHEAD / 2) {
            prefetch(record);
        }
        if let Some(record) = likely(AHEAD / 4) {
            let start = record.start as usize;
            let last = start + (record.len as usize).saturating_sub(1);
            for byte in [start, last] {
                if let Some(byte) = self.values.get(byte) {
                    prefetch(byte);
                }
            }
        }
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
        for (i, endpoint) in pending.endpoints.iter().enumerate() {
            self.prefetch(&pending.endpoints, i);
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
            let record = &mut self.records[local];
            if endpoint.ts != NO_TS {
                record.first_seen = record.first_seen.min(endpoint.ts);
                record.last_seen = record.last_seen.max(endpoint.ts);
            }
            if endpoint.slot != NO_SLOT {
                let slot = endpoint.slot as usize;
                record.n_edges = record.n_edges.saturating_add(1);
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
        // Records keep `u32` places: 4 GiB of values per partition is 4 TiB in all.
        let start = self.values.len();
        if start + value.len() > u32::MAX as usize {
            return exec_err!(
                "identity_stitch: more than 4 GiB of identifier values in one of {PARTITIONS} hash partitions"
            );
        }
        let (start, len) = (start as u32, value.len() as u32);
        self.values.extend_from_slice(value);
        self.records.push(NodeRecord {
            first_seen: NO_TS,
            last_seen: i64::MIN,
            start,
            len,
            type_id: id_type,
            n_edges: 0,
        });
        self.first_endpoint.push(first_endpoint);
        self.table.insert(hash, local as u32);
        Ok(local)
    }

    fn allocated_bytes(&self) -> usize {
        self.table.allocation_size()
            + self.records.capacity() * size_of::<NodeRecord>()
            + self.values.capacity()
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

fn empty_buffers() -> Vec<Pending> {
    (0..PARTITIONS).map(|_| Pending::default()).collect()
}

/// The endpoints one reader has pushed since its last chunk was submitted, by hash partition:
/// hashing and copying happen on the reader's thread, so several readers fill chunks at once.
#[derive(Debug)]
pub(crate) struct NodeChunk {
    pending: Vec<Pending>,
    endpoints: usize,
    /// Endpoint slots used (the highest pushed + 1); they are relative to the chunk.
    slots: usize,
    capacity: usize,
}

impl NodeChunk {
    fn new(capacity: usize) -> Self {
        Self {
            pending: empty_buffers(),
            endpoints: 0,
            slots: 0,
            capacity,
        }
    }

    /// Records one sighting of `(id_type, value)` at `ts` (µs, [`NO_TS`] when unknown); `slot` is
    /// the chunk-relative `2 × edge + side` when the identifier is an endpoint of an edge.
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
        if self.endpoints >= MAX_CHUNK_ENDPOINTS {
            return internal_err!(
                "identity_stitch: a chunk of more than {MAX_CHUNK_ENDPOINTS} endpoints"
            );
        }
        let slot = match slot {
            Some(slot) => match u32::try_from(slot) {
                // A chunk's slots are its edges' endpoints: fewer than its endpoints.
                Ok(local) if slot < MAX_CHUNK_ENDPOINTS => {
                    self.slots = self.slots.max(slot + 1);
                    local
                }
                _ => return internal_err!("identity_stitch: endpoint slot {slot} out of range"),
            },
            None => NO_SLOT,
        };
        let hash = identifier_hash(id_type, value);
        let pending = &mut self.pending[partition_of(hash)];
        pending.bytes.extend_from_slice(value);
        pending.endpoints.push(PendingEndpoint {
            hash,
            ts,
            slot,
            // Below MAX_CHUNK_ENDPOINTS, checked above.
            position: self.endpoints as u32,
            len,
            type_id: id_type,
        });
        self.endpoints += 1;
        Ok(())
    }

    /// Whether the chunk should be submitted.
    pub(crate) fn is_full(&self) -> bool {
        self.endpoints >= self.capacity
    }

    /// Endpoint slots used by the chunk (the highest pushed + 1).
    pub(crate) fn slots(&self) -> usize {
        self.slots
    }

    /// Heap bytes held, for memory accounting.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.pending.iter().map(Pending::allocated_bytes).sum()
    }

    fn clear(&mut self) {
        self.endpoints = 0;
        self.slots = 0;
    }
}

/// Interns the chunks of endpoints its readers submit; [`finish`](Self::finish) numbers the
/// nodes.
///
/// With more than one thread, a submitted chunk is interned in the background while its reader
/// fills the next one (double buffering): reading and interning overlap instead of taking turns.
/// Chunks are interned one after the other, in the order they were submitted; the numbering
/// follows that order (one reader: the order of its input), which no result depends on but the
/// order of the map's rows.
#[derive(Debug)]
pub(crate) struct NodeTableBuilder {
    /// The partitions' tables; `None` while a chunk is interned in the background.
    partitions: Option<Vec<Partition>>,
    /// Emptied buffers of chunks interned before, for the readers' next chunks.
    spare: Vec<Vec<Pending>>,
    /// Endpoints submitted, and endpoint slots.
    pushed: u64,
    slots: usize,
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

    /// A builder whose readers submit every `chunk_endpoints` endpoints.
    pub(crate) fn with_chunk(threads: usize, chunk_endpoints: usize) -> Self {
        Self {
            partitions: Some((0..PARTITIONS).map(|_| Partition::default()).collect()),
            spare: Vec::new(),
            pushed: 0,
            slots: 0,
            endpoints: Vec::new(),
            in_flight: None,
            interned: 0,
            partition_bytes: 0,
            in_flight_bytes: 0,
            threads: threads.max(1),
            chunk_endpoints: chunk_endpoints.clamp(1, MAX_CHUNK_ENDPOINTS),
        }
    }

    /// An empty chunk for a reader, of `1 / readers` of the chunk size (so that the buffers
    /// held stay the same with more readers).
    pub(crate) fn chunk(&mut self, readers: usize) -> NodeChunk {
        let capacity = (self.chunk_endpoints / readers.max(1)).max(1);
        match self.spare.pop() {
            Some(pending) => NodeChunk {
                pending,
                ..NodeChunk::new(capacity)
            },
            None => NodeChunk::new(capacity),
        }
    }

    /// Interns the endpoints of `chunk` (in the background with several threads, after waiting
    /// for the chunk before it; here with one) and leaves `chunk` empty for the next ones. Its
    /// slots continue those of the chunks submitted before.
    pub(crate) fn submit(&mut self, chunk: &mut NodeChunk) -> Result<()> {
        if chunk.endpoints == 0 {
            return Ok(());
        }
        self.wait_for_chunk()?;
        if self.threads == 1 {
            let slots = unset_slots(chunk.slots);
            let Some(partitions) = self.partitions.as_mut() else {
                return internal_err!("identity_stitch: the partitions are being interned");
            };
            intern_chunk(
                partitions,
                &mut chunk.pending,
                &slots,
                self.threads,
                self.pushed,
                chunk.endpoints,
            )?;
            self.chunk_interned(slots);
        } else {
            let Some(partitions) = self.partitions.take() else {
                return internal_err!("identity_stitch: the partitions are being interned");
            };
            let buffers = self.spare.pop().unwrap_or_else(empty_buffers);
            let mut job = ChunkJob {
                partitions,
                pending: std::mem::replace(&mut chunk.pending, buffers),
                chunk_start: self.pushed,
                endpoints: chunk.endpoints,
                slots: unset_slots(chunk.slots),
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
        }
        self.pushed += chunk.endpoints as u64;
        self.slots += chunk.slots;
        chunk.clear();
        Ok(())
    }

    /// Waits for the chunk interned in the background, if any, and takes its results.
    fn wait_for_chunk(&mut self) -> Result<()> {
        let Some(handle) = self.in_flight.take() else {
            return Ok(());
        };
        let job = handle.join().unwrap_or_else(|_| Err(thread_panicked()))?;
        self.partitions = Some(job.partitions);
        self.spare.push(job.pending);
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

    /// The threads interning may use.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Distinct identifiers interned so far (the chunks being filled or interned not counted).
    pub(crate) fn len(&self) -> usize {
        self.interned
    }

    /// Heap bytes held, for memory accounting (the partitions as of the last interned chunk;
    /// the readers' chunks are theirs).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.partition_bytes
            + self
                .spare
                .iter()
                .flatten()
                .map(Pending::allocated_bytes)
                .sum::<usize>()
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
        // The copy (value end, type, statistics), the node of each local id and the order.
        let per_node = size_of::<usize>() + size_of::<u32>() * 4 + size_of::<i64>() * 2;
        let first_bits = (self.pushed as usize).div_ceil(64) * 12;
        Ok(values + first_bits + self.interned * per_node)
    }

    /// Numbers the nodes in order of first appearance, as one table would have: the identity
    /// map comes out in the order of its input (which keeps it clustered by time in Parquet) and
    /// nodes linked by nearby rows get nearby ids, which the union-find's accesses profit from.
    pub(crate) fn finish(mut self) -> Result<InternedNodes> {
        self.wait_for_chunk()?;
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
        let pushed = usize::try_from(self.pushed).map_err(|_| {
            DataFusionError::Execution("identity_stitch: too many endpoints in one call".into())
        })?;
        // Every thread sets the bits of its range of words, reading every partition.
        let threads = self.threads;
        let mut firsts = vec![0u64; pushed.div_ceil(64)];
        fill_parallel(&mut firsts, 1, threads, &|first_word, words| {
            // Written before `|=` reads them (see `fold_by_key`: a fault per page otherwise).
            words.fill(0);
            let here = first_word as u64 * 64..(first_word + words.len()) as u64 * 64;
            for partition in &partitions {
                for &first in partition.first_endpoint.iter().filter(|f| here.contains(f)) {
                    let word = (first / 64) as usize - first_word;
                    words[word] |= 1 << (first % 64);
                }
            }
        });
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
        let node_of_local: Vec<Vec<u32>> = on_threads(
            partitions
                .chunks(partitions.len().div_ceil(threads.max(1)).max(1))
                .collect(),
            &|partitions: &[Partition]| {
                partitions
                    .iter()
                    .map(|partition| partition.first_endpoint.iter().map(|&f| rank(f)).collect())
                    .collect::<Vec<Vec<u32>>>()
            },
        )
        .into_iter()
        .flatten()
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

        // Node by node in the new order: every thread fills its range of nodes, reading every
        // partition front to back.
        let mut order = vec![(0u32, 0u32); total];
        fill_parallel(&mut order, 1, threads, &|first_node, order| {
            let here = first_node as u32..(first_node + order.len()) as u32;
            for (partition, nodes) in node_of_local.iter().enumerate() {
                for (local, &node) in nodes.iter().enumerate() {
                    if here.contains(&node) {
                        order[(node - here.start) as usize] = (partition as u32, local as u32);
                    }
                }
            }
        });
        // Each node's type, statistics and value copied in the new order, a range of nodes per
        // thread: the reads are scattered over all partitions, so they wait on memory.
        let per_thread = total.div_ceil(self.threads).max(MIN_PARALLEL_ENDPOINTS);
        let mut types = vec![0u32; total];
        let mut first_seen = vec![0i64; total];
        let mut last_seen = vec![0i64; total];
        let mut n_edges = vec![0u32; total];
        let mut ends = vec![0usize; total];
        let fill = |first: usize, types: &mut [u32], firsts: &mut [i64], lasts: &mut [i64]| {
            for (i, ((id_type, first_seen), last_seen)) in
                types.iter_mut().zip(firsts).zip(lasts).enumerate()
            {
                let (partition, local) = order[first + i];
                let record = &partitions[partition as usize].records[local as usize];
                *id_type = record.type_id;
                *first_seen = record.first_seen;
                *last_seen = record.last_seen;
            }
        };
        let count = |first: usize, n_edges: &mut [u32], lengths: &mut [usize]| {
            for (i, (edges, length)) in n_edges.iter_mut().zip(lengths).enumerate() {
                let (partition, local) = order[first + i];
                let record = &partitions[partition as usize].records[local as usize];
                *edges = record.n_edges;
                *length = record.len as usize;
            }
        };
        std::thread::scope(|scope| {
            let ranges = types
                .chunks_mut(per_thread)
                .zip(first_seen.chunks_mut(per_thread))
                .zip(last_seen.chunks_mut(per_thread))
                .zip(n_edges.chunks_mut(per_thread))
                .zip(ends.chunks_mut(per_thread))
                .enumerate();
            for (range, ((((types, firsts), lasts), n_edges), lengths)) in ranges {
                let first = range * per_thread;
                scope.spawn(move || {
                    fill(first, types, firsts, lasts);
                    count(first, n_edges, lengths);
                });
            }
        });
        let mut values_len = 0;
        for end in &mut ends {
            values_len += *end;
            *end = values_len;
        }
        let mut values = vec![0u8; values_len];
        std::thread::scope(|scope| {
            let mut rest = values.as_mut_slice();
            let mut copied = 0;
            for first in (0..total).step_by(per_thread) {
                let last = (first + per_thread).min(total) - 1;
                let (range, after) = rest.split_at_mut(ends[last] - copied);
                (rest, copied) = (after, ends[last]);
                let (order, partitions) = (&order, &partitions);
                scope.spawn(move || {
                    let mut at = 0;
                    for &(partition, local) in &order[first..=last] {
                        let value = partitions[partition as usize].value(local as usize);
                        range[at..at + value.len()].copy_from_slice(value);
                        at += value.len();
                    }
                });
            }
        });
        let mut table = NodeTable {
            values,
            ends,
            types,
            tables: Vec::with_capacity(PARTITIONS),
            node_of_local,
        };
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
    tables: Vec<IdTable>,
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
            .find(hash, |local| {
                let node = nodes[local as usize];
                self.types[node as usize] == id_type && self.value(node) == value
            })
            .map(|local| nodes[local as usize])
    }

    /// Heap bytes held, for memory accounting.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.values.capacity()
            + self.ends.capacity() * size_of::<usize>()
            + self.types.capacity() * size_of::<u32>()
            + self
                .tables
                .iter()
                .map(IdTable::allocation_size)
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

    /// One reader submitting a chunk every `chunk` endpoints; `rows` carry global slots.
    fn build_in_chunks(
        threads: usize,
        chunk: usize,
        rows: &[(u32, &str, i64, Option<usize>)],
    ) -> Result<InternedNodes> {
        let mut builder = NodeTableBuilder::with_chunk(threads, chunk);
        let mut current = builder.chunk(1);
        let mut first_slot = 0;
        for &(id_type, value, ts, slot) in rows {
            current.push(id_type, value.as_bytes(), ts, slot.map(|s| s - first_slot))?;
            if current.is_full() {
                first_slot += current.slots();
                builder.submit(&mut current)?;
            }
        }
        builder.submit(&mut current)?;
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
        let mut chunk = builder.chunk(1);
        for &(id_type, value, ts, _) in &rows[..1000] {
            chunk.push(id_type, value.as_bytes(), ts, None)?;
            if chunk.is_full() {
                builder.submit(&mut chunk)?;
            }
        }
        assert!(chunk.allocated_bytes() > 0);
        assert!(builder.allocated_bytes() > 0);
        assert!(builder.finish_extra_bytes()? > 0);
        assert!(builder.len() > 0, "the chunks in flight were waited for");
        Ok(())
    }

    /// Several readers' chunks, submitted interleaved: every endpoint gets the node of its
    /// identifier, whatever the order of submission.
    #[test]
    fn chunks_of_several_readers_share_one_table() -> Result<()> {
        let values: Vec<String> = (0..6000).map(|i| format!("r{}", (i * 11) % 2003)).collect();
        for threads in [1, 2, 4] {
            let mut builder = NodeTableBuilder::with_chunk(threads, 300);
            let mut readers = [builder.chunk(3), builder.chunk(3), builder.chunk(3)];
            // Per reader, the values it pushed in its current chunk; the slots of a chunk go
            // after every slot submitted before it.
            let mut pushed: [Vec<&str>; 3] = Default::default();
            let mut in_order: Vec<&str> = Vec::new();
            for (i, value) in values.iter().enumerate() {
                let reader = i % 3;
                let chunk = &mut readers[reader];
                chunk.push(0, value.as_bytes(), i as i64, Some(pushed[reader].len()))?;
                pushed[reader].push(value);
                if chunk.is_full() {
                    builder.submit(chunk)?;
                    in_order.append(&mut pushed[reader]);
                }
            }
            for (chunk, pushed) in readers.iter_mut().zip(pushed.iter_mut()) {
                builder.submit(chunk)?;
                in_order.append(pushed);
            }
            let built = builder.finish()?;
            assert_eq!(built.table.len(), 2003, "{threads} threads");
            let endpoint_values: Vec<&[u8]> = built
                .endpoints
                .iter()
                .map(|&n| built.table.value(n))
                .collect();
            let expected: Vec<&[u8]> = in_order.iter().map(|v| v.as_bytes()).collect();
            assert_eq!(endpoint_values, expected, "{threads} threads");
        }
        Ok(())
    }

    #[test]
    fn a_slot_left_out_is_an_internal_error() -> Result<()> {
        let mut builder = NodeTableBuilder::with_chunk(2, 2);
        let mut chunk = builder.chunk(1);
        chunk.push(0, b"a", 1, Some(0))?;
        chunk.push(0, b"b", 1, Some(2))?;
        builder.submit(&mut chunk)?;
        let err = builder.finish().unwrap_err();
        assert!(err.to_string().contains("was not interned"), "{err}");
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
