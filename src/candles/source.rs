//! Reading candle files: CSV, CSV.gz and Parquet, long format
//! (`symbol,date,open,high,low,close[,adj_close],volume[,split_coef]`) or one
//! file per symbol (symbol from the file name). Intraday files (a `ts`
//! column instead of `date`) are rolled up into daily candles per exchange
//! trading date. Unknown extra columns (e.g. `dividend`) are ignored.
//!
//! A file that cannot be read at all is an error ([`SourceError`]); a row
//! that cannot be parsed becomes an [`Offence`] and the rest of the file is
//! read. Parsing applies the value rules of [`super::quality`].

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use chrono::NaiveDate;

use super::Candle;
use super::quality::{Offence, Rule, check_values};
use crate::symbols::Symbol;

/// A file-level failure: nothing from this file is used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{}: unsupported file type (expected .csv, .csv.gz or .parquet)", .0.display())]
    UnsupportedType(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a readable CSV file: {message}", path.display())]
    Garbled { path: PathBuf, message: String },
    #[error("{}: missing required column(s) {missing}; found columns: {found}", path.display())]
    MissingColumns {
        path: PathBuf,
        missing: String,
        found: String,
    },
    #[error("{}: file name does not give a valid symbol and the file has no symbol column ({symbol:?})", path.display())]
    FileSymbol { path: PathBuf, symbol: String },
    #[error("{}: cannot read Parquet: {message}", path.display())]
    Parquet { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Csv,
    CsvGz,
    Parquet,
}

impl FileKind {
    pub fn of(path: &Path) -> Option<FileKind> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".csv.gz") || name.ends_with(".gz") {
            Some(FileKind::CsvGz)
        } else if name.ends_with(".csv") {
            Some(FileKind::Csv)
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            Some(FileKind::Parquet)
        } else {
            None
        }
    }

    fn strip(self, name: &str) -> &str {
        let lower = name.to_ascii_lowercase();
        let cut = [".csv.gz", ".gz", ".csv", ".parquet", ".pq"]
            .iter()
            .find(|ext| lower.ends_with(*ext))
            .map(|ext| ext.len())
            .unwrap_or(0);
        &name[..name.len() - cut]
    }
}

/// One parsed row with where it came from.
#[derive(Debug, Clone)]
pub struct SourceRow {
    /// Which input of the import it came from (an index the caller sets;
    /// 0 for a lone input).
    pub source: usize,
    pub line: u64,
    pub candle: Candle,
    /// Rolled up from intraday bars: an official daily candle for the same
    /// date, in this import or stored, takes precedence over it.
    pub derived: bool,
}

/// What one file gave.
#[derive(Debug, Default)]
pub struct FileRead {
    pub rows: Vec<SourceRow>,
    pub offences: Vec<Offence>,
    /// Data rows in the file (good and bad).
    pub rows_read: u64,
    /// For intraday files: how many bars were rolled up into `rows`.
    pub intraday_bars: Option<u64>,
}

/// Read one file. `display` is the name used in reports.
pub fn read_file(path: &Path) -> Result<FileRead, SourceError> {
    let kind = FileKind::of(path).ok_or_else(|| SourceError::UnsupportedType(path.to_path_buf()))?;
    let display = path.display().to_string();
    match kind {
        FileKind::Csv => {
            let file = open(path)?;
            read_csv(path, &display, BufReader::with_capacity(1 << 20, file))
        }
        FileKind::CsvGz => {
            let file = open(path)?;
            let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file));
            read_csv(path, &display, BufReader::with_capacity(1 << 20, gz))
        }
        FileKind::Parquet => read_parquet(path, &display),
    }
}

fn open(path: &Path) -> Result<File, SourceError> {
    File::open(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Column positions found in a header.
#[derive(Debug, Clone)]
struct ColumnMap {
    symbol: Option<usize>,
    /// `date` (daily) or `ts` (intraday).
    date: usize,
    intraday: bool,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    volume: usize,
    adj_close: Option<usize>,
    split_coef: Option<usize>,
}

impl ColumnMap {
    fn from_header(path: &Path, header: &[String]) -> Result<(ColumnMap, Option<Symbol>), SourceError> {
        let find = |names: &[&str]| {
            header.iter().position(|h| {
                let h = h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
                names.iter().any(|n| h == *n)
            })
        };
        let date = find(&["date"]);
        let ts = find(&["ts", "timestamp", "datetime"]);
        let mut missing = Vec::new();
        let mut need = |names: &[&str], label: &'static str| {
            let found = find(names);
            if found.is_none() {
                missing.push(label);
            }
            found.unwrap_or(usize::MAX)
        };
        let open = need(&["open"], "open");
        let high = need(&["high"], "high");
        let low = need(&["low"], "low");
        let close = need(&["close"], "close");
        let volume = need(&["volume"], "volume");
        if date.is_none() && ts.is_none() {
            missing.insert(0, "date");
        }
        let symbol = find(&["symbol", "ticker"]);
        if !missing.is_empty() {
            return Err(SourceError::MissingColumns {
                path: path.to_path_buf(),
                missing: missing.join(", "),
                found: if header.is_empty() {
                    "(none)".to_string()
                } else {
                    header.join(", ")
                },
            });
        }
        let file_symbol = match symbol {
            Some(_) => None,
            None => Some(symbol_from_file_name(path)?),
        };
        let map = ColumnMap {
            symbol,
            date: date.or(ts).unwrap_or_default(),
            intraday: date.is_none(),
            open,
            high,
            low,
            close,
            volume,
            adj_close: find(&["adj_close", "adj close", "adjclose", "adjusted_close"]),
            split_coef: find(&["split_coef", "split_coefficient"]),
        };
        Ok((map, file_symbol))
    }
}

fn symbol_from_file_name(path: &Path) -> Result<Symbol, SourceError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = FileKind::of(path)
        .map(|k| k.strip(name))
        .unwrap_or(name)
        .to_ascii_uppercase();
    Symbol::parse(&stem).map_err(|_| SourceError::FileSymbol {
        path: path.to_path_buf(),
        symbol: stem,
    })
}

/// Field access shared by the CSV and Parquet readers. `None` = missing
/// (absent, empty or null).
trait Fields {
    fn field(&self, index: usize) -> Result<Option<&str>, ()>;
}

struct CsvFields<'a>(&'a csv::ByteRecord);

impl Fields for CsvFields<'_> {
    fn field(&self, index: usize) -> Result<Option<&str>, ()> {
        match self.0.get(index) {
            None => Ok(None),
            Some(bytes) => {
                let text = std::str::from_utf8(bytes).map_err(|_| ())?.trim();
                Ok((!text.is_empty()).then_some(text))
            }
        }
    }
}

/// A parsed bar plus, for intraday rows, its time stamp (for ordering).
struct ParsedBar {
    candle: Candle,
    ts: Option<String>,
}

/// Where a row is read: the file's column map, its symbol (per-symbol
/// files), its display name, and the last symbol seen (long files are
/// sorted by symbol, so consecutive rows share one `Symbol`).
struct RowContext<'a> {
    map: &'a ColumnMap,
    file_symbol: Option<&'a Symbol>,
    display: &'a str,
    last_symbol: Option<Symbol>,
}

fn parse_row(cx: &mut RowContext, fields: &dyn Fields, line: u64) -> Result<ParsedBar, Offence> {
    let map = cx.map;
    let raw = |i: usize| fields.field(i);
    let raw_symbol: &str = match (map.symbol, cx.file_symbol) {
        (Some(i), _) => raw(i).ok().flatten().unwrap_or(""),
        (None, Some(s)) => s.as_str(),
        (None, None) => "",
    };
    let raw_date = raw(map.date).ok().flatten().unwrap_or("");
    let display = cx.display;
    let offence = |rule: Rule, detail: String| Offence {
        source: display.to_string(),
        line,
        symbol: raw_symbol.to_string(),
        date: raw_date.to_string(),
        rule,
        detail,
    };
    let symbol = match (cx.file_symbol, &cx.last_symbol) {
        (Some(s), _) => s.clone(),
        (None, Some(last)) if last.as_str() == raw_symbol => last.clone(),
        (None, _) if raw_symbol.is_empty() => {
            return Err(offence(Rule::MissingField, "symbol is empty".into()));
        }
        (None, _) => {
            let parsed = Symbol::parse(raw_symbol)
                .map_err(|_| offence(Rule::InvalidSymbol, format!("{raw_symbol:?} is not a valid symbol")))?;
            cx.last_symbol = Some(parsed.clone());
            parsed
        }
    };
    let text = |i: usize, name: &str| -> Result<&str, Offence> {
        match raw(i) {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(offence(Rule::MissingField, format!("{name} is empty"))),
            Err(()) => Err(offence(Rule::UnparseableField, format!("{name} is not valid UTF-8"))),
        }
    };
    let number = |i: usize, name: &str| -> Result<f64, Offence> {
        let t = text(i, name)?;
        t.parse::<f64>()
            .map_err(|_| offence(Rule::UnparseableField, format!("{name} {t:?} is not a number")))
    };
    let optional = |i: Option<usize>, name: &str| -> Result<Option<f64>, Offence> {
        match i {
            Some(i) if matches!(raw(i), Ok(Some(_)) | Err(())) => number(i, name).map(Some),
            _ => Ok(None),
        }
    };
    let date_text = text(map.date, if map.intraday { "ts" } else { "date" })?;
    let date = parse_day(date_text, map.intraday)
        .ok_or_else(|| offence(Rule::UnparseableField, format!("date {date_text:?} is not YYYY-MM-DD")))?;
    let candle = Candle {
        symbol,
        date,
        open: number(map.open, "open")?,
        high: number(map.high, "high")?,
        low: number(map.low, "low")?,
        close: number(map.close, "close")?,
        adj_close: optional(map.adj_close, "adj_close")?,
        volume: parse_volume(text(map.volume, "volume")?).map_err(|(rule, d)| offence(rule, d))?,
        split_coef: optional(map.split_coef, "split_coef")?,
    };
    if let Some((rule, detail)) = check_values(&candle) {
        return Err(offence(rule, detail));
    }
    let ts = map.intraday.then(|| date_text.to_string());
    Ok(ParsedBar { candle, ts })
}

/// The trading date: a plain `YYYY-MM-DD`, or the local date part of an
/// ISO-8601 time stamp written in the exchange's offset.
fn parse_day(text: &str, intraday: bool) -> Option<NaiveDate> {
    let day = if intraday { text.get(..10)? } else { daily_date(text)? };
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// A daily date column: `YYYY-MM-DD`, or a midnight time stamp (how a
/// Parquet `Timestamp` date column reads as text: `2024-01-02T00:00:00`,
/// with fractions of zero, `Z` or `+00:00`). Any other time of day is not
/// a daily date.
fn daily_date(text: &str) -> Option<&str> {
    if text.len() == 10 {
        return Some(text);
    }
    let (day, time) = (text.get(..10)?, text.get(11..)?);
    if !matches!(text.as_bytes()[10], b'T' | b' ') {
        return None;
    }
    let rest = time.strip_prefix("00:00:00")?.trim_start_matches(['.', '0']);
    matches!(rest, "" | "Z" | "+00:00").then_some(day)
}

/// Volumes are whole numbers; `1.0e6` style is accepted when integral.
fn parse_volume(text: &str) -> Result<i64, (Rule, String)> {
    if let Ok(v) = text.parse::<i64>() {
        return if v < 0 {
            Err((Rule::NegativeVolume, format!("volume = {v}")))
        } else {
            Ok(v)
        };
    }
    let v: f64 = text
        .parse()
        .map_err(|_| (Rule::UnparseableField, format!("volume {text:?} is not a number")))?;
    if !v.is_finite() {
        Err((Rule::NonFinite, format!("volume is {v}")))
    } else if v < 0.0 {
        Err((Rule::NegativeVolume, format!("volume = {v}")))
    } else if v.fract() != 0.0 || v > i64::MAX as f64 {
        Err((Rule::UnparseableField, format!("volume {text:?} is not a whole number")))
    } else {
        Ok(v as i64)
    }
}

fn read_csv<R: Read>(path: &Path, display: &str, input: R) -> Result<FileRead, SourceError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(input);
    let header: Vec<String> = match reader.byte_headers() {
        Ok(h) => h
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_string())
            .collect(),
        Err(err) => return Err(csv_error(path, err)),
    };
    let (map, file_symbol) = ColumnMap::from_header(path, &header)?;
    let mut out = FileRead::default();
    let mut intraday = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut cx = RowContext {
        map: &map,
        file_symbol: file_symbol.as_ref(),
        display,
        last_symbol: None,
    };
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(err) => return Err(csv_error(path, err)),
        }
        out.rows_read += 1;
        let line = record.position().map(|p| p.line()).unwrap_or(out.rows_read + 1);
        match parse_row(&mut cx, &CsvFields(&record), line) {
            Ok(bar) => push_bar(&mut out, &mut intraday, bar, line),
            Err(offence) => out.offences.push(offence),
        }
    }
    finish_intraday(&mut out, intraday, map.intraday, display);
    Ok(out)
}

fn csv_error(path: &Path, err: csv::Error) -> SourceError {
    let message = err.to_string();
    match err.into_kind() {
        csv::ErrorKind::Io(source) => SourceError::Io {
            path: path.to_path_buf(),
            source,
        },
        _ => SourceError::Garbled {
            path: path.to_path_buf(),
            message,
        },
    }
}

fn push_bar(out: &mut FileRead, intraday: &mut Vec<(String, u64, Candle)>, bar: ParsedBar, line: u64) {
    match bar.ts {
        Some(ts) => intraday.push((ts, line, bar.candle)),
        None => out.rows.push(SourceRow {
            source: 0,
            line,
            candle: bar.candle,
            derived: false,
        }),
    }
}

/// Roll intraday bars up into one candle per (symbol, trading date):
/// first open, highest high, lowest low, last close, summed volume.
fn finish_intraday(out: &mut FileRead, mut bars: Vec<(String, u64, Candle)>, is_intraday: bool, display: &str) {
    if !is_intraday {
        return;
    }
    out.intraday_bars = Some(bars.len() as u64);
    bars.sort_by(|a, b| (a.2.symbol.as_str(), &a.0).cmp(&(b.2.symbol.as_str(), &b.0)));
    let mut i = 0;
    while i < bars.len() {
        let (_, line, first) = &bars[i];
        let mut day = first.clone();
        day.adj_close = None;
        day.split_coef = None;
        let mut j = i + 1;
        while j < bars.len() && bars[j].2.symbol == day.symbol && bars[j].2.date == day.date {
            let bar = &bars[j].2;
            day.high = day.high.max(bar.high);
            day.low = day.low.min(bar.low);
            day.close = bar.close;
            day.volume = day.volume.saturating_add(bar.volume);
            j += 1;
        }
        match check_values(&day) {
            None => out.rows.push(SourceRow {
                source: 0,
                line: *line,
                candle: day,
                derived: true,
            }),
            Some((rule, detail)) => out.offences.push(Offence {
                source: display.to_string(),
                line: *line,
                symbol: day.symbol.to_string(),
                date: day.date.to_string(),
                rule,
                detail: format!("daily roll-up: {detail}"),
            }),
        }
        i = j;
    }
}

fn read_parquet(path: &Path, display: &str) -> Result<FileRead, SourceError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |message: String| SourceError::Parquet {
        path: path.to_path_buf(),
        message,
    };
    // The whole file in memory: every page is then read from a bounded
    // slice. Read through `File`, a corrupt page header can make the
    // reader skip byte by byte for minutes (found by the fuzz tests).
    let bytes = std::fs::read(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).map_err(|e| bad(e.to_string()))?;
    let header: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let (map, file_symbol) = ColumnMap::from_header(path, &header)?;
    let reader = builder
        .with_batch_size(65_536)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut out = FileRead::default();
    let mut intraday = Vec::new();
    let mut cx = RowContext {
        map: &map,
        file_symbol: file_symbol.as_ref(),
        display,
        last_symbol: None,
    };
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let columns = string_columns(&batch).map_err(bad)?;
        for row in 0..batch.num_rows() {
            out.rows_read += 1;
            let line = out.rows_read;
            let fields = ParquetFields { columns: &columns, row };
            match parse_row(&mut cx, &fields, line) {
                Ok(bar) => push_bar(&mut out, &mut intraday, bar, line),
                Err(offence) => out.offences.push(offence),
            }
        }
    }
    finish_intraday(&mut out, intraday, map.intraday, display);
    Ok(out)
}

/// Every column as text, so that both readers share one parser. Dates and
/// time stamps cast to ISO text; floats to their shortest round-trip form.
fn string_columns(batch: &RecordBatch) -> Result<Vec<StringArray>, String> {
    batch
        .columns()
        .iter()
        .map(|column| {
            let cast = arrow_cast::cast(column, &DataType::Utf8).map_err(|e| e.to_string())?;
            cast.as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .ok_or_else(|| "column did not cast to text".to_string())
        })
        .collect()
}

struct ParquetFields<'a> {
    columns: &'a [StringArray],
    row: usize,
}

impl Fields for ParquetFields<'_> {
    fn field(&self, index: usize) -> Result<Option<&str>, ()> {
        let Some(column) = self.columns.get(index) else {
            return Ok(None);
        };
        if column.is_null(self.row) {
            return Ok(None);
        }
        let text = column.value(self.row).trim();
        Ok((!text.is_empty()).then_some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn daily_dates_accept_midnight_time_stamps_only() {
        let d = |t| parse_day(t, false).map(|d| d.to_string());
        for ok in [
            "2024-01-02",
            "2024-01-02T00:00:00",
            "2024-01-02 00:00:00.000",
            "2024-01-02T00:00:00Z",
            "2024-01-02T00:00:00+00:00",
        ] {
            assert_eq!(d(ok).as_deref(), Some("2024-01-02"), "{ok}");
        }
        for bad in [
            "2024-01-02T09:30:00",
            "2024-01-02T00:00:00+05:30",
            "2024-01-02X00:00:00",
            "2024-01-0",
            "2024-01-02T",
            "日本語の日付です",
        ] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    #[test]
    fn per_symbol_file_takes_the_symbol_from_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "INFY.NS.csv",
            "date,open,high,low,close,volume\n2024-01-02,10,11,9,10.5,100\n",
        );
        let read = read_file(&path).unwrap();
        assert_eq!(read.rows.len(), 1);
        assert_eq!(read.rows[0].candle.symbol.as_str(), "INFY.NS");
        assert_eq!(read.rows[0].line, 2);
    }

    #[test]
    fn bad_rows_become_offences_with_their_rule() {
        let dir = tempfile::tempdir().unwrap();
        let text = "symbol,date,open,high,low,close,volume,dividend\n\
                    A,2024-01-02,10,11,9,10.5,100,0\n\
                    A,2024-01-03,abc,11,9,10.5,100,0\n\
                    A,2024-01-04,NaN,11,9,10.5,100,0\n\
                    A,2024-01-05,10,11,9,10.5,-1,0\n\
                    a b,2024-01-08,10,11,9,10.5,1,0\n\
                    A,2024-01-09,10,11,9\n";
        let read = read_file(&write(dir.path(), "x.csv", text)).unwrap();
        let rules: Vec<_> = read.offences.iter().map(|o| o.rule).collect();
        assert_eq!(
            rules,
            vec![
                Rule::UnparseableField,
                Rule::NonFinite,
                Rule::NegativeVolume,
                Rule::InvalidSymbol,
                Rule::MissingField
            ]
        );
        assert_eq!(read.rows.len(), 1);
        assert_eq!(read.rows_read, 6);
        assert_eq!(read.offences[0].line, 3);
    }

    #[test]
    fn missing_column_names_what_was_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_file(&write(dir.path(), "x.csv", "symbol,date,open,high,low,volume\n")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("missing required column(s) close"), "{text}");
    }

    #[test]
    fn intraday_bars_roll_up_to_daily() {
        let dir = tempfile::tempdir().unwrap();
        let text = "symbol,ts,open,high,low,close,volume\n\
                    T.NS,2024-10-21T09:30:00+05:30,11,13,10,12,5\n\
                    T.NS,2024-10-21T09:15:00+05:30,10,12,9,11,10\n\
                    T.NS,2024-10-22T09:15:00+05:30,20,21,19,20,1\n";
        let read = read_file(&write(dir.path(), "x.csv", text)).unwrap();
        assert_eq!(read.intraday_bars, Some(3));
        assert_eq!(read.rows.len(), 2);
        let day = &read.rows[0].candle;
        assert_eq!(
            (day.open, day.high, day.low, day.close, day.volume),
            (10.0, 13.0, 9.0, 12.0, 15)
        );
    }

    #[test]
    fn volume_forms() {
        assert_eq!(parse_volume("100"), Ok(100));
        assert_eq!(parse_volume("1e3"), Ok(1000));
        assert_eq!(parse_volume("1.5").unwrap_err().0, Rule::UnparseableField);
        assert_eq!(parse_volume("-5").unwrap_err().0, Rule::NegativeVolume);
        assert_eq!(parse_volume("inf").unwrap_err().0, Rule::NonFinite);
    }
}
