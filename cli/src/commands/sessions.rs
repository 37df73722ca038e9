//! `cadenas sessions --ip CIDR`: who was seen from the attacker's addresses.

use cadenas::investigate::AddressRange;
use cadenas::{Config, Error};

use crate::args::LogArgs;
use crate::exit::Exit;
use crate::show::print_pivot;
use crate::Cli;

/// `cadenas sessions --ip CIDR`: who was seen from the attacker's addresses; changes nothing.
/// Needs Dovecot and the logs only, not the directory (it may be down).
pub async fn run(cli: &Cli, cfg: &Config, range: AddressRange, logs: &LogArgs) -> Result<Exit, Error> {
    let (_, dovecots) = cadenas::session::build_revokers_and_dovecots(&cfg.revokers)?;
    let default_logs = cfg.mail.as_ref().map(|m| m.auth_logs.clone()).unwrap_or_default();
    let smtp_logs = cfg
        .postfix
        .as_ref()
        .map(|p| p.log_files.clone())
        .unwrap_or_default();
    let report =
        cadenas::incident::sightings(&dovecots, &default_logs, &smtp_logs, &logs.pivot(range)).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print_pivot(&report);
    }
    Ok(Exit::Done)
}
