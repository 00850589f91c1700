//! The night watch's alerts: drift, a realised precision drop (only with
//! enough completed evidence), stale models and data, missing scores and
//! symbols, a lagging incremental update.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use super::MonitorReport;
use super::figures::Drift;
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
    let drifted: Vec<&Drift> = report.drift.iter().filter(|d| d.psi >= cfg.psi_alert).collect();
    for d in &report.drift {
        if d.psi >= cfg.psi_alert || d.psi >= cfg.psi_warn {
            let severity = if d.psi >= cfg.psi_alert { "alert" } else { "warn" };
            add(
                "feature_drift",
                severity,
                format!("{} drifted: PSI {:.3}", d.feature, d.psi),
                serde_json::json!({"feature": d.feature, "psi": d.psi}),
            );
        }
    }
    if drifted.len() >= cfg.retrain_after_drifted_features {
        let names: Vec<&str> = drifted.iter().map(|d| d.feature.as_str()).collect();
        add(
            "retrain_recommended",
            "alert",
            format!(
                "{} features drifted (PSI ≥ {}): retrain recommended",
                names.len(),
                cfg.psi_alert
            ),
            serde_json::json!({"features": names}),
        );
    }
    // Realised precision against the training validation figure, only
    // with enough completed evidence.
    let completed_dates = report
        .dates
        .iter()
        .filter(|d| d.performance.top_k_completed > 0)
        .count();
    match (report.validation_precision_at_k, report.pooled.precision_at_k) {
        (Some(train), Some(live))
            if completed_dates >= cfg.min_completed_dates
                && report.pooled.top_k_completed >= cfg.min_completed_picks =>
        {
            if live < 0.8 * train {
                add(
                    "precision_drop",
                    "alert",
                    format!("precision@K {live:.3} is more than 20 % below the validation {train:.3}"),
                    serde_json::json!({"live": live, "validation": train, "ci95": report.pooled.precision_at_k_ci95,
                        "dates": completed_dates, "picks": report.pooled.top_k_completed}),
                );
            }
        }
        _ => notes.push(format!(
            "insufficient data for the precision check: {completed_dates} completed date(s), {} completed pick(s) \
             (minimum {} and {})",
            report.pooled.top_k_completed, cfg.min_completed_dates, cfg.min_completed_picks
        )),
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
    let horizon = production.feature_config.label.map_or(5, |b| b.horizon);
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
