//! Streaming one table to Parquet files in an object store: `<folder>/part-NNNNN.parquet`.
//!
//! Rows are re-cut into batches of exactly [`WRITE_BATCH_ROWS`] before they reach the Parquet writer, and row
//! groups and files are cut by row count only. The bytes written therefore depend on the row stream alone,
//! never on how the caller chunked it — which is what makes the generator's output independent of its chunk size.

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{Result, exec_datafusion_err};
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;

/// Rows per batch handed to the Parquet writer.
pub(crate) const WRITE_BATCH_ROWS: usize = 8192;
/// Rows per row group (a multiple of [`WRITE_BATCH_ROWS`]): bounds the writer's memory per table.
pub(crate) const ROW_GROUP_ROWS: usize = 64 * WRITE_BATCH_ROWS;
/// Rows per file (a multiple of [`ROW_GROUP_ROWS`]).
pub(crate) const FILE_ROWS: usize = 8 * ROW_GROUP_ROWS;

const UPLOAD_PART_BYTES: usize = 8 << 20;
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// What was written for one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WrittenTable {
    pub(crate) rows: u64,
    pub(crate) files: u64,
    pub(crate) bytes: u64,
}

struct OpenFile {
    writer: AsyncArrowWriter<BufWriter>,
    rows: usize,
    path: Path,
}

/// Writes one table's rows, in arrival order, as numbered Parquet files under `folder`.
pub(crate) struct TableWriter {
    store: Arc<dyn ObjectStore>,
    folder: Path,
    name: &'static str,
    schema: SchemaRef,
    props: WriterProperties,
    pending: VecDeque<RecordBatch>,
    pending_rows: usize,
    file_rows: usize,
    current: Option<OpenFile>,
    written: WrittenTable,
}

impl TableWriter {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        folder: Path,
        name: &'static str,
        schema: SchemaRef,
    ) -> Result<Self> {
        Self::with_file_rows(store, folder, name, schema, FILE_ROWS)
    }

    /// Like [`TableWriter::new`] with another file size (a positive multiple of [`ROW_GROUP_ROWS`] keeps row
    /// groups whole); tests use it to exercise file rolling on small data.
    pub(crate) fn with_file_rows(
        store: Arc<dyn ObjectStore>,
        folder: Path,
        name: &'static str,
        schema: SchemaRef,
        file_rows: usize,
    ) -> Result<Self> {
        if file_rows == 0 || !file_rows.is_multiple_of(WRITE_BATCH_ROWS) {
            return Err(exec_datafusion_err!(
                "generate: rows per file ({file_rows}) must be a positive multiple of {WRITE_BATCH_ROWS}"
            ));
        }
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS.min(file_rows)))
            .set_max_row_group_bytes(None)
            .build();
        Ok(TableWriter {
            store,
            folder,
            name,
            schema,
            props,
            pending: VecDeque::new(),
            pending_rows: 0,
            file_rows,
            current: None,
            written: WrittenTable::default(),
        })
    }

    /// Appends rows; whole batches of [`WRITE_BATCH_ROWS`] go to the file as soon as they are complete.
    pub(crate) async fn push(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.schema() != self.schema {
            return Err(exec_datafusion_err!(
                "generate: batch for table {} does not match its schema: {:?}",
                self.name,
                batch.schema()
            ));
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.pending_rows += batch.num_rows();
        self.pending.push_back(batch);
        while self.pending_rows >= WRITE_BATCH_ROWS {
            let batch = self.take(WRITE_BATCH_ROWS)?;
            self.write(batch).await?;
        }
        Ok(())
    }

    /// Writes what is left and closes the last file; a table without rows still gets one (empty) file, so its
    /// folder exists and carries the schema.
    pub(crate) async fn finish(mut self) -> Result<WrittenTable> {
        if self.pending_rows > 0 {
            let batch = self.take(self.pending_rows)?;
            self.write(batch).await?;
        }
        if self.written.files == 0 && self.current.is_none() {
            self.open()?;
        }
        self.close().await?;
        Ok(self.written)
    }

    /// The first `n` pending rows as one batch.
    fn take(&mut self, n: usize) -> Result<RecordBatch> {
        let mut parts = Vec::new();
        let mut missing = n;
        while missing > 0 {
            let Some(front) = self.pending.pop_front() else {
                return Err(exec_datafusion_err!(
                    "generate: table {} lost track of its pending rows ({missing} missing)",
                    self.name
                ));
            };
            if front.num_rows() <= missing {
                missing -= front.num_rows();
                parts.push(front);
            } else {
                self.pending
                    .push_front(front.slice(missing, front.num_rows() - missing));
                parts.push(front.slice(0, missing));
                missing = 0;
            }
        }
        self.pending_rows -= n;
        match parts.as_slice() {
            [single] => Ok(single.clone()),
            _ => Ok(concat_batches(&self.schema, &parts)?),
        }
    }

    fn open(&mut self) -> Result<()> {
        let path = self
            .folder
            .clone()
            .join(format!("part-{:05}.parquet", self.written.files));
        // Parts of 8 MiB (above S3's 5 MiB minimum), at most two in flight per table: bounds memory when the
        // store is slower than the encoder.
        let sink =
            BufWriter::with_capacity(Arc::clone(&self.store), path.clone(), UPLOAD_PART_BYTES)
                .with_max_concurrency(MAX_PARTS_IN_FLIGHT);
        let writer =
            AsyncArrowWriter::try_new(sink, Arc::clone(&self.schema), Some(self.props.clone()))?;
        self.current = Some(OpenFile {
            writer,
            rows: 0,
            path,
        });
        self.written.files += 1;
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if self.current.is_none() {
            self.open()?;
        }
        let Some(file) = self.current.as_mut() else {
            return Err(exec_datafusion_err!(
                "generate: no open file for table {}",
                self.name
            ));
        };
        file.writer
            .write(&batch)
            .await
            .map_err(|e| exec_datafusion_err!("generate: writing {}: {e}", file.path))?;
        file.rows += batch.num_rows();
        self.written.rows += batch.num_rows() as u64;
        if file.rows >= self.file_rows {
            self.close().await?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        if let Some(mut file) = self.current.take() {
            file.writer
                .finish()
                .await
                .map_err(|e| exec_datafusion_err!("generate: finishing {}: {e}", file.path))?;
            self.written.bytes += file.writer.bytes_written() as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]))
    }

    fn batch(range: std::ops::Range<i64>) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from_iter_values(range))],
        )
        .unwrap()
    }

    /// Writes 0..total in pieces of `piece` rows and returns every file's bytes.
    async fn write_in_pieces(
        total: i64,
        piece: i64,
        file_rows: usize,
    ) -> (WrittenTable, Vec<(String, Vec<u8>)>) {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let folder = Path::from("t");
        let mut w = TableWriter::with_file_rows(
            Arc::clone(&store),
            folder.clone(),
            "t",
            schema(),
            file_rows,
        )
        .unwrap();
        let mut start = 0;
        while start < total {
            let end = (start + piece).min(total);
            w.push(batch(start..end)).await.unwrap();
            start = end;
        }
        let written = w.finish().await.unwrap();
        let mut metas: Vec<_> = store.list(Some(&folder)).try_collect().await.unwrap();
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        let mut files = Vec::new();
        for m in metas {
            let bytes = store.get(&m.location).await.unwrap().bytes().await.unwrap();
            files.push((m.location.to_string(), bytes.to_vec()));
        }
        (written, files)
    }

    #[tokio::test]
    async fn output_is_independent_of_how_rows_arrive() {
        let (a, fa) = write_in_pieces(50_000, 777, 2 * WRITE_BATCH_ROWS).await;
        let (b, fb) = write_in_pieces(50_000, 20_000, 2 * WRITE_BATCH_ROWS).await;
        assert_eq!(a, b);
        assert_eq!(fa, fb);
        assert_eq!(a.rows, 50_000);
        // 50 000 rows at 16 384 per file: 4 files, named in order.
        assert_eq!(a.files, 4);
        assert_eq!(
            fa.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
            [
                "t/part-00000.parquet",
                "t/part-00001.parquet",
                "t/part-00002.parquet",
                "t/part-00003.parquet"
            ]
        );
        assert_eq!(a.bytes, fa.iter().map(|f| f.1.len() as u64).sum::<u64>());
    }

    #[tokio::test]
    async fn empty_table_still_gets_a_file() {
        let (w, files) = write_in_pieces(0, 1, FILE_ROWS).await;
        assert_eq!((w.rows, w.files, files.len()), (0, 1, 1));
        assert!(files[0].1.starts_with(b"PAR1"));
    }

    #[tokio::test]
    async fn rejects_a_batch_of_another_schema() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut w = TableWriter::new(store, Path::from("t"), "t", schema()).unwrap();
        let other = Arc::new(Schema::new(vec![Field::new("y", DataType::Int64, false)]));
        let b = RecordBatch::try_new(other, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        let err = w.push(b).await.unwrap_err().to_string();
        assert!(err.contains("table t does not match"), "{err}");
    }

    #[test]
    fn file_size_must_be_whole_batches() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        assert!(TableWriter::with_file_rows(store, Path::from("t"), "t", schema(), 1000).is_err());
    }
}
