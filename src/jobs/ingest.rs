//! Storing incoming candles, shared by `import` (files) and `fetch`
//! (providers): compare with what is stored, insert the new rows with
//! their source, replace revised ones where allowed, register the symbols,
//! and write the quarantine report.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::candles::batch::{Incoming, OnConflict, compare_with_stored};
use crate::candles::quality::Offence;
use crate::candles::{Candle, CandleSource};
use crate::context::Context;
use crate::db;
use crate::jobs::in_flight::InFlight;
use crate::store::{NameStyle, NewArtifact};
use crate::symbols::Symbol;

/// What storing one batch did.
#[derive(Debug, Default)]
pub struct Stored {
    pub inserted: u64,
    pub revised: u64,
    pub unchanged: u64,
    pub superseded: u64,
    pub offences: Vec<Offence>,
    pub symbols: Vec<Symbol>,
}

/// What an incoming row with values different from the stored row's does.
pub enum Revisions {
    /// It is quarantined and the stored row kept (files).
    KeepStored,
    /// The closure decides from the stored row's source (a provider
    /// revises its own bars and those of providers it is preferred to).
    FromSources(Box<dyn Fn(Option<CandleSource>) -> OnConflict + Send + Sync>),
}

/// Symbols compared and written per round: bounds the stored rows read
/// back for comparison and the new rows held for writing (a market's
/// history is millions of rows).
const SYMBOLS_PER_ROUND: usize = 256;

/// Store `by_symbol` (each symbol's rows in date order) as coming from `source`.
pub async fn store(
    ctx: &Context,
    by_symbol: Vec<(Symbol, Vec<Incoming>)>,
    source: CandleSource,
    revisions: &Revisions,
) -> anyhow::Result<Stored> {
    let mut out = Stored::default();
    let mut by_symbol = by_symbol.into_iter().peekable();
    // Rounds' writes run while the next round is read and compared. On
    // MySQL two rounds (of different symbols) write at once, on two
    // connections: the client encodes one statement while the server
    // executes another. SQLite has one writer, so one round at a time.
    let in_flight = match ctx.db.dialect() {
        db::Dialect::MySql => 2,
        db::Dialect::Sqlite => 1,
    };
    let mut writing = InFlight::new(in_flight);
    let compared = async {
        while by_symbol.peek().is_some() {
            let round: Vec<(Symbol, Vec<Incoming>)> = by_symbol.by_ref().take(SYMBOLS_PER_ROUND).collect();
            let writes = compare_round(ctx, round, source, revisions, &mut out).await?;
            let rewriting = rewriting_the_past(ctx, &writes.to_insert, &writes.to_revise).await?;
            let (db, batch_rows) = (ctx.db.clone(), ctx.settings.import.batch_rows);
            if let Some((inserted, revised)) = writing
                .start(write_round(db, rewriting, writes, source, batch_rows))
                .await?
            {
                out.inserted += inserted;
                out.revised += revised;
            }
        }
        anyhow::Ok(())
    }
    .await;
    let written = writing.finish().await;
    compared?;
    for (inserted, revised) in written? {
        out.inserted += inserted;
        out.revised += revised;
    }
    let watchlist = ctx
        .settings
        .watchlist_explicit
        .then_some(ctx.settings.watchlist.as_str());
    db::watchlists::register(&ctx.db, &out.symbols, watchlist).await?;
    Ok(out)
}

/// What one round writes.
struct RoundWrites {
    to_insert: Vec<Candle>,
    to_revise: Vec<Candle>,
}

/// Compare one round's symbols with what is stored: what to write.
async fn compare_round(
    ctx: &Context,
    by_symbol: Vec<(Symbol, Vec<Incoming>)>,
    source: CandleSource,
    revisions: &Revisions,
    out: &mut Stored,
) -> anyhow::Result<RoundWrites> {
    let mut to_insert: Vec<Candle> = Vec::new();
    let mut to_revise: Vec<Candle> = Vec::new();
    let ranges: Vec<(Symbol, NaiveDate, NaiveDate)> = by_symbol
        .iter()
        .map(|(symbol, incoming)| {
            let (first, last) = date_range(incoming);
            (symbol.clone(), first, last)
        })
        .collect();
    let around = db::candles::around_each(&ctx.db, &ranges).await?;
    for (((symbol, incoming), (_, first, last)), stored) in by_symbol.into_iter().zip(ranges).zip(around) {
        let sources: HashMap<NaiveDate, Option<CandleSource>> = match revisions {
            Revisions::KeepStored => HashMap::new(),
            Revisions::FromSources(_) => db::candles::sources_between(&ctx.db, &symbol, first, last).await?,
        };
        let on_conflict = |date: NaiveDate| match revisions {
            Revisions::KeepStored => OnConflict::Quarantine,
            Revisions::FromSources(decide) => decide(sources.get(&date).copied().flatten()),
        };
        let compared = compare_with_stored(incoming, &stored, ctx.settings.import.max_daily_move, &on_conflict);
        out.unchanged += compared.unchanged;
        out.superseded += compared.superseded;
        out.offences.extend(compared.offences.into_iter().map(|mut o| {
            if o.source.is_empty() {
                o.source = source.as_str().to_string();
            }
            o
        }));
        to_insert.extend(compared.to_insert);
        to_revise.extend(compared.to_revise);
        out.symbols.push(symbol);
    }
    Ok(RoundWrites { to_insert, to_revise })
}

/// Write one round: raise the history counters of the symbols whose past
/// it rewrites first (see [`rewriting_the_past`]), then insert and revise.
/// Rows inserted and revised.
async fn write_round(
    db: db::Db,
    rewriting: Vec<Symbol>,
    writes: RoundWrites,
    source: CandleSource,
    batch_rows: usize,
) -> anyhow::Result<(u64, u64)> {
    db::candles::bump_history(&db, &rewriting).await?;
    let inserted = db::candles::insert(&db, &writes.to_insert, source, batch_rows).await?;
    let revised = db::candles::revise(&db, &writes.to_revise, source).await?;
    Ok((inserted, revised))
}

/// The symbols whose past these writes change: a revised candle, or a new
/// one dated before the symbol's newest stored candle (a back-fill). Their
/// saved indicator states no longer hold.
async fn rewriting_the_past(ctx: &Context, to_insert: &[Candle], to_revise: &[Candle]) -> anyhow::Result<Vec<Symbol>> {
    let mut earliest: HashMap<Symbol, NaiveDate> = HashMap::new();
    for c in to_insert {
        let e = earliest.entry(c.symbol.clone()).or_insert(c.date);
        *e = (*e).min(c.date);
    }
    let symbols: Vec<Symbol> = earliest.keys().cloned().collect();
    let newest = db::candles::last_dates(&ctx.db, &symbols).await?;
    let mut out: Vec<Symbol> = earliest
        .into_iter()
        .filter(|(s, first)| newest.get(s).is_some_and(|last| first <= last))
        .map(|(s, _)| s)
        .chain(to_revise.iter().map(|c| c.symbol.clone()))
        .collect();
    out.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    out.dedup();
    Ok(out)
}

fn date_range(rows: &[Incoming]) -> (NaiveDate, NaiveDate) {
    let dates = rows.iter().map(|r| r.candle.date);
    let first = dates.clone().min().expect("a symbol group has rows");
    (first, dates.max().unwrap_or(first))
}

/// The quarantine report: one CSV row per offence, through the store.
/// Returns its path.
pub fn write_report(ctx: &Context, offences: &[Offence], sources: &[String]) -> anyhow::Result<String> {
    let store = ctx.watchlist_store()?;
    let spec = NewArtifact::new("quarantine_report", NameStyle::Timestamped, "csv")
        .prefix("quarantine")
        .parameters(serde_json::json!({ "sources": sources, "max_daily_move": ctx.settings.import.max_daily_move }));
    let record = store.write(&ctx.writer(), spec, |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(["source", "line", "symbol", "date", "rule", "severity", "detail"])?;
        for o in offences {
            csv.write_record([
                o.source.as_str(),
                &o.line.to_string(),
                o.symbol.as_str(),
                o.date.as_str(),
                o.rule.as_str(),
                o.severity().as_str(),
                o.detail.as_str(),
            ])?;
        }
        csv.flush()?;
        Ok(None)
    })?;
    Ok(store.location(&record.name))
}
