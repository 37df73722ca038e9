//! Active Directory (and Samba AD) primitives. Behaviour pinned by the lab tests in
//! `core/tests/lab/ad.rs`; the facts behind each rule are in `shared/design/FACTS.md`.
//!
//! - Reset = *replace* `unicodePwd` with the password in double quotes, UTF-16LE, over TLS.
//! - Force change = `pwdLastSet: 0` **in the same modify** as the reset (otherwise Samba keeps
//!   the old password valid for 60 minutes), with `DONT_EXPIRE_PASSWD` cleared (it silently
//!   defeats must-change); the original `userAccountControl` is in the [`Change`].
//! - Lock = set `ACCOUNTDISABLE` keeping every other bit. Unlock clears it and `lockoutTime`.

use std::collections::HashSet;

use ldap3::Mod;
use zeroize::Zeroizing;

use super::{first, only, unchanged, AccountState, Action, Attributes, Directory, Flavour, LockState, User};
use crate::directory::Change;
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

const UAC: &str = "userAccountControl";
const COMPUTED: &str = "msDS-User-Account-Control-Computed";
const PWD_LAST_SET: &str = "pwdLastSet";
const LOCKOUT_TIME: &str = "lockoutTime";

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

pub(super) async fn lock(dir: &Directory, user: &User) -> Result<Change, Error> {
    let attrs = dir.read_entry(&user.dn, &[UAC]).await?;
    let uac = uac_of(&attrs, user.dn.as_str())?;
    let before = only(&attrs, &[UAC]);
    if uac & UF_ACCOUNTDISABLE != 0 {
        return Ok(unchanged(Action::Lock, user, before));
    }
    let mods = vec![replace(UAC, &uac_value(uac | UF_ACCOUNTDISABLE))];
    dir.apply(
        Action::Lock,
        user,
        "lock (set ACCOUNTDISABLE)",
        mods,
        &[UAC],
        before,
    )
    .await
}

pub(super) async fn unlock(dir: &Directory, user: &User) -> Result<Change, Error> {
    set_uac_clearing_lockout(dir, user, Action::Unlock, "unlock", |uac| {
        uac & !UF_ACCOUNTDISABLE
    })
    .await
}

pub(super) async fn restore_flags(
    dir: &Directory,
    user: &User,
    original: &Attributes,
) -> Result<Change, Error> {
    let wanted = uac_of(original, user.dn.as_str()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            "restore_flags: the record has no userAccountControl",
        )
    })?;
    set_uac_clearing_lockout(dir, user, Action::RestoreFlags, "restore_flags", |_| wanted).await
}

/// Sets `userAccountControl` to `wanted(current)` when it differs, and `lockoutTime: 0` when
/// the account is locked out: what both unlock and restore_flags do.
async fn set_uac_clearing_lockout(
    dir: &Directory,
    user: &User,
    action: Action,
    what: &str,
    wanted: impl FnOnce(u32) -> u32,
) -> Result<Change, Error> {
    const SHOWN: &[&str] = &[UAC, LOCKOUT_TIME];
    let attrs = dir.read_entry(&user.dn, SHOWN).await?;
    let uac = uac_of(&attrs, user.dn.as_str())?;
    let before = only(&attrs, SHOWN);
    let target = wanted(uac);
    let mut mods = Vec::new();
    if uac != target {
        mods.push(replace(UAC, &uac_value(target)));
    }
    if first(&attrs, LOCKOUT_TIME).is_some_and(|t| t != "0") {
        mods.push(replace(LOCKOUT_TIME, "0"));
    }
    if mods.is_empty() {
        return Ok(unchanged(action, user, before));
    }
    dir.apply(action, user, what, mods, SHOWN, before).await
}

/// Writes the must-change part: `pwdLastSet: 0`, and `DONT_EXPIRE_PASSWD` cleared.
fn must_change_mods(uac: u32) -> Vec<Mod<Vec<u8>>> {
    let mut mods = vec![replace(PWD_LAST_SET, "0")];
    if uac & UF_DONT_EXPIRE_PASSWD != 0 {
        mods.push(replace(UAC, &uac_value(uac & !UF_DONT_EXPIRE_PASSWD)));
    }
    mods
}

pub(super) async fn reset_password(
    dir: &Directory,
    user: &User,
    new: &Password,
    force_change: bool,
) -> Result<Change, Error> {
    const SHOWN: &[&str] = &[UAC, PWD_LAST_SET];
    let attrs = dir.read_entry(&user.dn, SHOWN).await?;
    let uac = uac_of(&attrs, user.dn.as_str())?;
    let value = unicode_pwd(new);
    let mut mods = vec![Mod::Replace(
        b"unicodePwd".to_vec(),
        HashSet::from([value.to_vec()]),
    )];
    if force_change {
        // In the SAME modify: Samba otherwise keeps the old password valid for an hour.
        mods.extend(must_change_mods(uac));
    }
    let before = only(&attrs, SHOWN);
    dir.apply(
        Action::ResetPassword,
        user,
        "reset_password (unicodePwd)",
        mods,
        SHOWN,
        before,
    )
    .await
}

pub(super) async fn force_change(dir: &Directory, user: &User) -> Result<Change, Error> {
    const SHOWN: &[&str] = &[UAC, PWD_LAST_SET];
    let attrs = dir.read_entry(&user.dn, SHOWN).await?;
    let uac = uac_of(&attrs, user.dn.as_str())?;
    let before = only(&attrs, SHOWN);
    if first(&attrs, PWD_LAST_SET) == Some("0") && uac & UF_DONT_EXPIRE_PASSWD == 0 {
        return Ok(unchanged(Action::ForceChange, user, before));
    }
    let what = "force_change (pwdLastSet: 0)";
    dir.apply(
        Action::ForceChange,
        user,
        what,
        must_change_mods(uac),
        SHOWN,
        before,
    )
    .await
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
    fn must_change_clears_dont_expire_only_when_set() {
        assert_eq!(must_change_mods(512).len(), 1);
        let mods = must_change_mods(66048);
        assert_eq!(mods.len(), 2);
        match &mods[1] {
            Mod::Replace(a, v) => {
                assert_eq!(a, b"userAccountControl");
                assert!(v.contains(b"512".as_slice()));
            }
            _ => panic!("replace expected"),
        }
    }
}
