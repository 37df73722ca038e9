//! Finding users under the configured base DNs, scope checks, login names, group membership.

use std::collections::{HashMap, HashSet};

use ldap3::Scope;

use super::{Attributes, Directory, Dn, Flavour, Seen, User, UserName, UserRef};
use crate::error::{Error, ErrorKind};

/// OpenLDAP ppolicy: the entry's own password policy, when not the default.
const POLICY_SUBENTRY: &str = "pwdPolicySubentry";

impl Directory {
    /// Finds the entry for a user name (looked up in the configured attributes, escaped) or
    /// checks an explicit DN, under the configured base DNs only.
    ///
    /// Errors: [`ErrorKind::UserNotFound`], [`ErrorKind::AmbiguousUser`],
    /// [`ErrorKind::OutOfScope`] (a DN outside every base DN: nothing is sent).
    pub async fn find_user(&self, user: &UserRef) -> Result<User, Error> {
        match user {
            UserRef::Dn(dn) => {
                self.ensure_in_scope(dn)?;
                let found = self
                    .search_raw(
                        dn.as_str(),
                        Scope::Base,
                        "(objectClass=*)",
                        &self.found_attributes(),
                    )
                    .await?;
                match found.into_iter().next() {
                    Some(e) => self.user_from_entry(&e),
                    None => Err(Error::new(ErrorKind::UserNotFound, format!("no entry {dn}"))),
                }
            }
            UserRef::Name(name) => {
                let any = any_attribute(&self.lookup_attributes(), name);
                let found = self.search_users(&any, &self.found_attributes()).await?;
                let dns: Vec<&str> = found.iter().map(|e| e.dn.as_str()).collect();
                match dns.len() {
                    0 => Err(Error::new(
                        ErrorKind::UserNotFound,
                        format!(
                            "no user {:?} under {}",
                            name.as_str(),
                            self.cfg.base_dns_text(" or ")
                        ),
                    )),
                    1 => self.user_from_entry(&found[0]),
                    n => Err(Error::new(
                        ErrorKind::AmbiguousUser,
                        format!("{n} entries match user {:?}: {}", name.as_str(), dns.join("; ")),
                    )),
                }
            }
        }
    }

    /// Finds several users, with the same result for each as [`find_user`](Self::find_user)
    /// — the same entry, or the same error — in fewer operations: on OpenLDAP with the default
    /// lookup attributes, plain names (printable ASCII, no space) are looked up
    /// 64 at a time, one search per base DN, and each entry is given to the
    /// name its `uid` or `mail` equals, ignoring ASCII case — what slapd's `caseIgnoreMatch`
    /// and `caseIgnoreIA5Match` compare for such strings. A name the batch cannot answer with
    /// certainty (no entry, several, an entry with a value that is not plain ASCII or that
    /// matches no name or several) is looked up alone, as is every DN and every other name;
    /// so is a whole batch whose search fails.
    ///
    /// ```no_run
    /// # async fn f(dir: &cadenas::directory::Directory) -> Result<(), cadenas::Error> {
    /// use cadenas::directory::UserRef;
    ///
    /// let names = ["jdupont", "mmartin", "dn:uid=alee,ou=people,dc=example,dc=test"];
    /// let users: Vec<UserRef> = names.iter().map(|n| UserRef::parse(n)).collect::<Result<_, _>>()?;
    /// for (name, found) in names.iter().zip(dir.find_users(&users).await) {
    ///     match found {
    ///         Ok(u) => println!("{name}: {}", u.dn),
    ///         Err(e) => println!("{name}: {e}"),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn find_users(&self, users: &[UserRef]) -> Vec<Result<User, Error>> {
        let mut found: Vec<Option<Result<User, Error>>> = (0..users.len()).map(|_| None).collect();
        let plain: Vec<(usize, &UserName)> = users
            .iter()
            .enumerate()
            .filter_map(|(i, u)| match u {
                UserRef::Name(n) if self.finds_in_batches(n) => Some((i, n)),
                _ => None,
            })
            .collect();
        for chunk in plain.chunks(NAMES_PER_SEARCH) {
            let names: Vec<UserName> = chunk.iter().map(|(_, n)| (*n).clone()).collect();
            if let Ok(batch) = self.find_names(&names).await {
                for ((i, _), u) in chunk.iter().zip(batch) {
                    found[*i] = u.map(Ok);
                }
            }
        }
        let mut out = Vec::with_capacity(users.len());
        for (u, f) in users.iter().zip(found) {
            out.push(match f {
                Some(r) => r,
                None => self.find_user(u).await,
            });
        }
        out
    }

    /// Whether `name` may be looked up together with others ([`find_names`](Self::find_names)):
    /// OpenLDAP, the default lookup attributes (`uid`, `mail`: their matching rules compare
    /// plain ASCII ignoring case, nothing more), and a plain name. AD's comparison of
    /// `sAMAccountName` and `userPrincipalName` is Windows' own, not verifiable here: there
    /// every name is looked up alone.
    pub(crate) fn finds_in_batches(&self, name: &UserName) -> bool {
        self.flavour == Flavour::OpenLdap && self.cfg.user_attributes.is_none() && plain(name.as_str())
    }

    /// Looks up `names` (each [`finds_in_batches`](Self::finds_in_batches)) in one search per
    /// base DN. For each name: `Some` — the one entry that is certainly its own, as
    /// [`find_user`](Self::find_user) would find it; `None` — look it up alone. Every name gets
    /// `None` when any entry found cannot be given to exactly one name: a lookup value that is
    /// not plain (the server's matching may fold it onto a plain name: Unicode
    /// normalisation, insignificant spaces), no name equal to any value (a value the service
    /// account may search but not read), or several.
    pub(crate) async fn find_names(&self, names: &[UserName]) -> Result<Vec<Option<User>>, Error> {
        let attrs = self.lookup_attributes();
        let any: String = names.iter().map(|n| any_attribute(&attrs, n)).collect();
        let mut read = self.found_attributes();
        for a in &attrs {
            if !read.iter().any(|r| r.eq_ignore_ascii_case(a)) {
                read.push(a);
            }
        }
        let found = self.search_users(&any, &read).await?;
        let mut index: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            index.entry(n.as_str().to_ascii_lowercase()).or_default().push(i);
        }
        let mut entries: Vec<Vec<&ldap3::SearchEntry>> = vec![Vec::new(); names.len()];
        let undecided = || (0..names.len()).map(|_| None).collect();
        for e in &found {
            let mut owners: HashSet<usize> = HashSet::new();
            for (k, values) in &e.attrs {
                // `uid;lang-fr` is matched by `(uid=...)` too
                let base = k.split(';').next().unwrap_or(k);
                if !attrs.iter().any(|a| a.eq_ignore_ascii_case(base)) {
                    continue;
                }
                for v in values {
                    if !plain(v) {
                        return Ok(undecided());
                    }
                    if let Some(is) = index.get(&v.to_ascii_lowercase()) {
                        owners.extend(is);
                    }
                }
            }
            let mut owners = owners.into_iter();
            match (owners.next(), owners.next()) {
                (Some(i), None) => entries[i].push(e),
                _ => return Ok(undecided()),
            }
        }
        Ok(entries
            .into_iter()
            .map(|es| match es.as_slice() {
                [e] => self.user_from_entry(e).ok(),
                _ => None,
            })
            .collect())
    }

    /// The entries matching the OR of assertions `any` (with the flavour's filter around it)
    /// under every base DN, each once, reading `read`.
    async fn search_users(&self, any: &str, read: &[&str]) -> Result<Vec<ldap3::SearchEntry>, Error> {
        let filter = self.rules().user_filter(any);
        let mut found: Vec<ldap3::SearchEntry> = Vec::new();
        for base in &self.cfg.base_dns {
            for e in self
                .search_raw(base.as_str(), Scope::Subtree, &filter, read)
                .await?
            {
                if !found.iter().any(|d| d.dn.eq_ignore_ascii_case(&e.dn)) {
                    found.push(e);
                }
            }
        }
        Ok(found)
    }

    fn lookup_attributes(&self) -> Vec<String> {
        if let Some(a) = &self.cfg.user_attributes {
            return a.clone();
        }
        self.rules()
            .lookup_attributes()
            .iter()
            .map(|a| (*a).to_owned())
            .collect()
    }

    /// What the search that finds a user reads besides the DN: the login name, and on
    /// OpenLDAP the password policy the lock checks.
    fn found_attributes(&self) -> Vec<&str> {
        match self.flavour {
            Flavour::OpenLdap => vec![self.login_attribute(), POLICY_SUBENTRY],
            Flavour::ActiveDirectory => vec![self.login_attribute(), super::ad::UAC, super::ad::PWD_LAST_SET],
        }
    }

    fn user_from_entry(&self, e: &ldap3::SearchEntry) -> Result<User, Error> {
        let dn = Dn::parse(&e.dn)
            .map_err(|e| Error::new(ErrorKind::UnexpectedResponse, e.message().to_owned()))?;
        self.ensure_in_scope(&dn)?;
        let value = |name: &str| {
            e.attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first().cloned())
        };
        Ok(User {
            dn,
            login: value(self.login_attribute()),
            policy_subentry: (self.flavour == Flavour::OpenLdap).then(|| value(POLICY_SUBENTRY)),
            seen: (self.flavour == Flavour::ActiveDirectory).then(|| {
                let values: Attributes = super::ad::FOUND
                    .iter()
                    .filter_map(|a| {
                        e.attrs
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(a))
                            .map(|(_, v)| ((*a).to_owned(), v.clone()))
                    })
                    .collect();
                Seen::of(super::ad::FOUND, &values)
            }),
        })
    }

    /// The attribute holding the login name (`login_attribute`, or the flavour's default).
    fn login_attribute(&self) -> &str {
        match &self.cfg.login_attribute {
            Some(a) => a.as_str(),
            None => self.rules().login_attribute(),
        }
    }

    /// Refuses a DN outside every configured base DN.
    pub fn ensure_in_scope(&self, dn: &Dn) -> Result<(), Error> {
        if self.cfg.base_dns.iter().any(|b| dn.is_within(b)) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::OutOfScope,
                format!(
                    "{dn} is outside the configured base DNs ({})",
                    self.cfg.base_dns_text("; ")
                ),
            ))
        }
    }

    /// The name services know the user by (`login_attribute`: `uid` or `sAMAccountName` by
    /// default), as sessions are revoked by it.
    pub async fn login_name(&self, user: &User) -> Result<String, Error> {
        if let Some(l) = &user.login {
            return Ok(l.clone());
        }
        let attr = self.login_attribute();
        let attrs = self.read_entry(&user.dn, &[attr]).await?;
        attrs
            .get(attr)
            .and_then(|v| v.first())
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::UserNotFound, format!("{} has no {attr}", user.dn)))
    }

    /// Whether `dn` is a `member` of `group` (one base-scope search with an escaped filter).
    pub async fn is_member(&self, group: &Dn, dn: &Dn) -> Result<bool, Error> {
        let filter = format!("(member={})", dn.filter_escaped());
        Ok(!self
            .search_raw(group.as_str(), Scope::Base, &filter, &["1.1"])
            .await?
            .is_empty())
    }

    /// Whether `dn` is a member of `group` directly or through nested groups. AD: one search
    /// with the in-chain matching rule. OpenLDAP: upwards, level by level — the groups that
    /// have the entry (or a group found so far) as `member`, searched under the group's domain
    /// — up to `MAX_NESTING` (8) levels.
    pub async fn is_member_transitive(&self, group: &Dn, dn: &Dn) -> Result<bool, Error> {
        if let Some(rule) = self.rules().in_chain_rule() {
            let filter = format!("(member:{rule}:={})", dn.filter_escaped());
            return Ok(!self
                .search_raw(group.as_str(), Scope::Base, &filter, &["1.1"])
                .await?
                .is_empty());
        }
        // (no separate direct-membership search first: the first level below finds a direct
        // membership in the same one operation, since `base` contains the group)
        let base = group.domain_suffix().unwrap_or_else(|| group.clone());
        let mut seen: Vec<Dn> = vec![dn.clone()];
        let mut frontier: Vec<Dn> = vec![dn.clone()];
        for _ in 0..MAX_NESTING {
            if frontier.is_empty() {
                return Ok(false);
            }
            let any: String = frontier
                .iter()
                .map(|d| format!("(member={})", d.filter_escaped()))
                .collect();
            let mut next = Vec::new();
            for e in self
                .search_raw(base.as_str(), Scope::Subtree, &format!("(|{any})"), &["1.1"])
                .await?
            {
                let Ok(found) = Dn::parse(&e.dn) else { continue };
                if found.same_entry(group) {
                    return Ok(true);
                }
                if !seen.iter().any(|s| s.same_entry(&found)) {
                    seen.push(found.clone());
                    next.push(found);
                }
            }
            frontier = next;
        }
        Ok(false)
    }
}

/// Names looked up in one search by [`Directory::find_users`] (two assertions each, `uid`
/// and `mail`).
pub const NAMES_PER_SEARCH: usize = 64;

/// The assertions that `name` is the value of one of `attrs`, escaped, to go in an OR.
fn any_attribute(attrs: &[String], name: &UserName) -> String {
    let value = name.filter_escaped();
    attrs.iter().map(|a| format!("({a}={value})")).collect()
}

/// Printable ASCII without space: a string slapd's `caseIgnoreMatch` and `caseIgnoreIA5Match`
/// compare as ASCII ignoring case, with nothing folded or dropped (RFC 4518's insignificant
/// spaces, mapped-to-nothing and compatibility characters are all outside it).
fn plain(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Nesting levels followed on OpenLDAP before giving up (a loop of groups ends earlier: every
/// group is visited once).
pub const MAX_NESTING: usize = 8;

/// The members of the configured protected groups, through nested groups, read once (see
/// [`Directory::protected_members`]): checking many accounts against it costs no operation
/// per account.
#[derive(Debug, Default)]
pub(crate) struct ProtectedMembers {
    /// Each group as configured, with the normalised DNs of its members at any depth.
    groups: Vec<(String, HashSet<String>)>,
}

impl ProtectedMembers {
    /// The protected groups `dn` belongs to (directly or through nested groups), as
    /// [`Directory::protected_groups`] names them.
    pub(crate) fn groups_of(&self, dn: &Dn) -> Vec<String> {
        let n = dn.normalised();
        self.groups
            .iter()
            .filter(|(_, members)| members.contains(&n))
            .map(|(g, _)| g.clone())
            .collect()
    }
}

impl Directory {
    /// Every member of every protected group, read once — for a run over many accounts, where
    /// [`protected_groups`](Self::protected_groups) would cost a search per account. The same
    /// membership as that method sees: AD by the in-chain rule, OpenLDAP through nested groups
    /// under the group's domain, up to [`MAX_NESTING`] levels.
    pub(crate) async fn protected_members(&self) -> Result<ProtectedMembers, Error> {
        let mut out = ProtectedMembers::default();
        for g in &self.cfg.protected_group_dns {
            out.groups
                .push((g.to_string(), self.members_transitive(g).await?));
        }
        Ok(out)
    }

    /// The normalised DNs of `group`'s members at any depth. AD: one search per base DN with
    /// the in-chain rule on `memberOf` (members outside every base DN are out of scope
    /// anyway). OpenLDAP: downwards, level by level — the group's `member` values, and those
    /// of the members that are groups themselves (entries holding `member` under the group's
    /// domain, listed in one search).
    async fn members_transitive(&self, group: &Dn) -> Result<HashSet<String>, Error> {
        let mut members = HashSet::new();
        if let Some(rule) = self.rules().in_chain_rule() {
            let filter = format!("(memberOf:{rule}:={})", group.filter_escaped());
            for base in &self.cfg.base_dns {
                for e in self
                    .search_raw(base.as_str(), Scope::Subtree, &filter, &["1.1"])
                    .await?
                {
                    if let Ok(d) = Dn::parse(&e.dn) {
                        members.insert(d.normalised());
                    }
                }
            }
            // The group's own `member` values must all be there: if `memberOf` is not
            // readable where `member` is, the in-chain search finds nobody and every
            // administrator would pass the rail.
            for m in self.member_values(group).await? {
                if self.cfg.base_dns.iter().any(|b| m.is_within(b)) && !members.contains(&m.normalised()) {
                    return Err(incomplete(group, &format!("{m} is a member, not found in chain")));
                }
            }
            return Ok(members);
        }
        let base = group.domain_suffix().unwrap_or_else(|| group.clone());
        let groups: HashSet<String> = self
            .search_raw(base.as_str(), Scope::Subtree, "(member=*)", &["1.1"])
            .await?
            .iter()
            .filter_map(|e| Dn::parse(&e.dn).ok())
            .map(|d| d.normalised())
            .collect();
        let mut visited = HashSet::from([group.normalised()]);
        let mut frontier = vec![group.clone()];
        for _ in 0..MAX_NESTING {
            let mut next = Vec::new();
            for g in &frontier {
                // a group gone since it was listed (or a protected group that does not
                // exist: noSuchObject) has no members
                let values = self.member_values(g).await?;
                // listed as holding members (`member` searchable) but none readable: the
                // rail would let every member pass
                if values.is_empty() && groups.contains(&g.normalised()) {
                    return Err(incomplete(g, "it holds members, none could be read"));
                }
                for m in values {
                    let n = m.normalised();
                    if groups.contains(&n) && visited.insert(n.clone()) {
                        next.push(m);
                    }
                    members.insert(n);
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok(members)
    }

    /// The `member` values of `group` (none when it does not exist).
    async fn member_values(&self, group: &Dn) -> Result<Vec<Dn>, Error> {
        Ok(self
            .search_raw(group.as_str(), Scope::Base, "(objectClass=*)", &["member"])
            .await?
            .into_iter()
            .flat_map(|e| e.attrs)
            .filter(|(k, _)| k.eq_ignore_ascii_case("member"))
            .flat_map(|(_, values)| values)
            .filter_map(|v| Dn::parse(&v).ok())
            .collect())
    }
}

/// The protected group's members could not all be read: the run checks each account on its
/// own instead.
fn incomplete(group: &Dn, why: &str) -> Error {
    Error::new(
        ErrorKind::UnexpectedResponse,
        format!("the members of protected group {group} could not all be read: {why}"),
    )
}
