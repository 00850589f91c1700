//! Log output: `tracing` lines on stderr, as text or JSON. stdout is kept for
//! data (tables, JSON, CSV) so that it can be piped.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Start the global subscriber. `verbosity` is -2 (errors) .. 2 (trace).
pub fn init(format: LogFormat, verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-2 => LevelFilter::ERROR,
        -1 => LevelFilter::WARN,
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second init (tests calling jobs in-process) is harmless: keep the first.
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Whether to draw progress bars: only for a person watching a terminal.
pub fn show_progress() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress bar over `len` items, hidden when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &'static str) -> indicatif::ProgressBar {
    if !show_progress() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta} left)")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what);
    bar
}
