//! `ta-signals fetch`: ask the configured providers for each watchlist
//! symbol's new daily bars and store them like an import.
//!
//! Incremental: a symbol is asked from its last stored date minus
//! `[fetch] overlap_days` (a provider's revision of a recent bar replaces
//! the stored one) up to the latest session of its exchange whose close has
//! passed; a symbol already through that session costs no request. A
//! symbol goes down the fallback chain until a provider answers; one
//! symbol's failure is reported and the others continue. Results are
//! written every `write_every` symbols, so a killed run keeps what it wrote
//! and the rerun asks only for the rest (the key (symbol, date) stores
//! every bar once).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use chrono_tz::Tz;
use reqwest::Url;

use super::ingest::{Revisions, Stored};
use crate::candles::CandleSource;
use crate::candles::batch::{OnConflict, dedupe};
use crate::candles::quality::{Offence, Severity};
use crate::candles::source::{FileRead, SourceRow};
use crate::context::Context;
use crate::db::{self, job_runs::RunStatus};
use crate::error::UsageError;
use crate::providers::client::{Http, HttpFailure, RateLimiter, RetryPolicy};
use crate::providers::{DateRange, ProviderError, ProviderName};
use crate::settings::{FetchConfig, ProviderConfig};
use crate::symbols::Symbol;

pub const JOB: &str = "fetch";

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// One provider instead of the configured chain.
    pub provider: Option<String>,
    /// Ask every symbol from this date (a back-fill) instead of its last
    /// stored date.
    pub since: Option<NaiveDate>,
    /// Base URL for every provider of the chain (a local server, a proxy).
    pub base_url: Option<String>,
    /// Symbols added to the watchlist before fetching.
    pub symbols: Vec<String>,
    /// Only this shard's symbols.
    pub shard: Option<crate::shard::Shard>,
}

/// One provider of the chain, ready to ask.
struct Link {
    name: ProviderName,
    base: Url,
    key: Option<String>,
    limiter: RateLimiter,
}

/// What one symbol's fetch gave.
struct SymbolResult {
    symbol: Symbol,
    answered: Option<(ProviderName, FileRead)>,
    errors: Vec<String>,
    requests: u64,
    retries: u64,
}

/// Counts of one provider.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProviderCounts {
    pub symbols: u64,
    pub bars: u64,
}

#[derive(Debug, Default, Clone)]
pub struct FetchSummary {
    pub symbols: usize,
    pub up_to_date: usize,
    pub requests: u64,
    pub retries: u64,
    pub by_provider: BTreeMap<ProviderName, ProviderCounts>,
    pub failed: Vec<(String, String)>,
    pub inserted: u64,
    pub revised: u64,
    pub unchanged: u64,
    /// Bars of sessions not closed yet (or after `--as-of`), left out.
    pub not_closed: u64,
    pub quarantined: u64,
    pub flagged: u64,
    /// The latest closed session asked for (the newest over the symbols).
    pub through: Option<NaiveDate>,
    pub report: Option<String>,
}

pub async fn run(ctx: &Context, options: &FetchOptions) -> anyhow::Result<FetchSummary> {
    let started = Instant::now();
    let chain = Arc::new(chain(ctx, options)?);
    let extra = options
        .symbols
        .iter()
        .map(|raw| Symbol::parse(raw.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    if !extra.is_empty() && !ctx.settings.watchlist_explicit {
        return Err(UsageError::InvalidSetting {
            name: "--symbols",
            message: "name the watchlist they join with --watchlist".into(),
        }
        .into());
    }
    let store = ctx.watchlist_store()?;
    let job = super::job_name(JOB, options.shard);
    let _lock = store.lock_job(&job)?;
    let work = fetch(ctx, options, chain, extra);
    super::audited(ctx, &job, work, |s| {
        let status = if s.requests == 0 && s.failed.is_empty() {
            RunStatus::NothingToDo
        } else if s.failed.is_empty() {
            RunStatus::Ok
        } else {
            RunStatus::Failed
        };
        (status, summary_line(s, started))
    })
    .await
}

/// The providers to ask, in order, with their endpoints and keys; every
/// problem here is a usage error (exit 2) found before anything is asked.
fn chain(ctx: &Context, options: &FetchOptions) -> Result<Vec<Link>, UsageError> {
    let config = &ctx.settings.fetch;
    let names: Vec<ProviderName> = match &options.provider {
        Some(one) => vec![ProviderName::parse(one)?],
        None => config
            .providers
            .iter()
            .map(|p| ProviderName::parse(p))
            .collect::<Result<_, _>>()?,
    };
    names
        .into_iter()
        .map(|name| {
            let provider_config = provider_config(config, name);
            let raw_base = options
                .base_url
                .clone()
                .or_else(|| provider_config.base_url.clone())
                .unwrap_or_else(|| name.adapter().default_base().to_string());
            let key = match name.key_var() {
                None => None,
                Some(var) => Some(
                    ctx.settings
                        .api_keys
                        .get(name)
                        .ok_or_else(|| UsageError::InvalidSetting {
                            name: "provider",
                            message: format!("{} needs an API key: set {var} in the environment", name.as_str()),
                        })?,
                ),
            };
            Ok(Link {
                name,
                base: parse_base(&raw_base)?,
                key,
                limiter: RateLimiter::per_minute(provider_config.requests_per_minute),
            })
        })
        .collect()
}

fn provider_config(config: &FetchConfig, name: ProviderName) -> &ProviderConfig {
    match name {
        ProviderName::Yahoo => &config.yahoo,
        ProviderName::TwelveData => &config.twelvedata,
        ProviderName::Finnhub => &config.finnhub,
    }
}

/// An `http(s)://host[:port][/path]` URL without query or credentials.
fn parse_base(raw: &str) -> Result<Url, UsageError> {
    let invalid = |why: &str| UsageError::InvalidSetting {
        name: "--base-url",
        message: format!("{raw:?} {why}: expected http(s)://HOST[:PORT][/PATH]"),
    };
    let url = Url::parse(raw.trim()).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("is not an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry a query, a fragment or credentials"));
    }
    Ok(url)
}

async fn fetch(
    ctx: &Context,
    options: &FetchOptions,
    chain: Arc<Vec<Link>>,
    extra: Vec<Symbol>,
) -> anyhow::Result<FetchSummary> {
    if !extra.is_empty() {
        db::watchlists::register(&ctx.db, &extra, Some(&ctx.settings.watchlist)).await?;
    }
    let symbols = super::shard_symbols(options.shard, super::dataset::watchlist_symbols(ctx, None).await?);
    let config = &ctx.settings.fetch;
    let last = db::candles::last_dates(&ctx.db, &symbols).await?;
    let mut summary = FetchSummary {
        symbols: symbols.len(),
        ..Default::default()
    };
    // Each symbol's range, or nothing to ask.
    let mut plans: Vec<(Symbol, DateRange, Tz)> = Vec::new();
    for symbol in &symbols {
        let calendar = ctx.settings.calendars.for_symbol(symbol);
        let closed = calendar.latest_closed_session(ctx.settings.now);
        let to = ctx.settings.as_of.map_or(closed, |as_of| as_of.min(closed));
        summary.through = summary.through.max(Some(to));
        let stored = last.get(symbol).copied();
        let from = match (options.since, stored) {
            (Some(since), _) => since,
            (None, Some(last)) if last >= to => {
                summary.up_to_date += 1;
                continue;
            }
            (None, Some(last)) => last - chrono::Days::new(u64::from(config.overlap_days)),
            (None, None) => to - chrono::Days::new((365.25 * f64::from(config.history_years)).round() as u64),
        };
        if from <= to {
            plans.push((symbol.clone(), DateRange { from, to }, calendar.timezone));
        }
    }
    if let Some(through) = summary.through {
        db::job_runs::set_as_of(&ctx.db, &ctx.run_id, through).await?;
    }
    if plans.is_empty() {
        return Ok(summary);
    }

    let http = Arc::new(Http::new(
        Duration::from_secs_f64(config.timeout_secs),
        RetryPolicy {
            retries: config.retries,
            backoff: Duration::from_millis(config.backoff_ms),
            max_backoff: Duration::from_millis(config.max_backoff_ms.max(config.backoff_ms)),
        },
    )?);
    let ranges: HashMap<Symbol, DateRange> = plans.iter().map(|(s, r, _)| (s.clone(), *r)).collect();
    let permits = Arc::new(tokio::sync::Semaphore::new(config.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (symbol, range, zone) in plans {
        let (http, chain, permits) = (http.clone(), chain.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
            fetch_symbol(&http, &chain, symbol, range, zone).await
        });
    }
    let bar = crate::logging::progress_bar(tasks.len() as u64, "fetching");
    let mut offences: Vec<Offence> = Vec::new();
    let mut pending: Vec<SymbolResult> = Vec::new();
    let mut write_time = Duration::ZERO;
    while let Some(joined) = tasks.join_next().await {
        let result = joined?;
        bar.inc(1);
        summary.requests += result.requests;
        summary.retries += result.retries;
        if result.answered.is_none() {
            let why = result.errors.join("; ");
            tracing::warn!("{}: no bars: {why}", result.symbol);
            summary.failed.push((result.symbol.to_string(), why));
        }
        pending.push(result);
        if pending.len() >= config.write_every || tasks.is_empty() {
            let batch = std::mem::take(&mut pending);
            let t = Instant::now();
            write_batch(ctx, batch, &ranges, &mut summary, &mut offences).await?;
            write_time += t.elapsed();
        }
    }
    bar.finish_and_clear();
    tracing::debug!(write_secs = write_time.as_secs_f64(), "fetch: time spent storing");
    summary.failed.sort();
    summary.quarantined = offences
        .iter()
        .filter(|o| o.severity() == Severity::Quarantined)
        .count() as u64;
    summary.flagged = offences.len() as u64 - summary.quarantined;
    if !offences.is_empty() {
        let names: Vec<String> = chain.iter().map(|l| l.name.as_str().to_string()).collect();
        summary.report = Some(super::ingest::write_report(ctx, &offences, &names)?);
    }
    Ok(summary)
}

/// Ask the chain for one symbol until a provider gives bars.
async fn fetch_symbol(http: &Http, chain: &[Link], symbol: Symbol, range: DateRange, zone: Tz) -> SymbolResult {
    let mut out = SymbolResult {
        symbol,
        answered: None,
        errors: Vec::new(),
        requests: 0,
        retries: 0,
    };
    let symbol = out.symbol.clone();
    for link in chain {
        match ask(http, link, &symbol, range, zone, &mut out).await {
            Ok(read) => {
                out.answered = Some((link.name, read));
                return out;
            }
            Err(why) => out.errors.push(format!("{}: {why}", link.name.as_str())),
        }
    }
    out
}

/// One provider's answer for one symbol, retried while the provider says
/// "too many requests" in its body (TwelveData answers 200 with code 429).
async fn ask(
    http: &Http,
    link: &Link,
    symbol: &Symbol,
    range: DateRange,
    zone: Tz,
    counts: &mut SymbolResult,
) -> Result<FileRead, String> {
    let adapter = link.name.adapter();
    let request = adapter.request(&link.base, symbol, range, link.key.as_deref());
    let mut body_retries = 0;
    loop {
        let answer = http.get(&request, &link.limiter).await;
        counts.requests += 1 + u64::from(answer.retries);
        counts.retries += u64::from(answer.retries);
        let parsed = match answer.result {
            Ok(body) => adapter.parse(symbol, zone, &body),
            Err(HttpFailure::Status { status: 404, body }) => Err(match adapter.parse(symbol, zone, &body) {
                Err(ProviderError::UnknownSymbol(text)) => ProviderError::UnknownSymbol(text),
                _ => ProviderError::UnknownSymbol("HTTP 404".into()),
            }),
            Err(HttpFailure::Status {
                status: status @ (401 | 403),
                ..
            }) => {
                let var = link.name.key_var().unwrap_or("the provider's key");
                return Err(format!("HTTP {status}: the provider refused the request (check {var})"));
            }
            Err(failure) => return Err(format!("{failure} after {} retries", answer.retries)),
        };
        match parsed {
            Err(ProviderError::RateLimited(_)) if body_retries < http.policy.retries => {
                tokio::time::sleep(http.policy.delay(body_retries, None)).await;
                body_retries += 1;
                counts.retries += 1;
            }
            other => return other.map_err(|e| e.to_string()),
        }
    }
}

/// Store a batch of answers: bars after the symbol's range (a session not
/// closed yet) are left out; each provider's bars are stored as its own.
async fn write_batch(
    ctx: &Context,
    batch: Vec<SymbolResult>,
    ranges: &HashMap<Symbol, DateRange>,
    summary: &mut FetchSummary,
    offences: &mut Vec<Offence>,
) -> anyhow::Result<()> {
    let mut by_provider: BTreeMap<ProviderName, Vec<SourceRow>> = BTreeMap::new();
    for result in batch {
        let Some((provider, read)) = result.answered else {
            continue;
        };
        let range = ranges[&result.symbol];
        let counts = summary.by_provider.entry(provider).or_default();
        counts.symbols += 1;
        offences.extend(read.offences);
        for row in read.rows {
            if row.candle.date > range.to {
                summary.not_closed += 1;
                continue;
            }
            counts.bars += 1;
            by_provider.entry(provider).or_default().push(row);
        }
    }
    for (provider, rows) in by_provider {
        let origin = [provider.as_str().to_string()];
        let deduped = dedupe(rows, &origin);
        offences.extend(deduped.offences);
        let revisions = revisions(&ctx.settings.fetch.providers, provider);
        let stored = super::ingest::store(ctx, deduped.by_symbol, provider.source(), &revisions).await?;
        add_stored(summary, offences, stored);
    }
    Ok(())
}

/// A provider replaces the bars it stored itself and those of providers
/// after it in the configured order (`[fetch] providers`; one not listed
/// comes last); a preferred provider's bar is kept as is (vendors differ a
/// little, that is no error); an imported bar is never replaced, a
/// different value is quarantined as for a file.
fn revisions(configured: &[String], provider: ProviderName) -> Revisions {
    let ranks: Vec<CandleSource> = configured
        .iter()
        .filter_map(|p| ProviderName::parse(p).ok())
        .map(ProviderName::source)
        .collect();
    let rank = move |source: CandleSource| ranks.iter().position(|s| *s == source).unwrap_or(usize::MAX);
    let mine = rank(provider.source());
    Revisions::FromSources(Box::new(move |stored: Option<CandleSource>| match stored {
        Some(CandleSource::Import) | None => OnConflict::Quarantine,
        Some(source) if rank(source) >= mine => OnConflict::Replace,
        Some(_) => OnConflict::KeepStored,
    }))
}

fn add_stored(summary: &mut FetchSummary, offences: &mut Vec<Offence>, stored: Stored) {
    summary.inserted += stored.inserted;
    summary.revised += stored.revised;
    summary.unchanged += stored.unchanged;
    offences.extend(stored.offences);
}

pub fn summary_line(s: &FetchSummary, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64();
    let through = s.through.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
    if s.requests == 0 && s.failed.is_empty() {
        return format!(
            "fetch: nothing to do: {} symbol(s) already have candles through {through}",
            s.up_to_date
        );
    }
    let providers: Vec<String> = s
        .by_provider
        .iter()
        .map(|(p, c)| format!("{} {} symbol(s)/{} bar(s)", p.as_str(), c.symbols, c.bars))
        .collect();
    let mut line = format!(
        "fetch through {through}: {} symbol(s) ({} up to date), {} request(s) ({} retries, {:.1}/s), {}; {} inserted, {} revised, {} unchanged, {} quarantined, {} flagged, {} not closed yet; {} failed in {secs:.2} s",
        s.symbols,
        s.up_to_date,
        s.requests,
        s.retries,
        s.requests as f64 / secs.max(1e-9),
        if providers.is_empty() {
            "no answers".to_string()
        } else {
            providers.join(", ")
        },
        s.inserted,
        s.revised,
        s.unchanged,
        s.quarantined,
        s.flagged,
        s.not_closed,
        s.failed.len(),
    );
    if !s.failed.is_empty() {
        let names: Vec<&str> = s.failed.iter().map(|(symbol, _)| symbol.as_str()).collect();
        line.push_str(&format!(" ({})", names.join(", ")));
    }
    if let Some(report) = &s.report {
        line.push_str(&format!("; report: {report}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_plain_http() {
        assert!(parse_base("http://127.0.0.1:8080").is_ok());
        assert!(parse_base("https://proxy.example/yahoo/").is_ok());
        for bad in [
            "127.0.0.1:8080",
            "ftp://host/",
            "http://",
            "file:///etc/passwd",
            "http://user:pw@host/",
            "http://host/?token=x",
            "not a url",
        ] {
            assert!(parse_base(bad).is_err(), "{bad}");
        }
    }
}
