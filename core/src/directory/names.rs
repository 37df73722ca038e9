//! "Parse, don't validate": [`UserName`] and [`Dn`] are proof that a string was checked.
//!
//! A user name is **data**: it is refused if it contains LDAP filter syntax (`*`, `(`, `)`,
//! `\`), DN syntax (`=`, `,`, `;`, `<`, `>`, `"`), control characters or NUL — and it is
//! escaped anyway when it goes into a filter. A DN is only ever given explicitly as a DN.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// Longest accepted user name, in characters.
pub const MAX_USER_NAME_CHARS: usize = 256;

/// A checked user name (uid, sAMAccountName, mail, userPrincipalName...).
///
/// ```
/// use cadenas::directory::UserName;
///
/// assert!(UserName::parse("jdupont").is_ok());
/// assert!(UserName::parse("élodie.müller@example.test").is_ok());
/// assert!(UserName::parse("*").is_err());
/// assert!(UserName::parse("x)(uid=*").is_err());
/// assert!(UserName::parse("uid=admin,dc=example,dc=test").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct UserName(String);

impl UserName {
    /// Checks `s` and wraps it. See the type's documentation for what is refused.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidUserName,
                format!("user name {s:?} refused: {why}"),
            )
        };
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.chars().count() > MAX_USER_NAME_CHARS {
            return Err(bad("it is longer than 256 characters"));
        }
        if s.trim() != s {
            return Err(bad("it starts or ends with white space"));
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(bad(&format!(
                "it contains the control character U+{:04X}",
                c as u32
            )));
        }
        if let Some(c) = s.chars().find(|c| "*()\\".contains(*c)) {
            return Err(bad(&format!("{c:?} is LDAP filter syntax")));
        }
        if let Some(c) = s.chars().find(|c| "=,;<>\"".contains(*c)) {
            return Err(bad(&format!(
                "{c:?} is DN syntax; pass a DN explicitly (e.g. `dn:uid=...`) to name an entry by DN"
            )));
        }
        if s.starts_with('#') {
            return Err(bad("a leading '#' is DN syntax"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name escaped for use as an assertion value in a search filter (RFC 4515).
    pub fn filter_escaped(&self) -> String {
        ldap3::ldap_escape(self.0.as_str()).into_owned()
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserName({:?})", self.0)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A checked distinguished name, with a normalised form for scope comparisons.
///
/// ```
/// use cadenas::directory::Dn;
///
/// let base = Dn::parse("ou=People,dc=example,dc=test").unwrap();
/// let user = Dn::parse("uid=jdupont, OU=people, DC=Example, DC=test").unwrap();
/// assert!(user.is_within(&base));
/// assert!(!base.is_within(&user));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Dn {
    raw: String,
    /// RDNs, most specific first, each normalised (lower case, spaces around `=` removed).
    rdns: Vec<String>,
}

impl Dn {
    /// Parses a DN string (RFC 4514). Refuses empty DNs, empty RDNs, RDNs without `=`,
    /// control characters and dangling escapes.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::new(ErrorKind::InvalidInput, format!("DN {s:?} refused: {why}"));
        if s.trim().is_empty() {
            return Err(bad("it is empty"));
        }
        if s.chars().any(|c| c.is_control()) {
            return Err(bad("it contains a control character"));
        }
        let mut rdns = Vec::new();
        let mut current = String::new();
        let mut chars = s.chars().peekable();
        let mut in_quotes = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let next = chars.next().ok_or_else(|| bad("it ends with a lone '\\'"))?;
                    current.push('\\');
                    current.push(next);
                }
                '"' => {
                    in_quotes = !in_quotes;
                    current.push(c);
                }
                ',' | ';' if !in_quotes => {
                    rdns.push(normalise_rdn(&current).map_err(&bad)?);
                    current.clear();
                }
                _ => current.push(c),
            }
        }
        if in_quotes {
            return Err(bad("it has an unterminated quote"));
        }
        rdns.push(normalise_rdn(&current).map_err(&bad)?);
        Ok(Self {
            raw: s.to_owned(),
            rdns,
        })
    }

    /// The DN as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether this DN equals `base` or lies below it (case-insensitive, RDN by RDN).
    pub fn is_within(&self, base: &Dn) -> bool {
        self.rdns.len() >= base.rdns.len() && self.rdns.ends_with(&base.rdns)
    }

    /// Whether two DNs name the same entry (normalised comparison).
    pub fn same_entry(&self, other: &Dn) -> bool {
        self.rdns == other.rdns
    }

    /// The parent entry's DN (`None` for a one-RDN DN).
    pub(crate) fn parent(&self) -> Option<Dn> {
        let parts = split_unescaped(&self.raw, ',');
        (parts.len() > 1)
            .then(|| Dn::parse(&parts[1..].join(",")).ok())
            .flatten()
    }

    /// The domain part (`dc=example,dc=test` of `cn=g,ou=groups,dc=example,dc=test`): from the
    /// first `dc=` RDN on. `None` without one.
    pub(crate) fn domain_suffix(&self) -> Option<Dn> {
        let parts = split_unescaped(&self.raw, ',');
        let i = parts
            .iter()
            .position(|p| p.trim_start().to_ascii_lowercase().starts_with("dc="))?;
        Dn::parse(&parts[i..].join(",")).ok()
    }

    /// The normalised form: equal for two DNs exactly when [`same_entry`](Self::same_entry).
    pub(crate) fn normalised(&self) -> String {
        self.rdns.join(",")
    }

    /// The DN escaped for use as an assertion value in a search filter.
    pub fn filter_escaped(&self) -> String {
        ldap3::ldap_escape(self.raw.as_str()).into_owned()
    }
}

fn normalise_rdn(rdn: &str) -> Result<String, &'static str> {
    let rdn = rdn.trim();
    if rdn.is_empty() {
        return Err("it has an empty RDN");
    }
    let mut parts = Vec::new();
    for ava in split_unescaped(rdn, '+') {
        let (attr, value) = ava.split_once('=').ok_or("an RDN has no '='")?;
        let attr = attr.trim();
        if attr.is_empty()
            || !attr
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err("an RDN has an invalid attribute type");
        }
        parts.push(format!(
            "{}={}",
            attr.to_ascii_lowercase(),
            value.trim().to_lowercase()
        ));
    }
    parts.sort();
    Ok(parts.join("+"))
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

impl fmt::Debug for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dn({:?})", self.raw)
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl serde::Serialize for Dn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

/// Parsed at deserialisation: a config or journal holding a bad DN is refused when read.
impl<'de> serde::Deserialize<'de> for Dn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dn::parse(&s).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

/// How the caller names the account to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserRef {
    /// A user name, looked up in the configured lookup attributes (uid, mail...).
    Name(UserName),
    /// An explicit DN, which must lie under a configured base DN.
    Dn(Dn),
}

impl UserRef {
    /// Parses operator input: `dn:<DN>` names an entry by DN, anything else is a user name.
    ///
    /// ```
    /// use cadenas::directory::UserRef;
    ///
    /// assert!(matches!(UserRef::parse("jdupont").unwrap(), UserRef::Name(_)));
    /// assert!(matches!(UserRef::parse("dn:uid=jdupont,ou=people,dc=example,dc=test").unwrap(), UserRef::Dn(_)));
    /// assert!(UserRef::parse("uid=jdupont,ou=people,dc=example,dc=test").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.strip_prefix("dn:") {
            Some(dn) => Ok(Self::Dn(Dn::parse(dn)?)),
            None => Ok(Self::Name(UserName::parse(s)?)),
        }
    }
}

impl UserRef {
    /// Parses a list of operator input (a file of names, a script's list): every entry must
    /// be valid, or nothing is returned — one [`ErrorKind::InvalidUserName`] error naming each
    /// entry refused (by position, from 1, and escaped), so a typo is found before anything
    /// is contained.
    ///
    /// ```
    /// use cadenas::directory::UserRef;
    ///
    /// assert_eq!(UserRef::parse_all(&["jdupont", "dn:uid=x,dc=example,dc=test"]).unwrap().len(), 2);
    /// let e = UserRef::parse_all(&["jdupont", "x*", "y)("]).unwrap_err();
    /// assert!(e.message().contains("2 of 3") && e.message().contains("#2 \"x*\""));
    /// ```
    pub fn parse_all<S: AsRef<str>>(names: &[S]) -> Result<Vec<Self>, Error> {
        let mut out = Vec::with_capacity(names.len());
        let mut bad = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match Self::parse(name.as_ref()) {
                Ok(u) => out.push(u),
                Err(e) => bad.push((i + 1, name.as_ref(), e)),
            }
        }
        if bad.is_empty() {
            return Ok(out);
        }
        let shown: Vec<String> = bad
            .iter()
            .take(10)
            .map(|(i, n, _)| format!("#{i} {:?}", crate::escape_controls(n)))
            .collect();
        let more = if bad.len() > 10 { ", ..." } else { "" };
        Err(Error::new(
            ErrorKind::InvalidUserName,
            format!(
                "{} of {} user names are not valid (nothing was done): {}{more}; {}",
                bad.len(),
                names.len(),
                shown.join(", "),
                bad[0].2.message()
            ),
        ))
    }
}

impl fmt::Display for UserRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserRef::Name(n) => f.write_str(n.as_str()),
            UserRef::Dn(d) => write!(f, "dn:{}", d.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injection_shaped_names_are_refused_with_invalid_user_name() {
        for s in [
            "*",
            "a*",
            ")(uid=*",
            "x)(|(uid=*",
            "back\\slash",
            "nul\0byte",
            "uid=admin,dc=example,dc=test",
            "cn=x",
            "a,b",
            "",
            " padded",
            "tab\there",
            "#hex",
            "quote\"d",
        ] {
            let e = UserName::parse(s).expect_err(s);
            assert_eq!(e.kind(), ErrorKind::InvalidUserName, "{s:?}");
        }
        assert!(UserName::parse(&"a".repeat(257)).is_err());
        assert!(UserName::parse(&"a".repeat(256)).is_ok());
    }

    #[test]
    fn ordinary_names_are_accepted() {
        for s in [
            "user0001",
            "j.dupont",
            "o'brien",
            "ana+tag@example.test",
            "DC1$",
            "Ñúñez",
            "李",
        ] {
            assert_eq!(UserName::parse(s).expect(s).as_str(), s);
        }
    }

    #[test]
    fn filter_escaping_is_applied_even_to_checked_names() {
        // '+' and '@' pass through; the escaper still exists as a second line of defence.
        assert_eq!(UserName::parse("a+b@c").expect("ok").filter_escaped(), "a+b@c");
        let dn = Dn::parse("cn=star\\2a,dc=x").expect("dn");
        assert_eq!(dn.filter_escaped(), "cn=star\\5c2a,dc=x");
    }

    #[test]
    fn dn_scope_is_rdn_wise_and_case_insensitive() {
        let base = Dn::parse("ou=people,dc=example,dc=test").expect("dn");
        assert!(Dn::parse("UID=a,OU=People,DC=Example,DC=Test")
            .expect("dn")
            .is_within(&base));
        assert!(Dn::parse("ou=people,dc=example,dc=test")
            .expect("dn")
            .is_within(&base));
        // suffix match on the string is not enough: "xou=people" is another RDN
        assert!(!Dn::parse("uid=a,xou=people,dc=example,dc=test")
            .expect("dn")
            .is_within(&base));
        assert!(!Dn::parse("uid=a,ou=elsewhere,dc=example,dc=test")
            .expect("dn")
            .is_within(&base));
        // an escaped comma does not split an RDN
        let tricky = Dn::parse("cn=a\\,ou=people,dc=example,dc=test").expect("dn");
        assert!(!tricky.is_within(&base));
    }

    #[test]
    fn malformed_dns_are_refused() {
        for s in [
            "",
            "   ",
            "noequals",
            "cn=a,,dc=x",
            "cn=a,dc=x\\",
            "cn=\"open,dc=x",
            "cn=a\0",
        ] {
            assert!(Dn::parse(s).is_err(), "{s:?}");
        }
    }
}
