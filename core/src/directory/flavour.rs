//! What differs between OpenLDAP and Active Directory, behind one trait, and the [`Planned`]
//! modification every primitive is built from: `contain` sends it, `plan` prints it — so a dry
//! run shows exactly what would be sent, by construction.

use std::future::Future;
use std::pin::Pin;

use ldap3::Mod;

use super::{
    change, unchanged, AccountState, Action, Attributes, Change, ChangeOutcome, Directory, Dn, User,
};
use crate::error::Error;
use crate::secret::Password;

/// A boxed future, so that the flavour rules can be a trait object.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One primitive's decision, made from the entry's current state: the modify it would send
/// (empty: already in place), what it reads back, and which result codes mean that a
/// concurrent run got there first.
pub(crate) struct Planned {
    /// The primitive.
    pub action: Action,
    /// The entry the modify goes to (the user, or the MFA group).
    pub target: Dn,
    /// For error messages: `lock (set ACCOUNTDISABLE)`.
    pub what: String,
    /// The relevant attributes now.
    pub before: Attributes,
    /// The modifications; empty when the account is already so.
    pub mods: Vec<Mod<Vec<u8>>>,
    /// Attributes read back from the user's entry after the modify.
    pub shown: &'static [&'static str],
    /// The after-snapshot when it is known without a read-back (group membership).
    pub after: Option<Attributes>,
    /// Result codes meaning "already so" (a concurrent change), besides 0.
    pub already: &'static [u32],
    /// Result codes meaning the entry changed since it was read (a lost race): decide again.
    pub conflict: &'static [u32],
    /// Checks the primitive made before deciding (e.g. the policy has `pwdLockout: TRUE`).
    pub checked: Vec<String>,
}

impl Planned {
    /// A modify of the user's own entry.
    pub fn of_user(
        action: Action,
        user: &User,
        what: &str,
        before: Attributes,
        shown: &'static [&'static str],
    ) -> Self {
        Self {
            action,
            target: user.dn.clone(),
            what: what.to_owned(),
            before,
            mods: Vec::new(),
            shown,
            after: None,
            already: &[],
            conflict: &[],
            checked: Vec::new(),
        }
    }

    /// The modifications in words, as `plan` prints them (password values never shown).
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self.checked.clone();
        if !self.mods.is_empty() {
            let parts: Vec<String> = self.mods.iter().map(describe_mod).collect();
            out.push(format!("modify {}: {}", self.target, parts.join("; ")));
        }
        out
    }
}

/// `replace pwdAccountLockedTime: 000001010000Z`; password attributes as `<new password>`.
pub(crate) fn describe_mod(m: &Mod<Vec<u8>>) -> String {
    let (op, attr, values) = match m {
        Mod::Add(a, v) => ("add", a, Some(v)),
        Mod::Delete(a, v) => ("delete", a, Some(v)),
        Mod::Replace(a, v) => ("replace", a, Some(v)),
        Mod::Increment(a, _) => ("increment", a, None),
    };
    let attr = String::from_utf8_lossy(attr);
    let secret = ["unicodepwd", "userpassword"].contains(&attr.to_ascii_lowercase().as_str());
    let shown: Vec<String> = match values {
        _ if secret => vec!["<new password, never shown>".to_owned()],
        Some(v) => {
            let mut s: Vec<String> = v
                .iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect();
            s.sort();
            s
        }
        None => Vec::new(),
    };
    if shown.is_empty() {
        format!("{op} {attr}")
    } else {
        format!("{op} {attr}: {}", shown.join(", "))
    }
}

/// Attempts at a modify that keeps losing a race (someone else changing the same attribute).
const ATTEMPTS: usize = 3;

impl Directory {
    /// Decides with `plan`, sends, and — when the entry changed in between (a result code of
    /// the plan's `conflict`) — reads and decides again, at most [`ATTEMPTS`] times.
    pub(crate) async fn send_deciding_again<'a, F, Fut>(&self, user: &User, plan: F) -> Result<Change, Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Planned, Error>> + 'a,
    {
        let mut attempt = 1;
        loop {
            let p = plan().await?;
            let conflict = p.conflict;
            match self.execute(user, p).await {
                Err(e) if attempt < ATTEMPTS && e.ldap().is_some_and(|l| conflict.contains(&l.rc)) => {
                    tracing::debug!(dn = %user.dn, rc = e.ldap().map(|l| l.rc), attempt, "modify lost a race; deciding again");
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    /// Sends what `p` decided (nothing when already in place) and returns the change.
    pub(crate) async fn execute(&self, user: &User, p: Planned) -> Result<Change, Error> {
        if p.mods.is_empty() {
            return Ok(unchanged(p.action, user, p.before));
        }
        // The entry after the change from the modify's own response where the server can
        // (one operation instead of two), else read back.
        let post_read =
            p.after.is_none() && p.target == user.dn && !p.shown.is_empty() && self.has_post_read();
        let (res, read_after) = if post_read {
            self.modify_reading_after(&p.target, p.mods, p.shown).await?
        } else {
            (self.modify_raw(&p.target, p.mods).await?, None)
        };
        let outcome = match res.rc {
            0 => ChangeOutcome::Applied,
            rc if p.already.contains(&rc) => ChangeOutcome::AlreadyInPlace,
            _ => return Err(super::refused(&p.what, res)),
        };
        let after = match (p.after, read_after) {
            (Some(a), _) => a,
            (None, Some(a)) => super::only(&a, p.shown),
            (None, None) => super::only(&self.read_entry(&user.dn, p.shown).await?, p.shown),
        };
        Ok(change(p.action, user, outcome, p.before, after))
    }
}

/// A flag primitive to decide.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wanted<'a> {
    /// Block new logins.
    Lock,
    /// Allow logins again.
    Unlock,
    /// Require a change at next logon.
    ForceChange,
    /// Put back the lock flags recorded before containment.
    Restore(&'a Attributes),
}

/// The rules of one directory flavour. `plan` reads the entry and decides, sending nothing;
/// [`Directory::execute`] sends the decision.
pub(crate) trait Rules: Send + Sync {
    /// Lock state, must-change and the raw attributes they come from.
    fn account_state<'a>(
        &'a self,
        dir: &'a Directory,
        user: &'a User,
    ) -> BoxFuture<'a, Result<AccountState, Error>>;
    /// Decides a flag primitive (lock, unlock, force change, restore).
    fn plan<'a>(
        &'a self,
        dir: &'a Directory,
        user: &'a User,
        wanted: Wanted<'a>,
    ) -> BoxFuture<'a, Result<Planned, Error>>;
    /// Set a new password (with a forced change).
    fn reset_password<'a>(
        &'a self,
        dir: &'a Directory,
        user: &'a User,
        new: &'a Password,
        force_change: bool,
    ) -> BoxFuture<'a, Result<Change, Error>>;
    /// What [`reset_password`](Self::reset_password) sends in `contain` — after its lock —
    /// built by the same code with a placeholder password (shown as `<new password, never
    /// shown>`).
    fn describe_reset<'a>(
        &'a self,
        dir: &'a Directory,
        user: &'a User,
        force_change: bool,
    ) -> BoxFuture<'a, Result<Vec<String>, Error>>;
    /// The matching rule that follows nested group membership in one search, if any (AD's
    /// LDAP_MATCHING_RULE_IN_CHAIN).
    fn in_chain_rule(&self) -> Option<&'static str>;
    /// Attributes a user name is looked up in, by default.
    fn lookup_attributes(&self) -> &'static [&'static str];
    /// The attribute services know the user by, by default.
    fn login_attribute(&self) -> &'static str;
    /// The search filter for users matching `any` (an OR of escaped assertions).
    fn user_filter(&self, any: &str) -> String;
}

/// OpenLDAP with the ppolicy overlay.
pub(crate) struct OpenLdapRules;
/// Active Directory or a Samba AD DC.
pub(crate) struct AdRules;

/// The flavour-module functions every [`Rules`] implementation delegates to, by name.
macro_rules! delegate_to {
    ($m:ident) => {
        fn account_state<'a>(
            &'a self,
            dir: &'a Directory,
            user: &'a User,
        ) -> BoxFuture<'a, Result<AccountState, Error>> {
            Box::pin(super::$m::account_state(dir, user))
        }
        fn plan<'a>(
            &'a self,
            dir: &'a Directory,
            user: &'a User,
            wanted: Wanted<'a>,
        ) -> BoxFuture<'a, Result<Planned, Error>> {
            Box::pin(async move {
                match wanted {
                    Wanted::Lock => super::$m::plan_lock(dir, user).await,
                    Wanted::Unlock => super::$m::plan_unlock(dir, user).await,
                    Wanted::ForceChange => super::$m::plan_force_change(dir, user).await,
                    Wanted::Restore(original) => super::$m::plan_restore(dir, user, original).await,
                }
            })
        }
        fn reset_password<'a>(
            &'a self,
            dir: &'a Directory,
            user: &'a User,
            new: &'a Password,
            force_change: bool,
        ) -> BoxFuture<'a, Result<Change, Error>> {
            Box::pin(super::$m::reset_password(dir, user, new, force_change))
        }
        fn describe_reset<'a>(
            &'a self,
            dir: &'a Directory,
            user: &'a User,
            force_change: bool,
        ) -> BoxFuture<'a, Result<Vec<String>, Error>> {
            Box::pin(super::$m::describe_reset(dir, user, force_change))
        }
    };
}

impl Rules for OpenLdapRules {
    delegate_to!(openldap);
    fn in_chain_rule(&self) -> Option<&'static str> {
        None
    }
    fn lookup_attributes(&self) -> &'static [&'static str] {
        &["uid", "mail"]
    }
    fn login_attribute(&self) -> &'static str {
        "uid"
    }
    fn user_filter(&self, any: &str) -> String {
        format!("(|{any})")
    }
}

impl Rules for AdRules {
    delegate_to!(ad);
    fn in_chain_rule(&self) -> Option<&'static str> {
        Some("1.2.840.113556.1.4.1941")
    }
    fn lookup_attributes(&self) -> &'static [&'static str] {
        &["sAMAccountName", "userPrincipalName", "mail"]
    }
    fn login_attribute(&self) -> &'static str {
        "sAMAccountName"
    }
    fn user_filter(&self, any: &str) -> String {
        // groups and computers have a sAMAccountName too
        format!("(&(objectCategory=person)(objectClass=user)(|{any}))")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn password_values_are_never_described() {
        for attr in ["unicodePwd", "userPassword", "USERPASSWORD"] {
            let m = Mod::Replace(
                attr.as_bytes().to_vec(),
                HashSet::from([b"hunter2-secret".to_vec()]),
            );
            let text = describe_mod(&m);
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("never shown"), "{text}");
        }
        let m = Mod::Add(b"member".to_vec(), HashSet::from([b"uid=a,dc=x".to_vec()]));
        assert_eq!(describe_mod(&m), "add member: uid=a,dc=x");
        let m: Mod<Vec<u8>> = Mod::Delete(b"pwdReset".to_vec(), HashSet::new());
        assert_eq!(describe_mod(&m), "delete pwdReset");
    }
}
