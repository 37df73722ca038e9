//! `cadenas outbound …`: the Postfix policy service and its checks.

use std::time::Duration;

use cadenas::outbound::{ask, ListenAddress, PolicyRequest, PolicyService, Verdict};
use cadenas::{Config, Error, ErrorKind};
use clap::Subcommand;

use crate::exit::Exit;
use crate::Cli;

/// The outbound mail policy service.
#[derive(Subcommand)]
pub enum OutboundCommand {
    /// Run the Postfix policy service ([outbound] listen): refuses contained accounts'
    /// mail, applies sending limits. Runs until stopped (SIGTERM / Ctrl-C).
    Serve,
    /// Ask the running service, as Postfix would, what it answers for a SASL login.
    Check {
        /// The SASL login (as Postfix logs it: sasl_username).
        login: String,
        /// The client address to ask with.
        #[arg(long, default_value = "127.0.0.1")]
        from: String,
        /// The address to ask (default: the first [outbound] listen).
        #[arg(long)]
        at: Option<String>,
    },
    /// The mail containments held in the Postfix queue ([postfix]) and where each message is
    /// now; after review, `--release` (delivered after all) or `--delete` them, journaled.
    Held {
        /// Only this incident (needed with --release / --delete).
        #[arg(long)]
        incident: Option<String>,
        /// Queue IDs to send on their way, or `all` (every one still on hold).
        #[arg(long, value_name = "ID", num_args = 1.., conflicts_with = "delete")]
        release: Vec<String>,
        /// Queue IDs to delete, or `all` (every one still on hold).
        #[arg(long, value_name = "ID", num_args = 1..)]
        delete: Vec<String>,
    },
}

/// Runs an `outbound` command.
pub async fn run(cli: &Cli, cfg: &Config, cmd: &OutboundCommand) -> Result<Exit, Error> {
    match cmd {
        OutboundCommand::Serve => {
            let service = PolicyService::new(cfg)?;
            tokio::select! {
                r = service.run() => r.map(|()| Exit::Done),
                _ = shutdown() => {
                    tracing::info!("outbound policy service stopping");
                    Ok(Exit::Done)
                }
            }
        }
        OutboundCommand::Held {
            incident,
            release,
            delete,
        } => held(cli, cfg, incident.as_deref(), release, delete).await,
        OutboundCommand::Check { login, from, at } => {
            let addr = match at {
                Some(a) => ListenAddress::parse(a)?,
                None => cfg
                    .outbound
                    .as_ref()
                    .ok_or_else(|| Error::new(ErrorKind::Config, "no [outbound] section: pass --at ADDRESS"))?
                    .addresses()?
                    .remove(0),
            };
            let req = PolicyRequest::rcpt(login, from);
            let v = ask(&addr, &req, Duration::from_secs(5)).await?;
            if cli.json {
                let (action, text) = match &v {
                    Verdict::Reject(t) => ("REJECT", t.as_str()),
                    Verdict::DeferIfPermit(t) => ("DEFER_IF_PERMIT", t.as_str()),
                    Verdict::Hold(t) => ("HOLD", t.as_str()),
                    _ => ("DUNNO", ""),
                };
                println!(
                    "{}",
                    serde_json::json!({ "login": login, "action": action, "text": text })
                );
            } else {
                print!("{}", v.to_wire().trim_end());
                println!();
            }
            Ok(Exit::Done)
        }
    }
}

/// `outbound held`: list, or release / delete after review.
async fn held(
    cli: &Cli,
    cfg: &Config,
    incident: Option<&str>,
    release: &[String],
    delete: &[String],
) -> Result<Exit, Error> {
    use cadenas::journal::{Journal, Location};
    use cadenas::outbound::{held_messages, review_held};
    use cadenas::postfix::{Queue, QueueAction};
    let postfix = cfg
        .postfix
        .as_ref()
        .ok_or_else(|| Error::new(ErrorKind::Config, "no [postfix] section: no queue to look in"))?;
    let queue = Queue::new(postfix);
    let location = Location::resolve(None, cfg.journal.as_ref())?
        .ok_or_else(|| Error::new(ErrorKind::Config, "no [journal]: nothing says what was held"))?;
    let key = cfg.journal.as_ref().map(|j| j.key()).transpose()?.flatten();
    let (action, ids) = match (release.is_empty(), delete.is_empty()) {
        (true, true) => {
            let list = held_messages(&location.records(key.as_ref())?, incident, &queue).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
            } else if list.is_empty() {
                println!(
                    "no mail held{}",
                    incident.map(|i| format!(" by {i}")).unwrap_or_default()
                );
            }
            for m in list.iter().filter(|_| !cli.json) {
                println!(
                    "{} {} {}  from <{}> to {}  held {}  now: {}{}",
                    m.incident,
                    m.user,
                    m.queue_id,
                    m.sender,
                    m.recipients.join(", "),
                    m.held_at,
                    m.now,
                    m.reviewed
                        .as_ref()
                        .map(|r| format!(" (reviewed: {r})"))
                        .unwrap_or_default()
                );
            }
            return Ok(Exit::Done);
        }
        (false, _) => (QueueAction::Release, release),
        (_, false) => (QueueAction::Delete, delete),
    };
    let incident = incident
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "--release and --delete need --incident"))?;
    let ids = (!(ids.len() == 1 && ids[0] == "all")).then_some(ids);
    let journal = Journal::open_at(&location, key)?;
    let review = review_held(&journal, &queue, incident, action, ids).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&review).unwrap_or_default());
    } else {
        println!(
            "{}: {} of {} message(s) ({}), journaled",
            review.action,
            review.done,
            review.queue_ids.len(),
            review.queue_ids.join(" ")
        );
    }
    Ok(Exit::Done)
}

/// Resolves on SIGTERM or SIGINT.
pub(crate) async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}
