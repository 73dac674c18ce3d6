//! Training-set downloads encoded batch by batch, so memory stays flat however large the
//! set: Parquet (a row group at most every [`PARQUET_ROW_GROUP_ROWS`] rows, flushed as it
//! completes), Arrow IPC stream, CSV with a header, and JSON lines.

use std::fmt;
use std::io::Write;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use arrow::csv;
use arrow::ipc::writer::StreamWriter;
use arrow::json::LineDelimitedWriter;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use quiver_provider_sdk::BatchStream;
use serde::{Deserialize, Serialize};

use crate::RuntimeError;

/// Rows per Parquet row group: bounds the memory a download holds before flushing.
pub const PARQUET_ROW_GROUP_ROWS: usize = 64 * 1024;

/// Encoded bytes, chunk by chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, RuntimeError>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    Parquet,
    Arrow,
    Csv,
    Jsonl,
}

impl DataFormat {
    pub const ALL: [DataFormat; 4] = [
        DataFormat::Parquet,
        DataFormat::Arrow,
        DataFormat::Csv,
        DataFormat::Jsonl,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::Parquet => "parquet",
            DataFormat::Arrow => "arrow",
            DataFormat::Csv => "csv",
            DataFormat::Jsonl => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            DataFormat::Parquet => "application/vnd.apache.parquet",
            DataFormat::Arrow => "application/vnd.apache.arrow.stream",
            DataFormat::Csv => "text/csv; charset=utf-8",
            DataFormat::Jsonl => "application/jsonl",
        }
    }

    /// The format a file name implies: `.parquet`, `.arrow`/`.arrows`/`.ipc`, `.csv`,
    /// `.jsonl`/`.ndjson`.
    pub fn from_file_name(name: &str) -> Option<DataFormat> {
        let lower = name.to_ascii_lowercase();
        let extension = lower.rsplit_once('.')?.1;
        match extension {
            "parquet" | "pq" => Some(DataFormat::Parquet),
            "arrow" | "arrows" | "ipc" => Some(DataFormat::Arrow),
            "csv" => Some(DataFormat::Csv),
            "jsonl" | "ndjson" => Some(DataFormat::Jsonl),
            _ => None,
        }
    }
}

impl fmt::Display for DataFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DataFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown format `{}`, expected one of: parquet, arrow, csv, jsonl",
                    s.escape_debug()
                )
            })
    }
}

/// A writer whose bytes are taken out after each batch.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn take(&self) -> Bytes {
        let mut buffer = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Bytes::from(std::mem::take(&mut *buffer))
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut buffer = self.0.lock().unwrap_or_else(|p| p.into_inner());
        buffer.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Encoder {
    Parquet(Box<ArrowWriter<SharedBuffer>>),
    Arrow(Box<StreamWriter<SharedBuffer>>),
    Csv(Box<csv::Writer<SharedBuffer>>),
    Jsonl(LineDelimitedWriter<SharedBuffer>),
}

impl Encoder {
    fn new(format: DataFormat, schema: &SchemaRef, out: SharedBuffer) -> Result<Encoder, String> {
        Ok(match format {
            DataFormat::Parquet => {
                let properties = WriterProperties::builder()
                    .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP_ROWS))
                    .build();
                Encoder::Parquet(Box::new(
                    ArrowWriter::try_new(out, schema.clone(), Some(properties))
                        .map_err(|e| e.to_string())?,
                ))
            }
            DataFormat::Arrow => Encoder::Arrow(Box::new(
                StreamWriter::try_new(out, schema).map_err(|e| e.to_string())?,
            )),
            DataFormat::Csv => Encoder::Csv(Box::new(
                csv::WriterBuilder::new().with_header(true).build(out),
            )),
            DataFormat::Jsonl => Encoder::Jsonl(LineDelimitedWriter::new(out)),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match self {
            Encoder::Parquet(w) => w.write(batch).map_err(|e| e.to_string()),
            Encoder::Arrow(w) => w.write(batch).map_err(|e| e.to_string()),
            Encoder::Csv(w) => w.write(batch).map_err(|e| e.to_string()),
            Encoder::Jsonl(w) => w.write(batch).map_err(|e| e.to_string()),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self {
            Encoder::Parquet(w) => w.close().map(|_| ()).map_err(|e| e.to_string()),
            Encoder::Arrow(mut w) => w.finish().map_err(|e| e.to_string()),
            Encoder::Csv(_) => Ok(()),
            Encoder::Jsonl(mut w) => w.finish().map_err(|e| e.to_string()),
        }
    }
}

struct EncodeState {
    batches: Option<BatchStream>,
    encoder: Option<Encoder>,
    buffer: SharedBuffer,
    provider: String,
}

/// Encode `batches` (of `schema`) as `format`, yielding bytes as they are produced.
///
/// # Errors
/// [`RuntimeError::Encode`] when the schema cannot be written in `format`; errors of the
/// stream itself end the byte stream with that error.
pub fn encode(
    schema: &SchemaRef,
    batches: BatchStream,
    format: DataFormat,
    provider: &str,
) -> Result<ByteStream, RuntimeError> {
    let buffer = SharedBuffer::default();
    let encoder = Encoder::new(format, schema, buffer.clone()).map_err(RuntimeError::Encode)?;
    let state = EncodeState {
        batches: Some(batches),
        encoder: Some(encoder),
        buffer,
        provider: provider.to_string(),
    };
    Ok(Box::pin(futures::stream::unfold(state, next_chunk)))
}

async fn next_chunk(mut state: EncodeState) -> Option<(Result<Bytes, RuntimeError>, EncodeState)> {
    loop {
        let batches = state.batches.as_mut()?;
        match batches.next().await {
            Some(Ok(batch)) => {
                let encoder = state.encoder.as_mut()?;
                if let Err(e) = encoder.write(&batch) {
                    state.batches = None;
                    return Some((Err(RuntimeError::Encode(e)), state));
                }
                let bytes = state.buffer.take();
                if !bytes.is_empty() {
                    return Some((Ok(bytes), state));
                }
            }
            Some(Err(source)) => {
                state.batches = None;
                let error = RuntimeError::Provider {
                    provider: state.provider.clone(),
                    source,
                };
                return Some((Err(error), state));
            }
            None => {
                state.batches = None;
                let result = state.encoder.take()?.finish();
                let chunk = result
                    .map(|()| state.buffer.take())
                    .map_err(RuntimeError::Encode);
                return Some((chunk, state));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use futures::TryStreamExt;

    use super::*;

    fn batches(n: usize) -> (SchemaRef, BatchStream) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Utf8, false),
            Field::new("amount", DataType::Int64, true),
        ]));
        let items: Vec<Result<RecordBatch, quiver_provider_sdk::ProviderError>> = (0..n)
            .map(|b| {
                Ok(RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from(vec![format!("u{b}"), format!("v{b}")])),
                        Arc::new(Int64Array::from(vec![Some(b as i64), None])),
                    ],
                )
                .unwrap())
            })
            .collect();
        (schema, Box::pin(futures::stream::iter(items)))
    }

    async fn bytes(format: DataFormat, n: usize) -> Vec<u8> {
        let (schema, stream) = batches(n);
        let chunks: Vec<Bytes> = encode(&schema, stream, format, "p")
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        chunks.concat()
    }

    #[tokio::test]
    async fn text_formats_encode_every_row() {
        let csv = String::from_utf8(bytes(DataFormat::Csv, 2).await).unwrap();
        assert_eq!(csv, "user_id,amount\nu0,0\nv0,\nu1,1\nv1,\n");
        let jsonl = String::from_utf8(bytes(DataFormat::Jsonl, 1).await).unwrap();
        assert_eq!(
            jsonl,
            "{\"user_id\":\"u0\",\"amount\":0}\n{\"user_id\":\"v0\"}\n"
        );
    }

    #[tokio::test]
    async fn binary_formats_round_trip() {
        let parquet = Bytes::from(bytes(DataFormat::Parquet, 3).await);
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(parquet)
                .unwrap()
                .build()
                .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 6);
        let arrow = bytes(DataFormat::Arrow, 3).await;
        let reader = arrow::ipc::reader::StreamReader::try_new(arrow.as_slice(), None).unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 6);
        // An empty set is still a valid file with the schema.
        let (schema, _) = batches(0);
        let empty = Bytes::from(bytes(DataFormat::Parquet, 0).await);
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(empty).unwrap();
        assert_eq!(builder.schema().fields(), schema.fields());
    }

    #[test]
    fn formats_parse_and_follow_extensions() {
        assert_eq!("csv".parse::<DataFormat>(), Ok(DataFormat::Csv));
        assert!("xlsx"
            .parse::<DataFormat>()
            .unwrap_err()
            .contains("parquet, arrow, csv, jsonl"));
        assert_eq!(
            DataFormat::from_file_name("out/ts.PARQUET"),
            Some(DataFormat::Parquet)
        );
        assert_eq!(
            DataFormat::from_file_name("ts.ndjson"),
            Some(DataFormat::Jsonl)
        );
        assert_eq!(DataFormat::from_file_name("ts"), None);
    }
}
