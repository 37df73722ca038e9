//! `cadenas drill ACCOUNT`: a real containment of a canary account, each step verified on the
//! servers and timed, then the account back to its original state.

use std::path::PathBuf;

use cadenas::directory::UserRef;
use cadenas::preflight::Verdict;
use cadenas::{Config, Error};
use clap::Args;

use super::responder_for;
use crate::exit::Exit;
use crate::Cli;

/// `drill` arguments.
#[derive(Args)]
pub struct DrillArgs {
    /// The canary account (one of `[canary] accounts`).
    pub account: String,
    /// The journal (default: [journal] in the config).
    #[arg(long)]
    pub journal: Option<PathBuf>,
}

/// `cadenas drill`: 0 the drill passed, 9 a step or a verification failed.
pub async fn run(cli: &Cli, cfg: &Config, args: &DrillArgs) -> Result<Exit, Error> {
    let canary = UserRef::parse(&args.account)?;
    let responder = responder_for(cfg, args.journal.as_deref()).await?;
    let report = responder.drill(&canary).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        println!("drill {} on {}", report.incident, report.dn);
        for s in &report.steps {
            let ms = s.millis.map_or_else(|| "-".to_owned(), |m| format!("{m} ms"));
            println!("  {:<16} {:<10} {ms:>8}", s.step.name(), s.status.name());
        }
        if let Some(ms) = report.contain_millis {
            println!("  contained in {ms} ms (first intent to last outcome, journaled)");
        }
        crate::show::print_checks(&report.checks);
        println!(
            "drill {}",
            if report.verdict == Verdict::Fail {
                "FAILED"
            } else {
                "passed"
            }
        );
    }
    Ok(if report.verdict == Verdict::Fail {
        Exit::CheckFailed
    } else {
        Exit::Done
    })
}
