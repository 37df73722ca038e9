//! What needs both the directory and the MFA store: [`authenticate`] (password + code, the call
//! a PAM module, RADIUS server or mail proxy makes) and [`require_mfa`] (enforcement). Above
//! `directory` and `mfa`, which never import each other.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::directory::{BindOutcome, Change, Directory, User, UserRef};
use crate::error::{Error, ErrorKind};
use crate::mfa::{EnrolmentState, Mfa};
use crate::secret::Password;

/// What a login with password + code amounts to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
#[non_exhaustive]
pub enum AuthOutcome {
    /// Password right, and the code too when MFA is required.
    Ok,
    /// Wrong password (or unknown user).
    BadPassword,
    /// The password must be changed first.
    MustChange,
    /// The account is locked or disabled.
    Locked,
    /// The password has expired.
    Expired,
    /// MFA is required but no code was given.
    MfaRequired,
    /// MFA is required and the user has no active enrolment.
    MfaNotEnrolled,
    /// The code does not match.
    BadCode,
    /// The code was already used.
    ReplayedCode,
    /// Too many failures: try later.
    Throttled,
}

/// Binds as the user over TLS (refused in plaintext unless opted in) and, when the account is
/// in the MFA-required group, verifies `code`. What a PAM module, RADIUS server or mail proxy
/// would call. The MFA store is keyed by the user's login name (`login_attribute`).
pub async fn authenticate(
    dir: &Directory,
    mfa: &Arc<Mfa>,
    user: &UserRef,
    password: &Password,
    code: Option<&str>,
    now: u64,
) -> Result<AuthOutcome, Error> {
    let u = match dir.find_user(user).await {
        Ok(u) => u,
        // Do not tell an unknown user from a bad password.
        Err(e) if e.kind() == ErrorKind::UserNotFound => return Ok(AuthOutcome::BadPassword),
        Err(e) => return Err(e),
    };
    match dir.check_password(&u.dn, password).await? {
        BindOutcome::Success => {}
        BindOutcome::MustChange => return Ok(AuthOutcome::MustChange),
        BindOutcome::InvalidCredentials => return Ok(AuthOutcome::BadPassword),
        BindOutcome::Locked | BindOutcome::Disabled => return Ok(AuthOutcome::Locked),
        BindOutcome::Expired => return Ok(AuthOutcome::Expired),
        BindOutcome::Refused { rc, text } => {
            return Err(
                Error::new(ErrorKind::Refused, "the directory refused the user bind").with_ldap(rc, text, ""),
            )
        }
    }
    let required = match &dir.config().mfa_group_dn {
        Some(g) => dir.is_member(g, &u.dn).await?,
        None => false,
    };
    if !required {
        return Ok(AuthOutcome::Ok);
    }
    let login = dir.login_name(&u).await?;
    let mfa = mfa.clone();
    let code = code.map(str::to_owned);
    tokio::task::spawn_blocking(move || -> Result<AuthOutcome, Error> {
        if mfa.enrolment_state(&login)? != Some(EnrolmentState::Active) {
            return Ok(AuthOutcome::MfaNotEnrolled);
        }
        let Some(code) = code else {
            return Ok(AuthOutcome::MfaRequired);
        };
        match mfa.verify_at(&login, &code, now) {
            Ok(_) => Ok(AuthOutcome::Ok),
            Err(e) => match e.kind() {
                ErrorKind::MfaBadCode => Ok(AuthOutcome::BadCode),
                ErrorKind::MfaReplayed => Ok(AuthOutcome::ReplayedCode),
                ErrorKind::MfaThrottled => Ok(AuthOutcome::Throttled),
                ErrorKind::MfaNotEnrolled => Ok(AuthOutcome::MfaNotEnrolled),
                _ => Err(e),
            },
        }
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Internal, format!("MFA task failed: {e}")))?
}

/// Enforcement: puts the account in the MFA-required group **and** deletes any existing
/// enrolment and recovery codes (the attacker may have enrolled their own device).
pub async fn require_mfa(dir: &Directory, mfa: &Arc<Mfa>, user: &User) -> Result<Change, Error> {
    let change = dir.add_to_mfa_group(user).await?;
    let login = dir.login_name(user).await?;
    let mfa = mfa.clone();
    tokio::task::spawn_blocking(move || mfa.reset(&login))
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("MFA task failed: {e}")))??;
    Ok(change)
}
