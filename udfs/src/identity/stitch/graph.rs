//! The identity graph read from the edges relation: interned identifiers with their first/last
//! sighting and edge count, the edges as node-id pairs, and what was dropped on the way.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::{DataFusionError, Result, exec_err, internal_err, plan_err};
use datafusion::execution::memory_pool::MemoryReservation;

use super::interner::{NameInterner, StringColumn, TimestampColumn};
use super::node_table::{InternedNodes, NodeChunk, NodeTable, NodeTableBuilder};
use crate::short_name::{ShortName, short_name_key};

/// The columns the edges relation of `identity_stitch` must have (in any order).
pub const EDGE_COLUMNS: [&str; 6] = ["a_type", "a_value", "b_type", "b_value", "ts", "source"];

/// Identifier types are a short configured list (e-mail, phone, card, ...); thousands of them
/// mean the type and value columns were mixed up, which is reported rather than processed.
pub(crate) const MAX_ID_TYPES: usize = 4096;

/// "No timestamp" in the per-node and per-edge timestamp vectors: sorts after every real one.
pub(crate) const NO_TS: i64 = i64::MAX;

/// Positions of [`EDGE_COLUMNS`] in the input schema, checked at planning time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EdgeColumns {
    indices: [usize; 6],
}

impl EdgeColumns {
    /// Finds and type-checks the edge columns; a plan error names what is missing or mistyped
    /// and the columns that were found.
    pub(crate) fn try_new(schema: &Schema) -> Result<Self> {
        let found = || {
            schema
                .fields()
                .iter()
                .map(|f| format!("{} {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut indices = [0; 6];
        for (slot, name) in EDGE_COLUMNS.iter().enumerate() {
            let Ok(index) = schema.index_of(name) else {
                return plan_err!(
                    "identity_stitch: the edges relation has no column '{name}'; it needs {} and has: {}",
                    EDGE_COLUMNS.join(", "),
                    found()
                );
            };
            let data_type = schema.field(index).data_type();
            let ok = if *name == "ts" {
                matches!(data_type, DataType::Timestamp(_, _) | DataType::Null)
            } else {
                is_string(data_type)
            };
            if !ok {
                let expected = if *name == "ts" {
                    "a timestamp"
                } else {
                    "a string"
                };
                return plan_err!(
                    "identity_stitch: column '{name}' of the edges relation must be {expected}, got {data_type}; the relation has: {}",
                    found()
                );
            }
            indices[slot] = index;
        }
        Ok(Self { indices })
    }
}

fn is_string(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => true,
        DataType::Dictionary(_, value) => is_string(value),
        _ => false,
    }
}

/// One link between two distinct identifiers, with its earliest evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edge {
    /// Microseconds since the epoch, [`NO_TS`] when unknown.
    pub ts: i64,
    pub a: u32,
    pub b: u32,
    /// Source name id in [`Graph::sources`], [`NO_SOURCE`] when NULL.
    pub source: u32,
}

pub(crate) const NO_SOURCE: u32 = u32::MAX;

/// Endpoints dropped while reading, reported in the audit.
#[derive(Debug, Default)]
pub(crate) struct DroppedEndpoints {
    /// Per type id: endpoints with a type but a NULL or empty value.
    pub empty_value: Vec<u64>,
    /// Endpoints with a value but a NULL or empty type.
    pub empty_type: u64,
    /// Rows naming no identifier at all (every type and value NULL or blank).
    pub empty_rows: u64,
}

/// Everything `identity_stitch` keeps from its input.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub types: NameInterner,
    pub sources: NameInterner,
    pub nodes: NodeTable,
    /// Per node: earliest and latest timestamp of a row naming it ([`NO_TS`] / `i64::MIN` when
    /// no row had one).
    pub first_seen: Vec<i64>,
    pub last_seen: Vec<i64>,
    /// Per node: rows linking it to another identifier.
    pub n_edges: Vec<u32>,
    pub edges: Vec<Edge>,
    pub dropped: DroppedEndpoints,
    /// Threads the work on this graph may use (the session's `target_partitions`).
    pub threads: usize,
}

impl Graph {
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Heap bytes held, for memory accounting.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.nodes.allocated_bytes()
            + (self.first_seen.capacity() + self.last_seen.capacity()) * size_of::<i64>()
            + self.n_edges.capacity() * size_of::<u32>()
            + self.edges.capacity() * size_of::<Edge>()
    }
}

impl DroppedEndpoints {
    /// Adds the counts of `other` (read by another reader).
    fn add(&mut self, other: &DroppedEndpoints) {
        if self.empty_value.len() < other.empty_value.len() {
            self.empty_value.resize(other.empty_value.len(), 0);
        }
        for (total, count) in self.empty_value.iter_mut().zip(&other.empty_value) {
            *total += count;
        }
        self.empty_type += other.empty_type;
        self.empty_rows += other.empty_rows;
    }
}

/// Reads the edges relation into a [`Graph`]. Each input stream has an [`EdgeReader`], which
/// splits its rows into endpoints and hashes and buffers them by partition on its own thread; a
/// reader's full chunk is submitted here, where its identifiers are interned (by the
/// [`NodeTableBuilder`], in the background) and its edges appended. Type and source names are
/// numbered here for all readers. [`finish`](Self::finish) numbers the nodes and fills in the
/// edges' endpoints.
#[derive(Debug)]
pub(crate) struct GraphBuilder {
    parts: Mutex<GraphParts>,
    /// Readers expected, which share the chunk size.
    readers: usize,
}

/// What the readers of a [`GraphBuilder`] share.
#[derive(Debug)]
struct GraphParts {
    types: NameInterner,
    sources: NameInterner,
    nodes: NodeTableBuilder,
    /// The edges of the chunks submitted; their endpoints (`a`, `b`) are the node table's slots
    /// `2 × index` and `2 × index + 1`.
    edges: Vec<Edge>,
    dropped: DroppedEndpoints,
}

impl GraphParts {
    fn allocated_bytes(&self) -> usize {
        self.types.allocated_bytes()
            + self.sources.allocated_bytes()
            + self.nodes.allocated_bytes()
            + self.edges.capacity() * size_of::<Edge>()
    }
}

impl GraphBuilder {
    /// Identifiers are interned on up to `threads` threads; `readers` streams will be read at
    /// once.
    pub(crate) fn new(threads: usize, readers: usize) -> Self {
        Self::with_nodes(NodeTableBuilder::new(threads), readers)
    }

    /// Readers submitting every `chunk / readers` endpoints.
    #[cfg(test)]
    pub(crate) fn with_chunk(threads: usize, chunk: usize, readers: usize) -> Self {
        Self::with_nodes(NodeTableBuilder::with_chunk(threads, chunk), readers)
    }

    fn with_nodes(nodes: NodeTableBuilder, readers: usize) -> Self {
        Self {
            parts: Mutex::new(GraphParts {
                types: NameInterner::default(),
                sources: NameInterner::default(),
                nodes,
                edges: Vec::new(),
                dropped: DroppedEndpoints::default(),
            }),
            readers: readers.max(1),
        }
    }

    fn parts(&self) -> Result<MutexGuard<'_, GraphParts>> {
        self.parts.lock().map_err(|_| {
            DataFusionError::Internal("identity_stitch: a reader of the edges panicked".into())
        })
    }

    /// A reader for one input stream.
    pub(crate) fn reader(&self) -> Result<EdgeReader> {
        let chunk = self.parts()?.nodes.chunk(self.readers);
        Ok(EdgeReader {
            nodes: chunk,
            edges: Vec::new(),
            dropped: DroppedEndpoints::default(),
            type_keys: Vec::new(),
            source_keys: Vec::new(),
            type_ids: HashMap::new(),
            source_ids: HashMap::new(),
            submitted: 0,
        })
    }

    /// The id of the identifier type `id_type`, and whether it is new.
    fn intern_type(&self, id_type: &[u8]) -> Result<u32> {
        let mut parts = self.parts()?;
        let (type_id, new) = parts.types.intern(id_type)?;
        if new && parts.types.len() > MAX_ID_TYPES {
            return exec_err!(
                "identity_stitch: more than {MAX_ID_TYPES} distinct identifier types in a_type/b_type (the latest: {:?}); are the type and value columns swapped?",
                String::from_utf8_lossy(id_type)
            );
        }
        Ok(type_id)
    }

    fn intern_source(&self, source: &[u8]) -> Result<u32> {
        Ok(self.parts()?.sources.intern(source)?.0)
    }

    /// Interns the reader's chunk and appends its edges.
    fn submit(&self, reader: &mut EdgeReader) -> Result<()> {
        if reader.nodes.slots() != 2 * reader.edges.len() {
            return internal_err!(
                "identity_stitch: {} endpoint slots for {} edges in a chunk",
                reader.nodes.slots(),
                reader.edges.len()
            );
        }
        let mut parts = self.parts()?;
        parts.nodes.submit(&mut reader.nodes)?;
        parts.edges.append(&mut reader.edges);
        reader.submitted += 1;
        Ok(())
    }

    /// Distinct identifiers interned so far, for error messages.
    pub(crate) fn node_count(&self) -> usize {
        self.parts().map_or(0, |parts| parts.nodes.len())
    }

    pub(crate) fn edge_count(&self) -> usize {
        self.parts().map_or(0, |parts| parts.edges.len())
    }

    /// Heap bytes held (the readers' chunks not counted), for memory accounting.
    pub(crate) fn allocated_bytes(&self) -> Result<usize> {
        Ok(self.parts()?.allocated_bytes())
    }

    /// Resizes `reservation` to the bytes held (under the lock, so that readers resizing it
    /// one after the other leave the latest size).
    pub(crate) fn reserve(&self, reservation: &MemoryReservation) -> Result<()> {
        let parts = self.parts()?;
        reservation.try_resize(parts.allocated_bytes())
    }

    /// Bytes [`finish`](Self::finish) allocates beyond what is held (waits for the identifiers
    /// being interned in the background).
    pub(crate) fn finish_extra_bytes(&self) -> Result<usize> {
        self.parts()?.nodes.finish_extra_bytes()
    }

    /// Numbers the nodes and fills in the edges' endpoints; every reader must be
    /// [`done`](EdgeReader::done).
    pub(crate) fn finish(self) -> Result<Graph> {
        let parts = self.parts.into_inner().map_err(|_| {
            DataFusionError::Internal("identity_stitch: a reader of the edges panicked".into())
        })?;
        let threads = parts.nodes.threads();
        let InternedNodes {
            table,
            first_seen,
            last_seen,
            n_edges,
            endpoints,
        } = parts.nodes.finish()?;
        let mut dropped = parts.dropped;
        // A count for every type, also those with no dropped endpoint.
        dropped.empty_value.resize(parts.types.len(), 0);
        let mut edges = parts.edges;
        if endpoints.len() != 2 * edges.len() {
            return internal_err!(
                "identity_stitch: {} endpoint nodes for {} edges",
                endpoints.len(),
                edges.len()
            );
        }
        for (edge, ends) in edges.iter_mut().zip(endpoints.chunks_exact(2)) {
            (edge.a, edge.b) = (ends[0], ends[1]);
        }
        Ok(Graph {
            types: parts.types,
            sources: parts.sources,
            nodes: table,
            first_seen,
            last_seen,
            n_edges,
            edges,
            dropped,
            threads,
        })
    }
}

/// One input stream's side of a [`GraphBuilder`]: rows become edges and endpoints in a chunk of
/// their own, submitted when full and when the stream ends ([`done`](Self::done)).
#[derive(Debug)]
pub(crate) struct EdgeReader {
    nodes: NodeChunk,
    /// The chunk's edges; their endpoints are the chunk's slots `2 × index` (+ 1).
    edges: Vec<Edge>,
    dropped: DroppedEndpoints,
    /// The first few short type and source names by key: every row names two types and a
    /// source, and comparing two words beats hashing and comparing the bytes.
    type_keys: Vec<(ShortName, u32)>,
    source_keys: Vec<(ShortName, u32)>,
    /// Every other name seen, so that the shared numbering is asked once per name.
    type_ids: HashMap<Box<[u8]>, u32>,
    source_ids: HashMap<Box<[u8]>, u32>,
    /// Chunks submitted so far.
    submitted: usize,
}

/// Names kept in each of the reader's key caches; more types or sources than this are rare and
/// go through its maps.
const CACHED_NAMES: usize = 16;

impl EdgeReader {
    /// Adds every row of `batch`.
    pub(crate) fn add_batch(
        &mut self,
        graph: &GraphBuilder,
        columns: &EdgeColumns,
        batch: &RecordBatch,
    ) -> Result<()> {
        let [a_type, a_value, b_type, b_value, ts, source] = columns.indices;
        let name = |i: usize| EDGE_COLUMNS[i];
        let a_type = StringColumn::try_new(batch.column(a_type), name(0))?;
        let a_value = StringColumn::try_new(batch.column(a_value), name(1))?;
        let b_type = StringColumn::try_new(batch.column(b_type), name(2))?;
        let b_value = StringColumn::try_new(batch.column(b_value), name(3))?;
        let ts = TimestampColumn::try_new(batch.column(ts))?;
        let source = StringColumn::try_new(batch.column(source), name(5))?;
        self.edges.reserve(batch.num_rows());
        for row in 0..batch.num_rows() {
            self.add_row(
                graph,
                (a_type.get(row), a_value.get(row)),
                (b_type.get(row), b_value.get(row)),
                ts.get(row)?,
                source.get(row),
            )?;
        }
        Ok(())
    }

    /// Adds one row: `(type, value)` of both endpoints, its timestamp (µs) and source.
    pub(crate) fn add_row(
        &mut self,
        graph: &GraphBuilder,
        a: (Option<&[u8]>, Option<&[u8]>),
        b: (Option<&[u8]>, Option<&[u8]>),
        ts: Option<i64>,
        source: Option<&[u8]>,
    ) -> Result<()> {
        let absent = |(id_type, value): (Option<&[u8]>, Option<&[u8]>)| {
            id_type.is_none_or(is_blank) && value.is_none_or(is_blank)
        };
        let empty_row = absent(a) && absent(b);
        let a = self.endpoint(graph, a.0, a.1)?;
        let b = self.endpoint(graph, b.0, b.1)?;
        let ts = ts.unwrap_or(NO_TS);
        match (a, b) {
            (Some(a), Some(b)) if a != b => {
                let source = match source {
                    Some(source) => self.intern_source(graph, source)?,
                    None => NO_SOURCE,
                };
                let slot = 2 * self.edges.len();
                self.edges.push(Edge {
                    ts,
                    a: 0,
                    b: 0,
                    source,
                });
                self.nodes.push(a.0, a.1, ts, Some(slot))?;
                self.nodes.push(b.0, b.1, ts, Some(slot + 1))?;
            }
            (Some((id_type, value)), _) | (None, Some((id_type, value))) => {
                self.nodes.push(id_type, value, ts, None)?
            }
            (None, None) if empty_row => self.dropped.empty_rows += 1,
            // Both endpoints dropped: already counted per endpoint.
            (None, None) => {}
        }
        // Chunks end between rows, so an edge's two endpoints are always in one.
        if self.nodes.is_full() {
            graph.submit(self)?;
        }
        Ok(())
    }

    /// The type id and value of one endpoint; `None` when it is absent or dropped (counted).
    fn endpoint<'v>(
        &mut self,
        graph: &GraphBuilder,
        id_type: Option<&[u8]>,
        value: Option<&'v [u8]>,
    ) -> Result<Option<(u32, &'v [u8])>> {
        let id_type = id_type.filter(|t| !is_blank(t));
        let value = value.filter(|v| !is_blank(v));
        match (id_type, value) {
            (Some(id_type), Some(value)) => Ok(Some((self.intern_type(graph, id_type)?, value))),
            (Some(id_type), None) => {
                let type_id = self.intern_type(graph, id_type)? as usize;
                if self.dropped.empty_value.len() <= type_id {
                    self.dropped.empty_value.resize(type_id + 1, 0);
                }
                self.dropped.empty_value[type_id] += 1;
                Ok(None)
            }
            (None, Some(_)) => {
                self.dropped.empty_type += 1;
                Ok(None)
            }
            (None, None) => Ok(None),
        }
    }

    fn intern_type(&mut self, graph: &GraphBuilder, id_type: &[u8]) -> Result<u32> {
        name_id(&mut self.type_keys, &mut self.type_ids, id_type, |name| {
            graph.intern_type(name)
        })
    }

    fn intern_source(&mut self, graph: &GraphBuilder, source: &[u8]) -> Result<u32> {
        name_id(
            &mut self.source_keys,
            &mut self.source_ids,
            source,
            |name| graph.intern_source(name),
        )
    }

    /// Heap bytes held by the chunk being filled, for memory accounting.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.nodes.allocated_bytes() + self.edges.capacity() * size_of::<Edge>()
    }

    /// Chunks submitted so far.
    pub(crate) fn submitted(&self) -> usize {
        self.submitted
    }

    /// Submits what is left and the reader's drop counts.
    pub(crate) fn done(mut self, graph: &GraphBuilder) -> Result<()> {
        graph.submit(&mut self)?;
        graph.parts()?.dropped.add(&self.dropped);
        Ok(())
    }
}

/// The id of a type or source name: from the reader's key cache, its map, or (once per name and
/// reader) the numbering shared by all readers.
fn name_id(
    keys: &mut Vec<(ShortName, u32)>,
    ids: &mut HashMap<Box<[u8]>, u32>,
    name: &[u8],
    shared: impl FnOnce(&[u8]) -> Result<u32>,
) -> Result<u32> {
    let key = short_name_key(name);
    if let Some(key) = key
        && let Some(&(_, id)) = keys.iter().find(|(k, _)| *k == key)
    {
        return Ok(id);
    }
    let id = match ids.get(name) {
        Some(&id) => id,
        None => {
            let id = shared(name)?;
            ids.insert(name.into(), id);
            id
        }
    };
    if let Some(key) = key
        && keys.len() < CACHED_NAMES
    {
        keys.push((key, id));
    }
    Ok(id)
}

/// NULL, empty and whitespace-only values identify nobody.
pub(crate) fn is_blank(value: &[u8]) -> bool {
    value.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, TimeUnit};

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn edge_columns_are_found_by_name_in_any_order() -> Result<()> {
        let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        let dict = DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8));
        let s = schema(&[
            ("source", DataType::Utf8View),
            ("ts", ts),
            ("b_value", DataType::Null),
            ("b_type", DataType::Null),
            ("a_value", DataType::LargeUtf8),
            ("a_type", dict),
            ("extra", DataType::Int32),
        ]);
        assert_eq!(EdgeColumns::try_new(&s)?.indices, [5, 4, 3, 2, 1, 0]);
        Ok(())
    }

    #[test]
    fn missing_or_mistyped_columns_are_plan_errors() {
        let s = schema(&[("a_type", DataType::Utf8), ("a_value", DataType::Utf8)]);
        let err = EdgeColumns::try_new(&s).unwrap_err().to_string();
        assert!(err.contains("Error during planning"), "{err}");
        assert!(err.contains("has no column 'b_type'"), "{err}");
        assert!(err.contains("has: a_type Utf8, a_value Utf8"), "{err}");

        let mut fields: Vec<(&str, DataType)> =
            EDGE_COLUMNS.iter().map(|n| (*n, DataType::Utf8)).collect();
        let err = EdgeColumns::try_new(&schema(&fields))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column 'ts' of the edges relation must be a timestamp, got Utf8"),
            "{err}"
        );
        fields[4].1 = DataType::Timestamp(TimeUnit::Second, None);
        fields[1].1 = DataType::Int64;
        let err = EdgeColumns::try_new(&schema(&fields))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column 'a_value' of the edges relation must be a string, got Int64"),
            "{err}"
        );
    }

    #[test]
    fn rows_become_nodes_edges_and_drop_counts() -> Result<()> {
        let builder = GraphBuilder::new(1, 1);
        let mut graph = builder.reader()?;
        let e = |s: &'static str| Some(s.as_bytes());
        graph.add_row(
            &builder,
            (e("email"), e("a@x")),
            (e("phone"), e("+1")),
            Some(10),
            e("web"),
        )?;
        graph.add_row(
            &builder,
            (e("email"), e("a@x")),
            (None, None),
            Some(5),
            None,
        )?;
        graph.add_row(
            &builder,
            (e("email"), e("a@x")),
            (e("email"), e("a@x")),
            Some(50),
            e("web"),
        )?;
        graph.add_row(
            &builder,
            (e("email"), e(" ")),
            (e("phone"), e("+1")),
            None,
            e("pos"),
        )?;
        graph.add_row(&builder, (None, e("v")), (None, None), None, None)?;
        graph.add_row(&builder, (None, None), (None, None), None, None)?;
        graph.done(&builder)?;
        let graph = builder.finish()?;
        assert_eq!(graph.node_count(), 2);
        let node = |id_type: &str, value: &str| {
            let type_id = graph.types.get(id_type.as_bytes()).unwrap();
            graph.nodes.get(type_id, value.as_bytes()).unwrap()
        };
        let (email, phone) = (node("email", "a@x"), node("phone", "+1"));
        assert_eq!(
            graph.edges,
            vec![Edge {
                ts: 10,
                a: email,
                b: phone,
                source: 0
            }]
        );
        let (email, phone) = (email as usize, phone as usize);
        assert_eq!((graph.first_seen[email], graph.first_seen[phone]), (5, 10));
        assert_eq!((graph.last_seen[email], graph.last_seen[phone]), (50, 10));
        assert_eq!(graph.n_edges, vec![1, 1]);
        assert_eq!(graph.dropped.empty_value, vec![1, 0]);
        assert_eq!(graph.dropped.empty_type, 1);
        assert_eq!(graph.dropped.empty_rows, 1);
        Ok(())
    }

    #[test]
    fn thousands_of_types_are_an_error() -> Result<()> {
        let builder = GraphBuilder::new(1, 1);
        let mut graph = builder.reader()?;
        for i in 0..MAX_ID_TYPES {
            let id_type = format!("t{i}");
            graph.add_row(
                &builder,
                (Some(id_type.as_bytes()), Some(b"v")),
                (None, None),
                None,
                None,
            )?;
        }
        let err = graph
            .add_row(
                &builder,
                (Some(b"ann@x.ru"), Some(b"email")),
                (None, None),
                None,
                None,
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("are the type and value columns swapped?"),
            "{err}"
        );
        Ok(())
    }
}
