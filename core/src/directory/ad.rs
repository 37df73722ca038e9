//! Active Directory (and Samba AD) primitives. Behaviour pinned by the lab tests in
//! `core/tests/lab/ad.rs`; the facts behind each rule are in `docs/FACTS.md`.
//!
//! - Reset = *replace* `unicodePwd` with the password in double quotes, UTF-16LE, over TLS.
//! - Force change = `pwdLastSet: 0` **in the same modify** as the reset (otherwise Samba keeps
//!   the old password valid for 60 minutes), with `DONT_EXPIRE_PASSWD` cleared (it silently
//!   defeats must-change); the original `userAccountControl` is in the [`Change`].
//! - Lock = set `ACCOUNTDISABLE` keeping every other bit. Unlock clears it and `lockoutTime`.

use std::collections::HashSet;

use ldap3::Mod;
use zeroize::Zeroizing;

use super::flavour::Planned;
use super::{
    first, only, AccountState, Action, Attributes, Change, Directory, Flavour, LockState, Seen, User,
};
use crate::error::{Error, ErrorKind};
use crate::secret::Password;

/// `userAccountControl` ACCOUNTDISABLE.
pub const UF_ACCOUNTDISABLE: u32 = 0x2;
/// `userAccountControl` DONT_EXPIRE_PASSWD: silently disables must-change.
pub const UF_DONT_EXPIRE_PASSWD: u32 = 0x1_0000;
/// `msDS-User-Account-Control-Computed` LOCKOUT.
pub const UF_LOCKOUT: u32 = 0x10;
/// `msDS-User-Account-Control-Computed` PASSWORD_EXPIRED.
pub const UF_PASSWORD_EXPIRED: u32 = 0x80_0000;

pub(super) const UAC: &str = "userAccountControl";
const COMPUTED: &str = "msDS-User-Account-Control-Computed";
pub(super) const PWD_LAST_SET: &str = "pwdLastSet";
/// What the search that finds a user reads of its entry on AD: the lock starts from its
/// `userAccountControl`, the reset that follows from the locked value and `pwdLastSet`.
pub(super) const FOUND: &[&str] = &[UAC, PWD_LAST_SET];
const LOCKOUT_TIME: &str = "lockoutTime";

/// Whether `attrs` hold a `userAccountControl` with ACCOUNTDISABLE set.
pub(super) fn shows_disabled(attrs: &Attributes) -> bool {
    uac_of(attrs, "").is_ok_and(|uac| uac & UF_ACCOUNTDISABLE != 0)
}

fn uac_of(attrs: &Attributes, dn: &str) -> Result<u32, Error> {
    let raw = first(attrs, UAC).ok_or_else(|| {
        Error::new(
            ErrorKind::UnexpectedResponse,
            format!("{dn} has no userAccountControl"),
        )
    })?;
    // AD returns it as a signed 32-bit decimal.
    raw.parse::<i64>().map(|v| v as u32).map_err(|_| {
        Error::new(
            ErrorKind::UnexpectedResponse,
            format!("{dn}: userAccountControl {raw:?}"),
        )
    })
}

/// AD stores `userAccountControl` as a signed 32-bit integer.
fn uac_value(v: u32) -> String {
    (v as i32).to_string()
}

/// The `userAccountControl` bits Cadenas changes (and restores on release); every other bit
/// is the administrators'.
const OWNED_BITS: u32 = UF_ACCOUNTDISABLE | UF_DONT_EXPIRE_PASSWD;

/// `userAccountControl` from `old` to `new` as delete-old/add-new in the same modify: if
/// anyone changed it since it was read, the delete fails (16, no such value) and nothing is
/// written; the caller reads again and retries.
fn swap_uac(old: u32, new: u32) -> [Mod<Vec<u8>>; 2] {
    [
        Mod::Delete(
            UAC.as_bytes().to_vec(),
            HashSet::from([uac_value(old).into_bytes()]),
        ),
        Mod::Add(
            UAC.as_bytes().to_vec(),
            HashSet::from([uac_value(new).into_bytes()]),
        ),
    ]
}

/// Result codes of a modify that lost a race on `userAccountControl`.
pub(super) const UAC_CONFLICT: &[u32] = &[16, 20];

fn replace(attr: &str, value: &str) -> Mod<Vec<u8>> {
    Mod::Replace(
        attr.as_bytes().to_vec(),
        HashSet::from([value.as_bytes().to_vec()]),
    )
}

/// The `unicodePwd` value: the password in double quotes, encoded UTF-16LE (MS-ADTS
/// 3.1.1.3.1.5). Any other encoding can leave an account nobody can log in to.
pub fn unicode_pwd(password: &Password) -> Zeroizing<Vec<u8>> {
    let quoted = Zeroizing::new(format!("\"{}\"", password.expose_secret()));
    Zeroizing::new(quoted.encode_utf16().flat_map(u16::to_le_bytes).collect())
}

/// Windows FILETIME (100 ns since 1601) to Unix seconds; `None` for 0 / never.
pub fn filetime_to_unix(ft: &str) -> Option<u64> {
    let v: i64 = ft.parse().ok()?;
    if v <= 0 || v == i64::MAX {
        return None;
    }
    (v / 10_000_000).checked_sub(11_644_473_600).map(|s| s as u64)
}

pub(super) async fn account_state(dir: &Directory, user: &User) -> Result<AccountState, Error> {
    let attrs = dir
        .read_entry(&user.dn, &[UAC, COMPUTED, PWD_LAST_SET, LOCKOUT_TIME])
        .await?;
    let uac = uac_of(&attrs, user.dn.as_str())?;
    let computed: u32 = first(&attrs, COMPUTED)
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0) as u32;
    let lock = if uac & UF_ACCOUNTDISABLE != 0 {
        LockState::Locked
    } else if computed & UF_LOCKOUT != 0 {
        LockState::LockedOut {
            since: first(&attrs, LOCKOUT_TIME)
                .and_then(filetime_to_unix)
                .map(crate::time::rfc3339)
                .unwrap_or_default(),
        }
    } else {
        LockState::Unlocked
    };
    let pwd_last_set = first(&attrs, PWD_LAST_SET);
    Ok(AccountState {
        dn: user.dn.to_string(),
        flavour: Flavour::ActiveDirectory,
        lock,
        must_change: computed & UF_PASSWORD_EXPIRED != 0
            || (pwd_last_set == Some("0") && uac & UF_DONT_EXPIRE_PASSWD == 0),
        mfa_required: None,
        password_changed_at: pwd_last_set.and_then(filetime_to_unix).map(crate::time::rfc3339),
        protected_groups: Vec::new(),
        attributes: attrs,
    })
}

pub(super) async fn plan_lock(dir: &Directory, user: &User) -> Result<Planned, Error> {
    let attrs = dir.read_entry(&user.dn, &[UAC]).await?;
    plan_lock_from(user, &attrs)
}

/// The lock decided from `attrs` (the entry's `userAccountControl`). When the swap goes
/// through, the value after it is the one swapped in: no read back.
fn plan_lock_from(user: &User, attrs: &Attributes) -> Result<Planned, Error> {
    let uac = uac_of(attrs, user.dn.as_str())?;
    let mut p = Planned::of_user(
        Action::Lock,
        user,
        "lock (set ACCOUNTDISABLE)",
        only(attrs, &[UAC]),
        &[UAC],
    );
    if uac & UF_ACCOUNTDISABLE == 0 {
        let locked = uac | UF_ACCOUNTDISABLE;
        p.mods = swap_uac(uac, locked).into();
        p.conflict = UAC_CONFLICT;
        p.after = Some(Attributes::from([(UAC.to_owned(), vec![uac_value(locked)])]));
    }
    Ok(p)
}

/// The lock from the `userAccountControl` read when the user was found: one modify, no read
/// first. `None` when there is nothing seen to start from, when what was seen shows the
/// account disabled already (only a read confirms that), or when the value changed since
/// (the swap refused): the caller then reads and decides. With the lock comes what the entry
/// holds after it as far as the reset needs (the locked `userAccountControl`, the
/// `pwdLastSet` seen), when the find read both.
pub(super) async fn lock_from_seen(
    dir: &Directory,
    user: &User,
) -> Result<Option<(Change, Option<Seen>)>, Error> {
    let Some(seen) = user.seen(&[UAC]) else {
        return Ok(None);
    };
    let p = plan_lock_from(user, seen)?;
    if p.mods.is_empty() {
        return Ok(None);
    }
    let after_lock = user.seen(FOUND).zip(p.after.as_ref()).map(|(found, locked)| {
        let mut a = found.clone();
        for (k, v) in locked.clone() {
            a.insert(k, v);
        }
        Seen::of(FOUND, &a)
    });
    match dir.execute(user, p).await {
        Err(e) if e.ldap().is_some_and(|l| UAC_CONFLICT.contains(&l.rc)) => {
            tracing::debug!(dn = %user.dn, "userAccountControl changed since the user was found; reading it");
            Ok(None)
        }
        r => r.map(|c| Some((c, after_lock))),
    }
}

pub(super) async fn plan_unlock(dir: &Directory, user: &User) -> Result<Planned, Error> {
    plan_uac_clearing_lockout(dir, user, Action::Unlock, "unlock", |uac| {
        uac & !UF_ACCOUNTDISABLE
    })
    .await
}

pub(super) async fn plan_restore(
    dir: &Directory,
    user: &User,
    original: &Attributes,
) -> Result<Planned, Error> {
    let wanted = uac_of(original, user.dn.as_str()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            "restore_flags: the record has no userAccountControl",
        )
    })?;
    // only the bits containment owns go back; an administrator's other changes stay
    plan_uac_clearing_lockout(dir, user, Action::RestoreFlags, "restore_flags", |now| {
        (now & !OWNED_BITS) | (wanted & OWNED_BITS)
    })
    .await
}

/// Sets `userAccountControl` to `wanted(current)` when it differs, and `lockoutTime: 0` when
/// the account is locked out: what both unlock and restore_flags do.
async fn plan_uac_clearing_lockout(
    dir: &Directory,
    user: &User,
    action: Action,
    what: &str,
    wanted: impl FnOnce(u32) -> u32,
) -> Result<Planned, Error> {
    const SHOWN: &[&str] = &[UAC, LOCKOUT_TIME];
    let attrs = dir.read_entry(&user.dn, SHOWN).await?;
    let uac = uac_of(&attrs, user.dn.as_str())?;
    let target = wanted(uac);
    let mut p = Planned::of_user(action, user, what, only(&attrs, SHOWN), SHOWN);
    if uac != target {
        p.mods.extend(swap_uac(uac, target));
        p.conflict = UAC_CONFLICT;
    }
    if first(&attrs, LOCKOUT_TIME).is_some_and(|t| t != "0") {
        p.mods.push(replace(LOCKOUT_TIME, "0"));
    }
    Ok(p)
}

/// Writes the must-change part: `pwdLastSet: 0`, and `DONT_EXPIRE_PASSWD` cleared.
fn must_change_mods(uac: u32) -> Vec<Mod<Vec<u8>>> {
    let mut mods = vec![replace(PWD_LAST_SET, "0")];
    if uac & UF_DONT_EXPIRE_PASSWD != 0 {
        mods.extend(swap_uac(uac, uac & !UF_DONT_EXPIRE_PASSWD));
    }
    mods
}

/// The reset, in one modify: `unicodePwd` replaced and, forcing a change, `pwdLastSet: 0` in
/// the SAME modify (Samba otherwise keeps the old password valid for an hour).
pub(super) async fn plan_reset(
    dir: &Directory,
    user: &User,
    new: &Password,
    force_change: bool,
) -> Result<Planned, Error> {
    let attrs = dir.read_entry(&user.dn, FOUND).await?;
    plan_reset_from(user, &attrs, new, force_change)
}

/// The reset decided from `attrs` (`userAccountControl`, `pwdLastSet`). With a forced change
/// the entry after it is known without reading it back: `pwdLastSet: 0`, and the
/// `userAccountControl` the modify leaves (`DONT_EXPIRE_PASSWD` cleared by its swap).
fn plan_reset_from(
    user: &User,
    attrs: &Attributes,
    new: &Password,
    force_change: bool,
) -> Result<Planned, Error> {
    let uac = uac_of(attrs, user.dn.as_str())?;
    let mut p = Planned::of_user(
        Action::ResetPassword,
        user,
        "reset_password (unicodePwd)",
        only(attrs, FOUND),
        FOUND,
    );
    p.mods = reset_mods(uac, new, force_change);
    p.conflict = UAC_CONFLICT;
    if force_change {
        p.after = Some(Attributes::from([
            (UAC.to_owned(), vec![uac_value(uac & !UF_DONT_EXPIRE_PASSWD)]),
            (PWD_LAST_SET.to_owned(), vec!["0".to_owned()]),
        ]));
    }
    Ok(p)
}

/// Resets in one modify: from what the lock right before left (in `contain`), else from a
/// read; when the `userAccountControl` changed since (the swap refused), read and decide again.
pub(super) async fn reset_password(
    dir: &Directory,
    user: &User,
    new: &Password,
    force_change: bool,
) -> Result<crate::directory::Change, Error> {
    if let Some(seen) = user.seen(FOUND) {
        let p = plan_reset_from(user, seen, new, force_change)?;
        match dir.execute(user, p).await {
            Err(e) if e.ldap().is_some_and(|l| UAC_CONFLICT.contains(&l.rc)) => {
                tracing::debug!(dn = %user.dn, "userAccountControl changed since the lock; reading it");
            }
            r => return r,
        }
    }
    dir.send_deciding_again(user, || plan_reset(dir, user, new, force_change))
        .await
}

fn reset_mods(uac: u32, new: &Password, force_change: bool) -> Vec<Mod<Vec<u8>>> {
    let value = unicode_pwd(new);
    let mut mods = vec![Mod::Replace(
        b"unicodePwd".to_vec(),
        HashSet::from([value.to_vec()]),
    )];
    if force_change {
        mods.extend(must_change_mods(uac));
    }
    mods
}

/// The reset as `contain` sends it — after its lock, so with `ACCOUNTDISABLE` set — built by
/// the same [`reset_mods`] with a placeholder password (never shown).
pub(super) async fn describe_reset(
    dir: &Directory,
    user: &User,
    force_change: bool,
) -> Result<Vec<String>, Error> {
    let attrs = dir.read_entry(&user.dn, &[UAC]).await?;
    let locked = uac_of(&attrs, user.dn.as_str())? | UF_ACCOUNTDISABLE;
    let mut p = Planned::of_user(
        Action::ResetPassword,
        user,
        "reset_password",
        Attributes::new(),
        &[],
    );
    p.mods = reset_mods(locked, &Password::new("<placeholder>"), force_change);
    Ok(p.describe())
}

pub(super) async fn plan_force_change(dir: &Directory, user: &User) -> Result<Planned, Error> {
    const SHOWN: &[&str] = &[UAC, PWD_LAST_SET];
    let attrs = dir.read_entry(&user.dn, SHOWN).await?;
    let uac = uac_of(&attrs, user.dn.as_str())?;
    let mut p = Planned::of_user(
        Action::ForceChange,
        user,
        "force_change (pwdLastSet: 0)",
        only(&attrs, SHOWN),
        SHOWN,
    );
    if !(first(&attrs, PWD_LAST_SET) == Some("0") && uac & UF_DONT_EXPIRE_PASSWD == 0) {
        p.mods = must_change_mods(uac);
        p.conflict = UAC_CONFLICT;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_pwd_is_quoted_utf16le_including_non_ascii_and_emoji() {
        assert_eq!(
            &*unicode_pwd(&Password::new("ab")),
            &[0x22, 0, b'a', 0, b'b', 0, 0x22, 0]
        );
        let v = unicode_pwd(&Password::new("é€🔒"));
        // é U+00E9, € U+20AC, 🔒 U+1F512 = surrogates D83D DD12
        assert_eq!(
            &*v,
            &[0x22, 0, 0xe9, 0x00, 0xac, 0x20, 0x3d, 0xd8, 0x12, 0xdd, 0x22, 0]
        );
    }

    #[test]
    fn filetimes_convert_and_zero_means_never() {
        assert_eq!(filetime_to_unix("116444736000000000"), Some(0));
        assert_eq!(filetime_to_unix("133000000000000000"), Some(1_655_526_400));
        assert_eq!(filetime_to_unix("0"), None);
        assert_eq!(filetime_to_unix("9223372036854775807"), None);
        assert_eq!(filetime_to_unix("junk"), None);
    }

    #[test]
    fn must_change_clears_dont_expire_only_when_set_as_a_swap_of_the_value_read() {
        assert_eq!(must_change_mods(512).len(), 1);
        let mods = must_change_mods(66048);
        assert_eq!(mods.len(), 3);
        match (&mods[1], &mods[2]) {
            (Mod::Delete(a, old), Mod::Add(b, new)) => {
                assert_eq!(
                    (a.as_slice(), b.as_slice()),
                    (&b"userAccountControl"[..], &b"userAccountControl"[..])
                );
                assert!(old.contains(b"66048".as_slice()) && new.contains(b"512".as_slice()));
            }
            _ => panic!("delete old + add new expected"),
        }
    }
}
