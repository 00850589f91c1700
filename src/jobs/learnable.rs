//! Which labeled rows an evening's `incremental-update` learns, and in
//! which steps — the same whether it runs every evening or catches up
//! after a week.
//!
//! A row (symbol, scan date) can be learned once **its own** label window
//! is complete: its symbol has `horizon` bars after the scan date. A
//! symbol that misses sessions completes later than the market, so rows
//! are keyed by the date their window completed (`window_end`), not by
//! their scan date. The model records `completed_through`: every row
//! whose window completed by then has been learned. An update as of `T`
//! learns the rows completing in (`completed_through`, `T`], one step per
//! completion date in date order — so the steps do not depend on when
//! cron ran: ten evenings and one catch-up apply the same steps in the
//! same order.
//!
//! A row whose window has not completed [`LATE_DAYS_PER_BAR`] × horizon
//! plus [`CLOSURE_DAYS`] calendar days after its scan date (a symbol that
//! stopped trading, or misses most sessions) is given up: never learned,
//! and reported once,
//! on the update whose span holds that deadline. Without a deadline a
//! delisted symbol's last rows would stay pending for ever; with it the
//! decision is a property of the data, not of the day the update ran.

use chrono::{Days, NaiveDate};

use crate::features::Snapshot;
use crate::symbols::Symbol;

/// Calendar days per label bar a row may take to complete (5 bars: 15
/// days, about 10 sessions: room for a few missed sessions).
pub const LATE_DAYS_PER_BAR: u64 = 3;

/// Calendar days added for closures: a long weekend and a holiday (with
/// horizon 1 the three days alone would give up every Friday before a
/// Monday holiday).
pub const CLOSURE_DAYS: u64 = 4;

/// The calendar days a row may take to complete.
fn allowed_days(horizon: usize) -> u64 {
    LATE_DAYS_PER_BAR * horizon as u64 + CLOSURE_DAYS
}

/// What a model has learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// Every row whose window completed by this date.
    CompletedThrough(NaiveDate),
    /// Every row of a scan date up to this one (models written before
    /// rows were keyed by completion: their pending rows are not known).
    ScanDatesThrough(NaiveDate),
}

/// The last day a row of `scan` may complete on and still be learned.
pub fn deadline(scan: NaiveDate, horizon: usize) -> NaiveDate {
    scan + Days::new(allowed_days(horizon))
}

/// The first scan date whose rows an update after `learned` may learn.
pub fn first_scan_date(learned: Learned, horizon: usize) -> NaiveDate {
    match learned {
        Learned::CompletedThrough(c) => c - Days::new(allowed_days(horizon)),
        Learned::ScanDatesThrough(d) => d + Days::new(1),
    }
}

/// Whether a labeled row is learned by an update after `learned` (as of
/// any date at or after its completion).
pub fn is_due(row: &Snapshot, learned: Learned, horizon: usize) -> bool {
    let Some(end) = row.window_end else {
        return false;
    };
    match learned {
        Learned::CompletedThrough(c) => end > c && end <= deadline(row.date, horizon),
        Learned::ScanDatesThrough(d) => row.date > d,
    }
}

/// A row that will never be learned, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenUp {
    pub symbol: Symbol,
    pub date: NaiveDate,
    pub reason: String,
}

/// The rows of `snapshots` whose deadline falls in (`learned`, `as_of`]
/// and that cannot be learned: their window had not completed by it, or
/// completed after it. Only rows that would be trained on count (`keep`).
pub fn given_up(
    snapshots: &[(Symbol, Vec<Snapshot>)],
    learned: Learned,
    as_of: NaiveDate,
    horizon: usize,
    keep: impl Fn(&Snapshot) -> bool,
) -> Vec<GivenUp> {
    let Learned::CompletedThrough(c) = learned else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (symbol, rows) in snapshots {
        for row in rows.iter().filter(|r| keep(r)) {
            let due = deadline(row.date, horizon);
            if due <= c || due > as_of {
                continue;
            }
            let reason = match row.window_end {
                None => format!("no {horizon} bars after it by {due}"),
                Some(end) if end > due => format!("its window completed on {end}, after {due}"),
                Some(_) => continue,
            };
            out.push(GivenUp {
                symbol: symbol.clone(),
                date: row.date,
                reason,
            });
        }
    }
    out
}

/// The due rows of `rows` (labeled, in (date, symbol) order), in learning
/// order: by completion date, then as they came.
pub fn in_learning_order(mut rows: Vec<Snapshot>, learned: Learned, horizon: usize) -> Vec<Snapshot> {
    rows.retain(|r| is_due(r, learned, horizon));
    if let Learned::CompletedThrough(_) = learned {
        // Stable: each completion date's rows stay in (date, symbol) order.
        rows.sort_by_key(|r| r.window_end);
    }
    rows
}

/// The learning steps of rows in learning order: one per completion date
/// (per scan date for a model keyed by scan dates).
pub fn steps(rows: &[Snapshot], learned: Learned) -> Vec<&[Snapshot]> {
    let key = |r: &Snapshot| match learned {
        Learned::CompletedThrough(_) => r.window_end,
        Learned::ScanDatesThrough(_) => Some(r.date),
    };
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let k = key(&rows[start]);
        let end = start + rows[start..].iter().take_while(|r| key(r) == k).count();
        out.push(&rows[start..end]);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{Features, N_CATEGORICAL, N_NUMERIC};
    use crate::labels::{ExitReason, Label};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 11, d).unwrap()
    }

    fn row(symbol: &str, date: u32, end: Option<u32>) -> Snapshot {
        let label = end.map(|_| Label {
            label: 0,
            exit_reason: ExitReason::Timeout,
            bars_to_exit: 5,
            entry_price: 1.0,
            exit_price: 1.0,
            gross_return: 0.0,
            realized_return: 0.0,
            entry_cost: 0.0,
            exit_cost: 0.0,
        });
        Snapshot {
            symbol: Symbol::parse(symbol).unwrap(),
            date: day(date),
            close: 1.0,
            atr: None,
            features: Features::new([Some(0.0); N_NUMERIC], [None; N_CATEGORICAL]),
            label,
            window_end: end.map(day),
            marks: Box::default(),
            tradeable: true,
        }
    }

    fn keys(rows: &[Snapshot]) -> Vec<(String, u32)> {
        use chrono::Datelike;
        rows.iter().map(|r| (r.symbol.to_string(), r.date.day())).collect()
    }

    #[test]
    fn late_rows_join_the_step_of_the_day_they_complete() {
        // Learned through the 6th. A's row of the 2nd completed on the
        // 9th (A missed two sessions), B's rows normally.
        let learned = Learned::CompletedThrough(day(6));
        let rows = vec![
            row("A", 2, Some(9)),
            row("B", 2, Some(6)),
            row("B", 3, Some(9)),
            row("A", 3, Some(10)),
            row("B", 4, Some(10)),
        ];
        let ordered = in_learning_order(rows, learned, 5);
        assert_eq!(
            keys(&ordered),
            [("A".into(), 2), ("B".into(), 3), ("A".into(), 3), ("B".into(), 4)]
        );
        let steps = steps(&ordered, learned);
        assert_eq!(steps.len(), 2);
        assert_eq!(keys(steps[0]), [("A".into(), 2), ("B".into(), 3)]);
        // The first scan date still able to complete after the 6th (19 days).
        assert_eq!(
            first_scan_date(learned, 5),
            NaiveDate::from_ymd_opt(2020, 10, 18).unwrap()
        );
    }

    #[test]
    fn rows_past_their_deadline_are_given_up_once() {
        // Deadline of the 2nd with horizon 2: 3·2 + 4 days later, the 12th.
        let snapshots = vec![
            (
                Symbol::parse("A").unwrap(),
                vec![row("A", 2, None), row("A", 3, Some(5))],
            ),
            (Symbol::parse("B").unwrap(), vec![row("B", 2, Some(14))]),
        ];
        let learned = Learned::CompletedThrough(day(6));
        assert!(given_up(&snapshots, learned, day(11), 2, |_| true).is_empty());
        let gone = given_up(&snapshots, learned, day(12), 2, |_| true);
        assert_eq!(gone.len(), 2, "{gone:?}");
        assert!(gone[0].reason.contains("no 2 bars after it by 2020-11-12"), "{gone:?}");
        assert!(gone[1].reason.contains("completed on 2020-11-14, after 2020-11-12"));
        // The next update (learned through the 12th) does not report them again.
        assert!(given_up(&snapshots, Learned::CompletedThrough(day(12)), day(30), 2, |_| true).is_empty());
        // A row completing after its deadline is never due.
        assert!(!is_due(&row("B", 2, Some(14)), Learned::CompletedThrough(day(6)), 2));
    }
}
