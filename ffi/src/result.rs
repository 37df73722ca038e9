//! `cadenas_result`: the core's stable error codes plus the FFI's own, and their messages.

use core_api::ErrorKind;

/// What a fallible function returns. `CADENAS_RESULT_OK` (0) is success; every other value
/// is a failure, grouped in hundred-blocks by area (1xx general, 2xx directory, 3xx session
/// revocation, 4xx MFA, 5xx incident, 6xx journal, 9xx this C interface). Values are never
/// reused. `cadenas_result_message()` turns one into text; `cadenas_last_error_message()`
/// gives the details of the last failure on the calling thread.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cadenas_result {
    /// Success.
    Ok = 0,
    /// A bug, or an OS facility (such as the random source) failed.
    Internal = 100,
    /// The configuration is missing, unreadable or inconsistent.
    Config = 101,
    /// An argument was refused before anything was sent.
    InvalidInput = 102,
    /// A local file could not be read or written.
    Io = 103,
    /// A handle created before a fork() was used in the child (create a new one), or a call
    /// was made from inside one of this library's callbacks.
    InvalidContext = 104,
    /// The directory server could not be reached.
    Connect = 200,
    /// The TLS handshake or certificate verification failed.
    Tls = 201,
    /// An operation did not complete in time.
    Timeout = 202,
    /// The responder's own service account could not bind.
    ServiceBind = 203,
    /// A password would cross unencrypted LDAP without an explicit opt-in.
    InsecureTransport = 204,
    /// A user name contains filter or DN syntax, or control characters.
    InvalidUserName = 205,
    /// No entry matches the user name under the configured base DNs.
    UserNotFound = 206,
    /// More than one entry matches the user name.
    AmbiguousUser = 207,
    /// The entry is outside every configured base DN.
    OutOfScope = 208,
    /// The server refused an operation.
    Refused = 209,
    /// The server's answer could not be understood.
    UnexpectedResponse = 210,
    /// The server's flavour does not support the operation.
    UnsupportedDirectory = 211,
    /// A lock would be silently ignored by the server's password policy.
    LockIneffective = 212,
    /// The account is protected from automated response.
    ProtectedAccount = 213,
    /// A revocation endpoint could not be reached.
    RevokerUnreachable = 300,
    /// A revocation endpoint refused our credentials.
    RevokerAuth = 301,
    /// A revocation endpoint answered something that could not be understood.
    RevokerProtocol = 302,
    /// A revocation endpoint or command reported failure.
    RevokerFailed = 303,
    /// The user has no (active) TOTP enrolment.
    MfaNotEnrolled = 400,
    /// The code is malformed or does not match.
    MfaBadCode = 401,
    /// The code's time step was already used (replay).
    MfaReplayed = 402,
    /// Too many failures: verification refused until the cool-down ends.
    MfaThrottled = 403,
    /// The MFA database is missing, locked, corrupted or unwritable.
    MfaStore = 404,
    /// The at-rest key file is missing, malformed, or not the database's key.
    MfaKey = 405,
    /// The recovery code is not valid (or was already used).
    MfaRecoveryCode = 406,
    /// Release refused: no active MFA enrolment and no override, or no containment record.
    ReleaseRefused = 500,
    /// The journal holds no unfinished run to resume.
    NothingToResume = 501,
    /// The journal could not be opened, locked, written or read.
    Journal = 600,
    /// The journal's hash chain is broken.
    JournalTampered = 601,
    /// A notification could not be delivered.
    NotifyFailed = 700,
    /// A required pointer argument was NULL.
    NullPointer = 900,
    /// A text argument is not valid UTF-8.
    InvalidUtf8 = 901,
    /// The caller's buffer is too small: `*out_n` holds the length needed (without the
    /// terminating NUL); nothing was written to the buffer.
    BufferTooSmall = 902,
    /// A bug inside the library was caught at the boundary (no state was changed by halves:
    /// the journal records every step in flight).
    Panic = 903,
    /// The handle is not a live handle of the expected type (already freed, or of another
    /// type).
    InvalidHandle = 904,
    /// An index is past the end of the list.
    OutOfRange = 905,
}

impl cadenas_result {
    /// Every value, in code order (for the tests and the message table).
    pub(crate) const ALL: &'static [cadenas_result] = &[
        Self::Ok,
        Self::Internal,
        Self::Config,
        Self::InvalidInput,
        Self::Io,
        Self::InvalidContext,
        Self::Connect,
        Self::Tls,
        Self::Timeout,
        Self::ServiceBind,
        Self::InsecureTransport,
        Self::InvalidUserName,
        Self::UserNotFound,
        Self::AmbiguousUser,
        Self::OutOfScope,
        Self::Refused,
        Self::UnexpectedResponse,
        Self::UnsupportedDirectory,
        Self::LockIneffective,
        Self::ProtectedAccount,
        Self::RevokerUnreachable,
        Self::RevokerAuth,
        Self::RevokerProtocol,
        Self::RevokerFailed,
        Self::MfaNotEnrolled,
        Self::MfaBadCode,
        Self::MfaReplayed,
        Self::MfaThrottled,
        Self::MfaStore,
        Self::MfaKey,
        Self::MfaRecoveryCode,
        Self::ReleaseRefused,
        Self::NothingToResume,
        Self::Journal,
        Self::JournalTampered,
        Self::NotifyFailed,
        Self::NullPointer,
        Self::InvalidUtf8,
        Self::BufferTooSmall,
        Self::Panic,
        Self::InvalidHandle,
        Self::OutOfRange,
    ];

    /// The value with this code.
    pub(crate) fn from_code(code: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| *r as u32 == code)
    }

    /// The result for a core error kind (same number). A kind added to the core without a
    /// value here is `Internal` until added — the tests fail in the meantime.
    pub(crate) fn of_kind(kind: ErrorKind) -> Self {
        Self::from_code(kind.code()).unwrap_or(Self::Internal)
    }

    /// A short English description of the value.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Ok => "success",
            Self::NullPointer => "a required pointer argument was NULL",
            Self::InvalidUtf8 => "a text argument is not valid UTF-8",
            Self::BufferTooSmall => "the buffer is too small (*out_n holds the length needed)",
            Self::Panic => "a bug inside libcadenas was caught at the C boundary",
            Self::InvalidHandle => "not a live handle of this type (freed already, or another type)",
            Self::OutOfRange => "index out of range",
            other => match ErrorKind::from_code(other as u32) {
                Some(kind) => kind_description(kind),
                None => "unknown result",
            },
        }
    }
}

fn kind_description(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Internal => "internal error, or an OS facility failed",
        ErrorKind::Config => "the configuration is missing, unreadable or inconsistent",
        ErrorKind::InvalidInput => "an argument was refused before anything was sent",
        ErrorKind::Io => "a local file could not be read or written",
        ErrorKind::InvalidContext => {
            "a handle created before fork() was used in the child, or a call from inside a callback"
        }
        ErrorKind::Connect => "the directory server could not be reached",
        ErrorKind::Tls => "the TLS handshake or certificate verification failed",
        ErrorKind::Timeout => "an operation did not complete in time",
        ErrorKind::ServiceBind => "the responder's service account could not bind",
        ErrorKind::InsecureTransport => "a password would cross unencrypted LDAP without an opt-in",
        ErrorKind::InvalidUserName => "the user name contains filter or DN syntax, or control characters",
        ErrorKind::UserNotFound => "no entry matches the user name",
        ErrorKind::AmbiguousUser => "more than one entry matches the user name",
        ErrorKind::OutOfScope => "the entry is outside every configured base DN",
        ErrorKind::Refused => "the server refused the operation",
        ErrorKind::UnexpectedResponse => "the server's answer could not be understood",
        ErrorKind::UnsupportedDirectory => "the directory does not support the operation",
        ErrorKind::LockIneffective => "the lock would be ignored by the server's password policy",
        ErrorKind::ProtectedAccount => "the account is protected from automated response",
        ErrorKind::RevokerUnreachable => "a revocation endpoint could not be reached",
        ErrorKind::RevokerAuth => "a revocation endpoint refused our credentials",
        ErrorKind::RevokerProtocol => "a revocation endpoint's answer could not be understood",
        ErrorKind::RevokerFailed => "a revocation endpoint or command reported failure",
        ErrorKind::MfaNotEnrolled => "the user has no active TOTP enrolment",
        ErrorKind::MfaBadCode => "the code is malformed or does not match",
        ErrorKind::MfaReplayed => "the code was already used",
        ErrorKind::MfaThrottled => "too many failures: try again after the cool-down",
        ErrorKind::MfaStore => "the MFA database is missing, locked, corrupted or unwritable",
        ErrorKind::MfaKey => "the MFA key file is missing, malformed or not the database's",
        ErrorKind::MfaRecoveryCode => "the recovery code is not valid (or was already used)",
        ErrorKind::ReleaseRefused => {
            "release refused (no active MFA enrolment and no override, or nothing to release)"
        }
        ErrorKind::NothingToResume => "the journal holds no unfinished run",
        ErrorKind::Journal => "the journal could not be opened, locked, written or read",
        ErrorKind::JournalTampered => "the journal's hash chain is broken",
        ErrorKind::NotifyFailed => "a notification could not be delivered",
        _ => "an error the C interface has no description for",
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
            assert_ne!(r.describe(), "an error the C interface has no description for");
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
            assert_ne!(r.describe(), "unknown result");
        }
    }
}
