//! `cadenas mfa …`: enrol, verify, reset, recovery codes. The MFA store is keyed by the
//! user's login name as the directory knows it, as `authenticate` is.

use std::io::BufRead;

use cadenas::directory::{Directory, UserRef};
use cadenas::mfa::Mfa;
use cadenas::notify::{build_notifiers, notify_all, Notice, NoticeUser, NotifyEvent};
use cadenas::{Config, Error, ErrorKind};
use clap::Subcommand;

use crate::exit::Exit;
use crate::handover::Handover;
use crate::Cli;

/// The `mfa` subcommands.
#[derive(Subcommand)]
pub enum MfaCommand {
    /// Enrol a new TOTP device (replacing any other); pending until a first code is verified.
    Enroll {
        /// User name (uid, mail...) or `dn:<DN>`.
        user: String,
        /// Write the otpauth:// URI (it holds the secret) to this new 0600 file instead of the terminal.
        #[arg(long)]
        uri_file: Option<std::path::PathBuf>,
        /// Also write the QR code as an SVG image to this new 0600 file.
        #[arg(long)]
        qr_svg: Option<std::path::PathBuf>,
    },
    /// Verify a code (read from stdin when --code is absent). Exit 0 accepted, 7 refused.
    Verify {
        /// User name (uid, mail...) or `dn:<DN>`.
        user: String,
        /// The code; prefer stdin, as arguments are visible to other local users.
        #[arg(long)]
        code: Option<String>,
    },
    /// Delete the user's enrolment and recovery codes.
    Reset {
        /// User name (uid, mail...) or `dn:<DN>`.
        user: String,
    },
    /// Generate a new set of single-use recovery codes (the old set stops working).
    RecoveryCodes {
        /// User name (uid, mail...) or `dn:<DN>`.
        user: String,
        /// Write the codes to this new 0600 file instead of the terminal.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

async fn login_of(cfg: &Config, user: &str) -> Result<String, Error> {
    let user_ref = UserRef::parse(user)?;
    let dir = Directory::connect(&cfg.directory).await?;
    let u = dir.find_user(&user_ref).await?;
    let login = dir.login_name(&u).await;
    dir.close().await;
    login
}

fn open(cfg: &Config, create: bool) -> Result<Mfa, Error> {
    let m = cfg
        .mfa
        .as_ref()
        .ok_or_else(|| Error::new(ErrorKind::Config, "no [mfa] section in the config"))?;
    Mfa::open(m, create)
}

/// Runs one `mfa` subcommand.
pub async fn run(cli: &Cli, cfg: &Config, cmd: &MfaCommand) -> Result<Exit, Error> {
    match cmd {
        MfaCommand::Enroll {
            user,
            uri_file,
            qr_svg,
        } => {
            let handover = Handover::prepare(uri_file.as_deref(), "--uri-file")?;
            let svg = qr_svg
                .as_deref()
                .map(|p| Handover::prepare(Some(p), "--qr-svg"))
                .transpose()?;
            let login = login_of(cfg, user).await?;
            let mfa = open(cfg, true)?;
            let new = mfa.enroll(&login)?;
            let text = |s: &cadenas::Secret| String::from_utf8_lossy(s.expose_secret()).into_owned();
            let secret_shown = match handover {
                Handover::Terminal => Handover::Terminal.deliver(
                    &format!(
                        "Scan with an authenticator app ({login}); the code it shows confirms the enrolment:"
                    ),
                    &format!("{}\n{}", text(&new.qr_terminal), text(&new.uri)),
                )?,
                file => file.deliver("", &text(&new.uri))?,
            };
            let svg_shown = svg.map(|h| h.deliver("", &text(&new.qr_svg))).transpose()?;
            report(
                cli,
                &serde_json::json!({"user": login, "state": "pending", "uri": secret_shown, "qr_svg": svg_shown,
                "params": new.params}),
                &format!("{login}: enrolment pending until a first code is verified"),
            );
            Ok(Exit::Done)
        }
        MfaCommand::Verify { user, code } => {
            let code = match code {
                Some(c) => c.clone(),
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .map_err(|e| Error::new(ErrorKind::Io, format!("stdin: {e}")))?;
                    line.trim().to_owned()
                }
            };
            let login = login_of(cfg, user).await?;
            let mfa = open(cfg, false)?;
            match mfa.verify(&login, &code) {
                Ok(v) => {
                    let msg = if v.activated {
                        "accepted; enrolment now active"
                    } else {
                        "accepted"
                    };
                    report(
                        cli,
                        &serde_json::json!({"user": login, "accepted": true, "activated": v.activated}),
                        &format!("{login}: {msg}"),
                    );
                    Ok(Exit::Done)
                }
                Err(e) if is_refusal(e.kind()) => {
                    report(
                        cli,
                        &serde_json::json!({"user": login, "accepted": false, "error": e}),
                        &format!("{login}: refused: {e}"),
                    );
                    Ok(Exit::MfaRefused)
                }
                Err(e) => Err(e),
            }
        }
        MfaCommand::Reset { user } => {
            let dir = Directory::connect(&cfg.directory).await?;
            let u = dir.find_user(&UserRef::parse(user)?).await?;
            let login = dir.login_name(&u).await?;
            let existed = open(cfg, true)?.reset(&login)?;
            let msg = if existed {
                "enrolment and recovery codes deleted"
            } else {
                "had no enrolment"
            };
            // who must know (`[[notify]]` with mfa_reset): after the change, never instead of it
            let notifications = if existed {
                let notifiers = build_notifiers(&cfg.notify)?;
                let who = NoticeUser::new(
                    &login,
                    Some(u.dn.to_string()),
                    "TOTP enrolment and recovery codes deleted",
                );
                notify_all(
                    &notifiers,
                    &Notice::new(NotifyEvent::MfaReset, None, vec![who]),
                    Some(&dir),
                )
                .await
            } else {
                Vec::new()
            };
            dir.close().await;
            let mut human = format!("{login}: {msg}");
            for n in &notifications {
                human.push_str(&format!("\n{}", crate::show::describe_notification(n)));
            }
            report(
                cli,
                &serde_json::json!({"user": login, "deleted": existed, "notifications": notifications}),
                &human,
            );
            Ok(Exit::Done)
        }
        MfaCommand::RecoveryCodes { user, output } => {
            let handover = Handover::prepare(output.as_deref(), "--output")?;
            let login = login_of(cfg, user).await?;
            let codes = open(cfg, true)?.new_recovery_codes(&login)?;
            let text: Vec<&str> = codes.iter().map(|c| c.expose_secret()).collect();
            let shown = handover.deliver(
                &format!("Recovery codes for {login} (each works once; the previous set no longer works):"),
                &text.join("\n"),
            )?;
            report(
                cli,
                &serde_json::json!({"user": login, "count": codes.len(), "codes": shown}),
                &format!("{login}: {} recovery codes issued", codes.len()),
            );
            Ok(Exit::Done)
        }
    }
}

fn is_refusal(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::MfaBadCode | ErrorKind::MfaReplayed | ErrorKind::MfaThrottled | ErrorKind::MfaNotEnrolled
    )
}

fn report(cli: &Cli, json: &serde_json::Value, human: &str) {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(json).unwrap_or_default());
    } else {
        println!("{human}");
    }
}
