//! Whether a bootstrap's models replace the live ones.
//!
//! The gate judges what a user earns: on the holdout's validation dates the
//! ensemble's top-K must have a positive after-cost excess return over the
//! universe and a per-date precision@K above both baselines (a random pick
//! and the rule-based BUY list, each per date), over at least
//! `promotion.min_valid_dates` dates. Against live models it compares on
//! the validation dates they never trained on, within a margin. A run
//! whose `--as-of` is older than the live models' never replaces them
//! without `--force`. Every decision names its figures and reasons.

use chrono::NaiveDate;

use super::training::eval_set;
use crate::features::{Features, Snapshot};
use crate::jobs::production::ProductionModels;
use crate::models::metrics::{Baselines, Evaluation, evaluate};
use crate::models::split::Split;
use crate::settings::PromotionConfig;
use crate::store::WatchlistStore;

/// How the live models compare with the candidate.
#[derive(Debug, Clone)]
pub enum ProductionComparison {
    NoProduction,
    Unusable(String),
    /// The live models were trained on every validation row: comparing on
    /// rows they learned from would favour them unfairly.
    SawValidation(NaiveDate),
    /// Both on the validation rows after the live models' training data.
    Compared {
        from: NaiveDate,
        rows: usize,
        dates: usize,
        candidate: Box<Evaluation>,
        production: Box<Evaluation>,
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
            ProductionComparison::Compared { production, .. } => Some(production.precision_at_k),
            _ => None,
        }
    }
}

/// Score the validation rows the live models never trained on (scan
/// dates after their `as_of`) with both, and compare there.
pub fn compare_with_production(
    store: &WatchlistStore,
    rows: &[Snapshot],
    split: &Split,
    candidate_scores: &[f64],
    k: usize,
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
    let set = eval_set(rows, &idx);
    let candidate: Vec<f64> = unseen.iter().map(|&j| candidate_scores[j]).collect();
    let candidate = evaluate(&set, &candidate, k);
    done(ProductionComparison::Compared {
        from: rows[idx[0]].date,
        rows: idx.len(),
        dates: candidate.dates,
        production: Box::new(evaluate(&set, &live, k)),
        candidate: Box::new(candidate),
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

/// What the gate looks at.
pub struct Candidate<'a> {
    pub as_of: NaiveDate,
    pub ensemble: &'a Evaluation,
    pub baselines: &'a Baselines,
}

/// Promote or not, and the one line that says why.
pub fn decide(candidate: &Candidate, production: &Production, gate: &PromotionConfig, force: bool) -> (bool, String) {
    let e = candidate.ensemble;
    let b = candidate.baselines;
    let k = e.k;
    let mut reasons = Vec::new();
    let mut ok = true;
    let mut check = |pass: bool, yes: String, no: String| {
        ok &= pass;
        reasons.push(if pass { yes } else { no });
    };
    check(
        e.dates >= gate.min_valid_dates,
        format!("{} validation dates", e.dates),
        format!(
            "only {} validation dates, fewer than promotion.min_valid_dates {}: too few to judge",
            e.dates, gate.min_valid_dates
        ),
    );
    let excess = e.top_k_mean_return - e.universe_mean_return;
    check(
        excess > 0.0,
        format!("after-cost top-{k} excess return {:+.3} % per trade", 100.0 * excess),
        format!(
            "after-cost top-{k} return {:+.3} % does not beat the universe's {:+.3} %",
            100.0 * e.top_k_mean_return,
            100.0 * e.universe_mean_return
        ),
    );
    let p = e.precision_at_k;
    check(
        p > b.base_rate_per_date,
        format!("precision@{k} {p:.4} > base rate {:.4}", b.base_rate_per_date),
        format!(
            "precision@{k} {p:.4} does not beat the base rate {:.4}",
            b.base_rate_per_date
        ),
    );
    match b.rule_buy_precision_per_date {
        Some(rule) => check(
            p > rule,
            format!("> rule BUY {rule:.4} ({} dates)", b.rule_buy_dates),
            format!(
                "does not beat the rule BUY precision {rule:.4} ({} dates)",
                b.rule_buy_dates
            ),
        ),
        None => check(
            true,
            "rule BUY baseline not computable (no BUY row on any validation date), not judged".into(),
            String::new(),
        ),
    }
    if let Some(live) = production.as_of.filter(|live| *live > candidate.as_of) {
        check(
            false,
            String::new(),
            format!(
                "as-of {} is older than the live models' {live}: newer models are not replaced",
                candidate.as_of
            ),
        );
    }
    let note = |text: String| (true, text, String::new());
    let (pass, yes, no) = match &production.comparison {
        ProductionComparison::NoProduction => note("no production model yet".into()),
        ProductionComparison::Unusable(why) => note(format!("production models unusable, not compared ({why})")),
        ProductionComparison::SawValidation(through) => note(format!(
            "production trained through {through} covers the whole validation window, not compared"
        )),
        ProductionComparison::Compared {
            from,
            rows,
            dates,
            candidate,
            production,
        } => {
            let excess_of = |e: &Evaluation| e.top_k_mean_return - e.universe_mean_return;
            let (cp, pp) = (candidate.precision_at_k, production.precision_at_k);
            let (ce, pe) = (excess_of(candidate), excess_of(production));
            let pass = cp >= pp - gate.precision_margin && ce >= pe - gate.return_margin;
            let figures = format!(
                "on the {rows} validation rows ({dates} dates from {from}) production never saw: \
                 precision@{k} {cp:.4} vs production {pp:.4}, excess return {:+.3} % vs {:+.3} %",
                100.0 * ce,
                100.0 * pe
            );
            (
                pass,
                format!("{figures} (within the margins)"),
                format!(
                    "{figures}: worse than production by more than the margins ({} precision, {} return)",
                    gate.precision_margin, gate.return_margin
                ),
            )
        }
    };
    check(pass, yes, no);
    let verdict = match (ok, force) {
        (true, _) => "promoted",
        (false, true) => "promoted by --force",
        (false, false) => "not promoted",
    };
    (ok || force, format!("{verdict}: {}", reasons.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluation(dates: usize, p: f64, top: f64, all: f64) -> Evaluation {
        Evaluation {
            rows: dates * 10,
            dates,
            base_rate: 0.2,
            auc: Some(0.6),
            f1_at_0_5: 0.0,
            best_f1: 0.0,
            best_f1_threshold: 0.5,
            log_loss: 0.5,
            brier: 0.2,
            k: 3,
            precision_at_k: p,
            rank_ic: Some(0.03),
            top_k_mean_return: top,
            universe_mean_return: all,
            calibration: Vec::new(),
        }
    }

    fn baselines(rule: Option<f64>) -> Baselines {
        Baselines {
            base_rate: 0.2,
            base_rate_per_date: 0.2,
            rule_buy_precision: rule,
            rule_buy_precision_per_date: rule,
            rule_buy_mean_return: rule.map(|_| 0.0),
            rule_buy_rows: 5,
            rule_buy_dates: usize::from(rule.is_some()) * 5,
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

    #[test]
    fn the_gate_needs_dates_excess_return_and_both_baselines() {
        let gate = PromotionConfig::default();
        let b = baselines(Some(0.25));
        let good = evaluation(30, 0.3, 0.004, 0.001);
        let cand = |e| Candidate {
            as_of: date(10),
            ensemble: e,
            baselines: &b,
        };
        assert!(decide(&cand(&good), &none(), &gate, false).0);
        let few = evaluation(5, 0.3, 0.004, 0.001);
        let (ok, why) = decide(&cand(&few), &none(), &gate, false);
        assert!(!ok && why.contains("too few to judge"), "{why}");
        let no_edge = evaluation(30, 0.3, 0.001, 0.002);
        let (ok, why) = decide(&cand(&no_edge), &none(), &gate, false);
        assert!(!ok && why.contains("does not beat the universe"), "{why}");
        let below_rule = evaluation(30, 0.24, 0.004, 0.001);
        let (ok, why) = decide(&cand(&below_rule), &none(), &gate, false);
        assert!(!ok && why.contains("rule BUY"), "{why}");
        let (ok, why) = decide(&cand(&below_rule), &none(), &gate, true);
        assert!(ok && why.starts_with("promoted by --force"), "{why}");
    }

    #[test]
    fn an_uncomputable_baseline_is_said_not_counted_as_beaten() {
        let b = baselines(None);
        let e = evaluation(30, 0.3, 0.004, 0.001);
        let c = Candidate {
            as_of: date(10),
            ensemble: &e,
            baselines: &b,
        };
        let (ok, why) = decide(&c, &none(), &PromotionConfig::default(), false);
        assert!(ok);
        assert!(why.contains("rule BUY baseline not computable"), "{why}");
    }

    #[test]
    fn an_older_as_of_never_replaces_newer_models_without_force() {
        let b = baselines(Some(0.1));
        let e = evaluation(30, 0.3, 0.004, 0.001);
        let c = Candidate {
            as_of: date(1),
            ensemble: &e,
            baselines: &b,
        };
        let newer = Production {
            comparison: ProductionComparison::SawValidation(date(20)),
            as_of: Some(date(20)),
        };
        let (ok, why) = decide(&c, &newer, &PromotionConfig::default(), false);
        assert!(!ok && why.contains("older than the live models' 2020-06-20"), "{why}");
        assert!(decide(&c, &newer, &PromotionConfig::default(), true).0);
    }

    #[test]
    fn production_is_compared_within_margins() {
        let b = baselines(Some(0.1));
        let e = evaluation(30, 0.3, 0.004, 0.001);
        let c = Candidate {
            as_of: date(20),
            ensemble: &e,
            baselines: &b,
        };
        let against = |cp: f64, pp: f64, ce: f64, pe: f64| Production {
            comparison: ProductionComparison::Compared {
                from: date(11),
                rows: 100,
                dates: 10,
                candidate: Box::new(evaluation(10, cp, ce, 0.0)),
                production: Box::new(evaluation(10, pp, pe, 0.0)),
            },
            as_of: Some(date(10)),
        };
        let gate = PromotionConfig::default();
        // Slightly worse, within 1 point and 10 bp: promoted.
        assert!(decide(&c, &against(0.295, 0.30, 0.0025, 0.003), &gate, false).0);
        // Two points worse in precision: not promoted.
        let (ok, why) = decide(&c, &against(0.28, 0.30, 0.003, 0.003), &gate, false);
        assert!(!ok && why.contains("worse than production"), "{why}");
        // 20 bp worse per trade: not promoted.
        assert!(!decide(&c, &against(0.30, 0.30, 0.001, 0.003), &gate, false).0);
    }
}
