//! The prequential evaluation files of `incremental-update` (one row per
//! learned step, both models and the live one) and the trailing window
//! the pointer decision reads from them.

use std::sync::Arc;

use anyhow::Context as _;

use arrow_array::{ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::NaiveDate;

use super::DateEval;
use crate::context::Context;
use crate::store::WatchlistStore;

/// The trailing window's prequential figures.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Trailing {
    /// Row-weighted mean log loss of the lineage and of the live model.
    pub(super) updated: f64,
    pub(super) live: f64,
    /// Per scan date, the lineage's log loss minus the live model's.
    pub(super) diffs: Vec<f64>,
}

impl Trailing {
    /// The one-sided 95 % upper bound of the mean per-date difference,
    /// with `dates / horizon` independent dates and Student's t on one
    /// fewer degrees of freedom (with 4 such dates the normal's 1.645
    /// would promote equal models about one time in eleven); `None` under
    /// two such dates.
    pub(super) fn upper_bound(&self, horizon: usize) -> Option<f64> {
        crate::models::backtest::overlapping_mean_upper_95(&self.diffs, horizon)
    }
}

/// The prequential figures over the last `trailing_dates` scan dates of
/// this lineage: this run's and the earlier runs' evaluation files (the
/// newest record of a date wins: a rerun after a crash may have evaluated
/// it twice).
pub(super) fn trailing_window(
    store: &WatchlistStore,
    base: &str,
    this_run: &str,
    dates: &[DateEval],
    ctx: &Context,
) -> anyhow::Result<Option<Trailing>> {
    let mut by_date: std::collections::BTreeMap<NaiveDate, (usize, f64, f64)> = Default::default();
    let want = ctx.settings.incremental.trailing_dates;
    // Oldest first, so that a newer record of a date replaces an older one.
    for record in store.list(Some("online_eval"))?.into_iter().rev() {
        if record.name == this_run {
            continue;
        }
        match store
            .read(&record.name)
            .map_err(anyhow::Error::from)
            .and_then(|b| read_eval(b, base))
        {
            Ok(rows) => by_date.extend(rows.into_iter().map(|(d, n, u, p)| (d, (n, u, p)))),
            Err(err) => tracing::warn!(
                "evaluation file {} left out of the trailing window: {err:#}",
                record.name
            ),
        }
    }
    for d in dates {
        by_date.insert(d.date, (d.rows, d.updated.log_loss, d.production_log_loss));
    }
    let window: Vec<&(usize, f64, f64)> = by_date.values().rev().take(want).collect();
    let rows: usize = window.iter().map(|w| w.0).sum();
    if rows == 0 {
        return Ok(None);
    }
    let mean = |f: fn(&(usize, f64, f64)) -> f64| window.iter().map(|w| w.0 as f64 * f(w)).sum::<f64>() / rows as f64;
    Ok(Some(Trailing {
        updated: mean(|w| w.1),
        live: mean(|w| w.2),
        diffs: window.iter().rev().map(|w| w.1 - w.2).collect(),
    }))
}

const EVAL_COLUMNS: [&str; 10] = [
    "updated_auc",
    "updated_log_loss",
    "updated_brier",
    "updated_precision_at_k",
    "frozen_auc",
    "frozen_log_loss",
    "frozen_brier",
    "frozen_precision_at_k",
    "production_log_loss",
    "k",
];

/// `online_eval_*.parquet`: one row per scan date, both models.
pub(super) fn write_eval<W: std::io::Write + Send>(
    sink: W,
    base: &str,
    dates: &[DateEval],
) -> anyhow::Result<Option<crate::store::ParquetInfo>> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let n = dates.len();
    let mut fields = vec![
        Field::new("scan_date", DataType::Date32, false),
        Field::new("base_model", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("positives", DataType::Int64, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from_iter_values(
            dates.iter().map(|d| (d.date - epoch).num_days() as i32),
        )),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(base, n))),
        Arc::new(Int64Array::from_iter_values(dates.iter().map(|d| d.rows as i64))),
        Arc::new(Int64Array::from_iter_values(dates.iter().map(|d| d.positives as i64))),
    ];
    let values: [fn(&DateEval) -> Option<f64>; 10] = [
        |d| d.updated.auc,
        |d| Some(d.updated.log_loss),
        |d| Some(d.updated.brier),
        |d| Some(d.updated.precision_at_k),
        |d| d.frozen.auc,
        |d| Some(d.frozen.log_loss),
        |d| Some(d.frozen.brier),
        |d| Some(d.frozen.precision_at_k),
        |d| Some(d.production_log_loss),
        |d| Some(d.updated.k as f64),
    ];
    for (name, value) in EVAL_COLUMNS.iter().zip(values) {
        fields.push(Field::new(*name, DataType::Float64, true));
        columns.push(Arc::new(Float64Array::from_iter(dates.iter().map(value))));
    }
    crate::parquet_out::write_batch(sink, Arc::new(Schema::new(fields)), columns, n)
}

/// (scan date, rows, updated log loss, production log loss) of an
/// evaluation file's rows of lineage `base`.
fn read_eval(bytes: Vec<u8>, base: &str) -> anyhow::Result<Vec<(NaiveDate, usize, f64, f64)>> {
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))?.build()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .with_context(|| format!("no column {name}"))
                .cloned()
        };
        let dates = column("scan_date")?;
        let dates = dates.as_any().downcast_ref::<Date32Array>().context("scan_date type")?;
        let bases = column("base_model")?;
        let bases = bases
            .as_any()
            .downcast_ref::<StringArray>()
            .context("base_model type")?;
        let rows = column("rows")?;
        let rows = rows.as_any().downcast_ref::<Int64Array>().context("rows type")?;
        let updated = column("updated_log_loss")?;
        let updated = updated
            .as_any()
            .downcast_ref::<Float64Array>()
            .context("updated_log_loss type")?;
        let live = column("production_log_loss")?;
        let live = live
            .as_any()
            .downcast_ref::<Float64Array>()
            .context("production_log_loss type")?;
        for i in 0..batch.num_rows() {
            if bases.value(i) != base || updated.is_null(i) || live.is_null(i) {
                continue;
            }
            out.push((
                epoch + chrono::Days::new(dates.value(i) as u64),
                rows.value(i) as usize,
                updated.value(i),
                live.value(i),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_models_are_promoted_at_most_one_time_in_twenty() {
        // Per-date differences of two equal models on overlapping windows:
        // each the sum of the `h` daily shocks its window spans.
        let mut rng = crate::models::backtest::SplitMix(7);
        let mut normal = || {
            let (u, v) = (rng.uniform().max(1e-300), rng.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        for (n, h) in [(20usize, 5usize), (40, 5), (20, 1)] {
            let runs = 4000;
            let mut promoted = 0;
            for _ in 0..runs {
                let shocks: Vec<f64> = (0..n + h).map(|_| normal()).collect();
                let diffs = (0..n).map(|t| shocks[t..t + h].iter().sum::<f64>()).collect();
                let t = Trailing {
                    updated: 0.0,
                    live: 0.0,
                    diffs,
                };
                promoted += usize::from(t.upper_bound(h).is_some_and(|u| u <= 0.0));
            }
            let rate = promoted as f64 / runs as f64;
            assert!(rate <= 0.06, "{n} dates, horizon {h}: {rate}");
        }
    }

    #[test]
    fn the_bound_counts_overlapping_dates_as_fewer() {
        // 20 dates, differences alternating −0.01 / +0.004: mean −0.003,
        // sample sd √(20/19)·0.007.
        let diffs: Vec<f64> = (0..20).map(|i| if i % 2 == 0 { -0.01 } else { 0.004 }).collect();
        let t = Trailing {
            updated: 0.5,
            live: 0.5,
            diffs,
        };
        let sd = 0.007 * (20.0f64 / 19.0).sqrt();
        let at = |h: usize| t.upper_bound(h).unwrap();
        // t(19) 1.729; horizon 5: 4 independent dates, t(3) 2.353.
        assert!((at(1) - (-0.003 + 1.729 * sd / 20f64.sqrt())).abs() < 1e-12);
        assert!((at(5) - (-0.003 + 2.353 * sd / 2.0)).abs() < 1e-12);
        assert!(at(1) < 0.0 && at(5) > 0.0);
        // 3 dates at horizon 5 are not 2 independent ones.
        let few = Trailing {
            diffs: vec![-0.1, -0.1, -0.1],
            ..t
        };
        assert_eq!(few.upper_bound(5), None);
    }
}
