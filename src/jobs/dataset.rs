//! Loading a watchlist's candles and turning them into snapshots: shared
//! by `bootstrap` (labeled history) and `score` (the as-of snapshot).

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::candles::Candle;
use crate::candles::quality::check_values;
use crate::context::Context;
use crate::db;
use crate::features::{Snapshot, snapshots_from};
use crate::labels::Barrier;
use crate::symbols::Symbol;

/// A symbol left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub symbol: String,
    pub reason: String,
}

/// The watchlist's members: an explicit (or configured) watchlist must
/// have some.
pub async fn watchlist_symbols(ctx: &Context, max_symbols: Option<usize>) -> anyhow::Result<Vec<Symbol>> {
    let name = &ctx.settings.watchlist;
    let mut members = db::watchlists::members(&ctx.db, name).await?;
    if members.is_empty() {
        anyhow::bail!(
            "watchlist {name} has no symbols: import candles with `ta-signals import --watchlist {name} FILE`"
        );
    }
    if let Some(max) = max_symbols {
        members.truncate(max);
    }
    Ok(members)
}

/// The run's as-of date: the flag, else the latest candle of the watchlist.
pub async fn resolve_as_of(ctx: &Context) -> anyhow::Result<NaiveDate> {
    if let Some(date) = ctx.settings.as_of {
        return Ok(date);
    }
    db::candles::latest_date(&ctx.db, &ctx.settings.watchlist)
        .await?
        .ok_or_else(|| anyhow::anyhow!("watchlist {} has no candles: import some first", ctx.settings.watchlist))
}

/// Every symbol's candles up to `as_of` (date order).
pub async fn load_candles(
    ctx: &Context,
    symbols: &[Symbol],
    as_of: NaiveDate,
) -> anyhow::Result<Vec<(Symbol, Vec<Candle>)>> {
    db::candles::for_symbols_through(&ctx.db, symbols, as_of).await
}

/// Snapshots of each symbol from `keep_from` on (in parallel; the whole
/// history feeds the indicators); symbols whose candles break a quality
/// rule or are fewer than `min_bars` are skipped with the reason.
pub fn build_snapshots(
    candles: Vec<(Symbol, Vec<Candle>)>,
    barrier: &Barrier,
    min_bars: usize,
    keep_from: NaiveDate,
) -> (Vec<(Symbol, Vec<Snapshot>)>, Vec<Skipped>) {
    let results: Vec<Result<(Symbol, Vec<Snapshot>), Skipped>> = candles
        .into_par_iter()
        .map(|(symbol, candles)| {
            let skip = |reason: String| Skipped {
                symbol: symbol.to_string(),
                reason,
            };
            if let Some((c, (rule, detail))) = candles.iter().find_map(|c| check_values(c).map(|bad| (c, bad))) {
                return Err(skip(format!("candle {} breaks {}: {detail}", c.date, rule.as_str())));
            }
            if candles.len() < min_bars {
                return Err(skip(format!(
                    "{} bars, fewer than the minimum {min_bars}",
                    candles.len()
                )));
            }
            Ok((symbol.clone(), snapshots_from(&candles, barrier, keep_from)))
        })
        .collect();
    let mut built = Vec::new();
    let mut skipped = Vec::new();
    for r in results {
        match r {
            Ok(s) => built.push(s),
            Err(s) => skipped.push(s),
        }
    }
    (built, skipped)
}
