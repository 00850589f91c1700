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

/// Where the lockbox cuts the rows (sorted by scan date): rows `..train_end`
/// are for training, the walk-forward folds and the holdout; rows
/// `lockbox_start..` are the lockbox, the last `fraction` of the calendar
/// (at least one date when the fraction is positive). The `embargo` dates
/// between them belong to neither, so no holdout label window reaches into
/// the lockbox. `None` when too few dates are left before it.
pub fn lockbox(dates: &[NaiveDate], fraction: f64, embargo: usize) -> Option<(usize, usize)> {
    if fraction <= 0.0 {
        return Some((dates.len(), dates.len()));
    }
    let cal = calendar(dates);
    let n_lock = ((cal.len() as f64 * fraction).ceil() as usize).max(1);
    let first_lock = cal.len().checked_sub(n_lock)?;
    let end = first_lock.checked_sub(embargo).filter(|&e| e > 0)?;
    let train_end = dates.partition_point(|d| *d < cal[end]);
    let lockbox_start = dates.partition_point(|d| *d < cal[first_lock]);
    Some((train_end, lockbox_start))
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

    #[test]
    fn the_lockbox_is_the_last_dates_after_an_embargo() {
        let d = |i: u64| NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(i);
        // 20 dates, two rows each.
        let dates: Vec<NaiveDate> = (0..20).flat_map(|i| [d(i), d(i)]).collect();
        // 10 %: the last 2 dates (rows 36..40); embargo 3: dates 15..=17 out.
        assert_eq!(lockbox(&dates, 0.1, 3), Some((30, 36)));
        assert_eq!(lockbox(&dates, 0.0, 3), Some((40, 40)));
        // 0.01 still holds out one date.
        assert_eq!(lockbox(&dates, 0.01, 0), Some((38, 38)));
        assert_eq!(lockbox(&dates, 0.9, 3), None);
    }

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
