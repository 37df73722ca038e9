//! `cadenas_result`: the core's stable error codes plus the FFI's own, and their messages.

pub use crate::result_values::cadenas_result;

impl cadenas_result {
    /// The value with this code.
    pub(crate) fn from_code(code: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| *r as u32 == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core_api::ErrorKind;

    #[test]
    fn every_core_kind_has_its_own_value_with_the_same_number() {
        for kind in ErrorKind::ALL {
            let r = cadenas_result::of_kind(*kind);
            assert_eq!(r as u32, kind.code(), "{kind:?} has no cadenas_result");
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
