//! OpenLDAP (`slapd` + ppolicy overlay) primitives. Behaviour pinned by the lab tests in
//! `core/tests/lab/openldap.rs` and `flavours.rs`; the facts behind each rule are in `shared/design/FACTS.md`.

use std::collections::HashSet;

use ldap3::exop::PasswordModify;
use ldap3::Mod;

use super::{
    change, first, only, refused, unchanged, AccountState, Action, Attributes, ChangeOutcome, Directory,
    Flavour, LockState, User,
};
use crate::directory::{ldap_error, Change, Dn, PasswordHashing};
use crate::error::{Error, ErrorKind};
use crate::password::openldap_argon2_hash;
use crate::secret::Password;

/// The value that locks an account until an administrator unlocks it. Only honoured when
/// the entry's effective policy has `pwdLockout: TRUE`.
pub(crate) const LOCKED_FOREVER: &str = "000001010000Z";

const LOCK_ATTR: &str = "pwdAccountLockedTime";
const RESET_ATTR: &str = "pwdReset";
const STATE_ATTRS: &[&str] = &[
    "pwdAccountLockedTime",
    "pwdReset",
    "pwdChangedTime",
    "pwdFailureTime",
    "pwdPolicySubentry",
];

fn value(v: &str) -> HashSet<Vec<u8>> {
    HashSet::from([v.as_bytes().to_vec()])
}

pub(super) async fn account_state(dir: &Directory, user: &User) -> Result<AccountState, Error> {
    let attrs = dir.read_entry(&user.dn, STATE_ATTRS).await?;
    let lock = match first(&attrs, LOCK_ATTR) {
        None => LockState::Unlocked,
        Some(LOCKED_FOREVER) => LockState::Locked,
        Some(t) => LockState::LockedOut { since: t.to_owned() },
    };
    Ok(AccountState {
        dn: user.dn.to_string(),
        flavour: Flavour::OpenLdap,
        lock,
        must_change: first(&attrs, RESET_ATTR).is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
        mfa_required: None,
        password_changed_at: first(&attrs, "pwdChangedTime").map(str::to_owned),
        protected_groups: Vec::new(),
        attributes: attrs,
    })
}

/// Refuses a lock the server would silently ignore: without the ppolicy overlay, or when the
/// effective policy does not have `pwdLockout: TRUE` (FACTS.md; pinned by a lab test).
async fn ensure_lock_takes_effect(dir: &Directory, subentry: Option<&str>) -> Result<(), Error> {
    if !dir.has_ppolicy() {
        return Err(Error::new(
            ErrorKind::LockIneffective,
            "the server does not announce the ppolicy control: pwdAccountLockedTime would be ignored",
        ));
    }
    let policy_dn = match subentry {
        Some(s) => Dn::parse(s)?,
        None => match &dir.config().password_policy_dn {
            Some(d) => d.clone(),
            None => {
                tracing::warn!(
                    "no pwdPolicySubentry and no directory.password_policy_dn: cannot check pwdLockout"
                );
                return Ok(());
            }
        },
    };
    let policy = policy_dn.as_str();
    let attrs = dir.read_entry(&policy_dn, &["pwdLockout"]).await.map_err(|e| {
        Error::new(
            ErrorKind::LockIneffective,
            format!(
                "cannot read password policy {policy} to check pwdLockout: {}",
                e.message()
            ),
        )
    })?;
    if !first(&attrs, "pwdLockout").is_some_and(|v| v.eq_ignore_ascii_case("TRUE")) {
        return Err(Error::new(
            ErrorKind::LockIneffective,
            format!("password policy {policy} does not have pwdLockout: TRUE, so a lock would be ignored"),
        ));
    }
    Ok(())
}

pub(super) async fn lock(dir: &Directory, user: &User) -> Result<Change, Error> {
    let attrs = dir
        .read_entry(&user.dn, &[LOCK_ATTR, "pwdPolicySubentry"])
        .await?;
    let before = only(&attrs, &[LOCK_ATTR]);
    if first(&attrs, LOCK_ATTR) == Some(LOCKED_FOREVER) {
        return Ok(unchanged(Action::Lock, user, before));
    }
    ensure_lock_takes_effect(dir, first(&attrs, "pwdPolicySubentry")).await?;
    let mods = vec![Mod::Replace(LOCK_ATTR.as_bytes().to_vec(), value(LOCKED_FOREVER))];
    dir.apply(Action::Lock, user, "lock", mods, &[LOCK_ATTR], before)
        .await
}

pub(super) async fn unlock(dir: &Directory, user: &User) -> Result<Change, Error> {
    let attrs = dir.read_entry(&user.dn, &[LOCK_ATTR]).await?;
    let before = only(&attrs, &[LOCK_ATTR]);
    if first(&attrs, LOCK_ATTR).is_none() {
        return Ok(unchanged(Action::Unlock, user, before));
    }
    let res = dir
        .modify_raw(
            &user.dn,
            vec![Mod::Delete(LOCK_ATTR.as_bytes().to_vec(), HashSet::new())],
        )
        .await?;
    // 16 (no such attribute): a concurrent unlock got there first.
    let outcome = match res.rc {
        0 => ChangeOutcome::Applied,
        16 => ChangeOutcome::AlreadyInPlace,
        _ => return Err(refused("unlock", res)),
    };
    Ok(change(
        Action::Unlock,
        user,
        outcome,
        before,
        only(&Attributes::new(), &[LOCK_ATTR]),
    ))
}

/// Sets the password. An administrator's password set makes slapd's ppolicy overlay *delete*
/// `pwdAccountLockedTime` (seen on 2.5, even when the same modify writes it; pinned by a lab
/// test), which would silently undo a containment lock. So the lock is re-applied right after
/// the password set: a window of one round trip in which the account is unlocked but holds a
/// password only the responder knows.
pub(super) async fn reset_password(
    dir: &Directory,
    user: &User,
    new: &Password,
    force_change: bool,
) -> Result<Change, Error> {
    const SHOWN: &[&str] = &["pwdChangedTime", RESET_ATTR, LOCK_ATTR];
    let before = only(&dir.read_entry(&user.dn, SHOWN).await?, SHOWN);
    let lock = first(&before, LOCK_ATTR).map(str::to_owned);
    let mut follow_up = Vec::new();
    match dir.config().password_hashing {
        PasswordHashing::Server => {
            let exop = PasswordModify {
                user_id: Some(user.dn.as_str()),
                old_pass: None,
                new_pass: Some(new.expose_secret()),
            };
            // The response value is not parsed: ldap3 panics on a malformed one, and we
            // supplied the password, so the server has nothing to send back.
            let res = dir
                .handle()
                .extended(exop)
                .await
                .map_err(|e| ldap_error("password modify", e))?;
            if res.1.rc != 0 {
                return Err(refused("reset_password (RFC 3062 password modify)", res.1));
            }
        }
        PasswordHashing::ClientArgon2 => {
            // argon2 is ~15 ms of CPU: keep it off the async worker threads.
            let pw = new.clone();
            let hash = tokio::task::spawn_blocking(move || openldap_argon2_hash(&pw))
                .await
                .map_err(|e| Error::new(ErrorKind::Internal, format!("hashing task failed: {e}")))??;
            let mods = vec![Mod::Replace(
                b"userPassword".to_vec(),
                HashSet::from([hash.expose_secret().to_vec()]),
            )];
            dir.modify("reset_password (client-side argon2 hash)", &user.dn, mods)
                .await?;
        }
    }
    if let Some(l) = &lock {
        follow_up.push(Mod::Replace(LOCK_ATTR.as_bytes().to_vec(), value(l)));
    }
    // Admin sets add pwdReset: TRUE by themselves when the policy has pwdMustChange: TRUE;
    // make the flag say exactly what the caller asked for either way.
    let now = dir.read_entry(&user.dn, &[RESET_ATTR]).await?;
    let flagged = first(&now, RESET_ATTR).is_some_and(|v| v.eq_ignore_ascii_case("TRUE"));
    if force_change && !flagged {
        follow_up.push(Mod::Replace(RESET_ATTR.as_bytes().to_vec(), value("TRUE")));
    } else if !force_change && flagged {
        follow_up.push(Mod::Delete(RESET_ATTR.as_bytes().to_vec(), HashSet::new()));
    }
    if !follow_up.is_empty() {
        dir.modify("reset_password (restore lock / pwdReset)", &user.dn, follow_up)
            .await?;
    }
    let after = only(&dir.read_entry(&user.dn, SHOWN).await?, SHOWN);
    Ok(change(
        Action::ResetPassword,
        user,
        ChangeOutcome::Applied,
        before,
        after,
    ))
}

pub(super) async fn force_change(dir: &Directory, user: &User) -> Result<Change, Error> {
    let before = only(&dir.read_entry(&user.dn, &[RESET_ATTR]).await?, &[RESET_ATTR]);
    if first(&before, RESET_ATTR).is_some_and(|v| v.eq_ignore_ascii_case("TRUE")) {
        return Ok(unchanged(Action::ForceChange, user, before));
    }
    let mods = vec![Mod::Replace(RESET_ATTR.as_bytes().to_vec(), value("TRUE"))];
    dir.apply(
        Action::ForceChange,
        user,
        "force_change",
        mods,
        &[RESET_ATTR],
        before,
    )
    .await
}

pub(super) async fn restore_flags(
    dir: &Directory,
    user: &User,
    original: &Attributes,
) -> Result<Change, Error> {
    let wanted = original.get(LOCK_ATTR).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            "restore_flags: the record has no pwdAccountLockedTime",
        )
    })?;
    let before = only(&dir.read_entry(&user.dn, &[LOCK_ATTR]).await?, &[LOCK_ATTR]);
    if before.get(LOCK_ATTR) == Some(wanted) {
        return Ok(unchanged(Action::RestoreFlags, user, before));
    }
    let m = match wanted.first() {
        Some(v) => Mod::Replace(LOCK_ATTR.as_bytes().to_vec(), value(v)),
        None => Mod::Delete(LOCK_ATTR.as_bytes().to_vec(), HashSet::new()),
    };
    dir.apply(
        Action::RestoreFlags,
        user,
        "restore_flags",
        vec![m],
        &[LOCK_ATTR],
        before,
    )
    .await
}
