//! The recent snapshots of a watchlist for the daily jobs
//! (`incremental-update`, `monitor`), built from the indicator rows that
//! `ta-signals run` stored and the candles from the first scan date on —
//! a few rows per symbol instead of its whole history.
//!
//! The numbers are those of [`read_and_build`] over the whole history:
//! the stored rows are what it computes (incremental equals full), a bar's
//! split adjustment depends only on the splits after it, and a label reads
//! only the bars of its own window. A symbol whose stored rows cannot
//! stand in for the computation — no state, another `ta_version`, rows
//! missing for a candle (`ta-signals run` has not seen it yet), or an
//! unknown adj_close coverage — is built from its whole history as before.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::dataset::{BuildRules, Built, BuiltOne, CandleHasher, Skipped, mark_tradeable, read_and_build};
use crate::candles::Candle;
use crate::candles::quality::check_values;
use crate::candles::splits::{PriceAdjust, split_ratio};
use crate::context::Context;
use crate::db;
use crate::db::ta_signals::{SignalRow, StateHead};
use crate::features::{Families, snapshots_from_rows};
use crate::indicators::TA_VERSION;
use crate::labels::Barrier;
use crate::symbols::Symbol;
use crate::universe::{UniverseRule, VALUE_WINDOW};

/// As [`read_and_build`] (snapshots dated `from` or later, candles up to
/// `as_of`, each marked tradeable or not by `universe`), from the stored
/// indicator rows wherever they are current. `late_starts` stays empty for
/// the symbols built from stored rows.
pub async fn read_recent(
    ctx: &Context,
    symbols: &[Symbol],
    as_of: NaiveDate,
    barrier: &Barrier,
    min_bars: usize,
    from: NaiveDate,
    universe: UniverseRule,
) -> anyhow::Result<Built> {
    let started = std::time::Instant::now();
    let heads = db::ta_signals::load_state_heads(&ctx.db).await?;
    let (stored, mut whole): (Vec<Symbol>, Vec<Symbol>) = symbols
        .iter()
        .cloned()
        .partition(|s| heads.get(s.as_str()).is_some_and(|h| usable(h, from, as_of)));
    let mut candles: HashMap<Symbol, Vec<Candle>> = HashMap::with_capacity(stored.len());
    db::candles::for_each_symbol_from(&ctx.db, &stored, from, |symbol, c| {
        candles.insert(symbol.clone(), c);
        Ok(())
    })
    .await?;
    // The traded-value window of the first scan dates reaches back before
    // `from`: the last VALUE_WINDOW − 1 candles before it.
    let before_from = from.pred_opt().unwrap_or(from);
    let earlier = db::candles::recent_each(&ctx.db, &stored, before_from, VALUE_WINDOW - 1).await?;
    let mut earlier: HashMap<Symbol, Vec<Candle>> = stored.iter().cloned().zip(earlier).collect();
    let mut rows: HashMap<Symbol, Vec<SignalRow>> = HashMap::with_capacity(stored.len());
    db::ta_signals::for_each_symbol_between(&ctx.db, &stored, from, as_of, |symbol, r| {
        rows.insert(symbol.clone(), r);
        Ok(())
    })
    .await?;

    let mut hasher = CandleHasher::default();
    let mut built: HashMap<Symbol, BuiltOne> = HashMap::with_capacity(symbols.len());
    for symbol in stored {
        let head = &heads[symbol.as_str()];
        let candles = candles.remove(&symbol).unwrap_or_default();
        let rows = rows.remove(&symbol).unwrap_or_default();
        let label_prices = if head.all_adj_close == Some(true) {
            ctx.settings.import.adjust
        } else {
            PriceAdjust::None
        };
        match from_stored(&symbol, head, &candles, rows, as_of, barrier, min_bars, label_prices) {
            Some(one) => {
                let through = candles.partition_point(|c| c.date <= as_of);
                hasher.update(&symbol, &candles[..through]);
                let one = one.map(|(symbol, mut snapshots)| {
                    let mut window = earlier.remove(&symbol).unwrap_or_default();
                    window.extend_from_slice(&candles);
                    mark_tradeable(&window, &mut snapshots, universe);
                    (symbol, snapshots)
                });
                built.insert(symbol, one);
            }
            None => whole.push(symbol),
        }
    }
    let from_rows = built.len();
    let mut out = Built {
        snapshots: Vec::with_capacity(symbols.len()),
        skipped: Vec::new(),
        candle_hash: String::new(),
        read_secs: 0.0,
        late_starts: Vec::new(),
    };
    if !whole.is_empty() {
        tracing::info!(
            "{} symbol(s) built from stored indicator rows, {} from their whole history (no current `ta-signals run` \
             rows for them)",
            from_rows,
            whole.len()
        );
        // In watchlist order, as the caller gave them.
        let position: HashMap<&Symbol, usize> = symbols.iter().enumerate().map(|(i, s)| (s, i)).collect();
        whole.sort_by_key(|s| position[s]);
        let full = read_and_build(
            ctx,
            &whole,
            as_of,
            from,
            &BuildRules {
                barrier: *barrier,
                min_bars,
                universe,
                families: Families::NONE,
            },
        )
        .await?;
        hasher.update_text(&full.candle_hash);
        out.late_starts = full.late_starts;
        for (symbol, snapshots) in full.snapshots {
            built.insert(symbol.clone(), Ok((symbol, snapshots)));
        }
        for skipped in full.skipped {
            let symbol = Symbol::parse(&skipped.symbol)?;
            built.insert(symbol, Err(skipped));
        }
    }
    for symbol in symbols {
        match built.remove(symbol) {
            Some(Ok(s)) => out.snapshots.push(s),
            Some(Err(s)) => out.skipped.push(s),
            None => {}
        }
    }
    out.candle_hash = hasher.finish();
    out.read_secs = started.elapsed().as_secs_f64();
    Ok(out)
}

/// Whether a symbol's stored rows may stand in for its history, as far as
/// its state tells: this program's indicators, computed at least through
/// the first scan date, and a known adj_close coverage that also holds up
/// to `as_of` (a missing adj_close after `as_of` does not count in a
/// computation through `as_of`).
fn usable(head: &StateHead, from: NaiveDate, as_of: NaiveDate) -> bool {
    head.ta_version == TA_VERSION
        && head.last_date >= from
        && match head.all_adj_close {
            Some(true) => true,
            Some(false) => head.last_date <= as_of,
            None => false,
        }
}

/// A symbol's snapshots from its stored rows: `candles` are its candles
/// from the first scan date on (some may be newer than `as_of`), `rows`
/// its stored rows from then through `as_of`. `None` when they do not
/// line up with the candles (rows missing: `ta-signals run` has not seen
/// every candle) — the caller then builds it from its whole history.
#[allow(clippy::too_many_arguments)]
fn from_stored(
    symbol: &Symbol,
    head: &StateHead,
    candles: &[Candle],
    rows: Vec<SignalRow>,
    as_of: NaiveDate,
    barrier: &Barrier,
    min_bars: usize,
    label_prices: PriceAdjust,
) -> Option<BuiltOne> {
    let through = candles.partition_point(|c| c.date <= as_of);
    let (scan, later) = candles.split_at(through);
    // Every candle through as_of has its row, and the rows go no further
    // than the candles the state has seen.
    let lined_up = scan.len() == rows.len() && scan.iter().zip(&rows).all(|(c, r)| c.date == r.date);
    if !lined_up || head.last_date < as_of.min(scan.last().map_or(as_of, |c| c.date)) {
        return None;
    }
    let skip = |reason: String| {
        Err(Skipped {
            symbol: symbol.to_string(),
            reason,
        })
    };
    if let Some((c, (rule, detail))) = scan.iter().find_map(|c| check_values(c).map(|bad| (c, bad))) {
        return Some(skip(format!("candle {} breaks {}: {detail}", c.date, rule.as_str())));
    }
    // The candles after as_of that the rows were adjusted for.
    let seen_later: Vec<&Candle> = later.iter().filter(|c| c.date <= head.last_date).collect();
    let bars = usize::try_from(head.bars).unwrap_or(0).saturating_sub(seen_later.len());
    if bars < min_bars {
        return Some(skip(format!("{bars} bars, fewer than the minimum {min_bars}")));
    }
    // Multiplied from the newest back, as `adjust` does.
    let rows_scale = seen_later.iter().rev().fold(1.0, |f, c| f * split_ratio(c));
    let indicator_rows: Vec<_> = rows.into_iter().map(|r| r.row).collect();
    let snapshots = snapshots_from_rows(scan, &indicator_rows, 0, rows_scale, barrier, label_prices);
    Some(Ok((symbol.clone(), snapshots)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(last: u32, all_adj_close: Option<bool>) -> StateHead {
        StateHead {
            ta_version: TA_VERSION,
            last_date: NaiveDate::from_ymd_opt(2024, 1, last).unwrap(),
            bars: 300,
            all_adj_close,
            history_generation: Some(0),
        }
    }

    #[test]
    fn stored_rows_are_used_only_when_their_state_vouches_for_them() {
        let day = |d| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
        let (from, as_of) = (day(10), day(20));
        assert!(usable(&head(20, Some(true)), from, as_of));
        assert!(usable(&head(25, Some(true)), from, as_of));
        assert!(usable(&head(20, Some(false)), from, as_of));
        // A bar without adj_close somewhere up to the 25th may lie after
        // as_of, where a computation through as_of would not see it.
        assert!(!usable(&head(25, Some(false)), from, as_of));
        assert!(!usable(&head(20, None), from, as_of));
        assert!(!usable(&head(9, Some(true)), from, as_of));
        let old = StateHead {
            ta_version: TA_VERSION - 1,
            ..head(20, Some(true))
        };
        assert!(!usable(&old, from, as_of));
    }
}
