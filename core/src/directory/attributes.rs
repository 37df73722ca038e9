//! [`Attributes`]: an entry's relevant attributes, by name — a small sorted map.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Relevant attributes of an entry, by name, as text. Never holds passwords or hashes.
///
/// A map sorted by name (as a `BTreeMap` would be, and serialized the same: a JSON object),
/// kept in one allocation (of exactly its size when collected, as the snapshots a report
/// keeps are): a containment report holds six of them per account
/// (before and after of the lock, the reset and the MFA group), most with one or two names,
/// where a `BTreeMap` would take a half-KiB node each.
///
/// ```
/// use cadenas::directory::Attributes;
///
/// let mut a = Attributes::new();
/// a.insert("pwdReset".into(), vec!["TRUE".into()]);
/// a.insert("pwdAccountLockedTime".into(), vec!["000001010000Z".into()]);
/// assert_eq!(a["pwdReset"], ["TRUE"]);
/// let names: Vec<&String> = a.keys().collect();
/// assert_eq!(names, ["pwdAccountLockedTime", "pwdReset"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Attributes(Vec<(String, Vec<String>)>);

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    /// The values of `name` (exact spelling), if present.
    pub fn get(&self, name: &str) -> Option<&Vec<String>> {
        self.position(name).ok().map(|i| &self.0[i].1)
    }

    /// Whether `name` (exact spelling) is present.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets the values of `name`; returns the values it replaced, if any.
    pub fn insert(&mut self, name: String, values: Vec<String>) -> Option<Vec<String>> {
        match self.position(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, values)),
            Err(i) => {
                self.0.insert(i, (name, values));
                None
            }
        }
    }

    /// Removes `name`; returns its values, if it was present.
    pub fn remove(&mut self, name: &str) -> Option<Vec<String>> {
        self.position(name).ok().map(|i| self.0.remove(i).1)
    }

    /// The names and their values, sorted by name.
    pub fn iter(&self) -> AttributesIter<'_> {
        AttributesIter(self.0.iter())
    }

    /// The names, sorted.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &String> + '_ {
        self.0.iter().map(|(k, _)| k)
    }

    /// The values of each name, in name order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &Vec<String>> + '_ {
        self.0.iter().map(|(_, v)| v)
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No names at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, Vec<String>)> for Attributes {
    /// Sorted by name; of a name given twice, the last values are kept (as a `BTreeMap`).
    fn from_iter<I: IntoIterator<Item = (String, Vec<String>)>>(iter: I) -> Self {
        let mut v: Vec<(String, Vec<String>)> = iter.into_iter().collect();
        // stable: of equal names, the later stays after the earlier
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, Vec<String>)> = Vec::with_capacity(v.len());
        for (k, vals) in v {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = vals,
                _ => out.push((k, vals)),
            }
        }
        out.shrink_to_fit();
        Self(out)
    }
}

impl<const N: usize> From<[(String, Vec<String>); N]> for Attributes {
    fn from(a: [(String, Vec<String>); N]) -> Self {
        a.into_iter().collect()
    }
}

impl IntoIterator for Attributes {
    type Item = (String, Vec<String>);
    type IntoIter = std::vec::IntoIter<(String, Vec<String>)>;

    /// The names and their values, sorted by name.
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The names of [`Attributes`] and their values, sorted by name.
#[derive(Clone, Debug)]
pub struct AttributesIter<'a>(std::slice::Iter<'a, (String, Vec<String>)>);

impl<'a> Iterator for AttributesIter<'a> {
    type Item = (&'a String, &'a Vec<String>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for AttributesIter<'_> {}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a String, &'a Vec<String>);
    type IntoIter = AttributesIter<'a>;

    fn into_iter(self) -> AttributesIter<'a> {
        self.iter()
    }
}

impl std::ops::Index<&str> for Attributes {
    type Output = Vec<String>;

    /// The values of `name`.
    ///
    /// # Panics
    ///
    /// When `name` is absent (as a `BTreeMap`'s index): use [`Attributes::get`] otherwise.
    fn index(&self, name: &str) -> &Vec<String> {
        #[allow(clippy::expect_used)]
        self.get(name).expect("attribute present")
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = Attributes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attribute names to lists of values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Attributes, A::Error> {
                let mut v = Vec::with_capacity(m.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = m.next_entry::<String, Vec<String>>()? {
                    v.push(entry);
                }
                Ok(v.into_iter().collect())
            }
        }
        d.deserialize_map(Names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn sorted_by_name_like_a_btreemap_and_the_same_json() {
        let pairs = [("uid", vec!["a"]), ("cn", vec!["b", "c"]), ("Mail", vec![])];
        let a: Attributes = pairs.iter().map(|(k, v)| ((*k).to_owned(), vals(v))).collect();
        let b: std::collections::BTreeMap<String, Vec<String>> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), vals(v))).collect();
        let json = serde_json::to_string(&a).expect("json");
        assert_eq!(json, serde_json::to_string(&b).expect("json"));
        assert_eq!(serde_json::from_str::<Attributes>(&json).expect("back"), a);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn a_name_given_twice_keeps_its_last_values() {
        let a: Attributes = [("x".to_owned(), vals(&["1"])), ("x".to_owned(), vals(&["2"]))].into();
        assert_eq!(a.len(), 1);
        assert_eq!(a.get("x"), Some(&vals(&["2"])));
        let back: Attributes = serde_json::from_str(r#"{"x":["1"],"x":["2"]}"#).expect("json");
        assert_eq!(back, a);
    }

    #[test]
    fn insert_get_remove() {
        let mut a = Attributes::new();
        assert!(a.is_empty());
        assert_eq!(a.insert("b".into(), vals(&["1"])), None);
        assert_eq!(a.insert("a".into(), vals(&["2"])), None);
        assert_eq!(a.insert("b".into(), vals(&["3"])), Some(vals(&["1"])));
        assert_eq!(a.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert!(a.contains_key("a") && !a.contains_key("A"));
        assert_eq!(a.remove("a"), Some(vals(&["2"])));
        assert_eq!(a.get("a"), None);
        assert_eq!(
            a.into_iter().collect::<Vec<_>>(),
            [("b".to_owned(), vals(&["3"]))]
        );
    }
}
