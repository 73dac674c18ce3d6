//! The quickstart's data: card transactions and chargeback fraud reports as
//! Parquet, merchants as CSV, into a directory. Deterministic: the same seed and end
//! date give the same bytes. Transactions cover the 90 days before the end date (today by
//! default, so online values are fresh); a few users turn fraudulent late in the period
//! and spend more, so the features carry signal.
//! [`summarize`] describes a downloaded training set for the quickstart's summary.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Duration, Utc};
use parquet::arrow::ArrowWriter;

const DAYS: i64 = 90;
const MERCHANTS: usize = 200;
const CATEGORIES: [&str; 8] = [
    "grocery",
    "fuel",
    "travel",
    "electronics",
    "restaurants",
    "fashion",
    "online",
    "pharmacy",
];
const COUNTRIES: [&str; 5] = ["DE", "FR", "NL", "US", "GB"];

/// SplitMix64: small, fast and stable across platforms and versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Roughly normal (Irwin–Hall of 12 uniforms).
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// What to generate.
pub struct Options {
    pub dir: PathBuf,
    pub seed: u64,
    pub users: usize,
    /// Transactions end just before this instant (midnight UTC of the end date).
    pub end: DateTime<Utc>,
}

fn timestamp_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    )
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), String> {
    let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).map_err(|e| e.to_string())?;
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(())
}

/// Write the data into `options.dir`; returns a one-line summary.
///
/// # Errors
/// I/O and encoding errors, as text.
pub fn generate(options: &Options) -> Result<String, String> {
    std::fs::create_dir_all(&options.dir).map_err(|e| format!("{}: {e}", options.dir.display()))?;
    let mut rng = Rng(options.seed);
    let start = options.end - Duration::days(DAYS);

    // Merchants: a reference table in CSV.
    let mut merchants = String::from("merchant_id,category,country\n");
    for m in 0..MERCHANTS {
        let category = CATEGORIES[rng.below(CATEGORIES.len() as u64) as usize];
        let country = COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize];
        merchants.push_str(&format!("m{m:03},{category},{country}\n"));
    }
    let merchants_path = options.dir.join("merchants.csv");
    File::create(&merchants_path)
        .and_then(|mut f| f.write_all(merchants.as_bytes()))
        .map_err(|e| format!("{}: {e}", merchants_path.display()))?;

    // Transactions, user by user in time order; fraudsters spend more and more often
    // after their fraud starts.
    let (mut ids, mut users, mut merchant_ids, mut amounts, mut times) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut label_users, mut label_times, mut label_values) = (Vec::new(), Vec::new(), Vec::new());
    let mut fraudsters = 0;
    for u in 0..options.users {
        let user = format!("u{u:04}");
        let typical = (3.0 + 0.6 * rng.normal()).exp().clamp(5.0, 400.0);
        let per_day = 0.3 + rng.unit() * 1.2;
        let fraud_start =
            (rng.unit() < 0.05).then(|| start + Duration::days(40 + rng.below(45) as i64));
        fraudsters += usize::from(fraud_start.is_some());
        let mut t = start + Duration::seconds(rng.below(86_400) as i64);
        while t < options.end {
            let fraud = fraud_start.is_some_and(|f| t >= f);
            let scale = if fraud { 4.0 + 4.0 * rng.unit() } else { 1.0 };
            let amount = (typical * scale * (0.35 * rng.normal()).exp() * 100.0).round() / 100.0;
            ids.push(format!("t{:07}", ids.len()));
            users.push(user.clone());
            merchant_ids.push(format!("m{:03}", rng.below(MERCHANTS as u64)));
            amounts.push(amount);
            times.push(t.timestamp_micros());
            let rate = if fraud { per_day * 3.0 } else { per_day };
            // Exponential gaps between transactions.
            let gap_hours = -(1.0 - rng.unit()).ln() * 24.0 / rate;
            t += Duration::seconds((gap_hours * 3600.0) as i64 + 60);
        }
        // Monthly account reviews: each a label row, fraud once a chargeback confirmed it
        // (a few days after the fraud started).
        for review in 1..=5 {
            let at = start + Duration::days(18 * review) - Duration::hours(rng.below(48) as i64);
            if at >= options.end {
                continue;
            }
            let confirmed = fraud_start.is_some_and(|f| at >= f + Duration::days(3));
            label_users.push(user.clone());
            label_times.push(at.timestamp_micros());
            label_values.push(confirmed);
        }
    }

    let schema = Arc::new(Schema::new(vec![
        Field::new("transaction_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("merchant_id", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
        timestamp_field("ts"),
    ]));
    let transactions = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(users)),
            Arc::new(StringArray::from(merchant_ids)),
            Arc::new(Float64Array::from(amounts)),
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
        ],
    )
    .map_err(|e| e.to_string())?;
    write_parquet(&options.dir.join("transactions.parquet"), &transactions)?;

    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, false),
        timestamp_field("reported_at"),
        Field::new("is_fraud", DataType::Boolean, false),
    ]));
    let positives = label_values.iter().filter(|v| **v).count();
    let reports = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(label_users)),
            Arc::new(TimestampMicrosecondArray::from(label_times).with_timezone("UTC")),
            Arc::new(BooleanArray::from(label_values)),
        ],
    )
    .map_err(|e| e.to_string())?;
    write_parquet(&options.dir.join("fraud_reports.parquet"), &reports)?;

    Ok(format!(
        "wrote {} transactions of {} users ({fraudsters} fraudulent) from {} to {}, {} fraud reports ({positives} positive) and {MERCHANTS} merchants into {}",
        transactions.num_rows(),
        options.users,
        start.date_naive(),
        options.end.date_naive(),
        reports.num_rows(),
        options.dir.display()
    ))
}

/// Rows, columns, NULL counts, the label's positive rate and the first rows.
///
/// # Errors
/// An unreadable or empty file, as text.
pub fn summarize(path: &Path) -> Result<String, String> {
    use arrow_array::Array;
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())?;
    let mut rows = 0;
    let mut schema = None;
    let mut nulls: Vec<usize> = Vec::new();
    let mut positives = 0;
    let mut first: Vec<String> = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        nulls.resize(batch.num_columns(), 0);
        for (i, column) in batch.columns().iter().enumerate() {
            nulls[i] += column.null_count();
        }
        if let Some(label) = batch.column_by_name("is_fraud") {
            if let Some(label) = label.as_any().downcast_ref::<BooleanArray>() {
                positives += label.iter().filter(|v| *v == Some(true)).count();
            }
        }
        for r in 0..batch.num_rows() {
            if first.len() >= 3 {
                break;
            }
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| arrow_cast_display(c.as_ref(), r))
                .collect();
            first.push(cells.join(", "));
        }
        rows += batch.num_rows();
        schema.get_or_insert(batch.schema());
    }
    let schema = schema.ok_or("the file holds no rows")?;
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .zip(&nulls)
        .map(|(f, n)| format!("{} ({} NULL)", f.name(), n))
        .collect();
    Ok(format!(
        "{rows} rows; {} columns: {}\nlabel is_fraud true in {positives} rows ({:.1}%)\nfirst rows:\n  {}",
        columns.len(),
        columns.join(", "),
        100.0 * positives as f64 / rows.max(1) as f64,
        first.join("\n  ")
    ))
}

fn arrow_cast_display(array: &dyn arrow_array::Array, row: usize) -> String {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    if array.is_null(row) {
        return "NULL".into();
    }
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Float64 => format!("{:.2}", array.as_primitive::<Float64Type>().value(row)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => DateTime::from_timestamp_micros(
            array.as_primitive::<TimestampMicrosecondType>().value(row),
        )
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default(),
        other => format!("<{other}>"),
    }
}
