//! The watcher's checks (`[watch]`): its state database writable and durable, every log it
//! follows readable by this user, the journal it writes alerts to configured, and a watcher
//! really following: its state read up to each log's end (or catching up within 2 s).

use std::path::Path;
use std::time::Duration;

use super::Check;
use crate::config::Config;
use crate::watch::follow::Position;

/// The watcher's checks, when the config has `[watch]`.
pub(super) async fn checks(cfg: &Config) -> Vec<Check> {
    let Some(w) = &cfg.watch else {
        return Vec::new();
    };
    let mut out = vec![super::files::durable("watch state", &w.state)];
    if cfg.journal.is_none() {
        out.push(Check::fail(
            "watch: alerts journaled",
            "no [journal]: the watcher refuses to start without one",
            "configure [journal]",
        ));
    }
    let logs: Vec<&Path> = w
        .dovecot_logs
        .iter()
        .chain(&w.postfix_logs)
        .map(|p| p.as_path())
        .collect();
    for log in &logs {
        let name = format!("watch: {} readable", log.display());
        out.push(match std::fs::File::open(log).and_then(|f| f.metadata()) {
            Ok(m) if m.is_file() => Check::ok(name, format!("{} bytes", m.len())),
            Ok(_) => Check::fail(name, "not a file", "name the log file itself"),
            Err(e) => Check::fail(
                name,
                e.to_string(),
                "let the user running cadenas watch read it (on Debian: the adm group, as the unit does)",
            ),
        });
    }
    if let Some(db) = &w.policy_database {
        let name = "watch: the policy service's database readable";
        out.push(match std::fs::File::open(db) {
            Ok(_) => Check::ok(name, db.display().to_string()),
            Err(e) => Check::warn(
                name,
                format!("{}: {e}", db.display()),
                "start the policy service (it creates it), or correct [watch] policy_database",
            ),
        });
    }
    out.push(following(&w.state, &logs).await);
    out
}

/// How far behind each log's end the state is, in bytes (a log renamed since, or never
/// read: its whole size).
fn behind(state: &Path, logs: &[&Path]) -> Result<u64, crate::Error> {
    let positions = crate::watch::State::read_positions(state)?;
    let mut total = 0;
    for log in logs {
        let Ok(m) = std::fs::metadata(log) else {
            continue;
        };
        let pos: Option<&Position> = positions
            .iter()
            .find(|(p, _)| Path::new(p) == *log)
            .map(|(_, p)| p);
        total += match pos {
            Some(p) if std::os::unix::fs::MetadataExt::ino(&m) == p.inode => m.len().saturating_sub(p.offset),
            _ => m.len(),
        };
    }
    Ok(total)
}

/// Whether a watcher follows the logs: its state exists and is at each log's end, or catches
/// up within 2 s.
async fn following(state: &Path, logs: &[&Path]) -> Check {
    let name = "watch: a watcher follows the logs";
    let fix = "start it (cadenas watch, or systemctl enable --now cadenas-watch)";
    if !state.exists() {
        return Check::fail(name, format!("{}: no state: it never ran", state.display()), fix);
    }
    let first = match behind(state, logs) {
        Ok(0) => return Check::ok(name, "read up to the end of every log"),
        Ok(n) => n,
        Err(e) => return Check::fail(name, e.to_string(), "check the state database"),
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    match behind(state, logs) {
        Ok(n) if n < first => Check::ok(name, format!("{n} bytes behind, catching up")),
        Ok(n) => Check::fail(
            name,
            format!("{n} bytes of the logs not read, and nothing read in 2 s"),
            fix,
        ),
        Err(e) => Check::fail(name, e.to_string(), "check the state database"),
    }
}
