//! Arguments several commands share: which users, which logs and when.

use std::path::PathBuf;

use cadenas::investigate::{AddressRange, Instant, Pivot};
use cadenas::{Error, ErrorKind};
use clap::Args;

/// Which users: arguments and/or a file with one per line (`#` comments allowed), or every
/// account seen from the attacker's addresses (`--from-ip`).
#[derive(Args, Clone)]
pub struct UserArgs {
    /// User names (uid, mail...) or `dn:<DN>`.
    pub users: Vec<String>,
    /// Read users from this file, one per line.
    #[arg(long)]
    pub from_file: Option<PathBuf>,
    /// Every account with a live session on a configured Dovecot, or a login in the
    /// --auth-log files, from this address or CIDR range; afterwards every session from the
    /// range is kicked.
    #[arg(long, value_name = "CIDR", value_parser = AddressRange::parse, conflicts_with_all = ["users", "from_file"])]
    pub from_ip: Option<AddressRange>,
    #[command(flatten)]
    pub window: LogArgs,
    /// Act on members of the configured protected groups too.
    #[arg(long)]
    pub allow_protected: bool,
}

/// Where and when to look for past logins.
#[derive(Args, Clone, Default)]
pub struct LogArgs {
    /// Dovecot log files to read for past logins (plain or gzip'd; default: [mail] auth_logs).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub auth_log: Vec<PathBuf>,
    /// Postfix log files to read for SMTP AUTH logins (plain or gzip'd; default: [postfix]
    /// log_files).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub smtp_log: Vec<PathBuf>,
    /// Leave out log lines before this: RFC 3339, a date, or a time ago (90m, 36h, 7d).
    #[arg(long, value_name = "TIME", value_parser = Instant::parse)]
    pub since: Option<Instant>,
    /// Leave out log lines after this (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = Instant::parse)]
    pub until: Option<Instant>,
}

impl LogArgs {
    /// The pivot on `range` with these logs and window.
    pub fn pivot(&self, range: AddressRange) -> Pivot {
        let mut p = Pivot::new(range);
        p.auth_logs = self.auth_log.clone();
        p.smtp_logs = self.smtp_log.clone();
        p.since = self.since;
        p.until = self.until;
        p
    }
}

impl UserArgs {
    pub fn collect(&self) -> Result<Vec<String>, Error> {
        let mut users = self.users.clone();
        if let Some(f) = &self.from_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read {}: {e}", f.display())))?;
            users.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        if users.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "no users given (arguments or --from-file)",
            ));
        }
        Ok(users)
    }
}
