//! `cadenas outbound …`: the Postfix policy service and its checks.

use std::process::ExitCode;
use std::time::Duration;

use cadenas::outbound::{ask, ListenAddress, PolicyRequest, PolicyService, Verdict};
use cadenas::{Config, Error, ErrorKind};
use clap::Subcommand;

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
}

/// Runs an `outbound` command.
pub async fn run(cli: &Cli, cfg: &Config, cmd: &OutboundCommand) -> Result<ExitCode, Error> {
    match cmd {
        OutboundCommand::Serve => {
            let service = PolicyService::new(cfg)?;
            tokio::select! {
                r = service.run() => r.map(|()| ExitCode::SUCCESS),
                _ = shutdown() => {
                    tracing::info!("outbound policy service stopping");
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
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
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown() {
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
