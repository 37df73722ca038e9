//! `cadenas_result`: the core's stable error codes plus the FFI's own, and their messages.

use core_api::ErrorKind;

pub use crate::result_values::cadenas_result;

impl cadenas_result {
    /// The value with this code.
    pub(crate) fn from_code(code: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| *r as u32 == code)
    }

    /// The result for a core error kind (same number). A kind added to the core without a
    /// value here is `Internal` until added — the tests fail in the meantime.
    pub(crate) fn of_kind(kind: ErrorKind) -> Self {
        Self::from_code(kind.code()).unwrap_or(Self::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_kind_has_its_own_value_with_the_same_number() {
        for kind in ErrorKind::ALL {
            let r = cadenas_result::of_kind(*kind);
            assert_eq!(r as u32, kind.code(), "{kind:?} has no cadenas_result");
            assert_eq!(r.kind(), Some(*kind));
        }
    }

    #[test]
    fn values_are_unique_and_the_ffi_block_is_not_a_core_one() {
        let mut seen = std::collections::BTreeSet::new();
        for r in cadenas_result::ALL {
            assert!(seen.insert(*r as u32), "{r:?} reused");
            if (*r as u32) >= 900 {
                assert!(ErrorKind::from_code(*r as u32).is_none());
            } else if *r != cadenas_result::Ok {
                assert!(
                    ErrorKind::from_code(*r as u32).is_some(),
                    "{r:?} is not a core code"
                );
            }
        }
    }
}
