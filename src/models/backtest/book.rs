//! The marked-to-market book: positions valued every session, so its
//! daily returns carry the real variance of holding them (booking a trade
//! on its exit day makes the daily series a moving sum of overlapping
//! cohorts, about 1/horizon of the variance).
//!
//! Each position has a fixed weight (a share of the book's starting
//! capital, the rest is cash at 0). On the label price series, with `c`
//! the cost of a side as a fraction, a position returns:
//! - on its entry session `close / entry − 1 − c_entry`;
//! - then close to close;
//! - on its exit session `exit / previous close − 1 − c_exit`;
//! - `exit / entry − 1 − c_entry − c_exit` when it enters and exits in one
//!   session;
//! - 0 on a session without the symbol's candle (its next return runs from
//!   its last close).
//!
//! The book's return on a session is the weighted sum of its open
//! positions' returns that session.

use chrono::NaiveDate;

/// One position: its sessions (entry to exit, each with its close on the
/// label prices), fills and costs.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    pub marks: &'a [(NaiveDate, f64)],
    pub entry_price: f64,
    pub exit_price: f64,
    pub entry_cost: f64,
    pub exit_cost: f64,
    pub weight: f64,
}

impl Position<'_> {
    /// The position's return on each of its sessions.
    pub fn session_returns(&self) -> impl Iterator<Item = (NaiveDate, f64)> + '_ {
        let last = self.marks.len().saturating_sub(1);
        self.marks.iter().enumerate().map(move |(j, &(date, close))| {
            let from = if j == 0 { self.entry_price } else { self.marks[j - 1].1 };
            let to = if j == last { self.exit_price } else { close };
            let mut r = to / from - 1.0;
            if j == 0 {
                r -= self.entry_cost;
            }
            if j == last {
                r -= self.exit_cost;
            }
            (date, r)
        })
    }
}

/// A book's sessions: its return, the weight of its open positions and
/// the weight it entered, per session of `calendar`.
#[derive(Debug, Clone, PartialEq)]
pub struct Book {
    pub returns: Vec<f64>,
    pub exposure: Vec<f64>,
    pub entered: Vec<f64>,
    pub open_positions: Vec<u32>,
}

/// The book of `positions` over `calendar` (sorted sessions that hold
/// every position's marks; a mark outside it is a bug of the caller).
pub fn mark_to_market(calendar: &[NaiveDate], positions: &[Position]) -> Book {
    let n = calendar.len();
    let mut book = Book {
        returns: vec![0.0; n],
        exposure: vec![0.0; n],
        entered: vec![0.0; n],
        open_positions: vec![0; n],
    };
    let at = |date: NaiveDate| {
        calendar
            .binary_search(&date)
            .expect("every mark is a session of the book's calendar")
    };
    for p in positions.iter().filter(|p| !p.marks.is_empty()) {
        let first = at(p.marks[0].0);
        let last = at(p.marks[p.marks.len() - 1].0);
        book.entered[first] += p.weight;
        // Held (and at risk) from its entry session through its exit.
        for s in first..=last {
            book.exposure[s] += p.weight;
            book.open_positions[s] += 1;
        }
        for (date, r) in p.session_returns() {
            book.returns[at(date)] += p.weight * r;
        }
    }
    book
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2021, 3, day).unwrap()
    }

    #[test]
    fn positions_marked_by_hand() {
        // Sessions 1..=5, costs 0.1 % on entry and 0.2 % on exit.
        // A: enters on 2 at 100, closes 102 on 2 and 99 on 3, exits on 4
        // at 105 (a gap fill through the target at the open).
        // B: enters and exits on 3 (stopped in its entry session).
        // C: enters on 2 at 50, has no candle on 3, closes 55 on 4, exits
        // on 5 at 54. (The exit session's close is never read.)
        let cal = [d(1), d(2), d(3), d(4), d(5)];
        let a = [(d(2), 102.0), (d(3), 99.0), (d(4), 0.0)];
        let b = [(d(3), 0.0)];
        let c = [(d(2), 51.0), (d(4), 55.0), (d(5), 0.0)];
        let pos = |marks: &'static [(NaiveDate, f64)], entry, exit, w| Position {
            marks,
            entry_price: entry,
            exit_price: exit,
            entry_cost: 0.001,
            exit_cost: 0.002,
            weight: w,
        };
        let a: &'static [(NaiveDate, f64)] = Box::leak(Box::new(a));
        let b: &'static [(NaiveDate, f64)] = Box::leak(Box::new(b));
        let c: &'static [(NaiveDate, f64)] = Box::leak(Box::new(c));
        let book = mark_to_market(
            &cal,
            &[
                pos(a, 100.0, 105.0, 0.1),
                pos(b, 20.0, 19.0, 0.2),
                pos(c, 50.0, 54.0, 0.1),
            ],
        );
        let close = |x: f64, y: f64| (x - y).abs() < 1e-14;
        assert_eq!(book.returns[0], 0.0);
        // Session 2: A 102/100 − 1 − .001 = .019; C 51/50 − 1 − .001 = .019.
        assert!(close(book.returns[1], 0.1 * 0.019 + 0.1 * 0.019));
        // Session 3: A 99/102 − 1; B 19/20 − 1 − .003 = −.053; C no candle.
        assert!(close(book.returns[2], 0.1 * (99.0 / 102.0 - 1.0) + 0.2 * -0.053));
        // Session 4: A exits 105/99 − 1 − .002; C 55/51 − 1.
        assert!(close(
            book.returns[3],
            0.1 * (105.0 / 99.0 - 1.002) + 0.1 * (55.0 / 51.0 - 1.0)
        ));
        // Session 5: C exits 54/55 − 1 − .002.
        assert!(close(book.returns[4], 0.1 * (54.0 / 55.0 - 1.002)));
        assert_eq!(book.open_positions, vec![0, 2, 3, 2, 1]);
        assert!(close(book.entered[1], 0.2) && close(book.entered[2], 0.2));
        assert!(close(book.exposure[2], 0.4));
    }
}
