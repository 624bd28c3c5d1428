//! The identity graph read from the edges relation: interned identifiers with their first/last
//! sighting and edge count, the edges as node-id pairs, and what was dropped on the way.

use std::sync::{Mutex, MutexGuard};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::{DataFusionError, Result, exec_err, internal_err, plan_err};
use datafusion::execution::memory_pool::MemoryReservation;

use super::interner::{NameCodes, NameIds, NameInterner, StringColumn, TimestampColumn};
use super::node_table::{InternedNodes, NodeChunk, NodeTable, NodeTableBuilder};
use super::parallel::fill_parallel;

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
            type_ids: NameIds::default(),
            source_ids: NameIds::default(),
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
        fill_parallel(&mut edges, 1, threads, &|first, part| {
            for (edge, ends) in part.iter_mut().zip(endpoints[2 * first..].chunks_exact(2)) {
                (edge.a, edge.b) = (ends[0], ends[1]);
            }
        });
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
    /// The type and source names seen, so that the shared numbering is asked once per name.
    type_ids: NameIds<Box<[u8]>>,
    source_ids: NameIds<Box<[u8]>>,
    /// Chunks submitted so far.
    submitted: usize,
}

impl EdgeReader {
    /// Adds every row of `batch`, as [`add_row`](Self::add_row) would one after the other.
    ///
    /// The columns are read a batch at a time: values as byte slices, timestamps converted,
    /// types and sources as per-batch codes resolved to ids once per name, so the loop over the
    /// rows has no per-value dispatch on the encoding.
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
        let rows = batch.num_rows();
        let NameCodes {
            codes: a_types,
            names: mut a_type_names,
        } = NameCodes::new(&a_type, true);
        let NameCodes {
            codes: b_types,
            names: mut b_type_names,
        } = NameCodes::new(&b_type, true);
        // A blank source is a name like any other; only NULL is no source.
        let NameCodes {
            codes: sources,
            names: mut source_names,
        } = NameCodes::new(&source, false);
        let (a_values, b_values) = (a_value.rows(), b_value.rows());
        let (micros, out_of_range) = ts.micros(rows);
        let lengths = [
            a_types.len(),
            a_values.len(),
            b_types.len(),
            b_values.len(),
            micros.len(),
            sources.len(),
        ];
        if lengths.iter().any(|&len| len != rows) {
            return internal_err!(
                "identity_stitch: edge columns of {lengths:?} rows in a batch of {rows}"
            );
        }
        self.edges.reserve(rows);
        let rows = a_types
            .iter()
            .zip(&a_values)
            .zip(b_types.iter().zip(&b_values))
            .zip(micros.iter().zip(&sources))
            // Rows up to the first timestamp out of range, which is reported below.
            .take(out_of_range.unwrap_or(rows));
        for (((&a_type, &a_value), (&b_type, &b_value)), (&ts, &source)) in rows {
            // Types are resolved in the order `add_row` interns them: the first endpoint's, then
            // the second's.
            let a_type = a_type_names.id(a_type, |name| self.type_id(graph, name))?;
            let b_type = b_type_names.id(b_type, |name| self.type_id(graph, name))?;
            self.add_endpoints(
                graph,
                (a_type, non_blank(a_value)),
                (b_type, non_blank(b_value)),
                ts,
                |reader| {
                    Ok(source_names
                        .id(source, |name| reader.source_id(graph, name))?
                        .unwrap_or(NO_SOURCE))
                },
            )?;
        }
        if let Some(row) = out_of_range {
            ts.get(row)?;
            return internal_err!(
                "identity_stitch: ts of row {row} converts but was found out of range"
            );
        }
        Ok(())
    }

    /// Adds one row: `(type, value)` of both endpoints, its timestamp (µs) and source; what
    /// [`add_batch`](Self::add_batch) does for each of its rows.
    #[cfg(test)]
    pub(crate) fn add_row(
        &mut self,
        graph: &GraphBuilder,
        a: (Option<&[u8]>, Option<&[u8]>),
        b: (Option<&[u8]>, Option<&[u8]>),
        ts: Option<i64>,
        source: Option<&[u8]>,
    ) -> Result<()> {
        let mut type_id = |id_type: Option<&[u8]>| match non_blank(id_type) {
            Some(id_type) => self.type_id(graph, id_type).map(Some),
            None => Ok(None),
        };
        // The first endpoint's type is interned first.
        let a_type = type_id(a.0)?;
        let b_type = type_id(b.0)?;
        let (a, b) = ((a_type, non_blank(a.1)), (b_type, non_blank(b.1)));
        self.add_endpoints(graph, a, b, ts.unwrap_or(NO_TS), |reader| match source {
            Some(source) => reader.source_id(graph, source),
            None => Ok(NO_SOURCE),
        })
    }

    /// Adds one row given the type id and value of both endpoints (`None` when NULL or blank),
    /// its timestamp (µs, [`NO_TS`] when unknown) and its source id (asked only for an edge).
    #[inline]
    fn add_endpoints(
        &mut self,
        graph: &GraphBuilder,
        a: (Option<u32>, Option<&[u8]>),
        b: (Option<u32>, Option<&[u8]>),
        ts: i64,
        source: impl FnOnce(&mut Self) -> Result<u32>,
    ) -> Result<()> {
        let empty_row = a == (None, None) && b == (None, None);
        let a = self.endpoint(a);
        let b = self.endpoint(b);
        match (a, b) {
            (Some(a), Some(b)) if a != b => {
                let source = source(self)?;
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

    /// One endpoint, `None` when it is absent or dropped (counted).
    #[inline]
    fn endpoint<'v>(
        &mut self,
        endpoint: (Option<u32>, Option<&'v [u8]>),
    ) -> Option<(u32, &'v [u8])> {
        match endpoint {
            (Some(type_id), Some(value)) => Some((type_id, value)),
            (Some(type_id), None) => {
                let type_id = type_id as usize;
                if self.dropped.empty_value.len() <= type_id {
                    self.dropped.empty_value.resize(type_id + 1, 0);
                }
                self.dropped.empty_value[type_id] += 1;
                None
            }
            (None, Some(_)) => {
                self.dropped.empty_type += 1;
                None
            }
            (None, None) => None,
        }
    }

    /// The id of an identifier type: from the reader's names, or (once per name and reader)
    /// the numbering shared by all readers.
    fn type_id(&mut self, graph: &GraphBuilder, id_type: &[u8]) -> Result<u32> {
        self.type_ids
            .get_or_insert(id_type, Box::from, |name| graph.intern_type(name))
    }

    fn source_id(&mut self, graph: &GraphBuilder, source: &[u8]) -> Result<u32> {
        self.source_ids
            .get_or_insert(source, Box::from, |name| graph.intern_source(name))
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

/// `value` unless it is blank.
fn non_blank(value: Option<&[u8]>) -> Option<&[u8]> {
    value.filter(|value| !is_blank(value))
}

/// NULL, empty and whitespace-only values identify nobody.
pub(crate) fn is_blank(value: &[u8]) -> bool {
    value.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_harness::all_encodings;
    use datafusion::arrow::array::{
        ArrayRef, DictionaryArray, NullArray, StringArray, StringViewArray,
        TimestampMicrosecondArray, TimestampSecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Int32Type, TimeUnit};
    use std::sync::Arc;

    /// `[a_type, a_value, b_type, b_value]`, ts (µs) and source of one edges row.
    type Row<'a> = ([Option<&'a str>; 4], Option<i64>, Option<&'a str>);

    fn bytes(value: Option<&str>) -> Option<&[u8]> {
        value.map(str::as_bytes)
    }

    /// Rows of every kind: edges, self-links, sightings of either side, blank and NULL types and
    /// values, blank and NULL sources, names short and long, a type first seen on the `b` side.
    fn mixed_rows() -> Vec<Row<'static>> {
        let long_type = Some("loyalty_card_number");
        let long_source = Some("a source name longer than twelve bytes");
        vec![
            (
                [Some("email"), Some("a@x"), Some("phone"), Some("+1")],
                Some(10),
                Some("web"),
            ),
            ([Some("email"), Some("a@x"), None, None], Some(5), None),
            (
                [Some("email"), Some("a@x"), Some("email"), Some("a@x")],
                Some(50),
                Some("web"),
            ),
            (
                [Some("email"), Some(" "), Some("phone"), Some("+1")],
                None,
                Some("pos"),
            ),
            ([None, Some("v"), None, None], None, None),
            ([None, None, None, None], Some(1), Some("web")),
            ([Some(""), Some(""), Some(" "), None], None, None),
            (
                [Some("phone"), Some("+1"), Some("card"), Some("4111")],
                Some(7),
                Some(""),
            ),
            (
                [Some("card"), Some("4111"), Some("email"), Some("b@y")],
                Some(8),
                None,
            ),
            (
                [long_type, Some("123"), Some("email"), Some("a@x")],
                Some(9),
                long_source,
            ),
            (
                [Some("email"), Some(""), Some("phone"), Some(" ")],
                Some(2),
                Some("web"),
            ),
            ([Some("   "), Some("x"), None, None], None, Some("web")),
            (
                [Some("phone"), Some("+2"), Some("email"), Some("a@x")],
                Some(-3),
                Some("web"),
            ),
            (
                [None, None, Some("phone"), Some("+3")],
                Some(1),
                Some("pos"),
            ),
            (
                [Some("email"), Some("c@z"), Some("device"), Some("d1")],
                Some(4),
                long_source,
            ),
            (
                [Some("device"), Some("d1"), Some("email"), Some("c@z")],
                Some(3),
                Some("pos"),
            ),
            (
                [Some("card"), None, Some("cookie"), Some("k")],
                Some(6),
                Some("web"),
            ),
        ]
    }

    /// The rows added one by one with [`EdgeReader::add_row`].
    fn graph_of_rows(rows: &[Row<'_>], chunk: usize) -> Result<Graph> {
        let builder = GraphBuilder::with_chunk(1, chunk, 1);
        let mut reader = builder.reader()?;
        for &([a_type, a_value, b_type, b_value], ts, source) in rows {
            reader.add_row(
                &builder,
                (bytes(a_type), bytes(a_value)),
                (bytes(b_type), bytes(b_value)),
                ts,
                bytes(source),
            )?;
        }
        reader.done(&builder)?;
        builder.finish()
    }

    /// The batches added with [`EdgeReader::add_batch`].
    fn graph_of_batches(batches: &[RecordBatch], chunk: usize) -> Result<Graph> {
        let builder = GraphBuilder::with_chunk(1, chunk, 1);
        let mut reader = builder.reader()?;
        for batch in batches {
            let columns = EdgeColumns::try_new(&batch.schema())?;
            reader.add_batch(&builder, &columns, batch)?;
        }
        reader.done(&builder)?;
        builder.finish()
    }

    /// `rows` as a batch, string column `c` (a_type, a_value, b_type, b_value, source) in the
    /// encoding `encoding(c)` of [`all_encodings`]; the columns in reverse order.
    fn batch_of<'a>(rows: &[Row<'a>], encoding: impl Fn(usize) -> usize) -> Result<RecordBatch> {
        let string_column = |c: usize, value: &dyn Fn(&Row<'a>) -> Option<&'a str>| {
            let values: Vec<_> = rows.iter().map(value).collect();
            all_encodings(&values).swap_remove(encoding(c))
        };
        let ts: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|row| row.1).collect::<Vec<_>>())
                .with_timezone("UTC"),
        );
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("source", string_column(4, &|row| row.2)),
            ("ts", ts),
            ("b_value", string_column(3, &|row| row.0[3])),
            ("b_type", string_column(2, &|row| row.0[2])),
            ("a_value", string_column(1, &|row| row.0[1])),
            ("a_type", string_column(0, &|row| row.0[0])),
        ];
        Ok(RecordBatch::try_from_iter_with_nullable(
            columns.into_iter().map(|(name, array)| (name, array, true)),
        )?)
    }

    /// Everything a graph holds: type and source names, the nodes in order with their type,
    /// value, first/last sighting and edge count, the edges and the drop counts.
    #[allow(clippy::type_complexity)]
    fn snapshot(
        graph: &Graph,
    ) -> (
        Vec<String>,
        Vec<String>,
        Vec<(u32, String, i64, i64, u32)>,
        Vec<Edge>,
        (Vec<u64>, u64, u64),
    ) {
        let nodes = (0..graph.node_count() as u32)
            .map(|node| {
                let i = node as usize;
                (
                    graph.nodes.type_of(node),
                    String::from_utf8_lossy(graph.nodes.value(node)).into_owned(),
                    graph.first_seen[i],
                    graph.last_seen[i],
                    graph.n_edges[i],
                )
            })
            .collect();
        let dropped = &graph.dropped;
        (
            graph.types.names().to_vec(),
            graph.sources.names().to_vec(),
            nodes,
            graph.edges.clone(),
            (
                dropped.empty_value.clone(),
                dropped.empty_type,
                dropped.empty_rows,
            ),
        )
    }

    #[test]
    fn batches_of_every_encoding_add_what_their_rows_add() -> Result<()> {
        let rows = mixed_rows();
        for chunk in [4, 1 << 16] {
            let expected = snapshot(&graph_of_rows(&rows, chunk)?);
            assert_eq!(expected.2.len(), 10, "nodes: {:?}", expected.2);
            assert_eq!(expected.4, (vec![2, 1, 1, 0, 0, 0], 2, 2));
            let encodings = all_encodings(&[]).len();
            for encoding in 0..encodings {
                // Every column in one encoding, and each column in another.
                for mixed in [false, true] {
                    let batch = batch_of(&rows, |c| {
                        if mixed {
                            (encoding + c) % encodings
                        } else {
                            encoding
                        }
                    })?;
                    let whole = snapshot(&graph_of_batches(std::slice::from_ref(&batch), chunk)?);
                    assert_eq!(whole, expected, "encoding {encoding}, mixed {mixed}");
                    // Sliced batches, split between rows of the same names.
                    let split = [
                        batch.slice(0, 7),
                        batch.slice(7, 1),
                        batch.slice(8, rows.len() - 8),
                    ];
                    let split = snapshot(&graph_of_batches(&split, chunk)?);
                    assert_eq!(split, expected, "split, encoding {encoding}, mixed {mixed}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn null_typed_columns_are_all_null() -> Result<()> {
        let rows: Vec<Row<'_>> = mixed_rows()
            .into_iter()
            .map(|([a_type, a_value, _, _], _, source)| {
                ([a_type, a_value, None, None], None, source)
            })
            .collect();
        let expected = snapshot(&graph_of_rows(&rows, 4)?);
        let batch = batch_of(&rows, |_| 0)?;
        let nulls: ArrayRef = Arc::new(NullArray::new(rows.len()));
        let (schema, mut columns, _) = batch.into_parts();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        for (i, field) in fields.iter_mut().enumerate() {
            if ["b_type", "b_value", "ts"].contains(&field.name().as_str()) {
                *field = Field::new(field.name(), DataType::Null, true);
                columns[i] = Arc::clone(&nulls);
            }
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        assert_eq!(snapshot(&graph_of_batches(&[batch], 4)?), expected);
        Ok(())
    }

    #[test]
    fn a_timestamp_out_of_range_stops_the_batch_at_its_row() -> Result<()> {
        let rows = mixed_rows();
        let batch = batch_of(&rows, |c| c % 3)?;
        let mut seconds: Vec<Option<i64>> = rows.iter().map(|row| row.1.map(|ts| ts * 7)).collect();
        seconds[5] = Some(i64::MAX / 10);
        seconds[9] = Some(i64::MAX);
        let ts_index = batch.schema().index_of("ts")?;
        let mut columns = batch.columns().to_vec();
        columns[ts_index] = Arc::new(TimestampSecondArray::from(seconds));
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[ts_index] = Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), true);
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;

        let builder = GraphBuilder::with_chunk(1, 4, 1);
        let mut reader = builder.reader()?;
        let err = reader
            .add_batch(&builder, &EdgeColumns::try_new(&batch.schema())?, &batch)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Execution error: identity_stitch: ts value {} (Second) is out of the supported range",
                i64::MAX / 10
            )
        );
        reader.done(&builder)?;
        // The rows before it were added, as row by row.
        let before: Vec<Row<'_>> = rows[..5]
            .iter()
            .map(|&(names, ts, source)| (names, ts.map(|ts| ts * 7_000_000), source))
            .collect();
        assert_eq!(
            snapshot(&builder.finish()?),
            snapshot(&graph_of_rows(&before, 4)?)
        );
        Ok(())
    }

    #[test]
    fn thousands_of_types_in_a_batch_are_an_error() -> Result<()> {
        let types: Vec<String> = (0..=MAX_ID_TYPES).map(|i| format!("t{i}")).collect();
        let types: Vec<&str> = types.iter().map(String::as_str).collect();
        let dictionary: DictionaryArray<Int32Type> = types.iter().copied().collect();
        let encodings: [ArrayRef; 3] = [
            Arc::new(StringArray::from(types.clone())),
            Arc::new(StringViewArray::from(types.clone())),
            Arc::new(dictionary),
        ];
        let nulls: ArrayRef = Arc::new(NullArray::new(types.len()));
        let values: ArrayRef = Arc::new(StringArray::from(vec!["v"; types.len()]));
        for b_type in encodings {
            let batch = RecordBatch::try_from_iter([
                ("a_type", Arc::clone(&nulls)),
                ("a_value", Arc::clone(&nulls)),
                ("b_type", b_type),
                ("b_value", Arc::clone(&values)),
                ("ts", Arc::clone(&nulls)),
                ("source", Arc::clone(&nulls)),
            ])?;
            let builder = GraphBuilder::new(1, 1);
            let mut reader = builder.reader()?;
            let columns = EdgeColumns::try_new(&batch.schema())?;
            reader.add_batch(&builder, &columns, &batch.slice(0, MAX_ID_TYPES))?;
            let err = reader
                .add_batch(&builder, &columns, &batch.slice(MAX_ID_TYPES, 1))
                .unwrap_err();
            assert!(
                err.to_string().contains(&format!(
                    "(the latest: \"t{MAX_ID_TYPES}\"); are the type and value columns swapped?"
                )),
                "{err}"
            );
        }
        Ok(())
    }

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
