//! `cadenas check`: the preflight — one line per check, ok / warn / fail with the fix.

use cadenas::preflight::{preflight, PreflightOptions, Verdict};
use cadenas::{Config, Error};

use crate::exit::Exit;
use crate::Cli;

/// `cadenas check`: 0 every check ok, 1 warnings only, 9 a check failed.
pub async fn run(cli: &Cli, cfg: &Config, notify_test: bool) -> Result<Exit, Error> {
    let mut opts = PreflightOptions::default();
    opts.notify_test = notify_test;
    let report = preflight(cfg, &opts).await;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        crate::show::print_checks(&report.checks);
        let count = |v: Verdict| report.checks.iter().filter(|c| c.verdict == v).count();
        println!(
            "{} ok, {} warning(s), {} failed",
            count(Verdict::Ok),
            count(Verdict::Warn),
            count(Verdict::Fail)
        );
    }
    Ok(match report.verdict {
        Verdict::Ok => Exit::Done,
        Verdict::Warn => Exit::Other,
        _ => Exit::CheckFailed,
    })
}
