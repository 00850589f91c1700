//! Sorting one import's rows into what to insert, what is already stored
//! and what conflicts — pure functions, no I/O.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::Candle;
use super::quality::{Offence, Rule, is_weekend, suspected_splits};
use super::source::SourceRow;
use crate::symbols::Symbol;

/// A candle on its way in; `derived` when rolled up from intraday bars.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub candle: Candle,
    pub derived: bool,
}

/// The rows of one import after duplicate resolution, grouped by symbol.
#[derive(Debug, Default)]
pub struct Deduped {
    pub by_symbol: Vec<(Symbol, Vec<Incoming>)>,
    /// Same key, same values: harmless repeats, dropped.
    pub identical_duplicates: u64,
    /// Intraday roll-ups dropped because an official daily candle exists.
    pub superseded: u64,
    pub offences: Vec<Offence>,
}

/// Sort rows by (symbol, date); a key seen more than once with different
/// values is quarantined entirely (no way to tell which is right), with
/// identical repeats collapsed to one. A daily candle rolled up from
/// intraday bars gives way to an official daily candle of the same date
/// (exchanges' official closes are not the last trade, so they differ).
pub fn dedupe(mut rows: Vec<SourceRow>, sources: &[String]) -> Deduped {
    // (symbol, date, source, line) is unique, so an unstable sort gives the
    // one order — descending, so that the groups come off the back in
    // ascending order and the rows' storage shrinks as the output grows
    // (on a market's history the rows are the import's memory).
    fn key(r: &SourceRow) -> (&str, NaiveDate, usize, u64) {
        (r.candle.symbol.as_str(), r.candle.date, r.source, r.line)
    }
    rows.sort_unstable_by(|a, b| key(b).cmp(&key(a)));
    let mut out = Deduped::default();
    while let Some(last) = rows.last() {
        let (symbol, date) = (last.candle.symbol.clone(), last.candle.date);
        let size = rows
            .iter()
            .rev()
            .take_while(|r| r.candle.date == date && r.candle.symbol == symbol)
            .count();
        let start = rows.len() - size;
        // In (source, line) order.
        let mut group: Vec<SourceRow> = rows.drain(start..).rev().collect();
        if rows.capacity() > 2 * rows.len() + 1024 {
            rows.shrink_to_fit();
        }
        if group.iter().any(|r| !r.derived) {
            let before = group.len();
            group.retain(|r| !r.derived);
            out.superseded += (before - group.len()) as u64;
        }
        if group.iter().all(|r| r.candle.same_values(&group[0].candle)) {
            out.identical_duplicates += (group.len() - 1) as u64;
            let first = group.swap_remove(0);
            push_candle(
                &mut out.by_symbol,
                Incoming {
                    candle: first.candle,
                    derived: first.derived,
                },
            );
        } else {
            let places: Vec<String> = group
                .iter()
                .map(|r| format!("{}:{}", sources[r.source], r.line))
                .collect();
            for r in &group {
                out.offences.push(Offence {
                    source: sources[r.source].clone(),
                    line: r.line,
                    symbol: r.candle.symbol.to_string(),
                    date: r.candle.date.to_string(),
                    rule: Rule::DuplicateConflict,
                    detail: format!("same symbol and date with different values at {}", places.join(", ")),
                });
            }
        }
    }
    out
}

fn push_candle(by_symbol: &mut Vec<(Symbol, Vec<Incoming>)>, incoming: Incoming) {
    match by_symbol.last_mut() {
        Some((symbol, rows)) if *symbol == incoming.candle.symbol => rows.push(incoming),
        _ => by_symbol.push((incoming.candle.symbol.clone(), vec![incoming])),
    }
}

/// What to do with an incoming row whose stored row differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Quarantine the incoming row, keep the stored one (files).
    Quarantine,
    /// Replace the stored row (a provider revising a bar).
    Replace,
    /// Keep the stored row without a report (it came from a provider
    /// preferred to this one; vendors differ a little).
    KeepStored,
}

/// One symbol's new rows compared with what is stored.
#[derive(Debug, Default)]
pub struct Compared {
    pub to_insert: Vec<Candle>,
    /// Stored rows to replace with the incoming values (a provider's
    /// revision of a bar it gave before).
    pub to_revise: Vec<Candle>,
    pub unchanged: u64,
    /// Intraday roll-ups that differ from a stored daily candle.
    pub superseded: u64,
    pub offences: Vec<Offence>,
}

/// Compare `incoming` (one symbol, date order) with `stored` (same symbol,
/// date order): identical rows change nothing, different ones are
/// quarantined (the stored row is kept) unless they are intraday roll-ups,
/// which give way, or `on_conflict` says otherwise for the stored row of
/// that date; new ones are inserted. New rows are then checked for the two flag
/// rules against the merged series.
pub fn compare_with_stored(
    incoming: Vec<Incoming>,
    stored: &[Candle],
    max_move: f64,
    on_conflict: &dyn Fn(NaiveDate) -> OnConflict,
) -> Compared {
    let index: HashMap<NaiveDate, &Candle> = stored.iter().map(|c| (c.date, c)).collect();
    let mut out = Compared::default();
    for Incoming { candle, derived } in incoming {
        match index.get(&candle.date) {
            Some(existing) if existing.same_values(&candle) => out.unchanged += 1,
            Some(_) if derived => out.superseded += 1,
            Some(existing) => match on_conflict(candle.date) {
                OnConflict::Replace => out.to_revise.push(candle),
                OnConflict::KeepStored => out.unchanged += 1,
                OnConflict::Quarantine => out.offences.push(Offence {
                    source: String::new(),
                    line: 0,
                    symbol: candle.symbol.to_string(),
                    date: candle.date.to_string(),
                    rule: Rule::ConflictsWithStored,
                    detail: format!(
                        "stored close {} volume {}, new close {} volume {}; the stored row is kept",
                        existing.close, existing.volume, candle.close, candle.volume
                    ),
                }),
            },
            None => out.to_insert.push(candle),
        }
    }
    flag_new_rows(&mut out, stored, max_move);
    out
}

fn flag_new_rows(out: &mut Compared, stored: &[Candle], max_move: f64) {
    let mut merged: Vec<(bool, &Candle)> = stored
        .iter()
        .map(|c| (false, c))
        .chain(out.to_insert.iter().map(|c| (true, c)))
        .collect();
    merged.sort_by_key(|(_, c)| c.date);
    let series: Vec<Candle> = merged.iter().map(|(_, c)| (*c).clone()).collect();
    let mut flags = Vec::new();
    for (i, detail) in suspected_splits(&series, max_move) {
        if merged[i].0 {
            flags.push(flag(&series[i], Rule::SuspectedSplit, detail));
        }
    }
    for candle in out.to_insert.iter().filter(|c| is_weekend(c)) {
        flags.push(flag(
            candle,
            Rule::WeekendDate,
            format!("{} is a {}", candle.date, candle.date.format("%A")),
        ));
    }
    out.offences.extend(flags);
}

fn flag(candle: &Candle, rule: Rule, detail: String) -> Offence {
    Offence {
        source: String::new(),
        line: 0,
        symbol: candle.symbol.to_string(),
        date: candle.date.to_string(),
        rule,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candle(day: u32, close: f64) -> Candle {
        crate::candles::test_bar(day, close)
    }

    fn tagged(source: usize, line: u64, c: Candle) -> SourceRow {
        SourceRow {
            source,
            line,
            candle: c,
            derived: false,
        }
    }

    fn incoming(c: Candle) -> Incoming {
        Incoming {
            candle: c,
            derived: false,
        }
    }

    #[test]
    fn intraday_roll_up_gives_way_to_daily_candle() {
        let mut derived = tagged(1, 2, candle(2, 10.5));
        derived.derived = true;
        let d = dedupe(
            vec![tagged(0, 2, candle(2, 10.0)), derived],
            &["d.csv".into(), "i.csv".into()],
        );
        assert!(d.offences.is_empty());
        assert_eq!(d.superseded, 1);
        assert_eq!(d.by_symbol[0].1[0].candle.close, 10.0);
        let stored = vec![candle(2, 10.0)];
        let c = compare_with_stored(
            vec![Incoming {
                candle: candle(2, 10.5),
                derived: true,
            }],
            &stored,
            0.4,
            &|_| OnConflict::Quarantine,
        );
        assert_eq!((c.superseded, c.offences.len(), c.to_insert.len()), (1, 0, 0));
    }

    #[test]
    fn conflicting_duplicates_are_all_quarantined_identical_ones_collapse() {
        let rows = vec![
            tagged(0, 2, candle(2, 10.0)),
            tagged(0, 3, candle(2, 11.0)),
            tagged(0, 4, candle(3, 10.0)),
            tagged(1, 2, candle(3, 10.0)),
        ];
        let d = dedupe(rows, &["a.csv".into(), "b.csv".into()]);
        assert_eq!(d.identical_duplicates, 1);
        assert_eq!(d.offences.len(), 2);
        assert!(d.offences.iter().all(|o| o.rule == Rule::DuplicateConflict));
        assert_eq!(d.by_symbol.len(), 1);
        assert_eq!(d.by_symbol[0].1.len(), 1);
        assert_eq!(d.by_symbol[0].1[0].candle.date.to_string(), "2024-01-03");
    }

    #[test]
    fn stored_rows_win_and_identical_ones_change_nothing() {
        let stored = vec![candle(2, 10.0), candle(3, 10.0)];
        let rows = vec![
            incoming(candle(2, 10.0)),
            incoming(candle(3, 12.0)),
            incoming(candle(4, 10.0)),
        ];
        let c = compare_with_stored(rows.clone(), &stored, 0.4, &|_| OnConflict::Quarantine);
        assert_eq!(c.unchanged, 1);
        assert_eq!(c.to_insert.len(), 1);
        assert_eq!(c.offences.len(), 1);
        assert_eq!(c.offences[0].rule, Rule::ConflictsWithStored);
        assert!(c.to_revise.is_empty());

        // A provider revising its own bar of the 3rd replaces it.
        let c = compare_with_stored(rows, &stored, 0.4, &|date| {
            if date.to_string() == "2024-01-03" {
                OnConflict::Replace
            } else {
                OnConflict::Quarantine
            }
        });
        assert_eq!((c.unchanged, c.to_insert.len(), c.offences.len()), (1, 1, 0));
        assert_eq!(c.to_revise.len(), 1);
        assert_eq!(c.to_revise[0].close, 12.0);
    }

    #[test]
    fn weekend_and_split_flags_only_for_new_rows() {
        let stored = vec![candle(5, 100.0)];
        // 2024-01-06 is a Saturday; a −50 % move with nothing to explain it.
        let c = compare_with_stored(vec![incoming(candle(6, 50.0))], &stored, 0.4, &|_| {
            OnConflict::Quarantine
        });
        let rules: Vec<Rule> = c.offences.iter().map(|o| o.rule).collect();
        assert_eq!(rules, vec![Rule::SuspectedSplit, Rule::WeekendDate]);
        assert_eq!(c.to_insert.len(), 1, "flagged rows are kept");
    }
}
