//! `cadenas plan`: the dry run — what `contain` would change and refuse; changes nothing.

use cadenas::directory::UserRef;
use cadenas::incident::Planner;
use cadenas::journal::StepStatus;
use cadenas::{Config, Error};

use crate::args::UserArgs;
use crate::exit::Exit;
use crate::show::print_pivot;
use crate::Cli;

/// `cadenas plan`.
pub async fn run(cli: &Cli, cfg: &Config, who: &UserArgs) -> Result<Exit, Error> {
    // A dry run journals nothing and needs no journal.
    let responder = Planner::new(cfg).await?;
    let report = match who.from_ip {
        Some(range) => {
            responder
                .plan_from(&who.window.pivot(range), who.allow_protected)
                .await?
        }
        None => {
            responder
                .plan(&UserRef::parse_all(&who.collect()?)?, who.allow_protected)
                .await?
        }
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        if let Some(p) = &report.pivot {
            print_pivot(p);
        }
        for u in &report.users {
            match &u.refused {
                Some(e) => println!("{}  WOULD REFUSE: {e}", u.user),
                None => {
                    println!("{}  ({})", u.user, u.dn.as_deref().unwrap_or("-"));
                    for s in &u.steps {
                        let p = match s.predicted {
                            StepStatus::AlreadySo => "already so",
                            StepStatus::Partial => "partly",
                            _ => "would change",
                        };
                        println!("    {:<16} {p}", s.step.name());
                        for a in &s.actions {
                            println!("        - {a}");
                        }
                    }
                }
            }
        }
        for a in &report.address_actions {
            println!("then: {a}");
        }
    }
    Ok(Exit::Done)
}
