//! Time splits that cannot leak labels into validation.
//!
//! Rows are snapshots with a scan date and the date their label window
//! ends. The calendar is the sorted set of scan dates. Validation is the
//! last `valid_fraction` of the calendar. A row trains only if its label
//! window ends before the calendar date `embargo` trading days before the
//! first validation date: the purge keeps every training label out of the
//! validation period, the embargo adds `embargo` more days of distance.
//! Walk-forward folds use the same rule with an expanding training set.

use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
    pub first_valid_date: NaiveDate,
    /// Training label windows end strictly before this date.
    pub train_window_end_before: NaiveDate,
}

fn calendar(dates: &[NaiveDate]) -> Vec<NaiveDate> {
    let mut cal = dates.to_vec();
    cal.sort();
    cal.dedup();
    cal
}

/// Rows with scan date in `[valid_start, valid_end)` of the calendar
/// validate; rows whose window ends before `calendar[valid_start −
/// embargo]` train.
fn split_at(
    cal: &[NaiveDate],
    dates: &[NaiveDate],
    window_ends: &[NaiveDate],
    valid_start: usize,
    valid_end: usize,
    embargo: usize,
) -> Option<Split> {
    let cutoff = cal[valid_start.checked_sub(embargo)?];
    let (first, end) = (cal[valid_start], cal.get(valid_end).copied());
    let train: Vec<usize> = (0..dates.len()).filter(|&i| window_ends[i] < cutoff).collect();
    let valid: Vec<usize> = (0..dates.len())
        .filter(|&i| dates[i] >= first && end.is_none_or(|e| dates[i] < e))
        .collect();
    (!train.is_empty() && !valid.is_empty()).then_some(Split {
        train,
        valid,
        first_valid_date: first,
        train_window_end_before: cutoff,
    })
}

/// The holdout split: validation = the last `valid_fraction` of scan dates.
pub fn holdout(dates: &[NaiveDate], window_ends: &[NaiveDate], valid_fraction: f64, embargo: usize) -> Option<Split> {
    let cal = calendar(dates);
    let n_valid = ((cal.len() as f64 * valid_fraction).ceil() as usize).clamp(1, cal.len());
    split_at(&cal, dates, window_ends, cal.len() - n_valid, cal.len(), embargo)
}

/// `folds` expanding walk-forward splits: the calendar cut into `folds + 1`
/// blocks; fold k validates on block k and trains on what ends before it.
pub fn walk_forward(dates: &[NaiveDate], window_ends: &[NaiveDate], folds: usize, embargo: usize) -> Vec<Split> {
    let cal = calendar(dates);
    let block = cal.len() / (folds + 1);
    if block == 0 {
        return Vec::new();
    }
    (1..=folds)
        .filter_map(|k| {
            let end = if k == folds { cal.len() } else { (k + 1) * block };
            split_at(&cal, dates, window_ends, k * block, end, embargo)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic generator for the property test.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// Random calendars and symbols: scan dates on random weekdays, windows
    /// `horizon` bars later in each symbol's own (gappy) calendar.
    fn random_rows(rng: &mut Rng, horizon: usize) -> (Vec<NaiveDate>, Vec<NaiveDate>) {
        let start = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap();
        let days = 60 + rng.below(400) as usize;
        let (mut dates, mut ends) = (Vec::new(), Vec::new());
        for _symbol in 0..(1 + rng.below(6)) {
            let own: Vec<NaiveDate> = (0..days)
                .filter(|_| rng.below(10) < 8)
                .map(|d| start + chrono::Days::new(d as u64))
                .collect();
            for t in 0..own.len().saturating_sub(horizon) {
                dates.push(own[t]);
                ends.push(own[t + horizon]);
            }
        }
        (dates, ends)
    }

    fn check(split: &Split, dates: &[NaiveDate], ends: &[NaiveDate], embargo: usize) {
        let cal = calendar(dates);
        let first = cal.iter().position(|d| *d == split.first_valid_date).unwrap();
        for &i in &split.train {
            assert!(
                ends[i] < split.first_valid_date,
                "training label window reaches into validation"
            );
            // At least `embargo` calendar dates between the window's end and validation.
            let between = cal[..first].iter().filter(|d| **d >= ends[i]).count();
            assert!(between >= embargo, "embargo of {embargo} broken: {between}");
        }
        for &i in &split.valid {
            assert!(dates[i] >= split.first_valid_date);
        }
    }

    #[test]
    fn holdout_and_walk_forward_never_leak_over_random_calendars() {
        let mut rng = Rng(7);
        for _ in 0..300 {
            let horizon = 1 + rng.below(10) as usize;
            let (dates, ends) = random_rows(&mut rng, horizon);
            if let Some(split) = holdout(&dates, &ends, 0.2, horizon) {
                check(&split, &dates, &ends, horizon);
                let last_valid = calendar(&dates).len();
                assert!(split.valid.len() <= dates.len() && last_valid > 0);
            }
            let folds = walk_forward(&dates, &ends, 4, horizon);
            for (k, fold) in folds.iter().enumerate() {
                check(fold, &dates, &ends, horizon);
                if k > 0 {
                    assert!(fold.train.len() >= folds[k - 1].train.len(), "training sets expand");
                    assert!(fold.first_valid_date > folds[k - 1].first_valid_date);
                }
            }
        }
    }

    #[test]
    fn holdout_takes_the_last_fifth_of_dates() {
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        let dates: Vec<NaiveDate> = (0..100).map(|d| start + chrono::Days::new(d)).collect();
        let ends: Vec<NaiveDate> = dates.iter().map(|d| *d + chrono::Days::new(5)).collect();
        let split = holdout(&dates, &ends, 0.2, 5).unwrap();
        assert_eq!(split.valid.len(), 20);
        assert_eq!(split.first_valid_date, dates[80]);
        // cutoff = dates[75]; windows end at scan + 5, so scan < day 70.
        assert_eq!(split.train, (0..70).collect::<Vec<_>>());
    }
}
