//! `cadenas status USER`: what the account looks like now (and what changed on it).

use cadenas::directory::{LockState, UserRef};
use cadenas::investigate::Instant;
use cadenas::{Config, Error};

use crate::exit::Exit;
use crate::show::{describe_change, describe_rule, print_state};
use crate::Cli;

/// `cadenas status`.
pub async fn run(
    cli: &Cli,
    cfg: &Config,
    user: &str,
    changes_since: Option<&Instant>,
) -> Result<Exit, Error> {
    let who = UserRef::parse(user)?;
    let responder = cadenas::incident::Planner::new(cfg).await?;
    let state = responder.status_report(&who, changes_since.copied()).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&state).unwrap_or_default());
    } else {
        print_state(user, &state.account);
        for m in &state.mail_rules {
            println!("  mail rule:        {}", describe_rule(m));
        }
        for r in &state.replicas {
            let lock = match (&r.lock, &r.error) {
                (Some(LockState::Unlocked), _) => "unlocked".to_owned(),
                (Some(LockState::Locked), _) => "LOCKED".to_owned(),
                (Some(other), _) => format!("{other:?}"),
                (None, Some(e)) => format!("NOT READ: {e}"),
                (None, None) => "-".to_owned(),
            };
            println!("  on replica {}: {lock}", r.url);
        }
        if let (Some(changes), Some(since)) = (&state.changes, changes_since) {
            let what = if changes.is_empty() { " nothing" } else { "" };
            println!("  changed since {}:{what}", since.rfc3339());
            for c in changes {
                println!("    {}", describe_change(c));
            }
        }
    }
    Ok(Exit::Done)
}
