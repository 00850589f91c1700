//! `artifacts`: list, verify, promote, roll back, show and repair the
//! production pointer. Data goes to stdout, one line per item.

use crate::context::new_run_id;
use crate::settings::Settings;
use crate::store::{Store, WatchlistStore, Writer};

pub const JOB: &str = "artifacts";

#[derive(Debug, Clone)]
pub enum AdminCommand {
    List { kind: Option<String> },
    Verify,
    Promote { selector: String },
    Rollback,
    ShowProduction,
    Repair,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("verify found {0} problem(s) (listed above)")]
    VerifyFailed(usize),
    #[error("no production model for {0}: run bootstrap first")]
    NoProduction(String),
}

pub fn run(settings: &Settings, command: AdminCommand) -> anyhow::Result<()> {
    let store = Store::open(&settings.artifacts)?;
    let writer = Writer {
        job: JOB.to_string(),
        run_id: new_run_id(JOB),
    };
    let watchlist = || store.watchlist(&settings.watchlist);
    match command {
        AdminCommand::List { kind } => list(&watchlist()?, kind.as_deref()),
        AdminCommand::Verify => {
            let names = if settings.watchlist_explicit {
                vec![settings.watchlist.clone()]
            } else {
                store.watchlists()?
            };
            verify(&store, &names)
        }
        AdminCommand::Promote { selector } => {
            let wl = watchlist()?;
            let pointer = wl.promote_selector(&writer, &selector, &format!("manual promotion of {selector}"))?;
            tracing::info!("promoted {selector} for {}: {}", wl.name(), describe(&pointer));
            Ok(())
        }
        AdminCommand::Rollback => {
            let wl = watchlist()?;
            let pointer = wl.rollback(&writer)?;
            tracing::info!("rolled back {}: now {}", wl.name(), describe(&pointer));
            Ok(())
        }
        AdminCommand::ShowProduction => {
            let wl = watchlist()?;
            let pointer = wl
                .production()?
                .ok_or_else(|| AdminError::NoProduction(wl.name().to_string()))?;
            println!("{}", serde_json::to_string_pretty(&pointer)?);
            Ok(())
        }
        AdminCommand::Repair => {
            let wl = watchlist()?;
            let fixed = wl.repair_manifest()?;
            if !fixed.corrupt_lines.is_empty() {
                let lines: Vec<String> = fixed.corrupt_lines.iter().map(|n| n.to_string()).collect();
                tracing::warn!(
                    "{}: manifest line(s) {} were corrupt: {} artifact line(s) rebuilt from their sidecars{}{}; the corrupt text is kept in {}",
                    wl.name(),
                    lines.join(", "),
                    fixed.restored_artifacts.len(),
                    if fixed.restored_artifacts.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", fixed.restored_artifacts.join(", "))
                    },
                    if fixed.restored_pointer {
                        ", the live pointer restored from production.json"
                    } else {
                        ""
                    },
                    fixed.saved_to.clone().unwrap_or_default()
                );
            }
            let repaired = wl.repair_pointer()?;
            tracing::info!(
                "{}: production.json {}",
                wl.name(),
                if repaired {
                    "rewritten from the manifest"
                } else {
                    "already consistent"
                }
            );
            Ok(())
        }
    }
}

fn list(store: &WatchlistStore, kind: Option<&str>) -> anyhow::Result<()> {
    let records = store.list(kind)?;
    println!(
        "{:<56} {:<20} {:>5} {:>12}  {:<24}  run_id",
        "name", "kind", "ver", "bytes", "created_at"
    );
    for r in &records {
        println!(
            "{:<56} {:<20} {:>5} {:>12}  {:<24}  {}",
            r.name, r.kind, r.version, r.bytes, r.created_at, r.run_id
        );
    }
    tracing::info!("{}: {} artifact(s)", store.name(), records.len());
    Ok(())
}

fn verify(store: &Store, watchlists: &[String]) -> anyhow::Result<()> {
    let (mut problems, mut orphans, mut checked) = (0, 0, 0);
    for name in watchlists {
        let report = store.watchlist(name)?.verify()?;
        for line in &report.problems {
            println!("problem: {line}");
        }
        for line in &report.warnings {
            println!("warning: {line}");
        }
        for line in &report.orphans {
            println!("orphan: {line}");
        }
        problems += report.problems.len();
        orphans += report.orphans.len();
        checked += report.artifacts_checked;
    }
    tracing::info!(
        "verify: {} watchlist(s), {checked} artifact(s) checked, {problems} problem(s), {orphans} orphan(s)",
        watchlists.len()
    );
    if problems > 0 {
        return Err(AdminError::VerifyFailed(problems).into());
    }
    Ok(())
}

fn describe(pointer: &crate::store::ProductionPointer) -> String {
    pointer
        .artifacts
        .iter()
        .map(|(kind, r)| format!("{kind}=v{}", r.version))
        .collect::<Vec<_>>()
        .join(", ")
}
