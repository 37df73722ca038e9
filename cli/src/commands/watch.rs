//! `cadenas watch`: the watcher's service (`[watch]`: alerts told, contained where a rule
//! may, journaled; each printed); `--replay FILE…` runs the same rules over old logs and
//! prints what would have been alerted.

use std::path::PathBuf;
use std::time::Duration;

use cadenas::investigate::Instant;
use cadenas::notify::Language;
use cadenas::watch::{Alert, HandledAlert, WatchService, Watcher};
use cadenas::{Config, Error, ErrorKind};
use clap::Args;

use crate::exit::Exit;
use crate::Cli;

/// `cadenas watch` arguments.
#[derive(Args)]
pub struct WatchArgs {
    /// Run the rules over these log files (plain or gzip'd, oldest first) and print what would
    /// have been alerted, instead of following the logs.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    replay: Vec<PathBuf>,
    /// With --replay: only lines from this time on (RFC 3339, a date, or a time ago: 36h).
    #[arg(long, value_name = "TIME", value_parser = Instant::parse)]
    since: Option<Instant>,
    /// Poll the logs once and exit (for a timer unit or a test), instead of every second.
    #[arg(long)]
    once: bool,
}

fn print(cli: &Cli, alert: &Alert) {
    if cli.json {
        println!("{}", serde_json::to_string(alert).unwrap_or_default());
    } else {
        println!("{}", line(alert));
    }
}

fn line(alert: &Alert) -> String {
    format!(
        "{} {:<22} {}",
        alert.at,
        alert.rule.name(),
        alert.sms_text(Language::En)
    )
}

/// What the service did about an alert: the alert, then its automatic containment and the
/// messages sent, one line each (`--json`: one object per alert).
fn print_handled(cli: &Cli, h: &HandledAlert) {
    if cli.json {
        println!("{}", serde_json::to_string(h).unwrap_or_default());
        return;
    }
    println!("{} [{}]", line(&h.alert), h.alert.id);
    if let Some(a) = &h.automatic {
        println!("    {}", cadenas::escape_controls(&a.said()));
    }
    for n in &h.notifications {
        println!(
            "    notified {}: {}",
            cadenas::escape_controls(&n.notifier),
            if n.delivered {
                "delivered".to_owned()
            } else {
                format!(
                    "NOT delivered ({})",
                    cadenas::escape_controls(n.error.as_ref().map_or("", |e| e.message()))
                )
            }
        );
    }
}

/// `cadenas watch …`: exit 0 (stopped by SIGTERM or SIGINT, or `--once` done); a config
/// without `[watch]` or `[journal]` is exit 3. A round that fails (the state database locked,
/// the journal unreachable) is said on standard error and tried again the next second; with
/// `--once` it is the exit code.
pub async fn run(cli: &Cli, cfg: &Config, args: &WatchArgs) -> Result<Exit, Error> {
    let watch = cfg
        .watch
        .as_ref()
        .ok_or_else(|| Error::new(ErrorKind::Config, "the config has no [watch] section"))?;
    if !args.replay.is_empty() {
        for a in &Watcher::replay(watch, &args.replay, args.since)? {
            print(cli, a);
        }
        return Ok(Exit::Done);
    }
    let mut service = WatchService::new(cfg)?;
    if args.once {
        for h in service.poll().await? {
            print_handled(cli, &h);
        }
        return Ok(Exit::Done);
    }
    let rounds = async {
        loop {
            match service.poll().await {
                Ok(handled) => handled.iter().for_each(|h| print_handled(cli, h)),
                Err(e) => tracing::error!(error = %e, "watch: this round failed; trying again"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    tokio::select! {
        () = rounds => Ok(Exit::Done),
        () = super::outbound::shutdown() => Ok(Exit::Done),
    }
}
