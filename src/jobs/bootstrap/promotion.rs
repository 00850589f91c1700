//! Whether a bootstrap's models replace the live ones.
//!
//! The gate judges what a user earns, with its noise: on the holdout's
//! dates (never trained or early-stopped on, before the lockbox) the lower
//! bound of the 95 % block-bootstrap interval of the per-date top-K excess
//! over the tradeable universe, after costs, must be above 0, over at
//! least `min_valid_dates` dates and `min_windows` independent windows
//! (dates ÷ horizon: neighbouring dates share most of their label window).
//! A model that ranks at random passes about one time in forty (the
//! one-sided 2.5 % of a 95 % interval, up to the bootstrap's coverage);
//! a sign test passes it about one time in two or three.
//!
//! Against live models the comparison is paired: on the holdout dates they
//! never trained on, the same rows are ranked by both, and the lower bound
//! of the interval of the per-date difference of their top-K returns must
//! not be below `−return_margin`. With fewer than `min_windows` such
//! windows the comparison cannot tell a drop from noise: it is reported as
//! inconclusive and does not block (the candidate has shown its own edge).
//! The holdout ends before the lockbox, so live models retrained on the
//! usual monthly schedule have seen all of it: then there is no date both
//! are out of sample on, and the line says so. The comparison bites when
//! the live models are older than the holdout (a schedule that lapsed, a
//! rollback); the lockbox is never used for it.
//! Precision@K against the base rate and the rule BUY list is reported,
//! not judged. A run whose `--as-of` is older than the live models' never
//! replaces them. `--force` overrides; every decision names every test and
//! its figure.

use chrono::NaiveDate;

use super::training::{TrainParams, eval_set};
use crate::features::{Features, Snapshot};
use crate::jobs::production::ProductionModels;
use crate::models::backtest::{Backtest, Interval, block_bootstrap, top_k_per_date};
use crate::models::metrics::{Baselines, Evaluation, evaluate};
use crate::models::split::Split;
use crate::settings::PromotionConfig;
use crate::store::WatchlistStore;

/// How the live models compare with the candidate.
#[derive(Debug, Clone)]
pub enum ProductionComparison {
    NoProduction,
    Unusable(String),
    /// The live models read other feature families than this run built:
    /// they cannot be scored on the same rows, so the paired test cannot
    /// run — and a change of features must not slip past it.
    OtherFeatures(String),
    /// The live models were trained on every holdout row: comparing on
    /// rows they learned from would favour them unfairly.
    SawValidation(NaiveDate),
    /// Both on the holdout rows after the live models' training data.
    Compared {
        from: NaiveDate,
        rows: usize,
        /// Per-date candidate top-K return minus production's.
        difference: Interval,
        windows: f64,
        candidate_precision: f64,
        production_precision: f64,
    },
}

/// The live models and how they compare.
pub struct Production {
    pub comparison: ProductionComparison,
    /// The as-of date the live models were trained with.
    pub as_of: Option<NaiveDate>,
}

impl ProductionComparison {
    pub fn production_precision(&self) -> Option<f64> {
        match self {
            ProductionComparison::Compared {
                production_precision, ..
            } => Some(*production_precision),
            _ => None,
        }
    }
}

/// Score the holdout rows the live models never trained on (scan dates
/// after their `as_of`) with both, each ranked its own way, and compare
/// their top-K per date on the same rows.
pub fn compare_with_production(
    store: &WatchlistStore,
    rows: &[Snapshot],
    split: &Split,
    candidate_scores: &[f64],
    params: &TrainParams,
) -> Production {
    let unusable = |why: String| Production {
        comparison: ProductionComparison::Unusable(why),
        as_of: None,
    };
    let production = match ProductionModels::load(store) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return Production {
                comparison: ProductionComparison::NoProduction,
                as_of: None,
            };
        }
        Err(err) => return unusable(format!("{err:#}")),
    };
    if production.bundle.families != params.families {
        // The rows carry this run's family values; production would read
        // another family's columns (or none) from them.
        return Production {
            comparison: ProductionComparison::OtherFeatures(format!(
                "production uses the feature families [{}], this run [{}]",
                production.bundle.families.names().join(", "),
                params.families.names().join(", ")
            )),
            as_of: None,
        };
    }
    let Some(trained_through) = production_as_of(store, &production) else {
        return unusable("its training as-of date is not recorded".into());
    };
    let done = |comparison| Production {
        comparison,
        as_of: Some(trained_through),
    };
    let unseen: Vec<usize> = (0..split.valid.len())
        .filter(|&j| rows[split.valid[j]].date > trained_through)
        .collect();
    if unseen.is_empty() {
        return done(ProductionComparison::SawValidation(trained_through));
    }
    let idx: Vec<usize> = unseen.iter().map(|&j| split.valid[j]).collect();
    let features: Vec<&Features> = idx.iter().map(|&i| &rows[i].features).collect();
    let live = match production.score(&features) {
        Ok((_, _, ens)) => ens,
        Err(err) => return done(ProductionComparison::Unusable(format!("{err:#}"))),
    };
    let live = match (
        production.feature_config.ranking.as_deref(),
        production.feature_config.label,
    ) {
        (Some("expected_return"), Some(barrier)) => super::windows::expected_returns(rows, &idx, &live, &barrier),
        _ => live,
    };
    let set = eval_set(rows, &idx);
    let candidate: Vec<f64> = unseen.iter().map(|&j| candidate_scores[j]).collect();
    let k = params.top_k;
    let c = top_k_per_date(&set, &candidate, k);
    let p = top_k_per_date(&set, &live, k);
    let diff: Vec<f64> = c.iter().zip(&p).map(|(c, p)| c - p).collect();
    let bt = params.backtest;
    done(ProductionComparison::Compared {
        from: rows[idx[0]].date,
        rows: idx.len(),
        windows: diff.len() as f64 / bt.horizon.max(1) as f64,
        difference: block_bootstrap(&[&diff], bt.block, bt.seed),
        candidate_precision: evaluate(&set, &candidate, k).precision_at_k,
        production_precision: evaluate(&set, &live, k).precision_at_k,
    })
}

/// The `as_of` the live online model was trained with (its sidecar).
fn production_as_of(store: &WatchlistStore, production: &ProductionModels) -> Option<NaiveDate> {
    let name = &production.pointer.artifacts.get("model_online")?.name;
    let record = store
        .list(Some("model_online"))
        .ok()?
        .into_iter()
        .find(|r| &r.name == name)?;
    let meta = store.meta(&record).ok()?;
    meta.parameters.get("as_of")?.as_str()?.parse().ok()
}

/// What the gate looks at: the candidate's holdout.
pub struct Candidate<'a> {
    pub as_of: NaiveDate,
    pub holdout: &'a Backtest,
    pub ensemble: &'a Evaluation,
    pub baselines: &'a Baselines,
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:+.3} %", 100.0 * v))
        .unwrap_or_else(|| "n/a".into())
}

/// Promote or not, and the one line that says why: every test with its
/// figure, then the reported (not judged) precision figures.
pub fn decide(candidate: &Candidate, production: &Production, gate: &PromotionConfig, force: bool) -> (bool, String) {
    let bt = candidate.holdout;
    let e = &bt.excess;
    let mut reasons = Vec::new();
    let mut ok = true;
    let mut check = |pass: bool, text: String| {
        ok &= pass;
        reasons.push(format!("{} {text}", if pass { "pass:" } else { "FAIL:" }));
    };
    check(
        e.n >= gate.min_valid_dates,
        format!("{} holdout dates (min_valid_dates {})", e.n, gate.min_valid_dates),
    );
    check(
        bt.windows >= gate.min_windows as f64,
        format!(
            "{:.1} independent windows of {} dates (min_windows {})",
            bt.windows, bt.horizon, gate.min_windows
        ),
    );
    check(
        e.ci95_low.is_some_and(|lo| lo > 0.0),
        format!(
            "top-{} excess over the tradeable universe {} per date after costs, 95 % CI {} .. {} \
             (blocks of {} dates){}",
            bt.k,
            pct(e.mean),
            pct(e.ci95_low),
            pct(e.ci95_high),
            e.block,
            if e.ci95_low.is_some_and(|lo| lo > 0.0) {
                ""
            } else {
                ": the interval does not exclude no edge"
            }
        ),
    );
    if let Some(live) = production.as_of.filter(|live| *live > candidate.as_of) {
        check(
            false,
            format!(
                "as-of {} is older than the live models' {live}: newer models are not replaced",
                candidate.as_of
            ),
        );
    }
    match &production.comparison {
        ProductionComparison::NoProduction => reasons.push("no production model yet".into()),
        ProductionComparison::Unusable(why) => reasons.push(format!("production unusable, not compared ({why})")),
        ProductionComparison::OtherFeatures(why) => check(
            false,
            format!(
                "{why}: no paired comparison on the same rows is possible (compare the runs' reports, then --force)"
            ),
        ),
        ProductionComparison::SawValidation(through) => reasons.push(format!(
            "production trained through {through} covers the whole holdout: no date both models are out of \
             sample on, not compared"
        )),
        ProductionComparison::Compared {
            from,
            rows,
            difference,
            windows,
            candidate_precision,
            production_precision,
        } => {
            let figures = format!(
                "paired with production on the {rows} holdout rows from {from} it never saw: top-{} return \
                 minus production's {} per date, 95 % CI {} .. {} ({windows:.1} windows; precision@{} {:.4} vs {:.4})",
                bt.k,
                pct(difference.mean),
                pct(difference.ci95_low),
                pct(difference.ci95_high),
                bt.k,
                candidate_precision,
                production_precision
            );
            if *windows < gate.min_windows as f64 {
                reasons.push(format!("{figures}: inconclusive (under min_windows), not judged"));
            } else {
                check(
                    difference.ci95_low.is_some_and(|lo| lo >= -gate.return_margin),
                    format!("{figures}, lower bound vs −return_margin {}", -gate.return_margin),
                );
            }
        }
    }
    let (p, b) = (candidate.ensemble.precision_at_k, candidate.baselines);
    reasons.push(format!(
        "reported: precision@{} {p:.4}, base rate per date {:.4}, rule BUY per date {}",
        bt.k,
        b.base_rate_per_date,
        b.rule_buy_precision_per_date
            .map(|r| format!("{r:.4} ({} dates)", b.rule_buy_dates))
            .unwrap_or_else(|| "n/a (no BUY row)".into())
    ));
    let verdict = match (ok, force) {
        (true, _) => "promoted",
        (false, true) => "promoted by --force",
        (false, false) => "not promoted",
    };
    (ok || force, format!("{verdict}: {}", reasons.join("; ")))
}

/// The per-date excess series of a backtest's validation window with its
/// dates, for the gate's figures (used by the tests).
#[cfg(test)]
fn holdout_with(excess: &[f64], horizon: usize, block: usize) -> Backtest {
    use crate::models::backtest::{BacktestParams, Position, backtest};
    use crate::models::metrics::EvalSet;
    // Two rows per date: the top-1 earns its excess, the other 0; the
    // universe mean is half of it, so the top-1's excess is half again.
    let n = excess.len();
    let set = EvalSet {
        day: (0..n).flat_map(|d| [d as u32, d as u32]).collect(),
        label: vec![0; 2 * n],
        realized_return: excess.iter().flat_map(|x| [2.0 * x, 0.0]).collect(),
        rule_buy: vec![false; 2 * n],
        bars_to_exit: vec![1; 2 * n],
        breadth: Vec::new(),
    };
    let dates: Vec<NaiveDate> = (0..n)
        .map(|d| NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(d as u64))
        .collect();
    let paths = vec![
        Position {
            marks: &[],
            entry_price: 1.0,
            exit_price: 1.0,
            entry_cost: 0.0,
            exit_cost: 0.0,
            weight: 0.0,
        };
        2 * n
    ];
    let scores: Vec<f64> = (0..n).flat_map(|_| [1.0, 0.0]).collect();
    let params = BacktestParams {
        k: 1,
        horizon,
        block,
        seed: 9,
    };
    backtest(&set, &paths, &dates, &[0], &scores, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::backtest::SplitMix;

    fn evaluation(p: f64) -> Evaluation {
        Evaluation {
            rows: 100,
            dates: 10,
            base_rate: 0.2,
            auc: Some(0.6),
            f1_at_0_5: 0.0,
            best_f1: 0.0,
            best_f1_threshold: 0.5,
            log_loss: 0.5,
            brier: 0.2,
            k: 1,
            precision_at_k: p,
            rank_ic: Some(0.03),
            rank_ic_ir: Some(0.2),
            top_k_mean_return: 0.0,
            universe_mean_return: 0.0,
            calibration: Vec::new(),
        }
    }

    fn baselines() -> Baselines {
        Baselines {
            base_rate: 0.2,
            base_rate_per_date: 0.2,
            rule_buy_precision: Some(0.25),
            rule_buy_precision_per_date: Some(0.25),
            rule_buy_mean_return: Some(0.0),
            rule_buy_rows: 5,
            rule_buy_dates: 5,
        }
    }

    fn none() -> Production {
        Production {
            comparison: ProductionComparison::NoProduction,
            as_of: None,
        }
    }

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 6, d).unwrap()
    }

    /// 200 dates of ±1 % noise shifted by `shift`.
    fn series(shift: f64, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix(seed);
        (0..200).map(|_| shift + 0.02 * (rng.uniform() - 0.5)).collect()
    }

    fn judge(bt: &Backtest, production: &Production, force: bool) -> (bool, String) {
        let (e, b) = (evaluation(0.3), baselines());
        let c = Candidate {
            as_of: date(10),
            holdout: bt,
            ensemble: &e,
            baselines: &b,
        };
        decide(&c, production, &PromotionConfig::default(), force)
    }

    #[test]
    fn the_gate_passes_just_above_the_interval_and_fails_just_below() {
        // The interval's lower bound of a series is found first, then the
        // series is shifted so that the bound sits 0.02 % above or below 0.
        let base = holdout_with(&series(0.0, 4), 5, 15);
        let low = base.excess.ci95_low.unwrap();
        let above = holdout_with(&series(-low + 0.0002, 4), 5, 15);
        let (ok, why) = judge(&above, &none(), false);
        assert!(ok, "{why}");
        assert!((above.excess.ci95_low.unwrap() - 0.0002).abs() < 1e-9);
        let below = holdout_with(&series(-low - 0.0002, 4), 5, 15);
        let (ok, why) = judge(&below, &none(), false);
        assert!(!ok && why.contains("does not exclude no edge"), "{why}");
        // The mean is positive all the same: a sign test would promote it.
        assert!(below.excess.mean.unwrap() > 0.0);
        let (ok, why) = judge(&below, &none(), true);
        assert!(ok && why.starts_with("promoted by --force"), "{why}");
    }

    #[test]
    fn too_few_independent_windows_are_not_judged_an_edge() {
        // 100 dates of a strong edge at horizon 5: 20 windows < 30.
        let strong: Vec<f64> = series(0.01, 2)[..100].to_vec();
        let (ok, why) = judge(&holdout_with(&strong, 5, 15), &none(), false);
        assert!(!ok && why.contains("FAIL: 20.0 independent windows"), "{why}");
        // The same 100 dates at horizon 2 are 50 windows.
        assert!(judge(&holdout_with(&strong, 2, 6), &none(), false).0);
    }

    #[test]
    fn an_older_as_of_never_replaces_newer_models_without_force() {
        let bt = holdout_with(&series(0.01, 3), 5, 15);
        let newer = Production {
            comparison: ProductionComparison::SawValidation(date(20)),
            as_of: Some(date(20)),
        };
        let (ok, why) = judge(&bt, &newer, false);
        assert!(!ok && why.contains("older than the live models' 2020-06-20"), "{why}");
        assert!(judge(&bt, &newer, true).0);
    }

    #[test]
    fn a_change_of_feature_families_needs_force() {
        let bt = holdout_with(&series(0.01, 3), 5, 15);
        let other = Production {
            comparison: ProductionComparison::OtherFeatures("production uses [], this run [window]".into()),
            as_of: None,
        };
        let (ok, why) = judge(&bt, &other, false);
        assert!(!ok && why.contains("FAIL: production uses []"), "{why}");
        assert!(judge(&bt, &other, true).0);
    }

    #[test]
    fn production_is_compared_paired_within_the_margin() {
        let bt = holdout_with(&series(0.01, 3), 5, 15);
        let against = |diff: &[f64]| Production {
            comparison: ProductionComparison::Compared {
                from: date(11),
                rows: 1000,
                windows: diff.len() as f64 / 5.0,
                difference: block_bootstrap(&[diff], 15, 1),
                candidate_precision: 0.3,
                production_precision: 0.3,
            },
            as_of: Some(date(1)),
        };
        // ±0.5 % a date around `shift`.
        let diff = |shift: f64| -> Vec<f64> { series(0.0, 5).iter().map(|x| shift + 0.5 * x).collect() };
        // Equal on average: the lower bound is about −0.04 % > −0.1 %.
        let (ok, why) = judge(&bt, &against(&diff(0.0)), false);
        assert!(ok, "{why}");
        // 0.2 % a date worse: the bound is under −0.1 %.
        let (ok, why) = judge(&bt, &against(&diff(-0.002)), false);
        assert!(!ok && why.contains("FAIL: paired with production"), "{why}");
        // Twenty dates cannot tell: reported, not judged.
        let (ok, why) = judge(&bt, &against(&diff(-0.002)[..20]), false);
        assert!(ok && why.contains("inconclusive"), "{why}");
    }
}
