//! `cadenas contain`: lock → reset (forced change) → revoke sessions → require MFA.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use cadenas::mfa::Mfa;
use cadenas::session::{build_revokers, revoke_all, RevocationOutcome, RevocationStatus, RevocationTarget};
use cadenas::{Change, ChangeOutcome, Config, Directory, Error, ErrorKind, User, UserRef};

use crate::handover::Handover;
use crate::Cli;

pub async fn contain(
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
    let handover = Handover::prepare(password_file, "--password-file")?;
    let mfa = match &cfg.mfa {
        Some(m) => Some(Arc::new(Mfa::open(m, true)?)),
        None => None,
    };

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
    // With an MFA store configured, enforcement also deletes any existing enrolment: the
    // attacker may have enrolled their own device.
    let mfa = match &mfa {
        Some(m) => cadenas::mfa::require_mfa(&dir, m, &u).await,
        None => dir.require_mfa(&u).await,
    };

    let delivered = if reset.is_ok() {
        let heading = format!("New password for {user} (shown once; hand it over out of band):");
        Some(handover.deliver(&heading, new_password.expose_secret())?)
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
    if dir.flavour() == cadenas::Flavour::ActiveDirectory {
        not_revoked.push(
            "Kerberos service tickets already issued stay valid until they expire (10 h by default); \
             the attacker's TGT cannot get new ones while the account is disabled or must change its \
             password — and works again if the account is released before it expires"
                .into(),
        );
    }
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
