//! Writing indicator rows as Parquet (arrow-rs), for notebooks: symbol,
//! date (DATE), every numeric column (DOUBLE, NULL where undefined), the
//! categorical columns (STRING) and `ta_version`.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{Date32Builder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter, add_encoded_arrow_schema_to_metadata};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use crate::db::ta_signals::SignalRow;
use crate::indicators::{CATEGORICAL_COLUMNS, NUMERIC_COLUMNS};
use crate::store::ParquetInfo;

pub fn signals_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
    ];
    fields.extend(NUMERIC_COLUMNS.iter().map(|c| Field::new(*c, DataType::Float64, true)));
    fields.extend(CATEGORICAL_COLUMNS.iter().map(|c| Field::new(*c, DataType::Utf8, true)));
    fields.push(Field::new("ta_version", DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// How every Parquet file here is written: zstd level 1, and the DOUBLE
/// columns byte-stream-split without a dictionary. Splitting the bytes of
/// each double puts the similar exponent bytes side by side; on the
/// labeled data set that makes the file a quarter smaller than plain
/// zstd level 3 and the write 40 % faster (measured: 1.2 M rows, 155 MB
/// in 1.05 s against 201 MB in 1.9 s). Readers (pyarrow, polars, arrow-rs)
/// decode it natively.
fn properties(schema: &Schema, row_group_rows: Option<usize>) -> anyhow::Result<WriterProperties> {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_created_by(format!("swingml {}", crate::PROGRAM_VERSION));
    if let Some(rows) = row_group_rows {
        builder = builder.set_max_row_group_row_count(Some(rows));
    }
    for field in schema.fields().iter().filter(|f| f.data_type() == &DataType::Float64) {
        let column = ColumnPath::from(field.name().as_str());
        builder = builder
            .set_column_encoding(column.clone(), Encoding::BYTE_STREAM_SPLIT)
            .set_column_dictionary_enabled(column, false);
    }
    Ok(builder.build())
}

/// Streams batches of indicator rows into one Parquet file.
pub struct SignalsWriter<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
    rows: u64,
    ta_version: i64,
}

impl<W: Write + Send> SignalsWriter<W> {
    pub fn new(sink: W, ta_version: i64) -> anyhow::Result<Self> {
        let schema = signals_schema();
        let props = properties(&schema, None)?;
        let writer = ArrowWriter::try_new(sink, schema.clone(), Some(props))?;
        Ok(SignalsWriter {
            writer,
            schema,
            rows: 0,
            ta_version,
        })
    }

    pub fn write(&mut self, rows: &[SignalRow]) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = to_batch(&self.schema, rows, self.ta_version)?;
        self.writer.write(&batch)?;
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Close the file (writes the footer); the sidecar facts and the sink.
    pub fn finish(self) -> anyhow::Result<(ParquetInfo, W)> {
        let info = ParquetInfo::from_schema(&self.schema, self.rows);
        // into_inner writes the footer and hands the sink back.
        Ok((info, self.writer.into_inner()?))
    }
}

fn to_batch(schema: &SchemaRef, rows: &[SignalRow], ta_version: i64) -> anyhow::Result<RecordBatch> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let mut symbol = StringBuilder::new();
    let mut date = Date32Builder::with_capacity(rows.len());
    let mut numeric: Vec<Float64Builder> = NUMERIC_COLUMNS
        .iter()
        .map(|_| Float64Builder::with_capacity(rows.len()))
        .collect();
    let mut categorical: Vec<StringBuilder> = CATEGORICAL_COLUMNS.iter().map(|_| StringBuilder::new()).collect();
    let mut version = Int64Builder::with_capacity(rows.len());
    for r in rows {
        symbol.append_value(r.symbol.as_str());
        date.append_value((r.date - epoch).num_days() as i32);
        for (builder, value) in numeric.iter_mut().zip(r.row.numeric.values()) {
            builder.append_option(value);
        }
        for (builder, value) in categorical.iter_mut().zip(r.row.categoricals()) {
            builder.append_option(value);
        }
        version.append_value(ta_version);
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(symbol.finish()), Arc::new(date.finish())];
    columns.extend(numeric.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend(categorical.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(version.finish()));
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Labeled rows: symbol, date, close, every feature, the label and its
/// exit, `part` — which part of a time split the row fell in (or what
/// the rows were for) — and last the optional families' columns named
/// `extra` (float32, null where undefined).
pub fn write_labeled<W: Write + Send>(
    sink: W,
    rows: &[crate::features::Snapshot],
    part: &[&'static str],
    extra: &[String],
) -> anyhow::Result<Option<ParquetInfo>> {
    use crate::features::{CATEGORICAL_FEATURES, NUMERIC_FEATURES};
    anyhow::ensure!(part.len() == rows.len(), "one part per labeled row");
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let day = |d: NaiveDate| (d - epoch).num_days() as i32;
    let mut fields = vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
        Field::new("close", DataType::Float64, false),
    ];
    fields.extend(NUMERIC_FEATURES.iter().map(|n| Field::new(*n, DataType::Float64, true)));
    fields.extend(
        CATEGORICAL_FEATURES
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true)),
    );
    fields.extend([
        Field::new("label", DataType::Int64, false),
        Field::new("exit_reason", DataType::Utf8, false),
        Field::new("bars_to_exit", DataType::Int64, false),
        Field::new("entry_price", DataType::Float64, false),
        Field::new("exit_price", DataType::Float64, false),
        Field::new("gross_return", DataType::Float64, false),
        Field::new("realized_return", DataType::Float64, false),
        Field::new("window_end", DataType::Date32, false),
        Field::new("split", DataType::Utf8, false),
    ]);
    fields.extend(extra.iter().map(|n| Field::new(n, DataType::Float32, true)));
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    // In slices of rows: the columns of a million rows at once would
    // double the job's peak memory.
    let batches = rows
        .chunks(BATCH_ROWS)
        .zip(part.chunks(BATCH_ROWS))
        .map(|(rows, part)| {
            let labels: Vec<crate::labels::Label> = rows.iter().map(|r| r.label.expect("labeled rows")).collect();
            let mut columns: Vec<ArrayRef> = vec![
                Arc::new(arrow_array::StringArray::from_iter_values(
                    rows.iter().map(|r| r.symbol.as_str()),
                )),
                Arc::new(arrow_array::Date32Array::from_iter_values(
                    rows.iter().map(|r| day(r.date)),
                )),
                Arc::new(arrow_array::Float64Array::from_iter_values(
                    rows.iter().map(|r| r.close),
                )),
            ];
            for i in 0..NUMERIC_FEATURES.len() {
                columns.push(Arc::new(arrow_array::Float64Array::from_iter(
                    rows.iter().map(|r| r.features.numeric(i)),
                )));
            }
            for i in 0..CATEGORICAL_FEATURES.len() {
                columns.push(Arc::new(arrow_array::StringArray::from_iter(
                    rows.iter().map(|r| r.features.categorical(i)),
                )));
            }
            columns.push(Arc::new(arrow_array::Int64Array::from_iter_values(
                labels.iter().map(|l| l.label as i64),
            )));
            columns.push(Arc::new(arrow_array::StringArray::from_iter_values(
                labels.iter().map(|l| l.exit_reason.as_str()),
            )));
            columns.push(Arc::new(arrow_array::Int64Array::from_iter_values(
                labels.iter().map(|l| l.bars_to_exit as i64),
            )));
            for value in [
                |l: &crate::labels::Label| l.entry_price,
                |l: &crate::labels::Label| l.exit_price,
                |l: &crate::labels::Label| l.gross_return,
                |l: &crate::labels::Label| l.realized_return,
            ] {
                columns.push(Arc::new(arrow_array::Float64Array::from_iter_values(
                    labels.iter().map(value),
                )));
            }
            columns.push(Arc::new(arrow_array::Date32Array::from_iter_values(
                rows.iter()
                    .map(|r| day(r.window_end.expect("labeled rows have a window"))),
            )));
            columns.push(Arc::new(arrow_array::StringArray::from_iter_values(
                part.iter().copied(),
            )));
            for j in 0..extra.len() {
                columns.push(Arc::new(arrow_array::Float32Array::from_iter(
                    rows.iter()
                        .map(|r| r.features.extra().get(j).copied().filter(|x| !x.is_nan())),
                )));
            }
            columns
        });
    write_batches(sink, schema, batches, rows.len())
}

/// Rows per record batch and row group of the files written here.
pub const BATCH_ROWS: usize = 65_536;

/// Write record batches (given as their columns) as one Parquet file, a
/// row group per batch; the sidecar facts. A row group's column chunks are
/// encoded and compressed in parallel, then appended in schema order: the
/// bytes are those of a one-thread `ArrowWriter` with the same properties.
pub fn write_batches<W: Write + Send>(
    sink: W,
    schema: SchemaRef,
    batches: impl Iterator<Item = Vec<ArrayRef>>,
    rows: usize,
) -> anyhow::Result<Option<ParquetInfo>> {
    let mut props = properties(&schema, Some(BATCH_ROWS))?;
    // Readers take the exact Arrow types from it, as from ArrowWriter's files.
    add_encoded_arrow_schema_to_metadata(&schema, &mut props);
    let parquet_schema = ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(&schema)?;
    let mut writer = SerializedFileWriter::new(sink, parquet_schema.root_schema_ptr(), Arc::new(props))?;
    let factory = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
    for (index, columns) in batches.enumerate() {
        let mut leaves = Vec::with_capacity(columns.len());
        for (field, column) in schema.fields().iter().zip(&columns) {
            leaves.extend(compute_leaves(field, column)?);
        }
        let chunks = factory
            .create_column_writers(index)?
            .into_par_iter()
            .zip(leaves)
            .map(|(mut column_writer, leaf)| {
                column_writer.write(&leaf)?;
                column_writer.close()
            })
            .collect::<Result<Vec<ArrowColumnChunk>, _>>()?;
        let mut row_group = writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
    }
    writer.close()?;
    Ok(Some(ParquetInfo::from_schema(&schema, rows as u64)))
}

/// Write one record batch as a whole Parquet file; the sidecar facts.
pub fn write_batch<W: Write + Send>(
    sink: W,
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> anyhow::Result<Option<ParquetInfo>> {
    write_batches(sink, schema, std::iter::once(columns), rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, StringArray};

    /// Two row groups of a string column with nulls and a DOUBLE column.
    fn batches() -> (SchemaRef, Vec<Vec<ArrayRef>>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("x", DataType::Float64, false),
        ]));
        let batch = |from: usize, rows: usize| -> Vec<ArrayRef> {
            let symbols = (from..from + rows).map(|i| (i % 7 != 0).then(|| format!("S{}", i % 13)));
            let xs = (from..from + rows).map(|i| (i as f64).sqrt());
            vec![
                Arc::new(StringArray::from_iter(symbols)),
                Arc::new(Float64Array::from_iter_values(xs)),
            ]
        };
        (schema, vec![batch(0, BATCH_ROWS), batch(BATCH_ROWS, 1000)])
    }

    #[test]
    fn parallel_column_encoding_writes_the_bytes_arrow_writer_writes() {
        let (schema, batches) = batches();
        let mut parallel = Vec::new();
        write_batches(
            &mut parallel,
            schema.clone(),
            batches.clone().into_iter(),
            BATCH_ROWS + 1000,
        )
        .unwrap();

        let mut serial = Vec::new();
        let props = properties(&schema, Some(BATCH_ROWS)).unwrap();
        let mut writer = ArrowWriter::try_new(&mut serial, schema.clone(), Some(props)).unwrap();
        for columns in batches {
            writer
                .write(&RecordBatch::try_new(schema.clone(), columns).unwrap())
                .unwrap();
        }
        writer.close().unwrap();
        assert_eq!(parallel.len(), serial.len());
        assert!(parallel == serial, "the two files differ");
    }
}
