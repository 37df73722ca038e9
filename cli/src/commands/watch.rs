//! `cadenas watch`: follow Dovecot's login log and raise alerts (`[watch]`); `--replay FILE…`
//! runs the same rules over old logs and prints what would have been alerted.

use std::path::PathBuf;
use std::time::Duration;

use cadenas::investigate::Instant;
use cadenas::notify::Language;
use cadenas::watch::{Alert, Watcher};
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
        println!(
            "{} {:<22} {}",
            alert.at,
            alert.rule.name(),
            alert.sms_text(Language::En)
        );
    }
}

/// `cadenas watch …`: exit 0; a config without `[watch]` is exit 3.
pub fn run(cli: &Cli, cfg: &Config, args: &WatchArgs) -> Result<Exit, Error> {
    let watch = cfg
        .watch
        .as_ref()
        .ok_or_else(|| Error::new(ErrorKind::Config, "the config has no [watch] section"))?;
    if !args.replay.is_empty() {
        // a state of its own, thrown away after
        let dir = std::env::temp_dir().join(format!("cadenas-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::new(ErrorKind::Io, format!("{}: {e}", dir.display())))?;
        let result = Watcher::replay(watch, &args.replay, args.since, &dir.join("state.db"));
        let _ = std::fs::remove_dir_all(&dir);
        for a in &result? {
            print(cli, a);
        }
        return Ok(Exit::Done);
    }
    let mut watcher = Watcher::open(watch)?;
    loop {
        watcher.poll()?;
        // raised now, or left unsent by a crash: printed (the notifiers' turn comes with the
        // service's notification step), then marked
        for (id, alert) in watcher.unsent()? {
            print(cli, &alert);
            watcher.mark_sent(id)?;
        }
        if args.once {
            return Ok(Exit::Done);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
