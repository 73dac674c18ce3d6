//! Postgres column types as Arrow types, and the decoding of result rows into Arrow
//! arrays.
//!
//! Every Postgres type maps to one [`Kind`]. Types without a native decoder here are
//! converted in SQL before they reach the wire (`numeric` to `double precision`, anything
//! else to `text`), so decoding is one branch per kind and never guesses.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use quiver_provider_sdk::ProviderError;
use sqlx::postgres::PgRow;
use sqlx::Row;

/// How one result column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    Text,
    /// `timestamp` (without time zone): read as UTC, typed without a zone.
    Timestamp,
    /// `timestamptz`: typed `Timestamp(µs, "UTC")`.
    TimestampTz,
    Date,
    Bytes,
}

/// A column as read: its name, how it is decoded, and whether the SQL must convert it
/// first (to the type named by [`Kind::cast_target`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    pub cast: bool,
}

impl Column {
    /// The column of Postgres type `oid`.
    pub fn of_oid(name: &str, oid: u32) -> Column {
        let (kind, cast) = match oid {
            21 => (Kind::Int16, false),
            23 => (Kind::Int32, false),
            20 => (Kind::Int64, false),
            700 => (Kind::Float32, false),
            701 => (Kind::Float64, false),
            // numeric: read as float8 (exact decimals beyond ~15 digits are rounded).
            1700 => (Kind::Float64, true),
            16 => (Kind::Bool, false),
            // text, varchar, bpchar (char(n)), name.
            25 | 1043 | 1042 | 19 => (Kind::Text, false),
            1114 => (Kind::Timestamp, false),
            1184 => (Kind::TimestampTz, false),
            1082 => (Kind::Date, false),
            17 => (Kind::Bytes, false),
            // Anything else (json, uuid, intervals, enums, arrays, …) as its text form.
            _ => (Kind::Text, true),
        };
        Column {
            name: name.to_string(),
            kind,
            cast,
        }
    }

    pub fn field(&self) -> Field {
        Field::new(&self.name, self.kind.data_type(), true)
    }
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Int16 => DataType::Int16,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::Float32 => DataType::Float32,
            Kind::Float64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Text => DataType::Utf8,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Date => DataType::Date32,
            Kind::Bytes => DataType::Binary,
        }
    }

    /// The Postgres type a column of this kind is converted to when it needs a cast.
    pub fn cast_target(self) -> &'static str {
        match self {
            Kind::Int16 => "smallint",
            Kind::Int32 => "integer",
            Kind::Int64 => "bigint",
            Kind::Float32 => "real",
            Kind::Float64 => "double precision",
            Kind::Bool => "boolean",
            Kind::Text => "text",
            Kind::Timestamp => "timestamp",
            Kind::TimestampTz => "timestamptz",
            Kind::Date => "date",
            Kind::Bytes => "bytea",
        }
    }
}

/// The Arrow schema of `columns`.
pub fn schema_of(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(
        columns.iter().map(Column::field).collect::<Vec<_>>(),
    ))
}

/// An Arrow builder per column kind.
enum Builder {
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    TimestampTz(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Bytes(BinaryBuilder),
}

impl Builder {
    fn new(kind: Kind) -> Builder {
        match kind {
            Kind::Int16 => Builder::Int16(Int16Builder::new()),
            Kind::Int32 => Builder::Int32(Int32Builder::new()),
            Kind::Int64 => Builder::Int64(Int64Builder::new()),
            Kind::Float32 => Builder::Float32(Float32Builder::new()),
            Kind::Float64 => Builder::Float64(Float64Builder::new()),
            Kind::Bool => Builder::Bool(BooleanBuilder::new()),
            Kind::Text => Builder::Text(StringBuilder::new()),
            Kind::Timestamp => Builder::Timestamp(TimestampMicrosecondBuilder::new()),
            Kind::TimestampTz => {
                Builder::TimestampTz(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            Kind::Date => Builder::Date(Date32Builder::new()),
            Kind::Bytes => Builder::Bytes(BinaryBuilder::new()),
        }
    }

    fn append(&mut self, row: &PgRow, i: usize) -> Result<(), sqlx::Error> {
        match self {
            Builder::Int16(b) => b.append_option(row.try_get::<Option<i16>, _>(i)?),
            Builder::Int32(b) => b.append_option(row.try_get::<Option<i32>, _>(i)?),
            Builder::Int64(b) => b.append_option(row.try_get::<Option<i64>, _>(i)?),
            Builder::Float32(b) => b.append_option(row.try_get::<Option<f32>, _>(i)?),
            Builder::Float64(b) => b.append_option(row.try_get::<Option<f64>, _>(i)?),
            Builder::Bool(b) => b.append_option(row.try_get::<Option<bool>, _>(i)?),
            Builder::Text(b) => b.append_option(row.try_get::<Option<&str>, _>(i)?),
            Builder::Timestamp(b) => b.append_option(
                row.try_get::<Option<NaiveDateTime>, _>(i)?
                    .map(|t| t.and_utc().timestamp_micros()),
            ),
            Builder::TimestampTz(b) => b.append_option(
                row.try_get::<Option<DateTime<Utc>>, _>(i)?
                    .map(|t| t.timestamp_micros()),
            ),
            Builder::Date(b) => b.append_option(
                row.try_get::<Option<NaiveDate>, _>(i)?
                    .map(|d| (d - NaiveDate::default()).num_days() as i32),
            ),
            Builder::Bytes(b) => b.append_option(row.try_get::<Option<&[u8]>, _>(i)?),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int16(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float32(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) | Builder::TimestampTz(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Bytes(b) => Arc::new(b.finish()),
        }
    }
}

/// Accumulates rows into record batches of one schema.
pub struct BatchBuilder {
    schema: SchemaRef,
    builders: Vec<Builder>,
    rows: usize,
}

impl BatchBuilder {
    pub fn new(columns: &[Column]) -> BatchBuilder {
        BatchBuilder {
            schema: schema_of(columns),
            builders: columns.iter().map(|c| Builder::new(c.kind)).collect(),
            rows: 0,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn append(&mut self, row: &PgRow) -> Result<(), sqlx::Error> {
        for (i, builder) in self.builders.iter_mut().enumerate() {
            builder.append(row, i)?;
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows appended since the last call, as one batch.
    pub fn finish(&mut self) -> Result<RecordBatch, ProviderError> {
        let columns = self.builders.iter_mut().map(Builder::finish).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| ProviderError::Other(format!("assembling a record batch: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_map_to_arrow_and_unknown_types_are_cast_to_text() {
        let numeric = Column::of_oid("n", 1700);
        assert_eq!(numeric.kind.data_type(), DataType::Float64);
        assert!(numeric.cast);
        let tz = Column::of_oid("t", 1184);
        assert_eq!(
            tz.field().data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert!(!tz.cast);
        let json = Column::of_oid("j", 114);
        assert_eq!((json.kind, json.cast), (Kind::Text, true));
        assert_eq!(Column::of_oid("d", 1082).kind.data_type(), DataType::Date32);
    }
}
