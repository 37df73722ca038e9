//! `cadenas` — the operator's tool on incident day.
//!
//! ```text
//! cadenas --config FILE status USER      what the account looks like now
//! cadenas --config FILE contain USER     lock → reset (forced change) → revoke → require MFA
//! ```
//!
//! Exit codes: 0 done; 2 bad usage; 3 configuration error; 4 the directory could not be
//! reached or refused the service account; 5 the user was refused or not found (nothing
//! changed); 6 containment was only partly applied (the report says which steps); 1 other.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cadenas::session::{build_revokers, revoke_all, RevocationOutcome, RevocationStatus, RevocationTarget};
use cadenas::{
    AccountState, Change, ChangeOutcome, Config, Directory, Error, ErrorKind, LockState, Password, User,
    UserRef,
};
use clap::{Parser, Subcommand};

/// Compromised-credential response for LDAP and Active Directory.
#[derive(Parser)]
#[command(name = "cadenas", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 done, 2 usage, 3 config, 4 directory unreachable or service \
account refused, 5 user refused or not found (nothing changed), 6 partly applied, 1 other.\n\
Logs go to stderr; set CADENAS_LOG=debug for more. Secrets never appear in them."
)]
struct Cli {
    /// Config file (TOML).
    #[arg(long, short, env = "CADENAS_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show an account's state: lock, must-change, MFA requirement, protected groups.
    Status {
        /// User name (uid, mail...) or `dn:<DN>`.
        user: String,
    },
    /// Contain one account: lock, reset to a random password with forced change, revoke
    /// sessions (configured revokers), require MFA.
    Contain {
        /// User name (uid, mail...) or `dn:<DN>`.
        user: String,
        /// Write the new password to this new file (created 0600, never overwritten).
        /// Without it the password is shown once, and only on an interactive terminal.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Allow acting on members of the configured protected groups.
        #[arg(long)]
        allow_protected: bool,
    },
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cadenas: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(code) => code,
        Err(e) => {
            if cli.json {
                let j = serde_json::json!({"error": {"kind": e.kind().name(), "code": e.code(),
                    "message": e.to_string(), "ldap": e.ldap()}});
                println!("{j}");
            } else {
                eprintln!("cadenas: {e}");
            }
            ExitCode::from(exit_code(e.kind()))
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CADENAS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Config => 3,
        ErrorKind::Connect
        | ErrorKind::Tls
        | ErrorKind::Timeout
        | ErrorKind::ServiceBind
        | ErrorKind::InsecureTransport
        | ErrorKind::UnsupportedDirectory => 4,
        ErrorKind::InvalidUserName
        | ErrorKind::UserNotFound
        | ErrorKind::AmbiguousUser
        | ErrorKind::OutOfScope
        | ErrorKind::ProtectedAccount
        | ErrorKind::InvalidInput => 5,
        _ => 1,
    }
}

async fn run(cli: &Cli) -> Result<ExitCode, Error> {
    let path = cli.config.as_deref().ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            "no config file: pass --config FILE or set CADENAS_CONFIG",
        )
    })?;
    let cfg = Config::from_file(path)?;
    match &cli.command {
        Command::Status { user } => {
            let user_ref = UserRef::parse(user)?;
            let dir = Directory::connect(&cfg.directory).await?;
            let u = dir.find_user(&user_ref).await?;
            let state = dir.account_state(&u).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&state).unwrap_or_default());
            } else {
                print_state(user, &state);
            }
            dir.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Contain {
            user,
            password_file,
            allow_protected,
        } => contain(cli, &cfg, user, password_file.as_deref(), *allow_protected).await,
    }
}

/// Where the new password goes: a new 0600 file, or an interactive terminal.
enum Handover {
    File(PathBuf, std::fs::File),
    Terminal,
}

impl Handover {
    /// Decided (and the file created) before anything changes, so a password is never set
    /// that nobody can read.
    fn prepare(path: Option<&Path>) -> Result<Self, Error> {
        match path {
            Some(p) => {
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(p)
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Io,
                            format!("cannot create new password file {}: {e}", p.display()),
                        )
                    })?;
                Ok(Self::File(p.to_owned(), f))
            }
            None if std::io::stdout().is_terminal() => Ok(Self::Terminal),
            None => Err(Error::new(
                ErrorKind::InvalidInput,
                "stdout is not a terminal: pass --password-file FILE so the new password is not \
                 written into a pipe or a log",
            )),
        }
    }

    fn deliver(self, user: &str, password: &Password) -> Result<String, Error> {
        match self {
            Self::File(path, mut f) => {
                f.write_all(password.expose_secret().as_bytes())
                    .and_then(|_| f.write_all(b"\n"))
                    .and_then(|_| f.sync_all())
                    .map_err(|e| Error::new(ErrorKind::Io, format!("writing {}: {e}", path.display())))?;
                Ok(format!("file:{}", path.display()))
            }
            Self::Terminal => {
                // The one place the CLI shows a secret: an interactive terminal, once.
                let mut tty = std::io::stdout().lock();
                let _ = writeln!(
                    tty,
                    "\nNew password for {user} (shown once; hand it over out of band):\n\n    {}\n",
                    password.expose_secret()
                );
                Ok("terminal".into())
            }
        }
    }

    fn abandon(self) {
        if let Self::File(path, f) = self {
            drop(f);
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn contain(
    cli: &Cli,
    cfg: &Config,
    user: &str,
    password_file: Option<&Path>,
    allow_protected: bool,
) -> Result<ExitCode, Error> {
    let user_ref = UserRef::parse(user)?;
    let new_password = cfg.password.generate()?;
    let revokers = build_revokers(&cfg.revokers)?;
    let dir = Directory::connect(&cfg.directory).await?;
    let u = dir.find_user(&user_ref).await?;
    check_rails(&dir, &u, allow_protected).await?;
    let handover = Handover::prepare(password_file)?;

    // Each step runs even if an earlier one failed: a failed lock must not leave the
    // attacker's password in place. The report says exactly which steps took effect.
    // Revocation comes after the directory changes: a kick alone lets the attacker back in.
    let lock = dir.lock(&u).await;
    let reset = dir.reset_password(&u, &new_password, true).await;
    let revocations = match dir.login_name(&u).await {
        Ok(login) => {
            let target = RevocationTarget::new(login, u.dn.as_str());
            Ok(revoke_all(&revokers, &target).await)
        }
        Err(e) => Err(e),
    };
    let mfa = dir.require_mfa(&u).await;

    let delivered = if reset.is_ok() {
        Some(handover.deliver(user, &new_password)?)
    } else {
        handover.abandon();
        None
    };
    drop(new_password);
    let steps = [
        ("lock", &lock),
        ("reset password + force change", &reset),
        ("require MFA", &mfa),
    ];
    let revocation_failed = match &revocations {
        Ok(outs) => outs.iter().any(|o| o.status == RevocationStatus::Failed),
        Err(_) => true,
    };
    let failed = steps.iter().filter(|(_, s)| s.is_err()).count() + usize::from(revocation_failed);
    let mut not_revoked =
        vec!["LDAP connections already bound as the user stay open until they end".to_owned()];
    if revokers.is_empty() {
        not_revoked.push("no revokers configured: live sessions (IMAP, apps) were NOT revoked".into());
    }
    if cli.json {
        let j = serde_json::json!({
            "user": user,
            "dn": u.dn.as_str(),
            "steps": steps.iter().map(|(_, s)| match s {
                Ok(c) => serde_json::to_value(c).unwrap_or_default(),
                Err(e) => serde_json::json!({"error": e}),
            }).collect::<Vec<_>>(),
            "revocations": match &revocations {
                Ok(o) => serde_json::to_value(o).unwrap_or_default(),
                Err(e) => serde_json::json!({"error": e}),
            },
            "not_revoked": not_revoked,
            "password_handover": delivered,
            "complete": failed == 0,
        });
        println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
    } else {
        println!("contain {user} ({})", u.dn);
        for (name, s) in &steps[..2] {
            print_step(name, s);
        }
        match &revocations {
            Ok(outs) => {
                for o in outs {
                    print_revocation(o);
                }
            }
            Err(e) => println!("  {:<32} FAILED: {e}", "revoke sessions"),
        }
        print_step(steps[2].0, steps[2].1);
        match &delivered {
            Some(d) if d.starts_with("file:") => println!("  new password written to {}", &d[5..]),
            Some(_) => {}
            None => println!("  no new password was set"),
        }
        for n in &not_revoked {
            println!("  not revoked: {n}");
        }
    }
    dir.close().await;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(6)
    })
}

fn print_step(name: &str, s: &Result<Change, Error>) {
    match s {
        Ok(c) if c.outcome == ChangeOutcome::Applied => println!("  {name:<32} done"),
        Ok(_) => println!("  {name:<32} already so"),
        Err(e) => println!("  {name:<32} FAILED: {e}"),
    }
}

fn print_revocation(o: &RevocationOutcome) {
    let name = format!("revoke via {}", o.revoker);
    match o.status {
        RevocationStatus::Failed => {
            let e = o.error.as_ref().map(|e| e.to_string()).unwrap_or_default();
            println!("  {name:<32} FAILED: {e}");
        }
        RevocationStatus::NothingToRevoke => println!("  {name:<32} nothing to revoke"),
        RevocationStatus::Revoked => {
            let cache = o
                .cache_entries_flushed
                .map(|n| format!(", {n} cached credential(s) flushed"))
                .unwrap_or_default();
            println!("  {name:<32} {} session(s) closed{cache}", o.sessions_closed);
        }
    }
    if !o.collateral.is_empty() {
        println!(
            "  {:<32} WARNING: also disconnected (shared process): {}",
            "",
            o.collateral.join(", ")
        );
    }
    for n in &o.not_revoked {
        println!("  {:<32} note: {n}", "");
    }
}

/// Safety rails: never the service account itself, never a protected account unless asked.
async fn check_rails(dir: &Directory, u: &User, allow_protected: bool) -> Result<(), Error> {
    if cadenas::Dn::parse(&dir.config().bind_dn).is_ok_and(|d| d.same_entry(&u.dn)) {
        return Err(Error::new(
            ErrorKind::ProtectedAccount,
            "refusing to contain the responder's own account",
        ));
    }
    let state = dir.account_state(u).await?;
    if !state.protected_groups.is_empty() && !allow_protected {
        return Err(Error::new(
            ErrorKind::ProtectedAccount,
            format!(
                "{} is a member of protected group(s) {}; pass --allow-protected to act anyway",
                u.dn,
                state.protected_groups.join(", ")
            ),
        ));
    }
    Ok(())
}

fn print_state(user: &str, s: &AccountState) {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!("{user}  {}", s.dn);
    let lock = match &s.lock {
        LockState::Unlocked => "unlocked".to_owned(),
        LockState::Locked => "LOCKED (until unlocked by an administrator)".to_owned(),
        LockState::LockedOut { since } => format!("locked out since {since}"),
    };
    println!("  lock:             {lock}");
    println!("  must change:      {}", yes_no(s.must_change));
    match s.mfa_required {
        Some(m) => println!("  MFA required:     {}", yes_no(m)),
        None => println!("  MFA required:     (no MFA group configured)"),
    }
    println!(
        "  password changed: {}",
        s.password_changed_at.as_deref().unwrap_or("-")
    );
    let protected = if s.protected_groups.is_empty() {
        "-".to_owned()
    } else {
        s.protected_groups.join(", ")
    };
    println!("  protected groups: {protected}");
}
