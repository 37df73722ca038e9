//! OpenLDAP (`slapd` + ppolicy overlay) primitives. Behaviour pinned by the lab tests in
//! `core/tests/lab/openldap.rs` and `flavours.rs`; the facts behind each rule are in `docs/FACTS.md`.

use std::collections::HashSet;

use ldap3::exop::PasswordModify;
use ldap3::Mod;

use super::flavour::{describe_mod, Planned};
use super::{
    change, first, only, refused, AccountState, Action, Attributes, ChangeOutcome, Directory, Flavour,
    LockState, Seen, User,
};
use crate::directory::{ldap_error, Change, Dn, PasswordHashing};
use crate::error::{Error, ErrorKind};
use crate::password::openldap_argon2_hash;
use crate::secret::{Password, Secret};

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
/// effective policy does not have `pwdLockout: TRUE` (`docs/FACTS.md`; pinned by a lab test).
/// Returns the policy checked (`None`: none known, a warning is logged).
async fn ensure_lock_takes_effect(dir: &Directory, subentry: Option<&str>) -> Result<Option<Dn>, Error> {
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
                return Ok(None);
            }
        },
    };
    if dir.lockout_policy_known(&policy_dn) {
        return Ok(Some(policy_dn));
    }
    // the workers starting together: one reads, the others find it known after their turn
    let _turn = dir.policy_read_turn().await;
    if dir.lockout_policy_known(&policy_dn) {
        return Ok(Some(policy_dn));
    }
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
    dir.remember_lockout_policy(&policy_dn);
    Ok(Some(policy_dn))
}

pub(super) async fn plan_lock(dir: &Directory, user: &User) -> Result<Planned, Error> {
    let attrs = dir
        .read_entry(&user.dn, &[LOCK_ATTR, "pwdPolicySubentry"])
        .await?;
    let mut p = Planned::of_user(
        Action::Lock,
        user,
        "lock",
        only(&attrs, &[LOCK_ATTR]),
        &[LOCK_ATTR],
    );
    if first(&attrs, LOCK_ATTR) == Some(LOCKED_FOREVER) {
        return Ok(p);
    }
    let policy = ensure_lock_takes_effect(dir, first(&attrs, "pwdPolicySubentry")).await?;
    p.checked.push(match policy {
        Some(dn) => format!("checked: password policy {dn} has pwdLockout: TRUE"),
        None => "not checked: no pwdPolicySubentry and no directory.password_policy_dn".to_owned(),
    });
    p.mods = vec![Mod::Replace(LOCK_ATTR.as_bytes().to_vec(), value(LOCKED_FOREVER))];
    Ok(p)
}

/// The lock as one modify (see [`Directory::lock`]): the policy `subentry` (read when the
/// user was found) checked first, then `pwdAccountLockedTime` replaced with the critical
/// Pre-Read control and Post-Read — the state before (what release restores) and after come
/// back in the modify's own response, atomically. The Post-Read also asks what a reset
/// reports as its before-state ([`RESET_SHOWN`]), returned as seen.
pub(super) async fn lock_reading_before(
    dir: &Directory,
    user: &User,
    subentry: Option<&str>,
) -> Result<(Change, Option<Seen>), Error> {
    ensure_lock_takes_effect(dir, subentry).await?;
    let mods = vec![Mod::Replace(LOCK_ATTR.as_bytes().to_vec(), value(LOCKED_FOREVER))];
    let (res, before, after) = dir
        .modify_reading_both(&user.dn, mods, &[LOCK_ATTR], RESET_SHOWN)
        .await?;
    if res.rc != 0 {
        return Err(refused("lock", res));
    }
    let before = before.ok_or_else(|| {
        Error::new(
            ErrorKind::UnexpectedResponse,
            format!(
                "{} is locked, but the server's answer did not say what pwdAccountLockedTime was before                  (no readable Pre-Read value): release cannot restore it; the original value is in the                  server's accesslog if it keeps one",
                user.dn
            ),
        )
    })?;
    let before = only(&before, &[LOCK_ATTR]);
    let seen = after.as_ref().map(|a| Seen::of(RESET_SHOWN, a));
    let after = match after {
        Some(a) => only(&a, &[LOCK_ATTR]),
        None => only(&dir.read_entry(&user.dn, &[LOCK_ATTR]).await?, &[LOCK_ATTR]),
    };
    let outcome = if first(&before, LOCK_ATTR) == Some(LOCKED_FOREVER) {
        ChangeOutcome::AlreadyInPlace
    } else {
        ChangeOutcome::Applied
    };
    Ok((change(Action::Lock, user, outcome, before, after), seen))
}

pub(super) async fn plan_unlock(dir: &Directory, user: &User) -> Result<Planned, Error> {
    let attrs = dir.read_entry(&user.dn, &[LOCK_ATTR]).await?;
    let mut p = Planned::of_user(
        Action::Unlock,
        user,
        "unlock",
        only(&attrs, &[LOCK_ATTR]),
        &[LOCK_ATTR],
    );
    if first(&attrs, LOCK_ATTR).is_some() {
        p.mods = vec![Mod::Delete(LOCK_ATTR.as_bytes().to_vec(), HashSet::new())];
        // 16 (no such attribute): a concurrent unlock got there first.
        p.already = &[16];
        p.after = Some(only(&Attributes::new(), &[LOCK_ATTR]));
    }
    Ok(p)
}

/// The first operation of a reset, per `password_hashing`: the RFC 3062 password modify, or a
/// `userPassword` replace with a client-made `{ARGON2}` hash (`None` for `describe`).
enum SetPassword {
    Exop,
    Hash(Option<Secret>),
}

fn set_password_op(dir: &Directory) -> SetPassword {
    match dir.config().password_hashing {
        PasswordHashing::ClientArgon2 => SetPassword::Hash(None),
        _ => SetPassword::Exop,
    }
}

/// What has to follow the password set: re-apply the lock ppolicy deleted, and make
/// `pwdReset` say what the caller asked (admin sets add it by themselves when the policy has
/// `pwdMustChange: TRUE`).
fn follow_up_mods(lock: Option<&str>, flagged: bool, force_change: bool) -> Vec<Mod<Vec<u8>>> {
    let mut mods = Vec::new();
    if let Some(l) = lock {
        mods.push(Mod::Replace(LOCK_ATTR.as_bytes().to_vec(), value(l)));
    }
    if force_change && !flagged {
        mods.push(Mod::Replace(RESET_ATTR.as_bytes().to_vec(), value("TRUE")));
    } else if !force_change && flagged {
        mods.push(Mod::Delete(RESET_ATTR.as_bytes().to_vec(), HashSet::new()));
    }
    mods
}

const RESET_SHOWN: &[&str] = &["pwdChangedTime", RESET_ATTR, LOCK_ATTR];

/// What [`reset_password`] sends in `contain` — after its lock — by the same builders: the
/// password set, then the follow-up as it is when the server drops the lock and does not add
/// `pwdReset` by itself.
pub(super) async fn describe_reset(
    dir: &Directory,
    user: &User,
    force_change: bool,
) -> Result<Vec<String>, Error> {
    let follow = follow_up_mods(Some(LOCKED_FOREVER), false, force_change);
    let mut out = vec![match set_password_op(dir) {
        SetPassword::Exop => format!(
            "RFC 3062 password modify of {} (new random password, hashed by the server)",
            user.dn
        ),
        SetPassword::Hash(_) => format!(
            "modify {}: {}",
            user.dn,
            describe_mod(&Mod::Replace(b"userPassword".to_vec(), HashSet::new()))
        ),
    }];
    if !follow.is_empty() {
        let parts: Vec<String> = follow.iter().map(describe_mod).collect();
        out.push(format!(
            "modify {}: {} (ppolicy deletes the lock on a password set)",
            user.dn,
            parts.join("; ")
        ));
    }
    Ok(out)
}

/// Sets the password. An administrator's password set makes slapd's ppolicy overlay *delete*
/// `pwdAccountLockedTime` (seen on 2.5; a lock written in the same plain modify as a
/// cleartext password survives, but the RFC 3062 operation cannot carry one — pinned by a lab
/// test), which would silently undo a containment lock. So the lock is re-applied right after the password set: a window of one
/// round trip in which the account is unlocked but holds a password only the responder knows.
pub(super) async fn reset_password(
    dir: &Directory,
    user: &User,
    new: &Password,
    force_change: bool,
) -> Result<Change, Error> {
    // what the lock's own response showed (in `contain`, the lock comes right before), else
    // read now
    let before = match user.seen(RESET_SHOWN) {
        Some(seen) => seen.clone(),
        None => only(&dir.read_entry(&user.dn, RESET_SHOWN).await?, RESET_SHOWN),
    };
    let lock = first(&before, LOCK_ATTR).map(str::to_owned);
    let op = match set_password_op(dir) {
        SetPassword::Exop => SetPassword::Exop,
        SetPassword::Hash(_) => {
            // argon2 is ~15 ms of CPU: keep it off the async worker threads.
            let pw = new.clone();
            let hash = tokio::task::spawn_blocking(move || openldap_argon2_hash(&pw))
                .await
                .map_err(|e| Error::new(ErrorKind::Internal, format!("hashing task failed: {e}")))??;
            SetPassword::Hash(Some(hash))
        }
    };
    // With a forced change, the follow-up is known without reading pwdReset back: replacing
    // it with TRUE is the same whether or not the policy set it already (one operation less).
    let known_follow_up = force_change.then(|| follow_up_mods(lock.as_deref(), false, true));
    let mut after = None;
    match op {
        SetPassword::Exop => {
            let exop = PasswordModify {
                user_id: Some(user.dn.as_str()),
                old_pass: None,
                new_pass: Some(new.expose_secret()),
            };
            // The response value is not parsed: ldap3 panics on a malformed one, and we
            // supplied the password, so the server has nothing to send back.
            let started = std::time::Instant::now();
            let res = dir
                .handle()
                .extended(exop)
                .await
                .map_err(|e| ldap_error("password modify", e))?;
            tracing::debug!(
                dn = %user.dn,
                rc = res.1.rc,
                ms = started.elapsed().as_millis() as u64,
                "ldap password modify (RFC 3062)"
            );
            if res.1.rc != 0 {
                return Err(refused("reset_password (RFC 3062 password modify)", res.1));
            }
        }
        SetPassword::Hash(hash) => {
            let hash = hash.ok_or_else(|| Error::new(ErrorKind::Internal, "no password hash"))?;
            // Not one modify with the lock: a lock written in the same modify as an {ARGON2}
            // hash does not survive ppolicy (unlike one written with a cleartext password;
            // pinned by a lab test), so the lock follows, as after RFC 3062.
            let mods = vec![Mod::Replace(
                b"userPassword".to_vec(),
                HashSet::from([hash.expose_secret().to_vec()]),
            )];
            dir.modify("reset_password (client-side argon2 hash)", &user.dn, mods)
                .await?;
        }
    }
    let follow_up = match known_follow_up {
        Some(m) => m,
        None => {
            let now = dir.read_entry(&user.dn, &[RESET_ATTR]).await?;
            let flagged = first(&now, RESET_ATTR).is_some_and(|v| v.eq_ignore_ascii_case("TRUE"));
            follow_up_mods(lock.as_deref(), flagged, force_change)
        }
    };
    if !follow_up.is_empty() {
        after = modify_reading(dir, user, "reset_password (restore lock / pwdReset)", follow_up).await?;
    }
    let after = match after {
        Some(a) => only(&a, RESET_SHOWN),
        None => only(&dir.read_entry(&user.dn, RESET_SHOWN).await?, RESET_SHOWN),
    };
    Ok(change(
        Action::ResetPassword,
        user,
        ChangeOutcome::Applied,
        before,
        after,
    ))
}

/// Sends `mods` to the user's entry; the entry after it (`RESET_SHOWN`) from the Post-Read
/// control's answer where the server gives one, else `None` (read it back).
async fn modify_reading(
    dir: &Directory,
    user: &User,
    what: &str,
    mods: Vec<Mod<Vec<u8>>>,
) -> Result<Option<Attributes>, Error> {
    if dir.has_post_read() {
        let (res, read) = dir.modify_reading_after(&user.dn, mods, RESET_SHOWN).await?;
        if res.rc != 0 {
            return Err(refused(what, res));
        }
        Ok(read)
    } else {
        dir.modify(what, &user.dn, mods).await?;
        Ok(None)
    }
}

pub(super) async fn plan_force_change(dir: &Directory, user: &User) -> Result<Planned, Error> {
    let before = only(&dir.read_entry(&user.dn, &[RESET_ATTR]).await?, &[RESET_ATTR]);
    let flagged = first(&before, RESET_ATTR).is_some_and(|v| v.eq_ignore_ascii_case("TRUE"));
    let mut p = Planned::of_user(Action::ForceChange, user, "force_change", before, &[RESET_ATTR]);
    if !flagged {
        p.mods = vec![Mod::Replace(RESET_ATTR.as_bytes().to_vec(), value("TRUE"))];
    }
    Ok(p)
}

pub(super) async fn plan_restore(
    dir: &Directory,
    user: &User,
    original: &Attributes,
) -> Result<Planned, Error> {
    let wanted = original.get(LOCK_ATTR).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            "restore_flags: the record has no pwdAccountLockedTime",
        )
    })?;
    let before = only(&dir.read_entry(&user.dn, &[LOCK_ATTR]).await?, &[LOCK_ATTR]);
    let same = before.get(LOCK_ATTR) == Some(wanted);
    let mut p = Planned::of_user(Action::RestoreFlags, user, "restore_flags", before, &[LOCK_ATTR]);
    if !same {
        p.mods = vec![match wanted.first() {
            Some(v) => Mod::Replace(LOCK_ATTR.as_bytes().to_vec(), value(v)),
            None => Mod::Delete(LOCK_ATTR.as_bytes().to_vec(), HashSet::new()),
        }];
    }
    Ok(p)
}
