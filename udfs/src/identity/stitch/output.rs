//! The relations `identity_stitch` returns (identity map or audit), built in batches.

use std::ops::Range;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BinaryBuilder, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::{Result, internal_err};

use super::anchor::CUSTOMER_ID_BYTES;
use super::graph::{Graph, NO_TS};
use super::incremental::{IncrementalIds, PreviousMap};
use super::options::OutputSelector;
use super::resolve::{NodeStatus, Resolution};

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `id_type, id_value, customer_id, first_seen, last_seen, n_edges, status`.
pub static MAP_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id_type", DataType::Utf8, false),
        Field::new("id_value", DataType::Utf8, false),
        // NULL for blocked identifiers: they belong to no customer.
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("first_seen", timestamp(), true),
        Field::new("last_seen", timestamp(), true),
        Field::new("n_edges", DataType::Int64, false),
        Field::new("status", DataType::Utf8, false),
    ]))
});

/// `rule, id_type, id_value, action, evidence`.
pub static AUDIT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("rule", DataType::Utf8, false),
        Field::new("id_type", DataType::Utf8, true),
        Field::new("id_value", DataType::Utf8, true),
        Field::new("action", DataType::Utf8, false),
        Field::new("evidence", DataType::Utf8, false),
    ]))
});

/// `run_id, customer_id, event, merged_into, at`.
pub static CHANGES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("event", DataType::Utf8, false),
        Field::new("merged_into", DataType::Utf8, true),
        Field::new("at", timestamp(), true),
    ]))
});

/// Node values and hex ids as text: they are UTF-8 (read from Arrow string arrays, or hex), which
/// is checked (once per column of a batch) rather than assumed — much cheaper than a lossy
/// conversion.
fn utf8(bytes: BinaryArray) -> Result<StringArray> {
    StringArray::try_from_binary(bytes).map_err(|e| {
        datafusion::common::DataFusionError::Internal(format!(
            "identity_stitch: an identifier value is not UTF-8: {e}"
        ))
    })
}

/// Lower-case hex digits of every byte value, two per byte.
static HEX_PAIRS: LazyLock<[[u8; 2]; 256]> = LazyLock::new(|| {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    std::array::from_fn(|byte| [DIGITS[byte >> 4], DIGITS[byte & 0xf]])
});

/// A customer id in hex, as `hex::encode` writes it; by table, as it runs once per output row.
fn hex_customer_id(id: &[u8; CUSTOMER_ID_BYTES]) -> [u8; 2 * CUSTOMER_ID_BYTES] {
    let pairs = &*HEX_PAIRS;
    let mut hex = [0u8; 2 * CUSTOMER_ID_BYTES];
    for (out, byte) in hex.chunks_exact_mut(2).zip(id) {
        out.copy_from_slice(&pairs[usize::from(*byte)]);
    }
    hex
}

pub(crate) fn output_schema(output: OutputSelector) -> SchemaRef {
    match output {
        OutputSelector::Map => Arc::clone(&MAP_SCHEMA),
        OutputSelector::Audit => Arc::clone(&AUDIT_SCHEMA),
        OutputSelector::Changes => Arc::clone(&CHANGES_SCHEMA),
    }
}

/// The outcome of one `identity_stitch` run, from which the output is cut.
#[derive(Debug)]
pub(crate) struct Stitched {
    pub graph: Graph,
    pub resolution: Resolution,
    /// The previous identity map (empty without the `previous` option).
    pub previous: PreviousMap,
    /// The incremental ids and change log, for the `changes` output or a `previous` map.
    pub ids: Option<IncrementalIds>,
    pub run_id: String,
}

/// Produces the output batches one at a time, so the whole output is never materialised.
pub(crate) struct OutputBatches {
    graph: Graph,
    resolution: Resolution,
    previous: PreviousMap,
    ids: Option<IncrementalIds>,
    run_id: String,
    output: OutputSelector,
    projection: Option<Vec<usize>>,
    batch_size: usize,
    next: usize,
    /// `status` text per blocklist rule and per quarantining type, built once.
    blocked_status: Vec<String>,
    quarantined_status: Vec<String>,
}

impl OutputBatches {
    pub(crate) fn new(
        stitched: Stitched,
        output: OutputSelector,
        projection: Option<Vec<usize>>,
        batch_size: usize,
    ) -> Self {
        let Stitched {
            graph,
            resolution,
            previous,
            ids,
            run_id,
        } = stitched;
        let blocklist = &resolution.blocklist;
        let blocked_status = (0..blocklist.rule_count() as u32)
            .map(|rule| format!("blocked:{}", blocklist.rule_name(rule)))
            .collect();
        let quarantined_status = graph
            .types
            .names()
            .iter()
            .map(|t| format!("quarantined:degree_limit:{t}"))
            .collect();
        Self {
            graph,
            resolution,
            previous,
            ids,
            run_id,
            output,
            projection,
            batch_size: batch_size.max(1),
            next: 0,
            blocked_status,
            quarantined_status,
        }
    }

    fn rows(&self) -> usize {
        match self.output {
            OutputSelector::Map => self.graph.node_count(),
            OutputSelector::Audit => self.resolution.audit.len(),
            OutputSelector::Changes => self.ids.as_ref().map_or(0, |ids| ids.changes.len()),
        }
    }

    /// Rows `start..end` of the map, with only the projected columns: each is built on its own,
    /// so that a query reading a few columns (or none, as `count(*)`) pays only for those.
    fn map_batch(&self, start: usize, end: usize) -> Result<RecordBatch> {
        let all: Vec<usize>;
        let columns = match &self.projection {
            Some(projection) => projection,
            None => {
                all = (0..MAP_SCHEMA.fields().len()).collect();
                &all
            }
        };
        let schema = Arc::new(MAP_SCHEMA.project(columns)?);
        let arrays = columns
            .iter()
            .map(|&column| self.map_column(column, start as u32..end as u32))
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(end - start));
        Ok(RecordBatch::try_new_with_options(schema, arrays, &options)?)
    }

    /// Column `column` of [`MAP_SCHEMA`] for `nodes`.
    fn map_column(&self, column: usize, nodes: Range<u32>) -> Result<ArrayRef> {
        let rows = nodes.len();
        let graph = &self.graph;
        // Values and ids are gathered as bytes and checked as UTF-8 once per column, not per row.
        Ok(match column {
            0 => {
                let mut id_type = StringBuilder::with_capacity(rows, rows * 8);
                for node in nodes {
                    id_type.append_value(graph.types.name(graph.nodes.type_of(node)));
                }
                Arc::new(id_type.finish())
            }
            1 => {
                let mut id_value = BinaryBuilder::with_capacity(rows, rows * 24);
                for node in nodes {
                    id_value.append_value(graph.nodes.value(node));
                }
                Arc::new(utf8(id_value.finish())?)
            }
            2 => {
                let mut customer_id =
                    BinaryBuilder::with_capacity(rows, rows * 2 * CUSTOMER_ID_BYTES);
                for node in nodes {
                    let kept = self
                        .ids
                        .as_ref()
                        .zip(self.resolution.component_of(node))
                        .and_then(|(ids, component)| ids.kept(component));
                    match (kept, self.resolution.customer_id(node)) {
                        (Some(customer), _) => {
                            customer_id.append_value(self.previous.customer_name(customer));
                        }
                        (None, Some(id)) => customer_id.append_value(hex_customer_id(id)),
                        (None, None) => customer_id.append_null(),
                    }
                }
                Arc::new(utf8(customer_id.finish())?)
            }
            3 => {
                let mut first_seen = TimestampMicrosecondBuilder::with_capacity(rows);
                for node in nodes {
                    let first = graph.first_seen[node as usize];
                    first_seen.append_option((first != NO_TS).then_some(first));
                }
                Arc::new(first_seen.finish().with_timezone("UTC"))
            }
            4 => {
                let mut last_seen = TimestampMicrosecondBuilder::with_capacity(rows);
                for node in nodes {
                    let last = graph.last_seen[node as usize];
                    last_seen.append_option((last != i64::MIN).then_some(last));
                }
                Arc::new(last_seen.finish().with_timezone("UTC"))
            }
            5 => Arc::new(Int64Array::from_iter_values(
                nodes.map(|node| i64::from(graph.n_edges[node as usize])),
            )),
            6 => {
                let mut status = StringBuilder::with_capacity(rows, rows * 8);
                for node in nodes {
                    status.append_value(match self.resolution.status[node as usize] {
                        NodeStatus::Linked => "linked",
                        NodeStatus::Blocked(rule) => &self.blocked_status[rule as usize],
                        NodeStatus::Quarantined(t) => &self.quarantined_status[t as usize],
                        NodeStatus::Held => "quarantined:max_component_size",
                    });
                }
                Arc::new(status.finish())
            }
            other => {
                return internal_err!("identity_stitch: the map has no column {other}");
            }
        })
    }

    fn audit_batch(&self, start: usize, end: usize) -> Result<RecordBatch> {
        let rows = &self.resolution.audit[start..end];
        let mut rule = StringBuilder::new();
        let mut id_type = StringBuilder::new();
        let mut id_value = StringBuilder::new();
        let mut action = StringBuilder::new();
        let mut evidence = StringBuilder::new();
        for row in rows {
            rule.append_value(&row.rule);
            id_type.append_option(row.id_type.as_deref());
            id_value.append_option(row.id_value.as_deref());
            action.append_value(row.action);
            evidence.append_value(&row.evidence);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(rule.finish()),
            Arc::new(id_type.finish()),
            Arc::new(id_value.finish()),
            Arc::new(action.finish()),
            Arc::new(evidence.finish()),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&AUDIT_SCHEMA), columns)?)
    }
}

impl OutputBatches {
    fn changes_batch(&self, start: usize, end: usize) -> Result<RecordBatch> {
        let rows = match &self.ids {
            Some(ids) => &ids.changes[start..end],
            None => &[],
        };
        let mut run_id = StringBuilder::with_capacity(rows.len(), rows.len() * 32);
        let mut customer_id = StringBuilder::with_capacity(rows.len(), rows.len() * 32);
        let mut event = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
        let mut merged_into = StringBuilder::new();
        let mut at = TimestampMicrosecondBuilder::with_capacity(rows.len());
        for row in rows {
            run_id.append_value(&self.run_id);
            customer_id.append_value(&row.customer_id);
            event.append_value(row.event);
            merged_into.append_option(row.merged_into.as_deref());
            at.append_option(row.at);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(run_id.finish()),
            Arc::new(customer_id.finish()),
            Arc::new(event.finish()),
            Arc::new(merged_into.finish()),
            Arc::new(at.finish().with_timezone("UTC")),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&CHANGES_SCHEMA), columns)?)
    }
}

impl Iterator for OutputBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let rows = self.rows();
        if self.next >= rows {
            return None;
        }
        let start = self.next;
        let end = (start + self.batch_size).min(rows);
        self.next = end;
        let batch = match self.output {
            // Projected as it is built.
            OutputSelector::Map => return Some(self.map_batch(start, end)),
            OutputSelector::Audit => self.audit_batch(start, end),
            OutputSelector::Changes => self.changes_batch(start, end),
        };
        Some(batch.and_then(|batch| match &self.projection {
            Some(projection) => Ok(batch.project(projection)?),
            None => Ok(batch),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_customer_ids_match_hex_encode() {
        let ids = [
            [0u8; CUSTOMER_ID_BYTES],
            [0xff; CUSTOMER_ID_BYTES],
            std::array::from_fn(|i| (i * 17) as u8),
            super::super::anchor::customer_id("email", b"anna@example.com"),
        ];
        for id in ids {
            assert_eq!(hex_customer_id(&id).as_slice(), hex::encode(id).as_bytes());
        }
    }

    #[test]
    fn values_that_are_not_utf8_are_an_error() {
        let bytes = BinaryArray::from_iter_values([b"ok".as_slice(), &[0xff, 0xfe]]);
        let err = utf8(bytes).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        let good = utf8(BinaryArray::from_iter_values([
            b"ok".as_slice(),
            "ё".as_bytes(),
        ]));
        assert_eq!(
            good.map(|a| a.value(1).to_string()).ok().as_deref(),
            Some("ё")
        );
    }
}
