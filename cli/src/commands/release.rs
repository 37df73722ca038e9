//! `cadenas release`: restore a contained account's original lock flags.

use std::path::Path;

use cadenas::directory::UserRef;
use cadenas::incident::ReleaseOptions;
use cadenas::{Config, Error};

use super::responder_for;
use crate::exit::Exit;
use crate::show::describe_notification;
use crate::Cli;

/// `cadenas release`.
pub async fn run(
    cli: &Cli,
    cfg: &Config,
    user: &str,
    reason: Option<&str>,
    journal: Option<&Path>,
) -> Result<Exit, Error> {
    let responder = responder_for(cfg, journal).await?;
    let mut opts = ReleaseOptions::default();
    if let Some(reason) = reason {
        opts = opts.with_override_reason(reason);
    }
    let r = responder.release(&UserRef::parse(user)?, opts).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        println!("released {user} ({})", r.dn);
        let shown = |v: Option<&Vec<String>>| match v {
            Some(v) if !v.is_empty() => v.join(", "),
            _ => "(none)".to_owned(),
        };
        for (k, after) in &r.change.after {
            println!(
                "  {k}: {} -> {} (as it was before containment)",
                shown(r.change.before.get(k)),
                shown(Some(after))
            );
        }
        for k in &r.kept {
            println!("  kept: {k}");
        }
        for n in &r.notifications {
            println!("{}", describe_notification(n));
        }
    }
    Ok(Exit::Done)
}
