//! The night watch's alerts: drift, a realised precision drop (only with
//! enough completed evidence), stale models and data, missing scores and
//! symbols, a lagging incremental update.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use super::MonitorReport;
use super::drift::{self, Drift};
use super::predictions::{PredictionsFile, Scored};
use crate::context::Context;
use crate::jobs::production::ProductionModels;
use crate::store::WatchlistStore;

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub code: &'static str,
    /// `warn` or `alert`.
    pub severity: &'static str,
    pub message: String,
    pub figures: serde_json::Value,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn alerts(
    ctx: &Context,
    store: &WatchlistStore,
    production: &ProductionModels,
    symbols: &[crate::symbols::Symbol],
    window: &[NaiveDate],
    files: &BTreeMap<NaiveDate, PredictionsFile>,
    per_date: &[(NaiveDate, String, Vec<Scored>)],
    report: &mut MonitorReport,
    cfg: &crate::settings::MonitorConfig,
) -> anyhow::Result<()> {
    let mut found: Vec<Alert> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut add = |code, severity, message: String, figures| {
        found.push(Alert {
            code,
            severity,
            message,
            figures,
        })
    };
    drift_alerts(store, report, cfg, &mut add, &mut notes);
    let horizon = production.feature_config.label.map_or(5, |b| b.horizon);
    // The live top-K: --top-k, else the list each predictions file marked.
    let live_k = report.k.or_else(|| {
        per_date
            .iter()
            .map(|(_, _, s)| s.iter().filter(|r| r.in_top_k).count())
            .max()
    });
    let realised = realised_below_validation(report, production, cfg, horizon, live_k, &mut notes);
    for (code, message, figures) in &realised {
        add(code, "alert", message.clone(), figures.clone());
    }
    if !realised.is_empty() {
        add(
            "retrain_recommended",
            "alert",
            format!(
                "realised {} below the validation figure beyond noise: retrain recommended",
                realised
                    .iter()
                    .map(|r| r.0.trim_end_matches("_drop"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            serde_json::json!({"because": realised.iter().map(|r| r.0).collect::<Vec<_>>()}),
        );
    }
    // Model age: the live batch model's training as-of.
    if let Some(trained) = trained_as_of(store, production) {
        let age = (report.as_of - trained).num_days();
        if age > cfg.max_model_age_days {
            add(
                "model_stale",
                "warn",
                format!(
                    "the live models were trained through {trained}, {age} days before {}: run bootstrap",
                    report.as_of
                ),
                serde_json::json!({"trained_as_of": trained, "age_days": age}),
            );
        }
    }
    // Newest candle: in sessions of the watchlist's exchange, against the
    // latest closed session unless an as-of was given (back-fill).
    let newest = *window.last().unwrap_or(&report.as_of);
    let calendar = crate::jobs::dataset::watchlist_calendar(ctx).await?;
    let now = ctx
        .settings
        .as_of
        .unwrap_or_else(|| calendar.latest_closed_session(ctx.settings.now));
    let lag = calendar.sessions_between(newest, now);
    if lag > cfg.max_data_lag_sessions {
        add(
            "data_stale",
            "alert",
            format!(
                "the newest candle is {newest}, {lag} {} session(s) before {now}: is the data feed running?",
                calendar.name
            ),
            serde_json::json!({"newest_candle": newest, "sessions": lag}),
        );
    }
    // Watchlist symbols missing from the last predictions.
    if let Some((date, _, scored)) = per_date.last() {
        let present: BTreeSet<&str> = scored.iter().map(|s| s.symbol.as_str()).collect();
        let missing: Vec<&str> = symbols
            .iter()
            .map(|s| s.as_str())
            .filter(|s| !present.contains(s))
            .collect();
        if !missing.is_empty() {
            add(
                "symbols_not_scored",
                "warn",
                format!(
                    "{} watchlist symbol(s) not scored on {date}: {}",
                    missing.len(),
                    missing.join(", ")
                ),
                serde_json::json!({"date": date, "symbols": missing}),
            );
        }
    }
    let unscored: Vec<&NaiveDate> = window.iter().filter(|d| !files.contains_key(d)).collect();
    if !unscored.is_empty() {
        add(
            "score_missing",
            "warn",
            format!("{} trading date(s) without a score run", unscored.len()),
            serde_json::json!({"dates": unscored}),
        );
    }
    // The online model should have learned the scan date `horizon` bars back.
    if window.len() > horizon
        && let Some(learned) = production.online.learned_through
    {
        let due = window[window.len() - 1 - horizon];
        // The lineage may have learned further than the live model: its
        // newest model was kept as a candidate (not better beyond noise).
        let head = match crate::jobs::incremental::lineage_head(store, production) {
            Ok(head) => Some(head),
            Err(err) => {
                tracing::warn!("the online models' lineage could not be read: {err:#}");
                None
            }
        };
        let head_learned = head.as_ref().and_then(|h| h.learned_through).unwrap_or(learned);
        let undecided = head.as_ref().filter(|h| !h.decided);
        if head_learned < due || undecided.is_some() {
            add(
                "incremental_lagging",
                "warn",
                match undecided {
                    Some(h) => format!(
                        "{} was written by an update that was stopped before it decided the pointer: run \
                         incremental-update",
                        h.name
                    ),
                    None => format!(
                        "the online models learned through {head_learned}; scan dates through {due} are due: a run \
                         was missed, run incremental-update"
                    ),
                },
                serde_json::json!({"learned_through": head_learned, "due": due}),
            );
        } else if learned < due
            && let Some(name) = head.map(|h| h.name)
        {
            notes.push(format!(
                "the live online model learned through {learned}; the lineage's newest model {name} learned through \
                 {head_learned} and was kept as a candidate (its trailing prequential log loss was not better beyond \
                 noise: see the last incremental-update decision): nothing to run"
            ));
        }
    }
    report.alerts.extend(found);
    report.notes.extend(notes);
    Ok(())
}

type AddAlert<'a> = dyn FnMut(&'static str, &'static str, String, serde_json::Value) + 'a;

/// An alert per drifted feature (calibrated, or the rule of thumb's bands),
/// a note when the window is too small to judge, and "retrain recommended"
/// when several features or `p_score` drifted in this run and in the
/// previous `retrain_after_runs − 1` runs (earlier as-of dates).
fn drift_alerts(
    store: &WatchlistStore,
    report: &MonitorReport,
    cfg: &crate::settings::MonitorConfig,
    add: &mut AddAlert<'_>,
    notes: &mut Vec<String>,
) {
    for d in &report.drift {
        let severity = match d.status {
            drift::DRIFTED => "alert",
            drift::WATCH => "warn",
            _ => continue,
        };
        let against = match (d.threshold, d.threshold_from) {
            (Some(t), Some(from)) => format!(" (threshold {t:.3}, {from})"),
            _ => String::new(),
        };
        add(
            "feature_drift",
            severity,
            format!(
                "{} drifted: {} {:.3}{against}",
                d.feature,
                d.statistic.to_uppercase(),
                d.value
            ),
            serde_json::json!({"feature": d.feature, "statistic": d.statistic, "value": d.value,
                "threshold": d.threshold, "threshold_from": d.threshold_from, "psi": d.psi}),
        );
    }
    if report.drift_check.status != "calibrated" {
        notes.push(format!("drift: {}", report.drift_check.reason));
    }
    let this = DriftEpisode::of(&report.drift);
    if !this.is_episode(cfg) {
        return;
    }
    let wanted = cfg.retrain_after_runs.max(1) - 1;
    let earlier = earlier_episodes(store, report, wanted);
    let persisted = earlier.len() == wanted && earlier.iter().all(|(_, e)| e.is_episode(cfg));
    if persisted {
        let runs: Vec<NaiveDate> = earlier.iter().rev().map(|(d, _)| *d).chain([report.as_of]).collect();
        add(
            "retrain_recommended",
            "alert",
            format!(
                "drift persisted over {} consecutive run(s) (as of {}): {}: retrain recommended",
                runs.len(),
                runs.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
                this.describe()
            ),
            serde_json::json!({"runs": runs, "features": this.features, "p_score": this.score}),
        );
    } else {
        notes.push(format!(
            "{}; retrain is recommended only if it persists over {} consecutive run(s)",
            this.describe(),
            cfg.retrain_after_runs.max(1)
        ));
    }
}

/// What drifted in one run.
#[derive(Debug, Default, Clone)]
struct DriftEpisode {
    features: Vec<String>,
    score: bool,
}

impl DriftEpisode {
    fn of(drift: &[Drift]) -> DriftEpisode {
        DriftEpisode {
            features: drift
                .iter()
                .filter(|d| d.status == drift::DRIFTED && d.kind != "score")
                .map(|d| d.feature.clone())
                .collect(),
            score: drift.iter().any(|d| d.status == drift::DRIFTED && d.kind == "score"),
        }
    }

    fn from_json(report: &serde_json::Value) -> DriftEpisode {
        let drifted = |score: bool| {
            report["drift"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["status"] == drift::DRIFTED && (d["kind"] == "score") == score)
                .filter_map(|d| d["feature"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        };
        DriftEpisode {
            features: drifted(false),
            score: !drifted(true).is_empty(),
        }
    }

    fn is_episode(&self, cfg: &crate::settings::MonitorConfig) -> bool {
        self.score || self.features.len() >= cfg.retrain_after_drifted_features.max(1)
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.features.is_empty() {
            parts.push(format!(
                "{} feature(s) drifted ({})",
                self.features.len(),
                self.features.join(", ")
            ));
        }
        if self.score {
            parts.push("p_score drifted".to_string());
        }
        parts.join(" and ")
    }
}

/// Earlier reports read at most when looking for the runs before this one.
const EARLIER_REPORTS_READ: usize = 60;

/// One earlier run as its report tells it.
struct EarlierRun {
    as_of: NaiveDate,
    first: NaiveDate,
    last: NaiveDate,
    feature_config: Option<String>,
    episode: DriftEpisode,
}

/// The drift of the `wanted` runs before this one, newest first: each the
/// latest run whose window ends before the next one's window starts (a
/// nightly run over 7 dates shares 6 with the night before: that is the
/// same evidence, not a persistence) and judged against the same live
/// feature config (a new bootstrap starts over). Unreadable reports are
/// skipped with a warning; at most [`EARLIER_REPORTS_READ`] are read.
fn earlier_episodes(store: &WatchlistStore, report: &MonitorReport, wanted: usize) -> Vec<(NaiveDate, DriftEpisode)> {
    let (Some(&first), true) = (report.window.first(), wanted > 0) else {
        return Vec::new();
    };
    let records = match store.list(Some("monitor_report")) {
        Ok(r) => r,
        Err(err) => {
            tracing::warn!("earlier monitor reports could not be listed: {err:#}");
            return Vec::new();
        }
    };
    let mut runs: Vec<EarlierRun> = Vec::new();
    for record in records.iter().take(EARLIER_REPORTS_READ) {
        let parsed = store
            .read(&record.name)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Ok(serde_json::from_slice::<serde_json::Value>(&bytes)?));
        let value = match parsed {
            Ok(v) => v,
            Err(err) => {
                tracing::warn!("earlier monitor report {} skipped: {err:#}", record.name);
                continue;
            }
        };
        let date = |v: &serde_json::Value| v.as_str().and_then(|d| d.parse::<NaiveDate>().ok());
        let window = value["window"].as_array();
        let (Some(as_of), Some(first), Some(last)) = (
            date(&value["as_of"]),
            window.and_then(|w| w.first()).and_then(date),
            window.and_then(|w| w.last()).and_then(date),
        ) else {
            continue;
        };
        runs.push(EarlierRun {
            as_of,
            first,
            last,
            feature_config: value["feature_config"].as_str().map(str::to_string),
            episode: DriftEpisode::from_json(&value),
        });
    }
    let mut chain = Vec::new();
    let mut before = first;
    while chain.len() < wanted {
        // Listed newest written first: of runs over the same window, the
        // newest written wins (max_by_key keeps the last of equal keys).
        let Some(run) = runs
            .iter()
            .rev()
            .filter(|r| r.last < before && r.feature_config.is_some() && r.feature_config == report.feature_config)
            .max_by_key(|r| r.last)
        else {
            break;
        };
        chain.push((run.as_of, run.episode.clone()));
        before = run.first;
    }
    chain
}

/// Realised precision@K and top-K return below the validation figures
/// with a one-sided 95 % bound that excludes them: per-date figures of
/// the completed dates, their overlapping horizons counted as fewer
/// independent dates. With too few completed dates or picks, a note.
fn realised_below_validation(
    report: &MonitorReport,
    production: &ProductionModels,
    cfg: &crate::settings::MonitorConfig,
    horizon: usize,
    live_k: Option<usize>,
    notes: &mut Vec<String>,
) -> Vec<(&'static str, String, serde_json::Value)> {
    let completed: Vec<&super::DateReport> = report
        .dates
        .iter()
        .filter(|d| d.performance.top_k_completed > 0)
        .collect();
    if completed.len() < cfg.min_completed_dates || report.pooled.top_k_completed < cfg.min_completed_picks {
        notes.push(format!(
            "insufficient data for the precision check: {} completed date(s), {} completed pick(s) (minimum {} and {})",
            completed.len(),
            report.pooled.top_k_completed,
            cfg.min_completed_dates,
            cfg.min_completed_picks
        ));
        return Vec::new();
    }
    let validation = production.feature_config.validation.as_ref();
    if let Some(v) = validation
        && live_k != Some(v.k)
    {
        notes.push(format!(
            "the realised top-K figures are not compared with the validation's: live K {} vs the validation's K {}",
            live_k.map_or("unknown".to_string(), |k| k.to_string()),
            v.k
        ));
        return Vec::new();
    }
    let checks = [
        (
            "precision_drop",
            "precision@K",
            validation.map(|v| v.precision_at_k),
            completed
                .iter()
                .filter_map(|d| d.performance.precision_at_k)
                .collect::<Vec<f64>>(),
        ),
        (
            "return_drop",
            "top-K mean after-cost return",
            validation.and_then(|v| v.top_k_mean_return),
            completed
                .iter()
                .filter_map(|d| d.performance.top_k_mean_return)
                .collect(),
        ),
    ];
    let mut out = Vec::new();
    for (code, what, validation, per_date) in checks {
        let Some(validation) = validation else { continue };
        match below_validation(&per_date, validation, horizon) {
            Realised::Below { mean, upper } => out.push((
                code,
                format!(
                    "{what} {mean:.4} over {} completed date(s): its one-sided 95 % upper bound {upper:.4} is below \
                     the validation {validation:.4}",
                    per_date.len()
                ),
                serde_json::json!({"live": mean, "upper_95": upper, "validation": validation,
                    "dates": per_date.len(), "picks": report.pooled.top_k_completed, "horizon": horizon}),
            )),
            Realised::Within => {}
            Realised::TooFew => notes.push(format!(
                "{what}: {} completed date(s) are fewer than two independent ones at horizon {horizon}: not judged",
                per_date.len()
            )),
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Realised {
    /// The one-sided 95 % upper bound of the per-date mean is below the
    /// validation figure.
    Below {
        mean: f64,
        upper: f64,
    },
    Within,
    /// Under two independent dates (completed dates / horizon).
    TooFew,
}

fn below_validation(per_date: &[f64], validation: f64, horizon: usize) -> Realised {
    match crate::models::backtest::overlapping_mean_upper_95(per_date, horizon) {
        Some(upper) if upper < validation => Realised::Below {
            mean: per_date.iter().sum::<f64>() / per_date.len() as f64,
            upper,
        },
        Some(_) => Realised::Within,
        None => Realised::TooFew,
    }
}

/// The as-of the live batch model was trained with (its sidecar).
pub(super) fn trained_as_of(store: &WatchlistStore, production: &ProductionModels) -> Option<NaiveDate> {
    let name = &production.pointer.artifacts.get("model_batch")?.name;
    let record = store
        .list(Some("model_batch"))
        .ok()?
        .into_iter()
        .find(|r| &r.name == name)?;
    store
        .meta(&record)
        .ok()?
        .parameters
        .get("as_of")?
        .as_str()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realised_figures_are_below_validation_only_beyond_noise() {
        // Ten dates' precision@K alternating 0.2 / 0.4 at horizon 5: two
        // independent dates, t(1) one-sided 6.314; mean 0.3, sample sd
        // √(10/9)·0.1: upper 0.3 + 6.314 · sd / √2.
        let per_date: Vec<f64> = (0..10).map(|i| if i % 2 == 0 { 0.2 } else { 0.4 }).collect();
        let upper = 0.3 + 6.314 * (10.0f64 / 9.0).sqrt() * 0.1 / 2f64.sqrt();
        let Realised::Below { mean, upper: got } = below_validation(&per_date, upper + 0.01, 5) else {
            panic!("below");
        };
        assert!(
            (mean - 0.3).abs() < 1e-12 && (got - upper).abs() < 1e-12,
            "{mean} {got} {upper}"
        );
        assert_eq!(below_validation(&per_date, upper - 0.01, 5), Realised::Within);
        // At horizon 1 the ten dates are independent: t(9) 1.833.
        let tight = 0.3 + 1.833 * (10.0f64 / 9.0).sqrt() * 0.1 / 10f64.sqrt();
        assert!(matches!(
            below_validation(&per_date, tight + 1e-9, 1),
            Realised::Below { .. }
        ));
        assert_eq!(below_validation(&per_date, tight - 1e-9, 1), Realised::Within);
        // Nine dates at horizon 5 are one independent date: not judged.
        assert_eq!(below_validation(&per_date[..9], 0.9, 5), Realised::TooFew);
    }
}
