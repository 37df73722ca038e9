//! Which accounts are contained now, as the journal says: an account is contained from its
//! lock's outcome (`changed` or `already_so`) until a release restores its flags. The names
//! it is known by are the name the responder was given and the login name the services know
//! it by (journaled with the lock), compared without ASCII case.

use std::collections::HashMap;

use crate::journal::{Event, Record, Step, StepStatus};

/// One contained account.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContainedAccount {
    /// The incident that contained it.
    pub incident: String,
    /// The entry.
    pub dn: String,
    /// When the lock was journaled (RFC 3339).
    pub since: String,
}

/// The contained accounts, by every name they are known by (lower-cased).
#[derive(Clone, Debug, Default)]
pub struct ContainedSet {
    by_name: HashMap<String, ContainedAccount>,
    /// The names of each entry (normalised DN → names), to drop them all on release.
    names_of: HashMap<String, Vec<String>>,
    /// Local domains: `user@domain` is looked up as `user` too.
    local_domains: Vec<String>,
}

impl ContainedSet {
    /// An empty set; a SASL login `name@domain` with `domain` in `local_domains` also
    /// matches `name`.
    pub fn new(local_domains: &[String]) -> Self {
        Self {
            local_domains: local_domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            ..Self::default()
        }
    }

    /// Takes in journal records, in order.
    pub fn apply(&mut self, records: &[Record]) {
        for r in records {
            let Event::Outcome {
                user,
                dn,
                step,
                status,
                detail,
            } = &r.event
            else {
                continue;
            };
            let key = dn_key(dn);
            match step {
                Step::Lock if matches!(status, StepStatus::Changed | StepStatus::AlreadySo) => {
                    let mut names = vec![user.to_ascii_lowercase()];
                    if let Some(l) = &detail.login {
                        names.push(l.to_ascii_lowercase());
                    }
                    names.retain(|n| !n.is_empty() && !n.starts_with("dn:"));
                    names.dedup();
                    let who = ContainedAccount {
                        incident: r.incident.clone(),
                        dn: dn.clone(),
                        since: r.time.clone(),
                    };
                    for n in &names {
                        self.by_name.insert(n.clone(), who.clone());
                    }
                    self.names_of.entry(key).or_default().extend(names);
                }
                Step::RestoreFlags if status.is_done() => {
                    for n in self.names_of.remove(&key).unwrap_or_default() {
                        self.by_name.remove(&n);
                    }
                }
                _ => {}
            }
        }
    }

    /// The containment of the account a SASL login names, if it is contained.
    pub fn get(&self, sasl_username: &str) -> Option<&ContainedAccount> {
        if sasl_username.is_empty() {
            return None;
        }
        let name = sasl_username.to_ascii_lowercase();
        if let Some(c) = self.by_name.get(&name) {
            return Some(c);
        }
        let (local, domain) = name.rsplit_once('@')?;
        self.local_domains
            .iter()
            .any(|d| d == domain)
            .then(|| self.by_name.get(local))
            .flatten()
    }

    /// How many accounts are contained.
    pub fn len(&self) -> usize {
        self.names_of.len()
    }

    /// Whether none is.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.names_of.is_empty()
    }
}

/// The DN as a key (normalised when it parses).
fn dn_key(dn: &str) -> String {
    crate::directory::Dn::parse(dn)
        .map(|d| d.normalised())
        .unwrap_or_else(|_| dn.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::StepDetail;

    fn outcome(user: &str, login: Option<&str>, step: Step, status: StepStatus) -> Record {
        let detail = StepDetail {
            login: login.map(str::to_owned),
            ..StepDetail::default()
        };
        Record {
            seq: 0,
            prev: String::new(),
            time: "2026-12-07T10:00:00.000Z".into(),
            incident: "INC-1".into(),
            event: Event::Outcome {
                user: user.into(),
                dn: "uid=jdupont,ou=people,dc=example,dc=test".into(),
                step,
                status,
                detail,
            },
        }
    }

    #[test]
    fn contained_from_the_lock_until_the_release_by_every_name() {
        let mut s = ContainedSet::new(&["Example.test".into()]);
        s.apply(&[outcome(
            "JDupont@example.test",
            Some("jdupont"),
            Step::Lock,
            StepStatus::Changed,
        )]);
        for name in [
            "jdupont",
            "JDUPONT",
            "jdupont@example.test",
            "jdupont@EXAMPLE.TEST",
        ] {
            assert_eq!(s.get(name).map(|c| c.incident.as_str()), Some("INC-1"), "{name}");
        }
        assert!(s.get("jdupont@elsewhere.test").is_none());
        assert!(s.get("").is_none());
        assert!(s.get("mmartin").is_none());
        s.apply(&[outcome("jdupont", None, Step::Lock, StepStatus::Failed)]);
        assert_eq!(s.len(), 1, "a failed lock changes nothing");
        s.apply(&[outcome("jdupont", None, Step::RestoreFlags, StepStatus::Changed)]);
        assert!(s.get("jdupont").is_none() && s.get("jdupont@example.test").is_none());
        assert!(s.is_empty());
    }
}
