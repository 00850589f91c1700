//! `ta-signals import`: load candle files into the database.
//!
//! Every file is read and checked before anything is written, so a file
//! that cannot be read stops the run with nothing changed. Rows that break
//! a quality rule are quarantined into a report artifact; flagged rows are
//! kept and listed in the same report. Re-importing the same data changes
//! nothing.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use rayon::prelude::*;

use super::ingest::Revisions;
use crate::candles::CandleSource;
use crate::candles::batch::dedupe;
use crate::candles::quality::{Offence, Severity};
use crate::candles::source::{FileKind, FileRead, read_file};
use crate::context::Context;
use crate::db::job_runs::RunStatus;
use crate::error::UsageError;

pub const JOB: &str = "import";

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Files or folders.
    pub paths: Vec<PathBuf>,
}

/// Counts of one import, for the summary line and tests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportSummary {
    pub files: usize,
    pub rows_read: u64,
    pub inserted: u64,
    pub unchanged: u64,
    pub identical_duplicates: u64,
    /// Daily candles rolled up from intraday bars that gave way to an
    /// official daily candle.
    pub superseded: u64,
    pub quarantined: u64,
    pub flagged: u64,
    pub symbols: usize,
    /// Name of the quarantine report artifact, when one was written.
    pub report: Option<String>,
}

pub async fn run(ctx: &Context, options: &ImportOptions) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    let files = resolve_files(&options.paths)?;
    let store = ctx.watchlist_store()?;
    let _lock = store.lock_job(JOB)?;
    let work = import(ctx, &files, started);
    super::audited(ctx, JOB, work, |s| (RunStatus::Ok, summary_line(s, started))).await
}

async fn import(ctx: &Context, files: &[PathBuf], started: Instant) -> anyhow::Result<ImportSummary> {
    let bar = crate::logging::progress_bar(files.len() as u64, "reading");
    let reads: Vec<FileRead> = files
        .par_iter()
        .map(|path| {
            let read = read_file(path);
            bar.inc(1);
            read
        })
        .collect::<Result<_, _>>()?;
    bar.finish_and_clear();
    let read_secs = started.elapsed().as_secs_f64();

    let sources: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let mut summary = ImportSummary {
        files: files.len(),
        ..Default::default()
    };
    let mut offences: Vec<Offence> = Vec::new();
    // Every file's rows in one vector, each row tagged with its file in
    // place: the rows are the import's memory, so they are never copied.
    let mut rows = Vec::new();
    for (source, mut read) in reads.into_iter().enumerate() {
        summary.rows_read += read.rows_read;
        if let Some(bars) = read.intraday_bars {
            tracing::info!(
                "{}: rolled {bars} intraday bars up into {} daily candles",
                sources[source],
                read.rows.len()
            );
        }
        offences.extend(read.offences);
        for row in &mut read.rows {
            row.source = source;
        }
        if rows.is_empty() {
            rows = read.rows;
        } else {
            rows.append(&mut read.rows);
        }
    }
    let deduped = dedupe(rows, &sources);
    summary.identical_duplicates = deduped.identical_duplicates;
    summary.superseded = deduped.superseded;
    offences.extend(deduped.offences);

    let write_started = Instant::now();
    let stored = super::ingest::store(ctx, deduped.by_symbol, CandleSource::Import, &Revisions::KeepStored).await?;
    tracing::debug!(
        read_secs,
        write_secs = write_started.elapsed().as_secs_f64(),
        rows = stored.inserted,
        "import timings"
    );
    summary.inserted = stored.inserted;
    summary.unchanged += stored.unchanged;
    summary.superseded += stored.superseded;
    offences.extend(stored.offences);
    let symbols = stored.symbols;
    summary.symbols = symbols.len();
    summary.quarantined = offences
        .iter()
        .filter(|o| o.severity() == Severity::Quarantined)
        .count() as u64;
    summary.flagged = offences.len() as u64 - summary.quarantined;
    if !offences.is_empty() {
        summary.report = Some(super::ingest::write_report(ctx, &offences, &sources)?);
    }
    Ok(summary)
}

/// Expand folders (their supported files, sorted) and check that every
/// named path exists.
fn resolve_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(UsageError::InvalidSetting {
            name: "PATH",
            message: "name at least one file or folder".into(),
        }
        .into());
    }
    let mut files = Vec::new();
    for path in paths {
        if !path.exists() {
            return Err(UsageError::InputNotFound(path.clone()).into());
        }
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && FileKind::of(p).is_some())
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(UsageError::InvalidSetting {
                    name: "PATH",
                    message: format!("{} has no .csv, .csv.gz or .parquet files", path.display()),
                }
                .into());
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

pub fn summary_line(s: &ImportSummary, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64();
    let mut line = format!(
        "import: {} file(s), {} rows read, {} inserted, {} unchanged, {} quarantined, {} flagged, {} symbol(s) in {:.2} s ({:.0} rows/s)",
        s.files,
        s.rows_read,
        s.inserted,
        s.unchanged,
        s.quarantined,
        s.flagged,
        s.symbols,
        secs,
        s.rows_read as f64 / secs.max(1e-9)
    );
    if s.identical_duplicates > 0 {
        line.push_str(&format!(
            ", {} identical duplicate row(s) ignored",
            s.identical_duplicates
        ));
    }
    if s.superseded > 0 {
        line.push_str(&format!(
            ", {} intraday roll-up(s) gave way to daily candles",
            s.superseded
        ));
    }
    if let Some(report) = &s.report {
        line.push_str(&format!("; report: {report}"));
    }
    line
}
