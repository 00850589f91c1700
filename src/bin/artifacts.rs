//! `artifacts`: administration of the artifact store.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use swingml::cli::{CommonArgs, run_offline};
use swingml::jobs::artifacts::{self, AdminCommand};

/// List, verify, promote and roll back artifacts of the store.
#[derive(Debug, Parser)]
#[command(name = "artifacts", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Artifacts of the watchlist, newest first.
    List {
        /// Only this kind (e.g. model_online, quarantine_report)
        #[arg(long)]
        kind: Option<String>,
    },
    /// Check every manifest line against its file and sidecar; list orphans.
    /// Exit 1 on any problem. Without --watchlist every watchlist is checked.
    Verify,
    /// Point production at the models of a run id or a version (v7).
    Promote {
        /// Run id or version
        selector: String,
    },
    /// Point production back at the promotion before the live one.
    Rollback,
    /// Print the live production pointer as JSON.
    ShowProduction,
    /// Rewrite production.json from the manifest after an interrupted promotion.
    Repair,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Command::List { kind } => AdminCommand::List { kind },
        Command::Verify => AdminCommand::Verify,
        Command::Promote { selector } => AdminCommand::Promote { selector },
        Command::Rollback => AdminCommand::Rollback,
        Command::ShowProduction => AdminCommand::ShowProduction,
        Command::Repair => AdminCommand::Repair,
    };
    run_offline(&cli.common, |settings| artifacts::run(&settings, command))
}
