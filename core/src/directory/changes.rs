//! What changed on an account since a given time: the attributes an attacker holding the
//! password may have changed to keep a way back in (a recovery phone number, an SSH key, a
//! forwarding address, an AD key credential), with when, and where the server says by whom and
//! on which server.
//!
//! - **OpenLDAP**: from `slapo-accesslog` (`[directory] accesslog_base`, e.g. `cn=accesslog`):
//!   every successful modify of the entry since the time (`reqMod`, `reqOld`: new and old
//!   values; `reqAuthzID`: who), and the group memberships given or taken (`member`,
//!   `uniqueMember` modifies naming the entry).
//! - **Active Directory**: from the entry's `replPropertyMetaData` (per attribute: last
//!   originating change time, version, originating DC — read over LDAP, since Samba does not
//!   serve the `msDS-ReplAttributeMetaData` text form); the current values of the watched
//!   attributes stand for "new". AD does not record who made a change, nor old values; group
//!   memberships are linked values kept on the groups, not read here.
//!
//! Values of secret attributes (`userPassword`, `unicodePwd`, password histories…) are never
//! returned: such a change is listed with `redacted`.

use serde::{Deserialize, Serialize};

use super::{Directory, Dn, Flavour, User};
use crate::error::{Error, ErrorKind};

/// The attributes watched by default: each is a way back in for an attacker.
pub const WATCHED_ATTRIBUTES: [&str; 11] = [
    "mail",
    "mobile",
    "telephoneNumber",
    "sshPublicKey",
    "altSecurityIdentities",
    "msDS-KeyCredentialLink",
    "servicePrincipalName",
    "scriptPath",
    "userCertificate",
    "member",
    "memberOf",
];

/// Attributes whose values are never shown.
const SECRET_ATTRIBUTES: [&str; 10] = [
    "userPassword",
    "authPassword",
    "pwdHistory",
    "unicodePwd",
    "dBCSPwd",
    "ntPwdHistory",
    "lmPwdHistory",
    "supplementalCredentials",
    "sambaNTPassword",
    "sambaLMPassword",
];

/// One change of one attribute of the entry (or of its membership in a group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttributeChange {
    /// The attribute (for a membership: `member` of `group`).
    pub attribute: String,
    /// When (RFC 3339 UTC).
    pub time: String,
    /// Who made it, where the server records it (OpenLDAP: the bound DN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// On which server it originated, where the server records it (AD: the originating DC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `add`, `delete`, `replace` (OpenLDAP); AD says only that it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Values before (OpenLDAP, with `reqOld`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old: Vec<String>,
    /// Values written (OpenLDAP), or the current values (AD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new: Vec<String>,
    /// The attribute's replication version (AD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The group, for a membership change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A watched attribute: a way back in for an attacker.
    pub flagged: bool,
    /// A secret attribute: its values are withheld.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

impl AttributeChange {
    fn new(attribute: &str, time: String, watched: &[String]) -> Self {
        let redacted = SECRET_ATTRIBUTES
            .iter()
            .any(|s| s.eq_ignore_ascii_case(attribute));
        Self {
            attribute: attribute.to_owned(),
            time,
            by: None,
            server: None,
            operation: None,
            old: Vec::new(),
            new: Vec::new(),
            version: None,
            group: None,
            flagged: watched.iter().any(|w| w.eq_ignore_ascii_case(attribute)),
            redacted,
        }
    }

    fn push_new(&mut self, v: String) {
        if !self.redacted {
            self.new.push(v);
        }
    }

    fn push_old(&mut self, v: String) {
        if !self.redacted {
            self.old.push(v);
        }
    }
}

/// `YYYYMMDDHHMMSSZ` for an LDAP GeneralizedTime filter.
fn generalized(unix: i64) -> String {
    crate::time::rfc3339(u64::try_from(unix).unwrap_or(0)).replace(['-', ':', 'T'], "")
}

/// `20261202044641.123456Z` → RFC 3339 (whole seconds).
pub(crate) fn from_generalized(t: &str) -> Option<String> {
    let d = t.get(..14)?;
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[..4],
        &d[4..6],
        &d[6..8],
        &d[8..10],
        &d[10..12],
        &d[12..14]
    ))
}

impl Directory {
    /// The entry's changes since `since_unix` (Unix seconds), oldest first. See the module
    /// documentation for what each flavour can tell.
    pub async fn changes_since(&self, user: &User, since_unix: i64) -> Result<Vec<AttributeChange>, Error> {
        let watched: Vec<String> = self
            .config()
            .watched_attributes
            .clone()
            .unwrap_or_else(|| WATCHED_ATTRIBUTES.iter().map(|s| (*s).to_owned()).collect());
        let mut out = match self.flavour() {
            Flavour::OpenLdap => self.accesslog_changes(user, since_unix, &watched).await?,
            Flavour::ActiveDirectory => self.metadata_changes(user, since_unix, &watched).await?,
        };
        out.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.attribute.cmp(&b.attribute)));
        Ok(out)
    }

    async fn accesslog_changes(
        &self,
        user: &User,
        since: i64,
        watched: &[String],
    ) -> Result<Vec<AttributeChange>, Error> {
        let base = self.config().accesslog_base.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "set [directory] accesslog_base (the slapo-accesslog database, e.g. cn=accesslog) to read what changed",
            )
        })?;
        let dn = user.dn.filter_escaped();
        let ts = generalized(since);
        let attrs = ["reqStart", "reqAuthzID", "reqMod", "reqOld", "reqDN"];
        let own = format!("(&(objectClass=auditModify)(reqStart>={ts})(reqDN={dn}))");
        let groups = format!(
            "(&(objectClass=auditModify)(reqStart>={ts})(|(reqMod=member:+ {dn})(reqMod=member:- {dn})\
             (reqMod=uniqueMember:+ {dn})(reqMod=uniqueMember:- {dn})))"
        );
        let mut out = Vec::new();
        for (filter, membership) in [(own, false), (groups, true)] {
            let entries = self
                .search_raw(base.as_str(), ldap3::Scope::OneLevel, &filter, &attrs)
                .await?;
            for e in entries {
                let first = |k: &str| e.attrs.get(k).and_then(|v| v.first()).cloned();
                let Some(time) = first("reqStart").as_deref().and_then(from_generalized) else {
                    continue;
                };
                let by = first("reqAuthzID").map(|b| b.trim_start_matches("dn:").to_owned());
                let target = first("reqDN").unwrap_or_default();
                let mut changes: Vec<AttributeChange> = Vec::new();
                for m in e.attrs.get("reqMod").into_iter().flatten() {
                    // "attr:op value" or "attr:op" (op: + add, - delete, = replace, # increment)
                    let Some((attr, rest)) = m.split_once(':') else {
                        continue;
                    };
                    let mut chars = rest.chars();
                    let op = match chars.next() {
                        Some('+') => "add",
                        Some('-') => "delete",
                        Some('=') => "replace",
                        Some('#') => "increment",
                        _ => continue,
                    };
                    let value = chars.as_str().strip_prefix(' ').map(str::to_owned);
                    if membership
                        && !value
                            .as_deref()
                            .and_then(|v| Dn::parse(v).ok())
                            .is_some_and(|d| d.same_entry(&user.dn))
                    {
                        continue;
                    }
                    if attr.eq_ignore_ascii_case("entryCSN")
                        || attr.eq_ignore_ascii_case("modifiersName")
                        || attr.eq_ignore_ascii_case("modifyTimestamp")
                    {
                        continue;
                    }
                    let c = match changes
                        .iter_mut()
                        .find(|c| c.attribute.eq_ignore_ascii_case(attr))
                    {
                        Some(c) => c,
                        None => {
                            let mut c = AttributeChange::new(attr, time.clone(), watched);
                            c.by = by.clone();
                            c.operation = Some(op.to_owned());
                            if membership {
                                c.group = Some(target.clone());
                                c.flagged = true;
                            }
                            changes.push(c);
                            changes
                                .last_mut()
                                .ok_or_else(|| Error::new(ErrorKind::Internal, "push"))?
                        }
                    };
                    if let Some(v) = value {
                        c.push_new(v);
                    }
                }
                if !membership {
                    for o in e.attrs.get("reqOld").into_iter().flatten() {
                        let Some((attr, v)) = o.split_once(": ") else {
                            continue;
                        };
                        if let Some(c) = changes
                            .iter_mut()
                            .find(|c| c.attribute.eq_ignore_ascii_case(attr))
                        {
                            c.push_old(v.to_owned());
                        }
                    }
                }
                out.extend(changes);
            }
        }
        Ok(out)
    }

    async fn metadata_changes(
        &self,
        user: &User,
        since: i64,
        watched: &[String],
    ) -> Result<Vec<AttributeChange>, Error> {
        let entry = self
            .search_raw(
                user.dn.as_str(),
                ldap3::Scope::Base,
                "(objectClass=*)",
                &["replPropertyMetaData"],
            )
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorKind::UserNotFound, format!("entry {} vanished", user.dn)))?;
        // binary, unless the bytes happen to be valid UTF-8 (then ldap3 files them as text)
        let text = entry
            .attrs
            .get("replPropertyMetaData")
            .and_then(|v| v.first())
            .map(|s| s.as_bytes().to_vec());
        let blob = entry
            .bin_attrs
            .get("replPropertyMetaData")
            .and_then(|v| v.first())
            .cloned()
            .or(text)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Refused,
                    "the service account cannot read replPropertyMetaData of the entry",
                )
            })?;
        let rows: Vec<MetaData> = parse_metadata(&blob)?
            .into_iter()
            .filter(|m| m.unix_time >= since)
            .collect();
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let root = self
            .search_raw(
                "",
                ldap3::Scope::Base,
                "(objectClass=*)",
                &["schemaNamingContext", "configurationNamingContext"],
            )
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorKind::UnexpectedResponse, "no rootDSE"))?;
        let ctx = |k: &str| {
            root.attrs
                .get(k)
                .and_then(|v| v.first())
                .cloned()
                .unwrap_or_default()
        };
        // attribute ids → names, through the schema
        let mut names: Vec<(u32, String)> = Vec::new();
        let oids: Vec<(u32, String)> = rows
            .iter()
            .filter_map(|m| attid_oid(m.attid).map(|o| (m.attid, o)))
            .collect();
        let mut clauses: Vec<String> = oids.iter().map(|(_, o)| format!("(attributeID={o})")).collect();
        clauses.extend(
            rows.iter()
                .filter(|m| m.attid >= 0x8000_0000)
                .map(|m| format!("(msDS-IntId={})", m.attid as i32)),
        );
        if !clauses.is_empty() {
            let filter = format!("(|{})", clauses.concat());
            for e in self
                .search_raw(
                    &ctx("schemaNamingContext"),
                    ldap3::Scope::OneLevel,
                    &filter,
                    &["lDAPDisplayName", "attributeID", "msDS-IntId"],
                )
                .await?
            {
                let get = |k: &str| e.attrs.get(k).and_then(|v| v.first()).cloned();
                let Some(name) = get("lDAPDisplayName") else {
                    continue;
                };
                if let Some(id) = get("msDS-IntId").and_then(|i| i.parse::<i32>().ok()) {
                    names.push((id as u32, name.clone()));
                }
                if let Some(oid) = get("attributeID") {
                    if let Some((attid, _)) = oids.iter().find(|(_, o)| *o == oid) {
                        names.push((*attid, name));
                    }
                }
            }
        }
        // originating DCs: invocation id → server name
        let mut servers: Vec<([u8; 16], String)> = Vec::new();
        for m in &rows {
            if servers.iter().any(|(id, _)| *id == m.invocation) {
                continue;
            }
            let escaped: String = m.invocation.iter().map(|b| format!("\\{b:02x}")).collect();
            let dsa = self
                .search_raw(
                    &ctx("configurationNamingContext"),
                    ldap3::Scope::Subtree,
                    &format!("(&(objectClass=nTDSDSA)(invocationId={escaped}))"),
                    &["objectClass"],
                )
                .await?;
            let name = dsa
                .first()
                .and_then(|e| e.dn.split(',').nth(1))
                .and_then(|rdn| rdn.split_once('='))
                .map(|(_, v)| v.to_owned())
                .unwrap_or_else(|| format!("invocation {}", hex::encode(m.invocation)));
            servers.push((m.invocation, name));
        }
        let shown: Vec<String> = names
            .iter()
            .map(|(_, n)| n.clone())
            .filter(|n| {
                watched.iter().any(|w| w.eq_ignore_ascii_case(n))
                    && !SECRET_ATTRIBUTES.iter().any(|s| s.eq_ignore_ascii_case(n))
            })
            .collect();
        let current = if shown.is_empty() {
            Default::default()
        } else {
            let attrs: Vec<&str> = shown.iter().map(String::as_str).collect();
            self.read_entry(&user.dn, &attrs).await?
        };
        Ok(rows
            .iter()
            .map(|m| {
                let name = names
                    .iter()
                    .find(|(id, _)| *id == m.attid)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_else(|| format!("attid 0x{:08x}", m.attid));
                let mut c = AttributeChange::new(
                    &name,
                    crate::time::rfc3339(u64::try_from(m.unix_time).unwrap_or(0)),
                    watched,
                );
                c.version = Some(m.version);
                c.server = servers
                    .iter()
                    .find(|(id, _)| *id == m.invocation)
                    .map(|(_, s)| s.clone());
                if c.flagged {
                    for v in current.get(&name).into_iter().flatten() {
                        c.push_new(v.clone());
                    }
                }
                c
            })
            .collect())
    }
}

/// One row of `replPropertyMetaData` (MS-DRSR `PROPERTY_META_DATA_EXT` within
/// `replPropertyMetaDataBlob` version 1).
#[derive(Clone, Debug, PartialEq, Eq)]
struct MetaData {
    attid: u32,
    version: u32,
    unix_time: i64,
    invocation: [u8; 16],
}

/// Reads the blob: `u32 version (1), u32 reserved, u32 count, u32 reserved`, then `count` rows
/// of 48 bytes: attid, version, originating change time (seconds since 1601), originating
/// invocation id, originating USN, local USN (all little-endian).
fn parse_metadata(b: &[u8]) -> Result<Vec<MetaData>, Error> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::UnexpectedResponse,
            format!("replPropertyMetaData: {why}"),
        )
    };
    let u32_at = |i: usize| -> Option<u32> {
        b.get(i..i + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    if u32_at(0) != Some(1) {
        return Err(bad("not version 1"));
    }
    let count = u32_at(8).ok_or_else(|| bad("too short"))? as usize;
    if b.len() < 16 + count * 48 {
        return Err(bad("shorter than its count"));
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let o = 16 + i * 48;
        let t = b
            .get(o + 8..o + 16)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| bad("row"))?;
        let mut invocation = [0u8; 16];
        invocation.copy_from_slice(&b[o + 16..o + 32]);
        out.push(MetaData {
            attid: u32_at(o).ok_or_else(|| bad("row"))?,
            version: u32_at(o + 4).ok_or_else(|| bad("row"))?,
            unix_time: i64::try_from(t).unwrap_or(i64::MAX) - 11_644_473_600,
            invocation,
        });
    }
    Ok(out)
}

/// The OID of an attribute id of the base schema, through the default prefix table (MS-DRSR
/// 5.16.4; the prefixes Samba's base schema uses): prefix index in the high word, the last
/// arc in the low word. `None` for an id outside that table (a schema extension's
/// `msDS-IntId`, or a prefix this table does not hold).
fn attid_oid(attid: u32) -> Option<String> {
    const PREFIXES: [(u32, &str); 14] = [
        (0x00, "2.5.4"),
        (0x01, "2.5.6"),
        (0x02, "1.2.840.113556.1.2"),
        (0x03, "1.2.840.113556.1.3"),
        (0x08, "2.5.5"),
        (0x09, "1.2.840.113556.1.4"),
        (0x0A, "1.2.840.113556.1.5"),
        (0x14, "2.16.840.1.113730.3"),
        (0x15, "0.9.2342.19200300.100.1"),
        (0x16, "2.16.840.1.113730.3.1"),
        (0x17, "1.2.840.113556.1.5.7000"),
        (0x18, "2.5.21"),
        (0x19, "2.5.18"),
        (0x1A, "2.5.20"),
    ];
    if attid >= 0x8000_0000 {
        return None;
    }
    let prefix = PREFIXES.iter().find(|(i, _)| *i == attid >> 16)?.1;
    Some(format!("{prefix}.{}", attid & 0xffff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_rows_and_attribute_ids_are_read() {
        // two rows as Samba 4.17 wrote them: mobile (0x150029) and telephoneNumber (0x14)
        let mut b = vec![1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
        for (attid, t) in [(0x0015_0029u32, 13_412_000_000u64), (0x14, 13_412_000_001)] {
            b.extend_from_slice(&attid.to_le_bytes());
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend_from_slice(&t.to_le_bytes());
            b.extend_from_slice(&[0xda; 16]);
            b.extend_from_slice(&[0; 16]);
        }
        let rows = parse_metadata(&b).expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].unix_time, 13_412_000_000 - 11_644_473_600);
        assert_eq!(
            attid_oid(rows[0].attid).as_deref(),
            Some("0.9.2342.19200300.100.1.41")
        );
        assert_eq!(attid_oid(rows[1].attid).as_deref(), Some("2.5.4.20"));
        assert_eq!(attid_oid(0x0009_06a0).as_deref(), Some("1.2.840.113556.1.4.1696"));
        assert_eq!(attid_oid(0x8000_0001), None);
        assert_eq!(attid_oid(0x00ff_0001), None);
        assert!(parse_metadata(&b[..40]).is_err());
        assert!(parse_metadata(&[2, 0, 0, 0]).is_err());
    }

    #[test]
    fn generalized_times_go_both_ways() {
        assert_eq!(generalized(1_700_000_000), "20231114221320Z");
        assert_eq!(
            from_generalized("20261202044641.123456Z").as_deref(),
            Some("2026-12-02T04:46:41Z")
        );
        assert_eq!(from_generalized("garbage"), None);
    }

    #[test]
    fn secret_attributes_never_carry_values() {
        let mut c = AttributeChange::new("userPassword", "t".into(), &[]);
        c.push_new("{ARGON2}$argon2id$...".into());
        c.push_old("old".into());
        assert!(c.redacted && c.new.is_empty() && c.old.is_empty());
        let w = vec!["mobile".to_owned()];
        assert!(AttributeChange::new("Mobile", "t".into(), &w).flagged);
    }
}
