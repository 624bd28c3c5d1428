//! Rendering query results: a table for people, CSV / JSON for machines, or files in an object store.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::common::{DataFusionError, Result};
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};

/// Output format of `phygital sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    Csv,
    /// A JSON array of objects.
    Json,
    /// Newline-delimited JSON (one object per line).
    Ndjson,
    /// Parquet; needs `--output`.
    Parquet,
}

/// Writes `batches` to `out` in `format` (every format but Parquet).
pub fn write_batches(
    out: &mut dyn Write,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<()> {
    match format {
        OutputFormat::Table => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                let cols = batches.first().map(|b| b.num_columns()).unwrap_or(0);
                writeln!(out, "(0 rows, {cols} columns)")?;
            } else {
                writeln!(out, "{}", pretty_format_batches(batches)?)?;
            }
        }
        OutputFormat::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            for b in batches {
                w.write(b)?;
            }
        }
        OutputFormat::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut *out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            drop(w);
            writeln!(out)?;
        }
        OutputFormat::Ndjson => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut *out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        OutputFormat::Parquet => {
            return Err(DataFusionError::Plan(
                "--format parquet writes files: give --output URL (a folder ending in '/' or a file)".into(),
            ));
        }
    }
    Ok(())
}

/// Writes a query's result to `url` (local path or object-store URL). A URL ending in '/' is a folder of files;
/// anything else is one file.
pub async fn write_to_url(df: DataFrame, url: &str, format: OutputFormat) -> Result<u64> {
    let single_file = !url.ends_with('/');
    let options = DataFrameWriteOptions::new().with_single_file_output(single_file);
    let batches = match format {
        OutputFormat::Parquet => df.write_parquet(url, options, None).await?,
        OutputFormat::Csv => df.write_csv(url, options, None).await?,
        OutputFormat::Json | OutputFormat::Ndjson => df.write_json(url, options, None).await?,
        OutputFormat::Table => {
            return Err(DataFusionError::Plan(
                "--output needs a file format: --format parquet, csv or ndjson".into(),
            ));
        }
    };
    Ok(rows_written(&batches))
}

/// DML/COPY plans answer with one `count` row.
fn rows_written(batches: &[RecordBatch]) -> u64 {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::UInt64Type;
    batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .filter_map(|c| c.as_primitive_opt::<UInt64Type>())
        .flat_map(|a| a.iter().flatten())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "n",
                Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![Some("a,b"), Some("ü")])) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn render(format: OutputFormat) -> String {
        let mut out = Vec::new();
        write_batches(&mut out, &[batch()], format).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats() {
        assert!(render(OutputFormat::Table).contains("| ü "));
        assert_eq!(render(OutputFormat::Csv), "n,s\n1,\"a,b\"\n,ü\n");
        assert_eq!(
            render(OutputFormat::Json),
            "[{\"n\":1,\"s\":\"a,b\"},{\"s\":\"ü\"}]\n"
        );
        assert_eq!(
            render(OutputFormat::Ndjson),
            "{\"n\":1,\"s\":\"a,b\"}\n{\"s\":\"ü\"}\n"
        );
        let mut out = Vec::new();
        assert!(write_batches(&mut out, &[batch()], OutputFormat::Parquet).is_err());
    }
}
