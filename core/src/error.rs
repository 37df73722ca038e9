//! One error type for the whole library, with a stable numeric code per kind.
//!
//! Bindings (Python exceptions, C result codes) map by [`ErrorKind::code`]. Codes are grouped
//! in hundred-blocks by area and are **never reused**; a new kind gets a new number.
//!
//! | code | kind | meaning |
//! |---|---|---|
//! | 100 | `Internal` | a bug or an OS facility failed (e.g. the random source) |
//! | 101 | `Config` | the configuration is missing, unreadable or inconsistent |
//! | 102 | `InvalidInput` | an argument was refused before anything was sent |
//! | 103 | `Io` | a local file could not be read or written |
//! | 104 | `InvalidContext` | a blocking call from inside an async runtime, or a handle used in a forked child |
//! | 200 | `Connect` | the directory server could not be reached |
//! | 201 | `Tls` | the TLS handshake or certificate verification failed |
//! | 202 | `Timeout` | an operation did not complete in time |
//! | 203 | `ServiceBind` | the responder's own service account could not bind |
//! | 204 | `InsecureTransport` | a password would cross unencrypted LDAP without an explicit opt-in |
//! | 205 | `InvalidUserName` | a user name contains filter or DN syntax, or control characters |
//! | 206 | `UserNotFound` | no entry matches the user name under the configured base DNs |
//! | 207 | `AmbiguousUser` | more than one entry matches the user name |
//! | 208 | `OutOfScope` | the entry is outside every configured base DN |
//! | 209 | `Refused` | the server refused an operation (result code and diagnostic kept) |
//! | 210 | `UnexpectedResponse` | the server's answer could not be understood |
//! | 211 | `UnsupportedDirectory` | the server's flavour does not support the operation |
//! | 212 | `LockIneffective` | a lock would be silently ignored by the server's policy |
//! | 213 | `ProtectedAccount` | the account is protected from automated response |
//! | 300 | `RevokerUnreachable` | a revocation endpoint (doveadm API, webhook) could not be reached |
//! | 301 | `RevokerAuth` | a revocation endpoint refused our credentials (API key, HTTP 401/403) |
//! | 302 | `RevokerProtocol` | a revocation endpoint answered something that could not be understood |
//! | 303 | `RevokerFailed` | a revocation endpoint or command reported failure |
//! | 400 | `MfaNotEnrolled` | the user has no (active) TOTP enrolment |
//! | 401 | `MfaBadCode` | the code is malformed or does not match |
//! | 402 | `MfaReplayed` | the code's time step was already used (replay) |
//! | 403 | `MfaThrottled` | too many failures: verification refused until the cool-down ends |
//! | 404 | `MfaStore` | the MFA database is missing, locked, corrupted or unwritable |
//! | 405 | `MfaKey` | the at-rest key file is missing, malformed, or not the database's key |
//! | 406 | `MfaRecoveryCode` | the recovery code is not valid (or was already used) |
//! | 500 | `ReleaseRefused` | release refused: no active MFA enrolment and no override, or no containment record |
//! | 501 | `NothingToResume` | the journal holds no unfinished run to resume |
//! | 600 | `Journal` | the journal could not be opened, locked, written or read |
//! | 601 | `JournalTampered` | the journal's hash chain is broken |
//! | 700 | `NotifyFailed` | a notification could not be delivered (the server refused it, or the channel failed) |

use std::fmt;
use std::sync::Arc;

/// What went wrong, as a closed set of kinds with stable codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A bug, or an OS facility (such as the random source) failed.
    Internal,
    /// The configuration is missing, unreadable or inconsistent.
    Config,
    /// An argument was refused before anything was sent.
    InvalidInput,
    /// A local file could not be read or written.
    Io,
    /// A blocking call was made from inside an async runtime, or a handle created before a
    /// `fork()` was used in the child.
    InvalidContext,
    /// The directory server could not be reached.
    Connect,
    /// The TLS handshake or certificate verification failed.
    Tls,
    /// An operation did not complete in time.
    Timeout,
    /// The responder's own service account could not bind.
    ServiceBind,
    /// A password would cross unencrypted LDAP without an explicit opt-in.
    InsecureTransport,
    /// A user name contains filter or DN syntax, or control characters.
    InvalidUserName,
    /// No entry matches the user name under the configured base DNs.
    UserNotFound,
    /// More than one entry matches the user name.
    AmbiguousUser,
    /// The entry is outside every configured base DN.
    OutOfScope,
    /// The server refused an operation; the LDAP result is in [`Error::ldap`].
    Refused,
    /// The server's answer could not be understood.
    UnexpectedResponse,
    /// The server's flavour does not support the operation.
    UnsupportedDirectory,
    /// A lock would be silently ignored by the server's password policy.
    LockIneffective,
    /// The account is protected from automated response.
    ProtectedAccount,
    /// A revocation endpoint (doveadm API, webhook) could not be reached.
    RevokerUnreachable,
    /// A revocation endpoint refused our credentials (API key, HTTP 401/403).
    RevokerAuth,
    /// A revocation endpoint answered something that could not be understood.
    RevokerProtocol,
    /// A revocation endpoint or command reported failure.
    RevokerFailed,
    /// The user has no (active) TOTP enrolment.
    MfaNotEnrolled,
    /// The code is malformed or does not match.
    MfaBadCode,
    /// The code's time step was already used (replay).
    MfaReplayed,
    /// Too many failures: verification refused until the cool-down ends.
    MfaThrottled,
    /// The MFA database is missing, locked, corrupted or unwritable.
    MfaStore,
    /// The at-rest key file is missing, malformed, or not the database's key.
    MfaKey,
    /// The recovery code is not valid (or was already used).
    MfaRecoveryCode,
    /// Release refused: no active MFA enrolment and no override, or no containment record.
    ReleaseRefused,
    /// The journal holds no unfinished run to resume.
    NothingToResume,
    /// The journal could not be opened, locked, written or read.
    Journal,
    /// The journal's hash chain is broken.
    JournalTampered,
    /// A notification could not be delivered (the server refused it, or the channel failed).
    NotifyFailed,
}

impl ErrorKind {
    /// Every kind, in code order.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::Internal,
        ErrorKind::Config,
        ErrorKind::InvalidInput,
        ErrorKind::Io,
        ErrorKind::InvalidContext,
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::Timeout,
        ErrorKind::ServiceBind,
        ErrorKind::InsecureTransport,
        ErrorKind::InvalidUserName,
        ErrorKind::UserNotFound,
        ErrorKind::AmbiguousUser,
        ErrorKind::OutOfScope,
        ErrorKind::Refused,
        ErrorKind::UnexpectedResponse,
        ErrorKind::UnsupportedDirectory,
        ErrorKind::LockIneffective,
        ErrorKind::ProtectedAccount,
        ErrorKind::RevokerUnreachable,
        ErrorKind::RevokerAuth,
        ErrorKind::RevokerProtocol,
        ErrorKind::RevokerFailed,
        ErrorKind::MfaNotEnrolled,
        ErrorKind::MfaBadCode,
        ErrorKind::MfaReplayed,
        ErrorKind::MfaThrottled,
        ErrorKind::MfaStore,
        ErrorKind::MfaKey,
        ErrorKind::MfaRecoveryCode,
        ErrorKind::ReleaseRefused,
        ErrorKind::NothingToResume,
        ErrorKind::Journal,
        ErrorKind::JournalTampered,
        ErrorKind::NotifyFailed,
    ];

    /// The stable numeric code (see the module table). Never reused.
    pub const fn code(self) -> u32 {
        match self {
            ErrorKind::Internal => 100,
            ErrorKind::Config => 101,
            ErrorKind::InvalidInput => 102,
            ErrorKind::Io => 103,
            ErrorKind::InvalidContext => 104,
            ErrorKind::Connect => 200,
            ErrorKind::Tls => 201,
            ErrorKind::Timeout => 202,
            ErrorKind::ServiceBind => 203,
            ErrorKind::InsecureTransport => 204,
            ErrorKind::InvalidUserName => 205,
            ErrorKind::UserNotFound => 206,
            ErrorKind::AmbiguousUser => 207,
            ErrorKind::OutOfScope => 208,
            ErrorKind::Refused => 209,
            ErrorKind::UnexpectedResponse => 210,
            ErrorKind::UnsupportedDirectory => 211,
            ErrorKind::LockIneffective => 212,
            ErrorKind::ProtectedAccount => 213,
            ErrorKind::RevokerUnreachable => 300,
            ErrorKind::RevokerAuth => 301,
            ErrorKind::RevokerProtocol => 302,
            ErrorKind::RevokerFailed => 303,
            ErrorKind::MfaNotEnrolled => 400,
            ErrorKind::MfaBadCode => 401,
            ErrorKind::MfaReplayed => 402,
            ErrorKind::MfaThrottled => 403,
            ErrorKind::MfaStore => 404,
            ErrorKind::MfaKey => 405,
            ErrorKind::MfaRecoveryCode => 406,
            ErrorKind::ReleaseRefused => 500,
            ErrorKind::NothingToResume => 501,
            ErrorKind::Journal => 600,
            ErrorKind::JournalTampered => 601,
            ErrorKind::NotifyFailed => 700,
        }
    }

    /// A stable snake_case name, for JSON output and logs.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::Internal => "internal",
            ErrorKind::Config => "config",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Io => "io",
            ErrorKind::InvalidContext => "invalid_context",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ServiceBind => "service_bind",
            ErrorKind::InsecureTransport => "insecure_transport",
            ErrorKind::InvalidUserName => "invalid_user_name",
            ErrorKind::UserNotFound => "user_not_found",
            ErrorKind::AmbiguousUser => "ambiguous_user",
            ErrorKind::OutOfScope => "out_of_scope",
            ErrorKind::Refused => "refused",
            ErrorKind::UnexpectedResponse => "unexpected_response",
            ErrorKind::UnsupportedDirectory => "unsupported_directory",
            ErrorKind::LockIneffective => "lock_ineffective",
            ErrorKind::ProtectedAccount => "protected_account",
            ErrorKind::RevokerUnreachable => "revoker_unreachable",
            ErrorKind::RevokerAuth => "revoker_auth",
            ErrorKind::RevokerProtocol => "revoker_protocol",
            ErrorKind::RevokerFailed => "revoker_failed",
            ErrorKind::MfaNotEnrolled => "mfa_not_enrolled",
            ErrorKind::MfaBadCode => "mfa_bad_code",
            ErrorKind::MfaReplayed => "mfa_replayed",
            ErrorKind::MfaThrottled => "mfa_throttled",
            ErrorKind::MfaStore => "mfa_store",
            ErrorKind::MfaKey => "mfa_key",
            ErrorKind::MfaRecoveryCode => "mfa_recovery_code",
            ErrorKind::ReleaseRefused => "release_refused",
            ErrorKind::NothingToResume => "nothing_to_resume",
            ErrorKind::Journal => "journal",
            ErrorKind::JournalTampered => "journal_tampered",
            ErrorKind::NotifyFailed => "notify_failed",
        }
    }

    /// The kind with this code, if any.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// The kind with this [`name`](Self::name), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An LDAP result kept as data: result code, diagnostic text, matched DN.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LdapDiagnostic {
    /// RFC 4511 result code (e.g. 49 invalid credentials, 50 insufficient access).
    pub rc: u32,
    /// The server's diagnostic message (AD puts `data 52e`-style codes here).
    pub text: String,
    /// The matched DN the server returned, often empty.
    pub matched: String,
}

/// The library's error: a [`kind`](Error::kind) with a stable code, a message for humans,
/// the LDAP result when a server answered, and the underlying cause (I/O, SQLite, TLS, LDAP)
/// as its [`source`](std::error::Error::source). Never carries a secret.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{} (E{}): {message}{}", kind.name(), kind.code(), LdapSuffix(ldap.as_ref()))]
pub struct Error {
    kind: ErrorKind,
    message: String,
    ldap: Option<LdapDiagnostic>,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Two errors are equal when kind, message and LDAP result are (the cause is not compared).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message && self.ldap == other.ldap
    }
}

impl Eq for Error {}

/// ` [LDAP result 50: text]`, or nothing.
struct LdapSuffix<'a>(Option<&'a LdapDiagnostic>);

impl fmt::Display for LdapSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.0 {
            write!(f, " [LDAP result {}", l.rc)?;
            if !l.text.is_empty() {
                write!(f, ": {}", l.text)?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

impl Error {
    /// A new error of `kind`. `message` must not contain secrets.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            ldap: None,
            source: None,
        }
    }

    /// Keeps `cause` as the error's [`source`](std::error::Error::source). The cause must not
    /// hold a secret either (I/O, SQLite, TLS and LDAP errors do not).
    pub fn with_source(
        mut self,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(Arc::from(cause.into()));
        self
    }

    /// Attaches the server's LDAP result.
    pub fn with_ldap(mut self, rc: u32, text: impl Into<String>, matched: impl Into<String>) -> Self {
        self.ldap = Some(LdapDiagnostic {
            rc,
            text: text.into(),
            matched: matched.into(),
        });
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable numeric code of the kind.
    pub fn code(&self) -> u32 {
        self.kind.code()
    }

    /// The human-readable message, without the LDAP part.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The LDAP result, when a server answered.
    pub fn ldap(&self) -> Option<&LdapDiagnostic> {
        self.ldap.as_ref()
    }
}

/// Serialises as `{"kind", "code", "message", "ldap"}` for reports, the journal and `--json`
/// output (`message` without the kind and code, which have their own fields).
impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Error", 4)?;
        st.serialize_field("kind", self.kind.name())?;
        st.serialize_field("code", &self.kind.code())?;
        st.serialize_field("message", &self.message)?;
        st.serialize_field("ldap", &self.ldap)?;
        st.end()
    }
}

/// Reads what [`Serialize`](serde::Serialize) wrote; the kind comes from the stable code (an
/// unknown code — a newer writer — reads as [`ErrorKind::Internal`]).
impl<'de> serde::Deserialize<'de> for Error {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            code: u32,
            message: String,
            #[serde(default)]
            ldap: Option<LdapDiagnostic>,
        }
        let w = Wire::deserialize(d)?;
        Ok(Self {
            kind: ErrorKind::from_code(w.code).unwrap_or(ErrorKind::Internal),
            message: w.message,
            ldap: w.ldap,
            source: None,
        })
    }
}

/// Shorthand for `Result<T, cadenas::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_stable_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for k in ErrorKind::ALL {
            assert!(seen.insert(k.code()), "duplicate code {}", k.code());
            assert_eq!(ErrorKind::from_code(k.code()), Some(*k));
        }
        // Pinned: bindings depend on these numbers.
        assert_eq!(ErrorKind::InsecureTransport.code(), 204);
        assert_eq!(ErrorKind::InvalidUserName.code(), 205);
        assert_eq!(ErrorKind::Refused.code(), 209);
        assert_eq!(ErrorKind::from_code(999), None);
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(k.name()), Some(*k));
        }
    }

    #[test]
    fn the_cause_is_kept_as_source() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = Error::new(ErrorKind::Io, "cannot write the journal").with_source(io);
        assert_eq!(e.source().map(|s| s.to_string()).as_deref(), Some("denied"));
        assert!(Error::new(ErrorKind::Io, "x").source().is_none());
    }

    #[test]
    fn errors_round_trip_through_json() {
        let e = Error::new(ErrorKind::Refused, "modify refused").with_ldap(50, "no write access", "");
        let back: Error = serde_json::from_str(&serde_json::to_string(&e).expect("ser")).expect("de");
        assert_eq!(back, e);
    }

    #[test]
    fn display_includes_kind_code_and_ldap_result() {
        let e = Error::new(ErrorKind::Refused, "modify refused").with_ldap(50, "no write access", "");
        assert_eq!(
            e.to_string(),
            "refused (E209): modify refused [LDAP result 50: no write access]"
        );
    }
}
