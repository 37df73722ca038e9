//! LDAP plumbing shared by the flavours: operations with the timeout set, read-backs, error
//! mapping, transport checks and bind outcomes. Nothing here knows a flavour's rules.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Mod, Scope, SearchEntry};

use super::{
    ppolicy, Action, Attributes, BindOutcome, Change, ChangeOutcome, Directory, DirectoryConfig, Dn,
    Transport, User,
};
use crate::error::{Error, ErrorKind};

impl Directory {
    /// A handle on the shared connection, with the operation timeout set.
    pub(crate) fn handle(&self) -> Ldap {
        // one handle per operation: every operation passes here
        self.operations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut l = self.ldap.clone();
        l.with_timeout(self.cfg.operation_timeout());
        l
    }

    /// Searches; entries only (references skipped). A missing base (32) is an empty result.
    pub(crate) async fn search_raw(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, Error> {
        let started = std::time::Instant::now();
        let result = self
            .handle()
            .search(base, scope, filter, attrs.to_vec())
            .await
            .map_err(|e| ldap_error("search", e))?;
        tracing::trace!(
            base,
            filter,
            attrs = attrs.join(","),
            rc = result.1.rc,
            entries = result.0.len(),
            ms = started.elapsed().as_millis() as u64,
            "ldap search"
        );
        match result.1.rc {
            0 => {}
            32 => return Ok(Vec::new()),
            _ => return Err(refused(&format!("search under {base:?}"), result.1)),
        }
        let mut out = Vec::with_capacity(result.0.len());
        for re in result.0 {
            if re.is_ref() || re.is_intermediate() {
                continue;
            }
            // ldap3 panics on a malformed entry; keep a server's bad answer from crashing us.
            match std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(re))) {
                Ok(e) => out.push(e),
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::UnexpectedResponse,
                        format!("malformed search entry from the server under {base:?}"),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// Reads the given attributes of one entry (text values; binary ones are skipped).
    pub(crate) async fn read_entry(&self, dn: &Dn, attrs: &[&str]) -> Result<Attributes, Error> {
        let entry = self
            .search_raw(dn.as_str(), Scope::Base, "(objectClass=*)", attrs)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorKind::UserNotFound, format!("entry {dn} vanished")))?;
        let wanted: Vec<String> = attrs.iter().map(|a| a.to_ascii_lowercase()).collect();
        let mut out = Attributes::new();
        for (k, v) in entry.attrs {
            // keep the caller's spelling of the attribute name
            if let Some(i) = wanted.iter().position(|w| w.eq_ignore_ascii_case(&k)) {
                out.insert(attrs[i].to_owned(), v);
            }
        }
        Ok(out)
    }

    /// Sends a modify; returns the raw result (the caller decides which codes are fine).
    pub(crate) async fn modify_raw(&self, dn: &Dn, mods: Vec<Mod<Vec<u8>>>) -> Result<LdapResult, Error> {
        self.send_modify(dn, mods, None, None).await
    }

    /// A modify, with the Post-Read control for `post_read` when given, and a *critical*
    /// Pre-Read control for `pre_read` (the server refuses the modify rather than apply it
    /// without saying what it replaced); logged by attribute names only (values can be a
    /// password, or its hash).
    async fn send_modify(
        &self,
        dn: &Dn,
        mods: Vec<Mod<Vec<u8>>>,
        pre_read: Option<&[&str]>,
        post_read: Option<&[&str]>,
    ) -> Result<LdapResult, Error> {
        let names: Vec<String> = mods.iter().map(mod_name).collect();
        let started = std::time::Instant::now();
        let mut l = self.handle();
        let mut controls = Vec::new();
        if let Some(attrs) = pre_read {
            let mut c = ldap3::controls::PreRead::new(attrs.to_vec());
            c.crit = true;
            controls.push(c);
        }
        if let Some(attrs) = post_read {
            controls.push(ldap3::controls::PostRead::new(attrs.to_vec()));
        }
        if !controls.is_empty() {
            l.with_controls(controls);
        }
        let res = l
            .modify(dn.as_str(), mods)
            .await
            .map_err(|e| ldap_error("modify", e))?;
        tracing::debug!(
            dn = %dn,
            attributes = %names.join(" "),
            rc = res.rc,
            pre_read = pre_read.is_some(),
            post_read = post_read.is_some(),
            ms = started.elapsed().as_millis() as u64,
            "ldap modify"
        );
        Ok(res)
    }

    /// Sends a modify with the RFC 4527 Post-Read control asking for `attrs`: the entry after
    /// the change comes back in the modify's own response, atomically, instead of a second
    /// read. `None` when the response carries no Post-Read value (a failed modify, or a
    /// server that ignored the non-critical control): the caller reads the entry then.
    pub(crate) async fn modify_reading_after(
        &self,
        dn: &Dn,
        mods: Vec<Mod<Vec<u8>>>,
        attrs: &[&str],
    ) -> Result<(LdapResult, Option<Attributes>), Error> {
        let res = self.send_modify(dn, mods, None, Some(attrs)).await?;
        let after = read_entry_control(&res, POST_READ_OID, attrs);
        Ok((res, after))
    }

    /// Sends a modify with the RFC 4527 Pre-Read control (critical) asking for `before` and
    /// the Post-Read control asking for `after`: the entry before and after the change, in
    /// the modify's own response, atomically. The before is `None` only when the server
    /// applied the modify and still sent no readable Pre-Read value (the caller says so); the
    /// after as in [`Self::modify_reading_after`].
    pub(crate) async fn modify_reading_both(
        &self,
        dn: &Dn,
        mods: Vec<Mod<Vec<u8>>>,
        before: &[&str],
        after: &[&str],
    ) -> Result<(LdapResult, Option<Attributes>, Option<Attributes>), Error> {
        let res = self.send_modify(dn, mods, Some(before), Some(after)).await?;
        let read_before = read_entry_control(&res, PRE_READ_OID, before);
        let read_after = read_entry_control(&res, POST_READ_OID, after);
        Ok((res, read_before, read_after))
    }

    /// Sends a modify and requires success.
    pub(crate) async fn modify(&self, what: &str, dn: &Dn, mods: Vec<Mod<Vec<u8>>>) -> Result<(), Error> {
        let res = self.modify_raw(dn, mods).await?;
        if res.rc != 0 {
            return Err(refused(what, res));
        }
        Ok(())
    }

    pub(crate) fn has_ppolicy(&self) -> bool {
        self.ppolicy
    }

    /// Whether the server announced the RFC 4527 Post-Read control.
    pub(crate) fn has_post_read(&self) -> bool {
        self.post_read
    }
}

/// The entry a Pre-Read or Post-Read control (`oid`) of `res` carries, keeping the caller's
/// spelling of `attrs`; `None` when there is none or it is malformed (ldap3 panics on a
/// malformed value: caught).
fn read_entry_control(res: &LdapResult, oid: &str, attrs: &[&str]) -> Option<Attributes> {
    let c = res.ctrls.iter().find(|c| c.1.ctype == oid && c.1.val.is_some())?;
    let resp =
        std::panic::catch_unwind(AssertUnwindSafe(|| c.1.parse::<ldap3::controls::ReadEntryResp>())).ok()?;
    let mut out = Attributes::new();
    for (k, v) in resp.attrs {
        if let Some(a) = attrs.iter().find(|a| a.eq_ignore_ascii_case(&k)) {
            out.insert((*a).to_owned(), v);
        }
    }
    Some(out)
}

/// RFC 4527 Pre-Read (slapd 2.5 announces it; Samba 4.17 does not).
pub(super) const PRE_READ_OID: &str = "1.3.6.1.1.13.1";
/// RFC 4527 Post-Read (slapd 2.5 announces it; Samba 4.17 does not).
pub(super) const POST_READ_OID: &str = "1.3.6.1.1.13.2";

/// `replace:pwdAccountLockedTime`, for logs (never the values).
fn mod_name(m: &Mod<Vec<u8>>) -> String {
    let (op, a) = match m {
        Mod::Add(a, _) => ("add", a),
        Mod::Delete(a, _) => ("delete", a),
        Mod::Replace(a, _) => ("replace", a),
        Mod::Increment(a, _) => ("increment", a),
    };
    format!("{op}:{}", String::from_utf8_lossy(a))
}

/// The change for a primitive that found the account already in the wanted state.
pub(crate) fn unchanged(action: Action, user: &User, before: Attributes) -> Change {
    change(
        action,
        user,
        ChangeOutcome::AlreadyInPlace,
        before.clone(),
        before,
    )
}

pub(crate) fn change(
    action: Action,
    user: &User,
    outcome: ChangeOutcome,
    before: Attributes,
    after: Attributes,
) -> Change {
    Change {
        action,
        dn: user.dn.to_string(),
        outcome,
        before,
        after,
    }
}

/// The named attributes of `attrs`, each present (absent ones as empty lists), for
/// before/after snapshots that show a removal as `[]`.
pub(crate) fn only(attrs: &Attributes, names: &[&str]) -> Attributes {
    names
        .iter()
        .map(|n| ((*n).to_owned(), attrs.get(n).cloned().unwrap_or_default()))
        .collect()
}

/// The first value of `name`, if any.
pub(crate) fn first<'a>(attrs: &'a Attributes, name: &str) -> Option<&'a str> {
    attrs.get(name).and_then(|v| v.first()).map(String::as_str)
}

pub(super) fn transport_of(cfg: &DirectoryConfig) -> Transport {
    if cfg.url.is_ldaps() {
        Transport::Ldaps
    } else if cfg.starttls {
        Transport::StartTls
    } else {
        Transport::Plain
    }
}

pub(super) fn refuse_plaintext(cfg: &DirectoryConfig, transport: Transport, what: &str) -> Result<(), Error> {
    if transport == Transport::Plain && !cfg.allow_plaintext_passwords {
        return Err(Error::new(
            ErrorKind::InsecureTransport,
            format!(
                "{what} would send a password over unencrypted LDAP ({}); use ldaps:// or starttls = true, \
                 or set allow_plaintext_passwords = true to accept the risk",
                cfg.url
            ),
        ));
    }
    Ok(())
}

/// The TCP connection to the directory, with `TCP_NODELAY`: ldap3's own connection leaves
/// Nagle's algorithm on, and a bind or modify written in more than one segment then waits
/// for the server's delayed ACK (40 ms on Linux) — measured at about 36 ms of a 49 ms
/// connect and bind on the lab, per connection.
async fn tcp(cfg: &DirectoryConfig) -> Result<std::net::TcpStream, Error> {
    let (host, port) = cfg.url.host_port();
    let failed = |e: std::io::Error| {
        Error::new(ErrorKind::Connect, format!("connecting to {}: {e}", cfg.url)).with_source(e)
    };
    let stream = tokio::time::timeout(
        cfg.connect_timeout(),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| {
        Error::new(
            ErrorKind::Timeout,
            format!("connecting to {}: timed out", cfg.url),
        )
    })?
    .map_err(failed)?;
    stream.set_nodelay(true).map_err(failed)?;
    stream.into_std().map_err(failed)
}

pub(super) async fn open(
    cfg: &DirectoryConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Ldap, Error> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(cfg.connect_timeout())
        .set_starttls(cfg.starttls)
        .set_std_stream(ldap3::StdStream::Tcp(tcp(cfg).await?));
    if let Some(tls) = tls {
        settings = settings.set_config(tls);
    }
    let (conn, ldap) = LdapConnAsync::with_settings(settings, cfg.url.as_str())
        .await
        .map_err(|e| match e {
            // the only operation before the connection is made: StartTLS, refused
            LdapError::LdapResult { result } if cfg.starttls => Error::new(
                ErrorKind::Tls,
                format!("connecting to {}: the server refused StartTLS", cfg.url),
            )
            .with_ldap(result.rc, result.text, result.matched),
            e => ldap_error(&format!("connecting to {}", cfg.url), e),
        })?;
    ldap3::drive!(conn);
    Ok(ldap)
}

pub(crate) fn refused(what: &str, res: LdapResult) -> Error {
    Error::new(ErrorKind::Refused, format!("{what}: the server refused")).with_ldap(
        res.rc,
        res.text,
        res.matched,
    )
}

/// Maps an ldap3 error to ours, by what it means to the operator; the ldap3 error is kept as
/// the source.
pub(crate) fn ldap_error(what: &str, e: LdapError) -> Error {
    let (kind, message) = match &e {
        LdapError::Timeout { .. } => (ErrorKind::Timeout, format!("{what}: timed out")),
        LdapError::Rustls { source } => (ErrorKind::Tls, format!("{what}: TLS: {source}")),
        LdapError::LdapResult { result } => return refused(what, result.clone()),
        LdapError::Io { source } => {
            let tls = source
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
            let kind = if tls { ErrorKind::Tls } else { ErrorKind::Connect };
            (kind, format!("{what}: {source}"))
        }
        LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) => {
            (ErrorKind::Config, format!("{what}: {e}"))
        }
        LdapError::OpSend { .. } | LdapError::ResultRecv { .. } | LdapError::EndOfStream => {
            (ErrorKind::Connect, format!("{what}: connection lost ({e})"))
        }
        other => (ErrorKind::UnexpectedResponse, format!("{what}: {other}")),
    };
    Error::new(kind, message).with_source(e)
}

pub(super) fn bind_outcome(res: &LdapResult, policy: Option<ppolicy::PolicyResponse>) -> BindOutcome {
    use ppolicy::PolicyError as P;
    let perr = policy.and_then(|p| p.error);
    match (res.rc, perr) {
        (0, Some(P::ChangeAfterReset)) => BindOutcome::MustChange,
        (0, _) => BindOutcome::Success,
        (49, Some(P::AccountLocked)) => BindOutcome::Locked,
        (49, Some(P::PasswordExpired)) => BindOutcome::Expired,
        (49, _) => match ad_data_code(&res.text).as_deref() {
            Some("533") => BindOutcome::Disabled,
            Some("773") => BindOutcome::MustChange,
            Some("775") => BindOutcome::Locked,
            Some("701") | Some("532") => BindOutcome::Expired,
            _ => BindOutcome::InvalidCredentials,
        },
        (rc, _) => BindOutcome::Refused {
            rc,
            text: res.text.clone(),
        },
    }
}

/// Extracts the `data XXX` code from an AD bind diagnostic
/// (`80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1`).
pub(crate) fn ad_data_code(text: &str) -> Option<String> {
    let i = text.find(", data ")?;
    let rest = &text[i + 7..];
    let code: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    (!code.is_empty()).then(|| code.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(rc: u32, text: &str) -> LdapResult {
        LdapResult {
            rc,
            matched: String::new(),
            text: text.into(),
            refs: vec![],
            ctrls: vec![],
        }
    }

    #[test]
    fn ad_bind_diagnostics_map_to_typed_outcomes() {
        let t = |code: &str| {
            format!(
                "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data {code}, v1db1"
            )
        };
        assert_eq!(
            bind_outcome(&res(49, &t("52e")), None),
            BindOutcome::InvalidCredentials
        );
        assert_eq!(bind_outcome(&res(49, &t("533")), None), BindOutcome::Disabled);
        assert_eq!(bind_outcome(&res(49, &t("773")), None), BindOutcome::MustChange);
        assert_eq!(bind_outcome(&res(49, &t("775")), None), BindOutcome::Locked);
        assert_eq!(bind_outcome(&res(49, &t("701")), None), BindOutcome::Expired);
        assert_eq!(ad_data_code("no code here"), None);
    }

    #[test]
    fn ppolicy_controls_refine_bind_results() {
        use ppolicy::{PolicyError, PolicyResponse};
        let p = |e| {
            Some(PolicyResponse {
                error: Some(e),
                ..Default::default()
            })
        };
        assert_eq!(
            bind_outcome(&res(0, ""), p(PolicyError::ChangeAfterReset)),
            BindOutcome::MustChange
        );
        assert_eq!(bind_outcome(&res(0, ""), None), BindOutcome::Success);
        assert_eq!(
            bind_outcome(&res(49, ""), p(PolicyError::AccountLocked)),
            BindOutcome::Locked
        );
        assert_eq!(bind_outcome(&res(49, ""), None), BindOutcome::InvalidCredentials);
        assert_eq!(
            bind_outcome(&res(53, "unwilling"), None),
            BindOutcome::Refused {
                rc: 53,
                text: "unwilling".into()
            }
        );
    }
}
